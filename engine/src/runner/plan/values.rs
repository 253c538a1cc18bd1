//! Values as each side shows and stores them: labels, a field's translator, the events' rows, and
//! the agreed values after a create or an update.

use super::*;

impl<'a> Planner<'a> {
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
        category: Option<RecordReason>,
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
            category,
            message: message.map(str::to_string),
        }
    }

    /// The agreed values after an update of `target` that wrote `written`: for the fields it
    /// wrote, the target side's values as the provider stored them (it may have normalised a
    /// value, or kept one it refuses to clear). The other fields keep what the comparison agreed:
    /// a value the record read back holds there is a change nobody has synced yet (made in the
    /// app between Tandem's read and its write, or flowing the other way in a write that
    /// failed), and taking it as agreed would lose it.
    pub fn readback(&self, target: Side, updated: &RemoteRecord, written: &Values, agreed: &Agreements) -> Agreements {
        let mut agreed = agreed.clone();
        for m in &self.mapped {
            if m.link.is_some() && target == Side::HubSpot {
                // An association is not in the record read back: it holds what was sent.
                continue;
            }
            let field = if target == Side::HubSpot { m.hub } else { m.app };
            if !written.contains_key(&field.key) {
                continue;
            }
            if let Some(entry) = agreed.get_mut(&m.key) {
                let value = canonical(field.kind, updated.values.get(&field.key).cloned().flatten().as_deref());
                match target {
                    Side::HubSpot => entry.hub = value,
                    Side::App => entry.app = value,
                }
            }
        }
        if let Some(entry) = agreed.get_mut(STAGE).filter(|_| self.deal() && written.contains_key(STAGE)) {
            let value = updated.values.get(STAGE).cloned().flatten();
            match target {
                Side::HubSpot => entry.hub = value,
                Side::App => entry.app = value,
            }
        }
        agreed
    }

    /// The updates a page sends, as they are marked on their records while on their way: per
    /// record, the values agreed before them and the writes (see [`PendingWrites`]).
    pub fn pending_marks(&self, updates: &[Update], records: &[RecordRow]) -> Vec<(String, Agreements, PendingWrites)> {
        let mut marks: Vec<(usize, Agreements, PendingWrites)> = Vec::new();
        for (target, index, _, values, before) in updates {
            let at = match marks.iter().position(|(i, ..)| i == index) {
                Some(at) => at,
                None => {
                    let pending = PendingWrites { agreed: records[*index].agreed.0.clone(), ..PendingWrites::default() };
                    marks.push((*index, before.clone(), pending));
                    marks.len() - 1
                }
            };
            let keys = self
                .mapped
                .iter()
                // As `readback`: HubSpot's associations are not in the record read back.
                .filter(|m| !(m.link.is_some() && *target == Side::HubSpot))
                .filter(|m| values.contains_key(&(if *target == Side::HubSpot { m.hub } else { m.app }).key))
                .map(|m| m.key.clone())
                .chain(values.contains_key(STAGE).then(|| STAGE.to_string()));
            let pending = &mut marks[at].2;
            match target {
                Side::HubSpot => pending.to_hub.extend(keys),
                Side::App => pending.to_app.extend(keys),
            }
        }
        marks.into_iter().map(|(index, before, pending)| (records[index].id.clone(), before, pending)).collect()
    }

    /// The agreed values after an update of `target` that failed: the fields it would have
    /// written go back to what was agreed before, so that their change is found and sent again;
    /// the rest (a write the other way that succeeded) stay as they are.
    pub fn restore_failed(&self, target: Side, written: &Values, before: &Agreements, agreed: &Agreements) -> Agreements {
        let mut agreed = agreed.clone();
        let keys = self
            .mapped
            .iter()
            .filter(|m| written.contains_key(&(if target == Side::HubSpot { m.hub } else { m.app }).key))
            .map(|m| m.key.as_str())
            .chain(written.contains_key(STAGE).then_some(STAGE));
        for key in keys {
            match before.get(key) {
                Some(was) => {
                    agreed.0.insert(key.to_string(), was.clone());
                }
                None => {
                    agreed.0.remove(key);
                }
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
