//! A linked record read on both sides, field by field: what flows where (see `model::merge`), the
//! conflicts and their rule, and the events that say so.

use super::*;

impl<'a> Planner<'a> {
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

    /// The agreed values of a record whose last updates were sent by a run that never committed
    /// them: a field whose written value is what its target holds now counts as agreed at what
    /// the write left (the run's own write, not a user's change); any other field keeps the
    /// values agreed before (the write did not land, or a user has changed the field since).
    pub fn settle_pending(&self, agreed: &Agreements, pending: &PendingWrites, hub: &RemoteRecord, app: &RemoteRecord) -> Agreements {
        let mut settled = agreed.clone();
        let current = |target: Side, key: &str| -> Option<Option<String>> {
            let record = if target == Side::HubSpot { hub } else { app };
            if key == STAGE {
                return Some(record.values.get(STAGE).cloned().flatten());
            }
            let m = self.mapped.iter().find(|m| m.key == key)?;
            let field = if target == Side::HubSpot { m.hub } else { m.app };
            Some(canonical(field.kind, record.values.get(&field.key).cloned().flatten().as_deref()))
        };
        for (target, keys) in [(Side::HubSpot, &pending.to_hub), (Side::App, &pending.to_app)] {
            for key in keys {
                let Some(after) = pending.agreed.get(key) else { continue };
                let written = if target == Side::HubSpot { &after.hub } else { &after.app };
                if current(target, key).as_ref() == Some(written) {
                    settled.0.insert(key.clone(), after.clone());
                }
            }
        }
        settled
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
        if let Some(pending) = row.pending.take() {
            row.agreed = self.settle_pending(&row.agreed, &pending, &hub, &app);
        }
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
            self.exclude(
                row,
                side,
                Exclusion::UnmappedStage,
                "The deal's stage is not mapped to a stage on the other side.".into(),
                now,
                plan,
            );
            return;
        }
        if !self.filters_pass(&app) {
            row.hub_seen_at = Some(hub.updated_at);
            row.app_seen_at = Some(app.updated_at);
            let message = format!("The {} does not meet the sync's filters.", self.noun());
            self.exclude(row, Side::App, Exclusion::Filter, message, now, plan);
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
                        let (from_key, value) = if from == Side::HubSpot { (hub_key, &state.hub) } else { (app_key, &state.app) };
                        plan.unmatched(from, from_key, value.as_deref());
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
                Some(Category::Validation.into()),
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
}
