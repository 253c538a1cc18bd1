//! What each record read needs: matched, linked, compared with its counterpart, created on the
//! other side, excluded by the sync's rules, or noted as deleted.

use super::*;

impl<'a> Planner<'a> {
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
                    if !force && row.state == RecordState::Linked && row.pending.is_none() && self.unchanged(side, &row, &deal) {
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
                        self.exclude(row, side, Exclusion::Duplicate, message, now, plan);
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
            pending: None,
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

    pub(super) fn side_name(&self, side: Side) -> String {
        match side {
            Side::HubSpot => "HubSpot".into(),
            Side::App => self.app_name.clone(),
        }
    }

    /// What contacts or companies are matched on, as the messages say it.
    pub(super) fn match_word(&self) -> &'static str {
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
            Some((Exclusion::Direction, format!("This sync only sends {noun} records from {}.", side_label(target))))
        } else if self.deal() && target_stage.is_err() {
            Some((Exclusion::UnmappedStage, "The deal's stage is not mapped to a stage on the other side.".to_string()))
        } else if side == Side::App && !self.filters_pass(&deal) {
            Some((Exclusion::Filter, format!("The {noun} does not meet the sync's filters.")))
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
                    if m.link.is_none() {
                        plan.unmatched(side, &from.key, raw.as_deref());
                    }
                    tracing::debug!(record = %row.id, field = %to.key, message, "value left empty on create");
                    let message = format!("{} was left empty in the new {}: {message}", self.label(target, &to.key), self.noun());
                    plan.events.push(self.event(
                        &row.id,
                        now,
                        EventKind::NotSynced,
                        side,
                        json!([]),
                        None,
                        Some(Category::Validation.into()),
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
    pub fn exclude(&self, mut row: RecordRow, seen_on: Side, exclusion: Exclusion, message: String, now: i64, plan: &mut PagePlan) {
        let reason = RecordReason::Excluded(exclusion);
        // Writes once pending no longer matter: the record is not compared while excluded.
        row.pending = None;
        let changed = row.state != RecordState::Excluded || row.reason != Some(reason);
        row.state = RecordState::Excluded;
        row.reason = Some(reason);
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
        let reason = RecordReason::Excluded(match gone_from {
            Side::HubSpot => Exclusion::DeletedInHubSpot,
            Side::App => Exclusion::DeletedInApp,
        });
        let mut row = row;
        row.pending = None;
        match gone_from.other() {
            Side::HubSpot => row.hub_seen_at = Some(deal.updated_at),
            Side::App => row.app_seen_at = Some(deal.updated_at),
        }
        if row.reason != Some(reason) {
            let noun = self.noun();
            let message = format!(
                "The {noun} was deleted in {}; Tandem never deletes, so the {} {noun} stays.",
                side_label(gone_from),
                side_label(gone_from.other())
            );
            row.state = RecordState::Excluded;
            row.reason = Some(reason);
            row.message = Some(message.clone());
            row.updated_at = now;
            plan.events.push(self.event(&row.id, now, EventKind::Deleted, gone_from, json!([]), None, None, Some(&message)));
        }
        plan.skip();
        plan.records.push(row);
    }
}
