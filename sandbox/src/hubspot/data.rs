//! What the HubSpot sandbox stores: the portal's pipelines, property definitions and CRM records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oauth::OAuthData;
use crate::table::{Row, Table};

/// A CRM object type by its name and its type id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Contacts,
    Companies,
    Deals,
}

impl ObjectType {
    pub const ALL: [ObjectType; 3] = [ObjectType::Contacts, ObjectType::Companies, ObjectType::Deals];

    /// Accepts `deals`, `deal`, `0-3` and the like, as HubSpot does.
    pub fn parse(s: &str) -> Option<ObjectType> {
        match s.to_ascii_lowercase().as_str() {
            "contacts" | "contact" | "0-1" => Some(ObjectType::Contacts),
            "companies" | "company" | "0-2" => Some(ObjectType::Companies),
            "deals" | "deal" | "0-3" => Some(ObjectType::Deals),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::Deals => "deals",
        }
    }

    pub fn type_id(self) -> &'static str {
        match self {
            ObjectType::Contacts => "0-1",
            ObjectType::Companies => "0-2",
            ObjectType::Deals => "0-3",
        }
    }

    /// The OAuth scope a read or a write needs.
    pub fn scope(self, write: bool) -> String {
        format!("crm.objects.{}.{}", self.name(), if write { "write" } else { "read" })
    }

    /// Properties returned when a request names none.
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &["firstname", "lastname", "email"],
            ObjectType::Companies => &["name", "domain"],
            ObjectType::Deals => &["dealname", "amount", "closedate", "pipeline", "dealstage"],
        }
    }
}

/// One value a property held, and when.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub value: String,
    pub timestamp: i64,
    pub source_type: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub properties: BTreeMap<String, String>,
    /// Newest first, as HubSpot lists `propertiesWithHistory`.
    pub history: BTreeMap<String, Vec<Change>>,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
    pub archived_at: Option<i64>,
}

/// The properties a record is looked up by (see [`lookup_key`]): a contact's email, a company's
/// domain.
pub const LOOKUP_PROPERTIES: [&str; 2] = ["email", "domain"];

/// The key a record whose `property` holds `value` is found under in its table (none for an empty
/// value, which no record holds): the trimmed lower-case value, so that every way a search or a
/// uniqueness check compares a value (exactly, in lower case, trimmed) finds it under this key.
pub fn lookup_key(property: &str, value: &str) -> Option<String> {
    (!value.is_empty()).then(|| format!("{property}:{}", value.trim().to_lowercase()))
}

impl Row for Record {
    fn id(&self) -> u64 {
        self.id
    }
    fn add_time(&self) -> i64 {
        self.created_at
    }
    fn update_time(&self) -> i64 {
        self.updated_at
    }
    fn lookup_keys(&self) -> Vec<String> {
        LOOKUP_PROPERTIES.iter().filter_map(|p| lookup_key(p, self.properties.get(*p)?)).collect()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub label: String,
    pub display_order: i32,
    /// 0.0–1.0 as a string, e.g. "0.2".
    pub probability: String,
    pub is_closed: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub label: String,
    pub display_order: i32,
    pub stages: Vec<Stage>,
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    pub display_order: i32,
    pub hidden: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    /// string, number, date, datetime, enumeration, bool, phone_number
    pub kind: String,
    pub field_type: String,
    pub group_name: String,
    pub description: String,
    pub options: Vec<PropertyOption>,
    pub hubspot_defined: bool,
    pub read_only: bool,
    /// `hasUniqueValue`: usable as an upsert key.
    #[serde(default)]
    pub unique: bool,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    pub user_id: u64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// The whole portal, persisted as one snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HubData {
    pub portal_id: u64,
    pub next_id: u64,
    pub pipelines: Vec<Pipeline>,
    pub properties: BTreeMap<ObjectType, Vec<PropertyDef>>,
    pub records: BTreeMap<ObjectType, Table<Record>>,
    pub owners: Vec<Owner>,
    #[serde(default)]
    pub associations: Vec<super::associations::Association>,
    pub oauth: OAuthData,
    #[serde(default)]
    pub webhooks: super::webhooks::WebhookConfig,
    /// Changes waiting for webhook delivery (recorded only while webhooks are set up).
    #[serde(skip)]
    pub outbox: Vec<super::webhooks::ObjectEvent>,
}

impl HubData {
    pub fn new(portal_id: u64) -> HubData {
        let mut data = HubData {
            portal_id,
            next_id: 1000,
            pipelines: Vec::new(),
            properties: BTreeMap::new(),
            records: BTreeMap::new(),
            owners: Vec::new(),
            associations: Vec::new(),
            oauth: OAuthData::default(),
            webhooks: Default::default(),
            outbox: Vec::new(),
        };
        super::seed::install_defaults(&mut data);
        data
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn property(&self, object: ObjectType, name: &str) -> Option<&PropertyDef> {
        self.properties.get(&object).and_then(|defs| defs.iter().find(|d| d.name == name))
    }

    pub fn pipeline(&self, id: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == id && !p.archived)
    }

    pub fn records(&self, object: ObjectType) -> impl Iterator<Item = &Record> {
        self.records.get(&object).into_iter().flat_map(|m| m.values())
    }

    /// The ids of the live records of `object` whose `property` holds exactly `value`, in id
    /// order, read from the lookup index; none when the property is not indexed (see
    /// [`LOOKUP_PROPERTIES`]).
    pub fn indexed_with(&self, object: ObjectType, property: &str, value: &str) -> Option<Vec<u64>> {
        if !LOOKUP_PROPERTIES.contains(&property) {
            return None;
        }
        let (Some(table), Some(key)) = (self.records.get(&object), lookup_key(property, value)) else {
            return Some(Vec::new());
        };
        let mut ids: Vec<u64> = table
            .with_key(&key)
            .iter()
            .copied()
            .filter(|id| table.get(id).is_some_and(|r| !r.archived && r.properties.get(property).map(String::as_str) == Some(value)))
            .collect();
        ids.sort_unstable();
        Some(ids)
    }

    /// The live contact, other than `except`, whose email (compared in lower case) is one of
    /// `emails`: HubSpot keeps one contact per email. Answers that contact's id.
    pub fn contact_with_email(&self, emails: &std::collections::HashSet<String>, except: Option<u64>) -> Option<u64> {
        let contacts = self.records.get(&ObjectType::Contacts)?;
        let mut ids: Vec<u64> =
            emails.iter().filter_map(|e| lookup_key("email", e)).flat_map(|key| contacts.with_key(&key).to_vec()).collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| contacts.get(&id)).find(|r| !r.archived && Some(r.id) != except).map(|r| r.id)
    }

    /// Creates a record with `properties` set at `at` (the values were checked by the caller).
    pub fn insert_record(&mut self, object: ObjectType, properties: BTreeMap<String, String>, at: i64, source: &str) -> u64 {
        let id = self.next_id();
        let mut record = Record {
            id,
            properties: BTreeMap::new(),
            history: BTreeMap::new(),
            created_at: at,
            updated_at: at,
            archived: false,
            archived_at: None,
        };
        let mut all = properties;
        all.insert("hs_object_id".into(), id.to_string());
        all.insert("createdate".into(), crate::time::iso_ms(at));
        if object == ObjectType::Deals {
            all.entry("pipeline".into()).or_insert_with(|| "default".into());
        }
        apply(&mut record, all, at, source);
        self.records.entry(object).or_default().insert(id, record);
        self.record_event(object, id, super::webhooks::EventKind::Creation, at, source);
        id
    }

    /// Sets properties on a live record (see [`apply`]) and records a `propertyChange` event per
    /// changed property. False when there is no such record.
    pub fn update_record(&mut self, object: ObjectType, id: u64, properties: BTreeMap<String, String>, at: i64, source: &str) -> bool {
        let Some(mut record) = self.records.get_mut(&object).and_then(|m| m.get_mut(&id)) else {
            return false;
        };
        let changed = apply(&mut record, properties, at, source);
        drop(record);
        for (name, value) in changed {
            self.record_event(object, id, super::webhooks::EventKind::PropertyChange { name, value }, at, source);
        }
        true
    }

    /// Archives a live record and records a `deletion` event; false when it was not live.
    pub fn archive_record(&mut self, object: ObjectType, id: u64, at: i64) -> bool {
        let archived = match self.records.get_mut(&object).and_then(|m| m.get_mut(&id)) {
            Some(mut record) if !record.archived => {
                record.archived = true;
                record.archived_at = Some(at);
                record.updated_at = at;
                true
            }
            _ => false,
        };
        if archived {
            self.record_event(object, id, super::webhooks::EventKind::Deletion, at, "INTEGRATION");
        }
        archived
    }

    fn record_event(&mut self, object: ObjectType, object_id: u64, kind: super::webhooks::EventKind, at: i64, source: &str) {
        if self.webhooks.delivering() {
            self.outbox.push(super::webhooks::ObjectEvent { object, object_id, kind, occurred_at: at, source: source.to_string() });
        }
    }
}

/// Sets properties on a record at `at`, keeping history and the modification date. An empty value
/// clears the property. Answers the properties that changed, with their new values.
pub fn apply(record: &mut Record, properties: BTreeMap<String, String>, at: i64, source: &str) -> Vec<(String, String)> {
    let mut changed = Vec::new();
    for (name, value) in properties {
        let unchanged = record.properties.get(&name) == Some(&value) || (value.is_empty() && !record.properties.contains_key(&name));
        if unchanged {
            continue;
        }
        // A new history starts at capacity one: most properties never change again.
        record
            .history
            .entry(name.clone())
            .or_insert_with(|| Vec::with_capacity(1))
            .insert(0, Change { value: value.clone(), timestamp: at, source_type: source.to_string() });
        changed.push((name.clone(), value.clone()));
        if value.is_empty() {
            record.properties.remove(&name);
        } else {
            record.properties.insert(name, value);
        }
    }
    record.updated_at = record.updated_at.max(at);
    let modified = crate::time::iso_ms(record.updated_at);
    record.properties.insert("hs_lastmodifieddate".into(), modified.clone());
    record
        .history
        .entry("hs_lastmodifieddate".into())
        .or_insert_with(|| Vec::with_capacity(1))
        .insert(0, Change { value: modified, timestamp: record.updated_at, source_type: "CALCULATED".into() });
    changed
}
