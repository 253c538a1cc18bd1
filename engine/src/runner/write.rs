//! A page's creates and updates sent to each side, their outcomes recorded on the rows: links
//! made through HubSpot's associations, failures counted and explained.

use super::*;

impl<'a> Pass<'a> {
    /// Sends the page's creates and updates; records each outcome on its row.
    pub(super) async fn write(&mut self, work: &mut PagePlan, now: i64) -> Result<(), EngineError> {
        // Creates: the rows (with their Tandem ids) are stored before anything leaves.
        let creates = std::mem::take(&mut work.creates);
        if !creates.is_empty() {
            let pending: Vec<RecordRow> = creates.iter().map(|(_, row, _, _)| row.clone()).collect();
            self.store.save_records(&pending).await?;
        }
        for target in [Side::HubSpot, Side::App] {
            let batch: Vec<&Create> = creates.iter().filter(|(t, ..)| *t == target).collect();
            if batch.is_empty() {
                continue;
            }
            let inputs: Vec<(String, Values)> =
                batch.iter().map(|(_, row, _, values)| (row.id.clone(), links::properties(values))).collect();
            let mut results = self.on(target).create(inputs).await;
            // Associations of the new HubSpot records: (record row, link key, new id, linked id).
            let mut associate: Vec<(String, String, String, String)> = Vec::new();
            let mut taken: Vec<(RecordRow, &RemoteRecord, String, ApiError)> = Vec::new();
            for (_, row, source_deal, values) in batch {
                let mut row = row.clone();
                if let Some(Err(e)) = results.get(&row.id) {
                    if let Some(existing) = existing_contact(e).filter(|_| target == Side::HubSpot) {
                        let e = e.clone();
                        taken.push((row, source_deal, existing, e));
                        continue;
                    }
                }
                match results.remove(&row.id) {
                    Some(Ok(mut created)) => {
                        for (key, value) in values.iter().filter(|(k, _)| links::is_link_key(k)) {
                            created.values.insert(key.clone(), value.clone());
                            if let Some(value) = value {
                                associate.push((row.id.clone(), key.clone(), created.id.clone(), value.clone()));
                            }
                        }
                        let source = Side::parse(&row.origin).unwrap_or(target.other());
                        let agreed = self.plan.agreed_after_create(source, source_deal, &created);
                        match target {
                            Side::HubSpot => {
                                (row.hubspot_id, row.hub_seen_at) = (Some(created.id.clone()), Some(created.updated_at));
                                self.run.created_in_hub += 1;
                            }
                            Side::App => {
                                (row.app_id, row.app_seen_at) = (Some(created.id.clone()), Some(created.updated_at));
                                self.run.created_in_app += 1;
                            }
                        }
                        row.agreed = Agreements(agreed);
                        (row.state, row.create_on, row.updated_at) = (RecordState::Linked, None, now);
                        let changes: Vec<serde_json::Value> = values
                            .iter()
                            .map(|(k, v)| json!({"field": self.plan.label(target, k), "old": null, "new": self.plan.shown(target, k, v)}))
                            .collect();
                        work.events.push(self.plan.event(&row.id, now, EventKind::Created, target, json!(changes), None, None, None));
                    }
                    Some(Err(e)) if e.category.transient() => {
                        // A dropped connection or a 5xx: the deal may or may not exist. It stays
                        // `creating`, and recovery looks for its Tandem id before creating again.
                        tracing::warn!(record = %row.id, error = %e, "create outcome unknown; recovery will look for it");
                        self.count_failure(target);
                        continue;
                    }
                    Some(Err(e)) => {
                        if e.reconnect {
                            return Err(e.into());
                        }
                        self.fail(&mut row, target, &e, now, work);
                    }
                    None => continue,
                }
                work.records.push(row);
            }
            self.link_taken(taken, now, work).await?;
            self.associate(associate, Vec::new(), now, work).await;
        }
        // Updates, batched per side. What they send is stored first (with the values agreed
        // before them): a run cut off after they land knows them for its own next time.
        let updates = std::mem::take(&mut work.updates);
        let marks = self.plan.pending_marks(&updates, &work.records);
        self.store.mark_pending(&self.sync_id, self.instance, &marks, now_ms()).await?;
        for target in [Side::HubSpot, Side::App] {
            let batch: Vec<&Update> = updates.iter().filter(|(t, ..)| *t == target).collect();
            if batch.is_empty() {
                continue;
            }
            // HubSpot's associations are not properties: added (and the one agreed before
            // removed) through the associations API; a record whose only change is one is not
            // updated otherwise.
            let mut batch = batch;
            if target == Side::HubSpot && !self.links.is_empty() {
                let (mut add, mut remove) = (Vec::new(), Vec::new());
                let mut only_links = Vec::new();
                for (pos, (_, index, id, values, before)) in batch.iter().enumerate() {
                    for (key, value) in values.iter().filter(|(k, _)| links::is_link_key(k)) {
                        let row_id = work.records[*index].id.clone();
                        let old = self
                            .plan
                            .mapped
                            .iter()
                            .find(|m| m.hub.key == *key)
                            .and_then(|m| before.get(&m.key))
                            .and_then(|a| a.hub.clone());
                        if let Some(new) = value {
                            add.push((row_id.clone(), key.clone(), id.clone(), new.clone()));
                        }
                        if let Some(old) = old.filter(|o| Some(o) != value.as_ref()) {
                            remove.push((row_id, key.clone(), id.clone(), old));
                        }
                    }
                    if values.keys().all(|k| links::is_link_key(k)) {
                        only_links.push(pos);
                    }
                }
                self.associate(add, remove, now, work).await;
                for pos in only_links.into_iter().rev() {
                    batch.remove(pos);
                    self.run.updated_in_hub += 1;
                }
                if batch.is_empty() {
                    continue;
                }
            }
            let inputs = batch.iter().map(|(_, _, id, values, _)| (id.clone(), links::properties(values))).collect();
            let mut results = self.on(target).update(inputs).await;
            for (_, index, id, written, before) in batch {
                match results.remove(id) {
                    Some(Ok(updated)) => {
                        let readback = self.plan.readback(target, &updated, written, &work.records[*index].agreed);
                        let row = &mut work.records[*index];
                        row.agreed = readback;
                        match target {
                            Side::HubSpot => {
                                row.hub_seen_at = Some(updated.updated_at);
                                self.run.updated_in_hub += 1;
                            }
                            Side::App => {
                                row.app_seen_at = Some(updated.updated_at);
                                self.run.updated_in_app += 1;
                            }
                        }
                    }
                    Some(Err(e)) => {
                        if e.reconnect {
                            return Err(e.into());
                        }
                        let mut row = work.records[*index].clone();
                        // What this write carried goes back to the agreed values from before, so
                        // the change is tried again.
                        row.agreed = self.plan.restore_failed(target, written, before, &row.agreed);
                        self.fail(&mut row, target, &e, now, work);
                        work.records[*index] = row;
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// Contacts HubSpot refused to create because another contact has their email (one the
    /// search did not show yet): linked to that contact and merged with it on this page, as a
    /// match found by the search is. A contact Tandem already links to another record makes
    /// this one a duplicate.
    pub(super) async fn link_taken(
        &mut self,
        taken: Vec<(RecordRow, &RemoteRecord, String, ApiError)>,
        now: i64,
        work: &mut PagePlan,
    ) -> Result<(), EngineError> {
        if taken.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = taken.iter().map(|(_, _, id, _)| id.clone()).collect();
        let known: HashSet<String> =
            self.store.records_by(&self.sync_id, RecordKey::HubSpot, &ids).await?.into_iter().filter_map(|r| r.hubspot_id).collect();
        let mut read = self.hub.read(&ids).await?;
        self.resolve_links(Side::HubSpot, &mut read, &HashMap::new()).await?;
        let existing: HashMap<String, RemoteRecord> = read.into_iter().map(|r| (r.id.clone(), r)).collect();
        for (row, source, id, e) in taken {
            let key = row.match_key.clone().unwrap_or_default();
            match existing.get(&id) {
                _ if known.contains(&id) => {
                    let message = self.plan.duplicate_message(Side::App, &key);
                    self.plan.exclude(row, Side::App, Exclusion::Duplicate, message, now, work);
                }
                Some(hub) => {
                    tracing::info!(record = %row.id, hubspot_id = %id, "the email is taken by a HubSpot contact the search did not show yet; linked to it");
                    let row = self.plan.link(row, Side::HubSpot, hub, now);
                    work.events.push(self.plan.event(
                        &row.id,
                        now,
                        EventKind::Matched,
                        Side::HubSpot,
                        json!([]),
                        None,
                        None,
                        Some(&self.plan.linked_message(Side::HubSpot, &key)),
                    ));
                    self.plan.compare(row, hub.clone(), source.clone(), &FieldTimes::default(), now, work);
                }
                None => {
                    let mut row = row;
                    self.fail(&mut row, Side::HubSpot, &e, now, work);
                    work.records.push(row);
                }
            }
        }
        Ok(())
    }

    /// Adds and removes HubSpot associations: (record row, link key, HubSpot record, linked
    /// record). A failure leaves the record's fields synced and says so on its timeline.
    pub(super) async fn associate(
        &mut self,
        add: Vec<(String, String, String, String)>,
        remove: Vec<(String, String, String, String)>,
        now: i64,
        work: &mut PagePlan,
    ) {
        let links = self.links;
        for link in links {
            let pick = |list: &[(String, String, String, String)]| -> Vec<(String, String)> {
                list.iter().filter(|(_, k, ..)| k == link.hub_key).map(|(_, _, a, b)| (a.clone(), b.clone())).collect()
            };
            let (adds, removes) = (pick(&add), pick(&remove));
            if adds.is_empty() && removes.is_empty() {
                continue;
            }
            if let Err(e) = self.hub.associate(link.hub_to, &adds, &removes).await {
                tracing::warn!(error = %e, "HubSpot associations could not be written");
                let message = format!("The association with the {} could not be written in HubSpot: {}", link.noun(), e.message);
                for (row_id, ..) in add.iter().chain(&remove).filter(|(_, k, ..)| k == link.hub_key) {
                    work.events.push(self.plan.event(
                        row_id,
                        now,
                        EventKind::NotSynced,
                        Side::HubSpot,
                        json!([]),
                        None,
                        Some(e.category.into()),
                        Some(&message),
                    ));
                }
            }
        }
    }

    pub(super) fn count_failure(&mut self, target: Side) {
        match target {
            Side::HubSpot => self.run.failed_to_hub += 1,
            Side::App => self.run.failed_to_app += 1,
        }
    }

    pub(super) fn fail(&mut self, row: &mut RecordRow, target: Side, e: &ApiError, now: i64, work: &mut PagePlan) {
        self.count_failure(target);
        row.state = RecordState::Failed;
        row.create_on = None;
        row.reason = Some(e.category.into());
        row.message = Some(e.message.clone());
        row.updated_at = now;
        work.events.push(self.plan.event(
            &row.id,
            now,
            EventKind::Failed,
            target,
            json!([]),
            None,
            Some(e.category.into()),
            Some(&e.message),
        ));
    }
}
