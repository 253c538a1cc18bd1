//! Contacts and companies matched to the record with the same email or domain on the other side,
//! and the associations a page's records carry (resolved through the other syncs' identity maps).

use super::*;

impl<'a> Pass<'a> {
    /// For contacts and companies seen for the first time on `side`: the record with the same
    /// email or domain on the other side, to link instead of creating a second one. The other
    /// side's records known to Tandem are found in the identity map (the app is always read
    /// before HubSpot, so every app record is known there); HubSpot's are also searched. A
    /// record whose key is already linked to another one is a duplicate, left out.
    pub(super) async fn find_matches(
        &self,
        side: Side,
        unlinked: &[(&RemoteRecord, Option<&RecordRow>)],
        now: i64,
    ) -> Result<HashMap<String, Found>, EngineError> {
        let target = side.other();
        let mut out = HashMap::new();
        let mut keys: Vec<String> = unlinked.iter().filter_map(|(r, _)| r.match_key.clone()).collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(out);
        }
        let duplicate = |key: &str| self.plan.duplicate_message(side, key);
        let linked = |key: &str| self.plan.linked_message(target, key);
        let mut by_key: HashMap<String, Vec<RecordRow>> = HashMap::new();
        for row in self.store.records_by(&self.sync_id, RecordKey::Match, &keys).await? {
            if let Some(k) = row.match_key.clone() {
                by_key.entry(k).or_default().push(row);
            }
        }
        let mut claimed: HashSet<String> = HashSet::new();
        let mut unresolved: Vec<(&RemoteRecord, Option<&RecordRow>)> = Vec::new();
        for &(record, own) in unlinked {
            let Some(key) = record.match_key.as_deref() else { continue };
            let own_id = own.map(|r| r.id.as_str());
            let rows: Vec<&RecordRow> = by_key.get(key).into_iter().flatten().filter(|r| Some(r.id.as_str()) != own_id).collect();
            let lone = rows.iter().find(|r| r.id_on(side).is_none() && r.id_on(target).is_some() && r.state != RecordState::Creating);
            if claimed.contains(key) || rows.iter().any(|r| r.id_on(side).is_some() && r.id_on(target).is_some()) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            } else if let (Some(row), None) = (lone, own) {
                claimed.insert(key.to_string());
                out.insert(record.id.clone(), Found::Link(Box::new(self.plan.link((*row).clone(), side, record, now)), linked(key)));
            } else if rows.iter().any(|r| r.state == RecordState::Creating) {
                // Being created from another record with this key right now.
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            } else {
                unresolved.push((record, own));
            }
        }
        if target == Side::HubSpot && !unresolved.is_empty() {
            self.match_in_hubspot(side, &unresolved, &mut claimed, &mut out, now).await?;
        }
        // Several new records with one key are created once: the first; the others are duplicates.
        for (record, _) in unresolved {
            let Some(key) = record.match_key.as_deref() else { continue };
            if out.contains_key(&record.id) {
                continue;
            }
            if !claimed.insert(key.to_string()) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
            }
        }
        Ok(out)
    }

    /// The HubSpot contacts or companies holding the keys of app records new to Tandem.
    pub(super) async fn match_in_hubspot(
        &self,
        side: Side,
        unresolved: &[(&RemoteRecord, Option<&RecordRow>)],
        claimed: &mut HashSet<String>,
        out: &mut HashMap<String, Found>,
        now: i64,
    ) -> Result<(), EngineError> {
        let target = side.other();
        let duplicate = |key: &str| self.plan.duplicate_message(side, key);
        let linked = |key: &str| self.plan.linked_message(target, key);
        let keys: Vec<String> = unresolved.iter().filter_map(|(r, _)| r.match_key.clone()).collect();
        let mut existing: HashMap<String, RemoteRecord> = HashMap::new();
        for h in self.hub.find_by_match_keys(&keys).await? {
            let Some(key) = h.match_key.clone() else { continue };
            // Several with one key (companies may share a domain): the oldest.
            let older = |a: &str, b: &str| (a.len(), a) < (b.len(), b);
            if existing.get(&key).is_none_or(|e| older(&h.id, &e.id)) {
                existing.insert(key, h);
            }
        }
        let hub_ids: Vec<String> = existing.values().map(|h| h.id.clone()).collect();
        let known: HashMap<String, RecordRow> = self
            .store
            .records_by(&self.sync_id, RecordKey::HubSpot, &hub_ids)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.hubspot_id.clone()?, r)))
            .collect();
        for &(record, own) in unresolved {
            let Some(key) = record.match_key.as_deref() else { continue };
            let Some(h) = existing.get(key) else { continue };
            if claimed.contains(key) {
                out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
                continue;
            }
            let row = match (known.get(&h.id), own) {
                (Some(row), _) if row.app_id.is_some() || row.state == RecordState::Creating => {
                    out.insert(record.id.clone(), Found::Duplicate(duplicate(key)));
                    continue;
                }
                // Both left out before, each in a row of its own: not merged; created as usual.
                (Some(_), Some(_)) => continue,
                (Some(row), None) => row.clone(),
                // A record seen before (a duplicate, say) takes the HubSpot record into its row.
                (None, Some(own)) => {
                    let mut row = own.clone();
                    row.hubspot_id = Some(h.id.clone());
                    row
                }
                (None, None) => self.plan.new_row(target, h, now),
            };
            claimed.insert(key.to_string());
            out.insert(record.id.clone(), Found::Link(Box::new(self.plan.link(row, side, record, now)), linked(key)));
        }
        Ok(())
    }

    /// Fills in the associations of records read from `side`, and learns the linked records'
    /// ids on both sides from the other syncs' identity maps. Pipedrive holds one person and one
    /// organization per deal; HubSpot may associate several: the one agreed before while it is
    /// still associated, else the first that the other sync links, else the first.
    pub(super) async fn resolve_links(
        &mut self,
        side: Side,
        records: &mut [RemoteRecord],
        agreed: &HashMap<&str, &Agreements>,
    ) -> Result<(), EngineError> {
        if self.links.is_empty() || records.is_empty() {
            return Ok(());
        }
        let links = self.links;
        for (i, link) in links.iter().enumerate() {
            let mkey = self.plan.link_mapping(Side::HubSpot, link.hub_key).map(|(m, _)| m.key.clone()).unwrap_or_default();
            match side {
                Side::HubSpot => {
                    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
                    let associated = self.hub.associations(link.hub_to, &ids).await?;
                    let mut candidates: Vec<String> = associated.values().flatten().cloned().collect();
                    candidates.sort();
                    candidates.dedup();
                    for row in self.store.records_by(&link.sync_id, RecordKey::HubSpot, &candidates).await? {
                        if let (Some(h), Some(a)) = (&row.hubspot_id, &row.app_id) {
                            self.plan.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                    for record in records.iter_mut() {
                        let list = associated.get(&record.id).cloned().unwrap_or_default();
                        let before = agreed.get(record.id.as_str()).and_then(|a| a.get(&mkey)).and_then(|v| v.hub.clone());
                        let pairs = &self.plan.link_pairs[i];
                        let value = before
                            .filter(|b| list.contains(b))
                            .or_else(|| list.iter().find(|h| pairs.knows_hub(h)).cloned())
                            .or_else(|| list.first().cloned());
                        record.values.insert(link.hub_key.to_string(), value);
                    }
                }
                Side::App => {
                    let mut ids: Vec<String> = records.iter().filter_map(|r| r.values.get(link.app_key).cloned().flatten()).collect();
                    ids.sort();
                    ids.dedup();
                    for row in self.store.records_by(&link.sync_id, RecordKey::App, &ids).await? {
                        if let (Some(h), Some(a)) = (&row.hubspot_id, &row.app_id) {
                            self.plan.link_pairs[i].add(h, a, &row.name);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
