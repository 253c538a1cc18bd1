//! The pure half of the engine: what to do with a page of records, decided without I/O.
//!
//! A page read from one side goes through three steps, each a function of what it is given:
//! [`Planner::classify`] sorts its records (already linked, new, left out, to compare with the
//! other side), [`Planner::pair`] pairs those to compare with their counterparts (a counterpart
//! that is gone is recorded, never propagated), and [`Planner::compare_pairs`] merges each pair
//! field by field. Between the steps the runner reads what they ask for (the counterparts, the
//! times of fields changed on both sides); [`Planner::plan_page`] runs all three from a page and
//! everything read for it, as the tests and a preview do. The result is a [`PagePlan`]: rows and
//! events to commit, creates and updates to send, and the run's counts.

mod classify;
mod compare;
#[cfg(test)]
mod tests;
mod values;

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use model::apps::ObjectKind;
use model::merge::{conflict_note, decide, Agreed, Decision, FieldState, Flow, Reason, Side};
use model::states::{EventKind, Exclusion, RecordReason, RecordState};
use model::sync::{FieldInfo, FieldKind, Filter, FilterOp, SideSchema, SyncSettings};
use model::translate::{canonical, FieldTranslate, StageTranslate};

use super::api::Category;
use super::links::{self, IdPairs};
use crate::connectors::record::{self, RecordRules, RemoteRecord, STAGE};
use crate::secret::new_id;
use crate::store::{Agreements, EventRow, PendingWrites, RecordRow};

/// Field values by key, as sent to one side.
pub type Values = BTreeMap<String, Option<String>>;
/// A record to create: (target side, its pending row, the source record, values for the new one).
pub type Create = (Side, RecordRow, RemoteRecord, Values);
/// A record to update: (target side, row index in the plan's records, target id, values, the
/// agreed values before).
pub type Update = (Side, usize, String, Values, Agreements);

/// A mapped field pair usable in this run (both fields still exist).
pub struct Mapped<'a> {
    pub key: String,
    pub hub: &'a FieldInfo,
    pub app: &'a FieldInfo,
    pub translate: FieldTranslate<'a>,
    pub flow: Flow,
    /// An association (an index into the planner's link pairs), translated through an identity
    /// map.
    pub link: Option<usize>,
}

/// When each field of a linked pair last changed, where the provider says (HubSpot's property
/// history, Pipedrive's deal changelog); other fields are timed by their record's last change.
#[derive(Debug, Default, Clone)]
pub struct FieldTimes {
    pub hub: HashMap<String, i64>,
    pub app: HashMap<String, i64>,
}

/// What a contact or company new to Tandem matches on the other side.
#[derive(Debug)]
pub enum Found {
    /// The row linking it to the other side's record, and what the event says.
    Link(Box<RecordRow>, String),
    /// Its key is linked to another record already: left out, saying why.
    Duplicate(String),
}

/// Everything a page decided: written and committed together.
#[derive(Debug)]
pub struct PagePlan {
    /// The side the page was read from (records left as they are count for it).
    pub reading: Side,
    pub records: Vec<RecordRow>,
    pub events: Vec<EventRow>,
    pub creates: Vec<Create>,
    pub updates: Vec<Update>,
    /// Records read and left as they are.
    pub skipped: i64,
    /// Of those, the ones read from HubSpot.
    pub skipped_from_hub: i64,
    pub conflicts: i64,
    /// Values left unsynced for want of a counterpart in the schema the planner was given (an
    /// owner with no user of that email, an option the other field lacks), as "side field
    /// value": a schema kept from an earlier run is read again before such a page is written.
    pub unmatched: Vec<String>,
}

impl PagePlan {
    pub fn new(reading: Side) -> PagePlan {
        PagePlan {
            reading,
            records: Vec::new(),
            events: Vec::new(),
            creates: Vec::new(),
            updates: Vec::new(),
            skipped: 0,
            skipped_from_hub: 0,
            conflicts: 0,
            unmatched: Vec::new(),
        }
    }

    /// A value of `from`'s `key` with no counterpart on the other side.
    pub fn unmatched(&mut self, from: Side, key: &str, value: Option<&str>) {
        self.unmatched.push(format!("{} {key} {}", from.as_str(), value.unwrap_or_default()));
    }

    /// A record read and left as it is, counted for the side it was read from.
    pub fn skip(&mut self) {
        self.skipped += 1;
        if self.reading == Side::HubSpot {
            self.skipped_from_hub += 1;
        }
    }
}

/// A page and everything read for it: the input of [`Planner::plan_page`].
#[derive(Debug)]
pub struct PageInput {
    pub side: Side,
    pub records: Vec<RemoteRecord>,
    /// Identity-map rows of the page's records, by their id on `side`.
    pub rows: HashMap<String, RecordRow>,
    /// Rows of records Tandem created whose link was not recorded yet, by Tandem id.
    pub by_tandem: HashMap<String, RecordRow>,
    /// Contacts and companies new to Tandem: what each matches on the other side.
    pub matches: HashMap<String, Found>,
    /// The other side's records, by id.
    pub counterparts: HashMap<String, RemoteRecord>,
    /// Field times of records whose fields changed on both sides, by each side's record id.
    pub hub_times: HashMap<String, HashMap<String, i64>>,
    pub app_times: HashMap<String, HashMap<String, i64>>,
    /// Compare even records whose modification time was already seen (retries).
    pub force: bool,
    pub now: i64,
}

/// A linked record read on one side, and its identity-map row.
pub type ToCompare = (RecordRow, RemoteRecord);
/// A linked record as read on both sides: (row, HubSpot's, the app's).
pub type Pair = (RecordRow, RemoteRecord, RemoteRecord);

/// One sync's rules as the planning of its pages needs them.
pub struct Planner<'a> {
    pub sync_id: String,
    pub run_id: String,
    pub settings: &'a SyncSettings,
    pub hub_schema: &'a SideSchema,
    pub app_schema: &'a SideSchema,
    pub mapped: Vec<Mapped<'a>>,
    pub stages: StageTranslate<'a>,
    pub stage_flow: Flow,
    pub rule: model::sync::ConflictRule,
    /// The app's name, as messages and conflict rules say it.
    pub app_name: String,
    /// The linked records' ids known on the page being planned, one set per association.
    pub link_pairs: Vec<IdPairs>,
    /// Each side's rules for its records (the name a new one needs, fields written together).
    pub hub_rules: RecordRules,
    pub app_rules: RecordRules,
}

impl<'a> Planner<'a> {
    /// The planner of a sync's pages: its settings' mappings whose fields both schemas still
    /// hold, plus `link_infos` (the associations it keeps, each translated through the link
    /// pairs of the same index).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sync_id: &str,
        run_id: &str,
        app_name: &str,
        settings: &'a SyncSettings,
        hub_schema: &'a SideSchema,
        app_schema: &'a SideSchema,
        owners: &'a model::translate::OwnerPairs,
        link_infos: &'a [(model::sync::FieldMapping, FieldInfo, FieldInfo)],
        link_nouns: &[&'static str],
    ) -> Planner<'a> {
        let mut mapped = Vec::new();
        for m in &settings.fields {
            let (Some(hub), Some(app)) = (hub_schema.field(&m.hubspot_property), app_schema.field(&m.app_field)) else {
                tracing::warn!(hubspot = %m.hubspot_property, app = %m.app_field, "a mapped field no longer exists; skipped");
                continue;
            };
            mapped.push(Mapped {
                key: format!("{}>{}", m.hubspot_property, m.app_field),
                hub,
                app,
                translate: FieldTranslate { mapping: m, hub, app, owners },
                flow: Flow::of(settings.direction, m.direction),
                link: None,
            });
        }
        for (i, (mapping, hub, app)) in link_infos.iter().enumerate() {
            mapped.push(Mapped {
                key: format!("{}>{}", hub.key, app.key),
                hub,
                app,
                translate: FieldTranslate { mapping, hub, app, owners },
                flow: Flow::of(settings.direction, model::apps::SyncDirection::TwoWay),
                link: Some(i),
            });
        }
        Planner {
            sync_id: sync_id.to_string(),
            run_id: run_id.to_string(),
            settings,
            hub_schema,
            app_schema,
            mapped,
            stages: StageTranslate::new(&settings.pipelines),
            stage_flow: Flow::of(settings.direction, model::apps::SyncDirection::TwoWay),
            rule: settings.effective_conflict_rule(),
            app_name: app_name.to_string(),
            link_pairs: link_nouns.iter().map(|noun| IdPairs::new(noun)).collect(),
            hub_rules: RecordRules::default(),
            app_rules: RecordRules::default(),
        }
    }

    /// The planner with each side's record rules, as their connectors give them.
    pub fn with_rules(mut self, hub: RecordRules, app: RecordRules) -> Planner<'a> {
        (self.hub_rules, self.app_rules) = (hub, app);
        self
    }

    fn rules(&self, side: Side) -> RecordRules {
        match side {
            Side::HubSpot => self.hub_rules,
            Side::App => self.app_rules,
        }
    }

    /// The HubSpot properties to read (mapped fields; associations travel apart).
    pub fn hub_fields(&self) -> Vec<String> {
        self.mapped.iter().filter(|m| m.link.is_none()).map(|m| m.hub.key.clone()).collect()
    }

    /// The app fields to read: mapped fields and the fields the filters test.
    pub fn app_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self.mapped.iter().map(|m| m.app.key.clone()).collect();
        fields.extend(self.settings.filters.iter().map(|f| f.field.clone()));
        fields.sort();
        fields.dedup();
        fields
    }

    /// Deals: pipelines and stages take part.
    pub fn deal(&self) -> bool {
        self.settings.object == ObjectKind::Deal
    }

    /// Contacts and companies: matched across the apps by email or domain.
    pub fn matched(&self) -> bool {
        record::is_matched(self.settings.object)
    }

    pub fn noun(&self) -> &'static str {
        match self.settings.object {
            ObjectKind::Deal => "deal",
            ObjectKind::Contact => "contact",
            ObjectKind::Company => "company",
        }
    }

    /// Plans a whole page from the page and everything read for it: the three steps the runner
    /// takes with its reads in between.
    pub fn plan_page(&self, input: PageInput) -> PagePlan {
        let PageInput { side, records, mut rows, by_tandem, mut matches, counterparts, mut hub_times, mut app_times, force, now } = input;
        let mut plan = PagePlan::new(side);
        let compare = self.classify(side, records, &mut rows, &by_tandem, &mut matches, force, now, &mut plan);
        let pairs = self.pair(side, compare, &counterparts, now, &mut plan);
        let times = pairs
            .iter()
            .map(|(_, hub, app)| FieldTimes {
                hub: hub_times.remove(&hub.id).unwrap_or_default(),
                app: app_times.remove(&app.id).unwrap_or_default(),
            })
            .collect();
        self.compare_pairs(pairs, times, now, &mut plan);
        plan
    }
}

/// Agreed values from a source side's value and the other side's.
fn pair(source: Side, source_value: Option<String>, target_value: Option<String>) -> Agreed {
    match source {
        Side::HubSpot => Agreed { hub: source_value, app: target_value },
        Side::App => Agreed { hub: target_value, app: source_value },
    }
}

/// A record that failed for a reason a retry of the same values cannot fix.
fn failed_for_good(row: &RecordRow) -> bool {
    row.state == RecordState::Failed && !matches!(row.reason, Some(RecordReason::Failed(c)) if c.transient())
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::HubSpot => "HubSpot",
        Side::App => "the app",
    }
}

/// A value as the history shows it: a stage by its pipeline's and its own name, the rest as is.
fn shown(schema: &SideSchema, key: &str, value: &Option<String>) -> Option<String> {
    let value = value.as_ref()?;
    if key != STAGE {
        return Some(value.clone());
    }
    let named = value.split_once('/').and_then(|(pipeline, stage)| {
        let p = schema.pipeline(pipeline)?;
        let s = p.stages.iter().find(|s| s.id == stage)?;
        Some(format!("{} › {}", p.name, s.name))
    });
    Some(named.unwrap_or_else(|| value.clone()))
}

fn label(schema: &SideSchema, key: &str) -> String {
    if key == STAGE {
        return "Deal stage".into();
    }
    schema.field(key).map(|f| f.label.clone()).unwrap_or_else(|| key.to_string())
}

/// Whether an app deal's value meets one filter.
pub fn filter_matches(filter: &Filter, kind: Option<FieldKind>, value: Option<String>) -> bool {
    let value = value.filter(|v| !v.trim().is_empty());
    let number = |s: &str| s.trim().parse::<f64>().ok();
    match filter.op {
        FilterOp::IsKnown => value.is_some(),
        FilterOp::IsUnknown => value.is_none(),
        FilterOp::Is => value.is_some_and(|v| {
            v.trim().eq_ignore_ascii_case(filter.value.trim()) || (number(&v).is_some() && number(&v) == number(&filter.value))
        }),
        FilterOp::IsNot => !value.is_some_and(|v| {
            v.trim().eq_ignore_ascii_case(filter.value.trim()) || (number(&v).is_some() && number(&v) == number(&filter.value))
        }),
        FilterOp::Contains => value.is_some_and(|v| v.to_lowercase().contains(&filter.value.trim().to_lowercase())),
        FilterOp::GreaterThan | FilterOp::LessThan => {
            let Some(v) = value else { return false };
            let ordering = match kind {
                Some(FieldKind::Date) => canonical(FieldKind::Date, Some(&v)).map(|v| v.cmp(&filter.value.trim().to_string())),
                _ => number(&v).zip(number(&filter.value)).and_then(|(a, b)| a.partial_cmp(&b)),
            };
            match filter.op {
                FilterOp::GreaterThan => ordering == Some(std::cmp::Ordering::Greater),
                _ => ordering == Some(std::cmp::Ordering::Less),
            }
        }
    }
}
