//! Associations: a deal's contact and company, a contact's company. When the other object is synced
//! too (a sync of the same app), each link travels like a mapped field: on HubSpot it is an
//! association (`@contact`, `@company`), in Pipedrive a field (a deal's `person_id` and `org_id`, a
//! person's `org_id`). The values are each side's own record ids, translated through the other
//! sync's identity map; a link to a record that sync has not linked yet cannot be set, and says so.

use std::collections::{BTreeMap, HashMap};

use model::apps::ObjectKind;
use model::merge::Translate;
use model::sync::{FieldInfo, FieldKind, FieldMapping};

use crate::connectors::Provider;

/// One association a sync keeps.
#[derive(Clone, Debug)]
pub struct Link {
    /// The key HubSpot's side travels under (not a property: an association).
    pub hub_key: &'static str,
    /// The app's field holding the linked record's id, and its name in the app.
    pub app_key: &'static str,
    pub app_label: &'static str,
    /// HubSpot's object name of the linked records (`contacts`, `companies`).
    pub hub_to: &'static str,
    /// The linked object, and the sync of it whose identity map translates the ids.
    pub object: ObjectKind,
    pub sync_id: String,
}

impl Link {
    pub fn noun(&self) -> &'static str {
        self.object.key()
    }

    /// How each side's field is shown (the record timeline, the messages).
    pub fn infos(&self) -> (FieldMapping, FieldInfo, FieldInfo) {
        let hub_label = match self.object {
            ObjectKind::Contact => "Associated contact",
            ObjectKind::Company => "Associated company",
            ObjectKind::Deal => "Associated deal",
        };
        let info = |key: &str, label: &str| FieldInfo {
            key: key.into(),
            label: label.into(),
            kind: FieldKind::Text,
            options: vec![],
            read_only: false,
            custom: false,
        };
        let mapping = FieldMapping {
            hubspot_property: self.hub_key.into(),
            app_field: self.app_key.into(),
            direction: model::apps::SyncDirection::TwoWay,
            values: vec![],
        };
        (mapping, info(self.hub_key, hub_label), info(self.app_key, self.app_label))
    }
}

/// The associations a sync of `object` with `app` can keep, before knowing which other objects
/// are synced: the app's connector says which of its fields link records; HubSpot links them by
/// association. `sync_id` is left for the caller to fill.
pub fn possible(app: Provider, object: ObjectKind) -> Vec<Link> {
    app.link_fields(object)
        .iter()
        .map(|l| {
            let (hub_key, hub_to) = match l.object {
                ObjectKind::Contact => ("@contact", "contacts"),
                ObjectKind::Company => ("@company", "companies"),
                ObjectKind::Deal => ("@deal", "deals"),
            };
            Link { hub_key, app_key: l.field, app_label: l.label, hub_to, object: l.object, sync_id: String::new() }
        })
        .collect()
}

pub fn is_link_key(key: &str) -> bool {
    key.starts_with('@')
}

/// Values to write as HubSpot properties: the associations travel apart.
pub fn properties(values: &BTreeMap<String, Option<String>>) -> BTreeMap<String, Option<String>> {
    values.iter().filter(|(k, _)| !is_link_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The ids of linked records known on a page: HubSpot id ↔ app id, with their names.
#[derive(Debug, Default)]
pub struct IdPairs {
    pub noun: &'static str,
    to_app: HashMap<String, String>,
    to_hub: HashMap<String, String>,
    names: HashMap<String, String>,
}

impl IdPairs {
    pub fn new(noun: &'static str) -> IdPairs {
        IdPairs { noun, ..IdPairs::default() }
    }

    pub fn clear(&mut self) {
        self.to_app.clear();
        self.to_hub.clear();
        self.names.clear();
    }

    pub fn add(&mut self, hub: &str, app: &str, name: &str) {
        self.to_app.insert(hub.to_string(), app.to_string());
        self.to_hub.insert(app.to_string(), hub.to_string());
        if !name.is_empty() {
            self.names.insert(format!("h{hub}"), name.to_string());
            self.names.insert(format!("a{app}"), name.to_string());
        }
    }

    pub fn knows_hub(&self, hub: &str) -> bool {
        self.to_app.contains_key(hub)
    }

    /// A linked record as the timeline shows it: its name, else its id.
    pub fn shown(&self, on_hub: bool, id: &str) -> String {
        self.names.get(&format!("{}{id}", if on_hub { 'h' } else { 'a' })).map(|n| format!("{n} ({id})")).unwrap_or_else(|| id.to_string())
    }
}

impl Translate for IdPairs {
    fn to_app(&self, hub: Option<&str>) -> Result<Option<String>, String> {
        let Some(hub) = hub else { return Ok(None) };
        self.to_app
            .get(hub)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("the associated HubSpot {} ({hub}) is not synced yet, so the link cannot be set", self.noun))
    }

    fn to_hub(&self, app: Option<&str>) -> Result<Option<String>, String> {
        let Some(app) = app else { return Ok(None) };
        self.to_hub
            .get(app)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("the linked {} ({app}) is not synced to HubSpot yet, so the association cannot be created", self.noun))
    }
}
