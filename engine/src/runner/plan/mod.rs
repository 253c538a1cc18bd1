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

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use model::apps::ObjectKind;
use model::merge::{conflict_note, decide, Agreed, Decision, FieldState, Flow, Reason, Side};
use model::states::{EventKind, RecordState};
use model::sync::{FieldInfo, FieldKind, Filter, FilterOp, SideSchema, SyncSettings};
use model::translate::{canonical, FieldTranslate, StageTranslate};

use super::api::Category;
use super::links::{self, IdPairs};
use crate::connectors::record::{self, RecordRules, RemoteRecord, STAGE};
use crate::secret::new_id;
use crate::store::{Agreements, EventRow, RecordRow};

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
        }
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

    /// Contacts and companies with no counterpart yet (never seen, or left out before, such as
    /// a duplicate): those to look for on the other side by their email or domain.
    pub fn needs_match<'r>(
        &self,
        side: Side,
        records: &'r [RemoteRecord],
        rows: &'r HashMap<String, RecordRow>,
        by_tandem: &HashMap<String, RecordRow>,
    ) -> Vec<(&'r RemoteRecord, Option<&'r RecordRow>)> {
        if !self.matched() {
            return Vec::new();
        }
        records
            .iter()
            .filter(|d| !d.tandem_id.as_ref().is_some_and(|t| by_tandem.contains_key(t)))
            .filter_map(|d| match rows.get(&d.id) {
                None => Some((d, None)),
                Some(row) if row.id_on(side.other()).is_none() && row.state != RecordState::Creating => Some((d, Some(row))),
                Some(_) => None,
            })
            .collect()
    }

    /// Step one: each record of a page read from `side` is skipped (being created, refused for
    /// the same values before, or unchanged since both sides agreed), linked to its match,
    /// left out as a duplicate, considered as new, or answered to be compared with the other
    /// side. `rows` are the page's identity-map rows by their id on `side` (taken as used).
    #[allow(clippy::too_many_arguments)]
    pub fn classify(
        &self,
        side: Side,
        records: Vec<RemoteRecord>,
        rows: &mut HashMap<String, RecordRow>,
        by_tandem: &HashMap<String, RecordRow>,
        matches: &mut HashMap<String, Found>,
        force: bool,
        now: i64,
        plan: &mut PagePlan,
    ) -> Vec<ToCompare> {
        let mut compare = Vec::new();
        for deal in records {
            let row = rows.remove(&deal.id).or_else(|| {
                let mut row = by_tandem.get(deal.tandem_id.as_deref()?)?.clone();
                if row.id_on(side).is_some() {
                    return None;
                }
                row.set_id(side, deal.id.clone());
                (row.state, row.create_on) = (RecordState::Linked, None);
                Some(row)
            });
            match row {
                Some(row) if row.state == RecordState::Creating => plan.skip(),
                Some(row) if !force && failed_for_good(&row) && row.seen_on(side) == Some(deal.updated_at) => {
                    // Refused for its values (validation, permission, …): sending the same
                    // values again would fail again. It waits for a change or an admin's Retry.
                    plan.skip();
                }
                Some(row) if row.hubspot_id.is_some() && row.app_id.is_some() => {
                    if !force && row.state == RecordState::Linked && self.unchanged(side, &row, &deal) {
                        // Tandem's own write read back, or a change to a field no mapping covers.
                        plan.skip();
                    } else {
                        compare.push((row, deal));
                    }
                }
                existing if matches.contains_key(&deal.id) => match matches.remove(&deal.id).expect("checked") {
                    Found::Link(row, message) => {
                        plan.events.push(self.event(&row.id, now, EventKind::Matched, side.other(), json!([]), None, None, Some(&message)));
                        compare.push((*row, deal));
                    }
                    Found::Duplicate(message) => {
                        let mut row = existing.unwrap_or_else(|| self.new_row(side, &deal, now));
                        row.set_seen(side, deal.updated_at);
                        self.exclude(row, side, "duplicate", message, now, plan);
                    }
                },
                existing => self.consider_new(side, existing, deal, now, plan),
            }
        }
        compare
    }

    /// The other side's ids of the records to compare: what the runner reads next.
    pub fn counterpart_ids(&self, side: Side, compare: &[ToCompare]) -> Vec<String> {
        compare.iter().filter_map(|(r, _)| r.id_on(side.other()).map(str::to_string)).collect()
    }

    /// Step two: each record to compare with its counterpart on the other side (read by the
    /// runner); a counterpart that is gone is recorded as deleted there, never propagated.
    pub fn pair(
        &self,
        side: Side,
        compare: Vec<ToCompare>,
        counterparts: &HashMap<String, RemoteRecord>,
        now: i64,
        plan: &mut PagePlan,
    ) -> Vec<Pair> {
        let other = side.other();
        let mut pairs = Vec::new();
        for (row, deal) in compare {
            match row.id_on(other).and_then(|id| counterparts.get(id)).cloned() {
                None => self.deleted(row, other, deal, now, plan),
                Some(counterpart) => {
                    let (hub_deal, app_deal) = match side {
                        Side::HubSpot => (deal, counterpart),
                        Side::App => (counterpart, deal),
                    };
                    pairs.push((row, hub_deal, app_deal));
                }
            }
        }
        pairs
    }

    /// The pairs where some field changed on both sides, as (HubSpot id, app id): "later" is
    /// then decided by when that field changed (HubSpot's property history, Pipedrive's deal
    /// changelog), which the runner reads for these only.
    pub fn contested(&self, pairs: &[Pair]) -> Vec<(String, String)> {
        pairs
            .iter()
            .filter(|(row, hub, app)| self.changed_on_both(row, hub, app))
            .map(|(_, hub, app)| (hub.id.clone(), app.id.clone()))
            .collect()
    }

    /// Step three: every pair merged field by field; `times` holds each pair's field times, in
    /// the same order.
    pub fn compare_pairs(&self, pairs: Vec<Pair>, times: Vec<FieldTimes>, now: i64, plan: &mut PagePlan) {
        for ((row, hub, app), times) in pairs.into_iter().zip(times) {
            self.compare(row, hub, app, &times, now, plan);
        }
    }

    /// Whether every mapped value of a deal (and its stage) is what this side held when both
    /// sides last agreed: then there is nothing to compare, and the other side is not read.
    /// Values, not modification times, decide: Pipedrive's times have whole seconds only.
    /// A record not yet seen since the settings changed (seen times cleared) is always compared.
    pub fn unchanged(&self, side: Side, row: &RecordRow, deal: &RemoteRecord) -> bool {
        if row.seen_on(side).is_none() {
            return false;
        }
        let agreed = &row.agreed;
        let held = |key: &str| agreed.get(key).map(|a| if side == Side::HubSpot { &a.hub } else { &a.app });
        let stage_same = !self.deal() || held(STAGE) == Some(&deal.values.get(STAGE).cloned().flatten());
        stage_same
            && self.mapped.iter().all(|m| {
                let field = if side == Side::HubSpot { m.hub } else { m.app };
                held(&m.key) == Some(&canonical(field.kind, deal.values.get(&field.key).cloned().flatten().as_deref()))
            })
    }

    pub fn filters_pass(&self, app_deal: &RemoteRecord) -> bool {
        self.settings
            .filters
            .iter()
            .all(|f| filter_matches(f, self.app_schema.field(&f.field).map(|i| i.kind), app_deal.values.get(&f.field).cloned().flatten()))
    }

    /// The identity-map row of a record seen for the first time on `side`.
    pub fn new_row(&self, side: Side, record: &RemoteRecord, now: i64) -> RecordRow {
        let mut row = RecordRow {
            id: new_id(),
            sync_id: self.sync_id.clone(),
            hubspot_id: None,
            app_id: None,
            // Until the plan links, creates or excludes it (every caller decides which).
            state: RecordState::Creating,
            reason: None,
            message: None,
            origin: side.as_str().into(),
            create_on: None,
            name: record.name.clone(),
            agreed: Agreements::default(),
            hub_seen_at: None,
            app_seen_at: None,
            created_at: now,
            updated_at: now,
            match_key: record.match_key.clone(),
        };
        {
            row.set_id(side, record.id.clone());
            row.set_seen(side, record.updated_at);
        }
        row
    }

    /// Why a contact or company is left out: its key is linked to another record already.
    pub fn duplicate_message(&self, side: Side, key: &str) -> String {
        let (what, noun) = (self.match_word(), self.noun());
        format!(
            "Another {noun} in {} has the same {what} ({key}) and is already synced; Tandem links one record to one.",
            self.side_name(side)
        )
    }

    pub fn linked_message(&self, target: Side, key: &str) -> String {
        let (what, noun) = (self.match_word(), self.noun());
        format!("Linked with the {noun} that already existed in {} with the {what} {key}.", self.side_name(target))
    }

    fn side_name(&self, side: Side) -> String {
        match side {
            Side::HubSpot => "HubSpot".into(),
            Side::App => self.app_name.clone(),
        }
    }

    /// What contacts or companies are matched on, as the messages say it.
    fn match_word(&self) -> &'static str {
        if self.settings.object == ObjectKind::Contact {
            "email"
        } else {
            "domain"
        }
    }

    /// A row of the other side's record, now also holding `record` from `side`: compared on this
    /// page as two records never synced before (a value fills a blank; where both hold values,
    /// the later change wins, or the conflict rule within five minutes).
    pub fn link(&self, mut row: RecordRow, side: Side, record: &RemoteRecord, now: i64) -> RecordRow {
        row.set_id(side, record.id.clone());
        let blank: BTreeMap<String, Agreed> = self.mapped.iter().map(|m| (m.key.clone(), Agreed { hub: None, app: None })).collect();
        row.agreed = Agreements(blank);
        (row.state, row.reason, row.message, row.create_on) = (RecordState::Linked, None, None, None);
        (row.hub_seen_at, row.app_seen_at) = (None, None);
        row.match_key = record.match_key.clone().or(row.match_key);
        row.updated_at = now;
        row
    }

    /// A record with no counterpart yet: create one on the other side, or record why not.
    pub fn consider_new(&self, side: Side, existing: Option<RecordRow>, deal: RemoteRecord, now: i64, plan: &mut PagePlan) {
        let target = side.other();
        let mut row = existing.unwrap_or_else(|| self.new_row(side, &deal, now));
        if deal.match_key.is_some() {
            row.match_key = deal.match_key.clone();
        }
        {
            row.set_id(side, deal.id.clone());
            row.set_seen(side, deal.updated_at);
        }
        row.name = deal.name.clone();
        let flows = match target {
            Side::App => self.stage_flow.to_app,
            Side::HubSpot => self.stage_flow.to_hub,
        };
        let stage = deal.values.get(STAGE).cloned().flatten();
        let target_stage = match side {
            Side::HubSpot => model::merge::Translate::to_app(&self.stages, stage.as_deref()),
            Side::App => model::merge::Translate::to_hub(&self.stages, stage.as_deref()),
        };
        let noun = self.noun();
        let exclusion = if !flows {
            Some(("direction", format!("This sync only sends {noun} records from {}.", side_label(target))))
        } else if self.deal() && target_stage.is_err() {
            Some(("unmapped_stage", "The deal's stage is not mapped to a stage on the other side.".to_string()))
        } else if side == Side::App && !self.filters_pass(&deal) {
            Some(("filter", format!("The {noun} does not meet the sync's filters.")))
        } else {
            None
        };
        if let Some((reason, message)) = exclusion {
            self.exclude(row, side, reason, message, now, plan);
            return;
        }
        // The new deal's values: every field that flows this way, translated. What both sides
        // will hold is stored with the pending row, so a create recovered after an interruption
        // is compared field by field against it (record times alone cannot tell which side
        // changed which field since).
        let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut expected: BTreeMap<String, Agreed> = BTreeMap::new();
        if self.deal() {
            let source_stage = deal.values.get(STAGE).cloned().flatten();
            let target_stage = target_stage.ok().flatten();
            expected.insert(STAGE.into(), pair(side, source_stage, target_stage.clone()));
            values.insert(STAGE.into(), target_stage);
        }
        for m in &self.mapped {
            if !m.flow.allows(target) {
                continue;
            }
            let (from, to) = match side {
                Side::HubSpot => (m.hub, m.app),
                Side::App => (m.app, m.hub),
            };
            let raw = canonical(from.kind, deal.values.get(&from.key).cloned().flatten().as_deref());
            let translated = match side {
                Side::HubSpot => self.translator(m).to_app(raw.as_deref()),
                Side::App => self.translator(m).to_hub(raw.as_deref()),
            };
            match translated {
                Ok(Some(v)) => {
                    expected.insert(m.key.clone(), pair(side, raw.clone(), Some(v.clone())));
                    values.insert(to.key.clone(), Some(v));
                }
                Ok(None) => {
                    expected.insert(m.key.clone(), pair(side, raw.clone(), None));
                }
                Err(message) => {
                    // Created without it; the timeline says why, and the value follows once it
                    // can (a link once its record is synced).
                    tracing::debug!(record = %row.id, field = %to.key, message, "value left empty on create");
                    let message = format!("{} was left empty in the new {}: {message}", self.label(target, &to.key), self.noun());
                    plan.events.push(self.event(
                        &row.id,
                        now,
                        EventKind::NotSynced,
                        side,
                        json!([]),
                        None,
                        Some(Category::Validation.as_str()),
                        Some(&message),
                    ));
                }
            }
        }
        // The name a new record must hold, as its side's rules say (none where fields it is made
        // of are written, such as a person's first and last name).
        let rules = self.rules(target);
        let name_key = rules.name_field.filter(|_| !values.keys().any(|k| rules.name_from.contains(&k.as_str())));
        if let Some(name_key) = name_key.filter(|k| values.get(*k).cloned().flatten().is_none()) {
            let name = if deal.name.is_empty() { format!("{} {}", self.noun(), deal.id) } else { deal.name.clone() };
            values.insert(name_key.into(), Some(name));
        }
        row.state = RecordState::Creating;
        row.agreed = Agreements(expected);
        row.create_on = Some(target.as_str().into());
        row.reason = None;
        row.message = None;
        row.updated_at = now;
        plan.creates.push((target, row, deal, values));
    }

    /// A record left out by the sync's rules, saying why (an event when the reason is new).
    pub fn exclude(&self, mut row: RecordRow, seen_on: Side, reason: &str, message: String, now: i64, plan: &mut PagePlan) {
        let changed = row.state != RecordState::Excluded || row.reason.as_deref() != Some(reason);
        row.state = RecordState::Excluded;
        row.reason = Some(reason.into());
        row.message = Some(message.clone());
        row.create_on = None;
        row.updated_at = now;
        if changed {
            plan.events.push(self.event(&row.id, now, EventKind::Excluded, seen_on, json!([]), None, Some(reason), Some(&message)));
        }
        plan.skip();
        plan.records.push(row);
    }

    /// The counterpart of a linked deal is gone: recorded, never propagated.
    pub fn deleted(&self, row: RecordRow, gone_from: Side, deal: RemoteRecord, now: i64, plan: &mut PagePlan) {
        let reason = match gone_from {
            Side::HubSpot => "deleted_in_hubspot",
            Side::App => "deleted_in_app",
        };
        let mut row = row;
        match gone_from.other() {
            Side::HubSpot => row.hub_seen_at = Some(deal.updated_at),
            Side::App => row.app_seen_at = Some(deal.updated_at),
        }
        if row.reason.as_deref() != Some(reason) {
            let noun = self.noun();
            let message = format!(
                "The {noun} was deleted in {}; Tandem never deletes, so the {} {noun} stays.",
                side_label(gone_from),
                side_label(gone_from.other())
            );
            row.state = RecordState::Excluded;
            row.reason = Some(reason.into());
            row.message = Some(message.clone());
            row.updated_at = now;
            plan.events.push(self.event(&row.id, now, EventKind::Deleted, gone_from, json!([]), None, None, Some(&message)));
        }
        plan.skip();
        plan.records.push(row);
    }

    /// Whether some mapped field of a linked record holds a new value on both sides.
    pub fn changed_on_both(&self, row: &RecordRow, hub: &RemoteRecord, app: &RemoteRecord) -> bool {
        let agreed = &row.agreed;
        self.mapped.iter().any(|m| {
            agreed.get(&m.key).is_some_and(|a| {
                canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()) != a.hub
                    && canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()) != a.app
            })
        })
    }

    /// A linked record read on both sides: field-level merge against the agreed values. A field
    /// changed on both sides is timed by `field_times` (HubSpot's history of that field,
    /// Pipedrive's deal changelog) where known, else by the records' modification times.
    pub fn compare(
        &self,
        mut row: RecordRow,
        hub: RemoteRecord,
        app: RemoteRecord,
        field_times: &FieldTimes,
        now: i64,
        plan: &mut PagePlan,
    ) {
        row.name = if hub.name.is_empty() { app.name.clone() } else { hub.name.clone() };
        let hub_stage = hub.values.get(STAGE).cloned().flatten();
        let app_stage = app.values.get(STAGE).cloned().flatten();
        let hub_mapped = !self.deal() || hub_stage.as_deref().is_some_and(|s| self.stages.hub_mapped(s));
        let app_mapped = !self.deal() || app_stage.as_deref().is_some_and(|s| self.stages.app_mapped(s));
        if let Some(key) = hub.match_key.clone().or_else(|| app.match_key.clone()) {
            row.match_key = Some(key);
        }
        // A deal in an unmapped stage waits there; it syncs again once it moves to a mapped one.
        if !hub_mapped || !app_mapped {
            row.hub_seen_at = Some(hub.updated_at);
            row.app_seen_at = Some(app.updated_at);
            let side = if !hub_mapped { Side::HubSpot } else { Side::App };
            self.exclude(row, side, "unmapped_stage", "The deal's stage is not mapped to a stage on the other side.".into(), now, plan);
            return;
        }
        if !self.filters_pass(&app) {
            row.hub_seen_at = Some(hub.updated_at);
            row.app_seen_at = Some(app.updated_at);
            let message = format!("The {} does not meet the sync's filters.", self.noun());
            self.exclude(row, Side::App, "filter", message, now, plan);
            return;
        }
        let before = row.agreed.clone();
        let mut agreed = row.agreed.clone();
        let mut to_hub: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut to_app: BTreeMap<String, Option<String>> = BTreeMap::new();
        let (mut hub_changes, mut app_changes) = (Vec::new(), Vec::new());
        let mut warnings: Vec<(Side, String)> = Vec::new();
        let mut fields: Vec<(String, String, String, FieldState, &dyn model::merge::Translate)> = Vec::new();
        for m in &self.mapped {
            let state = FieldState {
                hub: canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()),
                app: canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()),
                // A link never agreed on (its other object began syncing after this record did)
                // counts as blank on both sides: a link fills a blank, and is never cleared
                // because the other side's record changed later.
                agreed: agreed.get(&m.key).cloned().or_else(|| m.link.map(|_| Agreed { hub: None, app: None })),
                hub_at: field_times.hub.get(&m.hub.key).copied().unwrap_or(hub.updated_at),
                app_at: field_times.app.get(&m.app.key).copied().unwrap_or(app.updated_at),
                flow: m.flow,
            };
            fields.push((m.key.clone(), m.hub.key.clone(), m.app.key.clone(), state, self.translator(m)));
        }
        let stage_state = FieldState {
            hub: hub_stage.clone(),
            app: app_stage.clone(),
            agreed: agreed.get(STAGE).cloned(),
            hub_at: hub.updated_at,
            app_at: app.updated_at,
            flow: self.stage_flow,
        };
        if self.deal() {
            fields.push((STAGE.into(), STAGE.into(), STAGE.into(), stage_state, &self.stages));
        }
        let mut conflicts = Vec::new();
        for (key, hub_key, app_key, state, translate) in &fields {
            let decision = decide(state, self.rule, *translate);
            if let Some(note) = conflict_note(state, &decision) {
                conflicts.push((self.label(Side::HubSpot, hub_key), hub_key.clone(), app_key.clone(), note));
            }
            match decision {
                Decision::Keep { agreed: Some(a) } => {
                    agreed.insert(key.clone(), a);
                }
                Decision::Keep { agreed: None } => {}
                Decision::Untranslatable { from, message } => {
                    // The field stays as it is on both sides (the rest of the deal syncs); said
                    // once, until one of its values changes again. A link to a record not synced
                    // yet is tried again whenever the record is read, as that record may be
                    // synced by then.
                    warnings.push((from, message));
                    if !links::is_link_key(hub_key) {
                        agreed.insert(key.clone(), Agreed { hub: state.hub.clone(), app: state.app.clone() });
                    }
                }
                Decision::Write { to, value, agreed: a, reason } => {
                    let rule = matches!(reason, Reason::Conflict(_));
                    match to {
                        Side::HubSpot => {
                            hub_changes.push(json!({"field": self.label(Side::HubSpot, hub_key), "old": self.shown(Side::HubSpot, hub_key, &state.hub), "new": self.shown(Side::HubSpot, hub_key, &value), "conflict": rule}));
                            to_hub.insert(hub_key.clone(), value);
                        }
                        Side::App => {
                            app_changes.push(json!({"field": self.label(Side::App, app_key), "old": self.shown(Side::App, app_key, &state.app), "new": self.shown(Side::App, app_key, &value), "conflict": rule}));
                            to_app.insert(app_key.clone(), value);
                        }
                    }
                    agreed.insert(key.clone(), a);
                }
            }
        }
        for (field, hub_key, app_key, note) in conflicts {
            plan.conflicts += 1;
            let rule = note.rule.label(&self.app_name);
            plan.events.push(self.event(
                &row.id,
                now,
                EventKind::Conflict,
                note.winner,
                json!([{"field": field, "hubspot": self.shown(Side::HubSpot, &hub_key, &note.hub), "app": self.shown(Side::App, &app_key, &note.app), "winner": note.winner.as_str()}]),
                Some(&rule),
                None,
                None,
            ));
        }
        row.agreed = agreed;
        row.hub_seen_at = Some(hub.updated_at);
        row.app_seen_at = Some(app.updated_at);
        row.state = RecordState::Linked;
        row.reason = None;
        row.message = None;
        row.updated_at = now;
        // Fields a side writes together (a person's first and last name, kept as one name):
        // when one changes, the other goes with it.
        for (side, writes, record) in [(Side::HubSpot, &mut to_hub, &hub), (Side::App, &mut to_app, &app)] {
            for &(a, b) in self.rules(side).written_together {
                for (changed, other) in [(a, b), (b, a)] {
                    let mapped = self.mapped.iter().any(|m| (if side == Side::HubSpot { m.hub } else { m.app }).key == other);
                    if writes.contains_key(changed) && !writes.contains_key(other) && mapped {
                        writes.insert(other.to_string(), record.values.get(other).cloned().flatten());
                    }
                }
            }
        }
        for (from, message) in warnings {
            plan.events.push(self.event(
                &row.id,
                now,
                EventKind::NotSynced,
                from,
                json!([]),
                None,
                Some(Category::Validation.as_str()),
                Some(&message),
            ));
        }
        if to_hub.is_empty() && to_app.is_empty() {
            if row.state == RecordState::Linked {
                plan.skip();
            }
            plan.records.push(row);
            return;
        }
        let index = plan.records.len();
        let (hub_id, app_id) = (row.hubspot_id.clone().unwrap_or_default(), row.app_id.clone().unwrap_or_default());
        plan.records.push(row);
        if !to_hub.is_empty() {
            plan.events.push(self.event(
                &plan.records[index].id,
                now,
                EventKind::Updated,
                Side::HubSpot,
                json!(hub_changes),
                None,
                None,
                None,
            ));
            plan.updates.push((Side::HubSpot, index, hub_id, to_hub, before.clone()));
        }
        if !to_app.is_empty() {
            plan.events.push(self.event(&plan.records[index].id, now, EventKind::Updated, Side::App, json!(app_changes), None, None, None));
            plan.updates.push((Side::App, index, app_id, to_app, before));
        }
    }

    /// How a mapped field's values translate: through the field mapping, or for an association
    /// through the linked records known on this page.
    pub fn translator<'s>(&'s self, m: &'s Mapped<'a>) -> &'s dyn model::merge::Translate {
        match m.link {
            Some(i) => &self.link_pairs[i],
            None => &m.translate,
        }
    }

    /// The association mapped under `key` on `side`, if `key` is one.
    pub fn link_mapping(&self, side: Side, key: &str) -> Option<(&Mapped<'a>, usize)> {
        self.mapped
            .iter()
            .find_map(|m| Some((m, m.link?)).filter(|_| if side == Side::HubSpot { m.hub.key == key } else { m.app.key == key }))
    }

    /// A field's name as the timeline shows it.
    pub fn label(&self, side: Side, key: &str) -> String {
        match self.link_mapping(side, key) {
            Some((m, _)) => {
                if side == Side::HubSpot {
                    m.hub.label.clone()
                } else {
                    m.app.label.clone()
                }
            }
            None => label(if side == Side::HubSpot { self.hub_schema } else { self.app_schema }, key),
        }
    }

    /// A value as the timeline shows it.
    pub fn shown(&self, side: Side, key: &str, value: &Option<String>) -> Option<String> {
        match self.link_mapping(side, key) {
            Some((_, i)) => value.as_deref().map(|id| self.link_pairs[i].shown(side == Side::HubSpot, id)),
            None => shown(if side == Side::HubSpot { self.hub_schema } else { self.app_schema }, key, value),
        }
    }

    /// A record event of this run.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        record_id: &str,
        at: i64,
        kind: EventKind,
        side: Side,
        changes: serde_json::Value,
        rule: Option<&str>,
        category: Option<&str>,
        message: Option<&str>,
    ) -> EventRow {
        EventRow {
            id: new_id(),
            sync_id: self.sync_id.clone(),
            run_id: self.run_id.clone(),
            record_id: record_id.to_string(),
            at,
            kind,
            side,
            changes: changes.to_string(),
            rule: rule.map(str::to_string),
            category: category.map(str::to_string),
            message: message.map(str::to_string),
        }
    }

    /// The agreed values after an update, with the target side's as the provider stored them
    /// (it may have normalised a value, or kept one it refuses to clear).
    pub fn readback(&self, target: Side, updated: &RemoteRecord, agreed: &Agreements) -> Agreements {
        let mut agreed = agreed.clone();
        for m in &self.mapped {
            if m.link.is_some() && target == Side::HubSpot {
                // An association is not in the record read back: it holds what was sent.
                continue;
            }
            let field = if target == Side::HubSpot { m.hub } else { m.app };
            if let Some(entry) = agreed.get_mut(&m.key) {
                let value = canonical(field.kind, updated.values.get(&field.key).cloned().flatten().as_deref());
                match target {
                    Side::HubSpot => entry.hub = value,
                    Side::App => entry.app = value,
                }
            }
        }
        if let Some(entry) = agreed.get_mut(STAGE).filter(|_| self.deal()) {
            let value = updated.values.get(STAGE).cloned().flatten();
            match target {
                Side::HubSpot => entry.hub = value,
                Side::App => entry.app = value,
            }
        }
        agreed
    }

    /// What both sides hold after a create: the source deal's values and the new deal's as read
    /// back (they may differ where a value could not flow or the provider filled one in).
    pub fn agreed_after_create(&self, source: Side, source_deal: &RemoteRecord, created: &RemoteRecord) -> BTreeMap<String, Agreed> {
        let (hub, app) = match source {
            Side::HubSpot => (source_deal, created),
            Side::App => (created, source_deal),
        };
        let mut agreed = BTreeMap::new();
        for m in &self.mapped {
            let (source_value, target_value) = match source {
                Side::HubSpot => (hub.values.get(&m.hub.key), app.values.get(&m.app.key)),
                Side::App => (app.values.get(&m.app.key), hub.values.get(&m.hub.key)),
            };
            if m.link.is_some() && source_value.is_some_and(Option::is_some) && !target_value.is_some_and(Option::is_some) {
                // A link that could not be made yet (its record is not synced): agreed blank on
                // both sides, so the source's link is made once it can be.
                agreed.insert(m.key.clone(), Agreed { hub: None, app: None });
                continue;
            }
            agreed.insert(
                m.key.clone(),
                Agreed {
                    hub: canonical(m.hub.kind, hub.values.get(&m.hub.key).cloned().flatten().as_deref()),
                    app: canonical(m.app.kind, app.values.get(&m.app.key).cloned().flatten().as_deref()),
                },
            );
        }
        if self.deal() {
            agreed.insert(
                STAGE.into(),
                Agreed { hub: hub.values.get(STAGE).cloned().flatten(), app: app.values.get(STAGE).cloned().flatten() },
            );
        }
        agreed
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
    row.state == RecordState::Failed && !row.reason.as_deref().and_then(Category::parse).is_some_and(|c| c.transient())
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

#[cfg(test)]
mod tests;
