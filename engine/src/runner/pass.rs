//! A pass over one sync: recover interrupted creates, retry what an admin asked for, then read
//! both sides (the initial sync's two phases, or what changed since each cursor) a page at a
//! time, have the planner decide each page and commit it with its checkpoint.

use super::*;

impl<'a> Pass<'a> {
    /// `resumed`: the run goes on after a page stopped for a schema read again; creations were
    /// recovered before it (again now, a create not yet in HubSpot's search would be taken for
    /// one that never landed, and made twice).
    pub(super) async fn execute(&mut self, mut state: crate::store::SyncStateRow, resumed: bool) -> Result<(), EngineError> {
        if !resumed {
            self.recover_creations().await?;
        }
        self.retry_failed().await?;
        if state.phase == Phase::InitialHubSpot || state.phase == Phase::InitialApp {
            if state.initial_started_at.is_none() {
                let at = now_ms();
                // What the progress bar counts towards: every deal on both sides (best effort).
                let (hub, app) = tokio::join!(self.hub.count(), self.app.count());
                let total = match (hub, app) {
                    (Ok(h), Ok(a)) => Some(h + a),
                    _ => None,
                };
                self.store.start_initial(&self.sync_id, at, total).await?;
                state.initial_started_at = Some(at);
            }
            let mut done = state.progress_done;
            // Contacts and companies read the app first: every app record is then known (with
            // its email or domain) when HubSpot's are matched against them.
            let order = if self.plan.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
            let phase_of = |side: Side| if side == Side::HubSpot { Phase::InitialHubSpot } else { Phase::InitialApp };
            if state.phase == Phase::InitialHubSpot && state.hub_cursor.is_none() && done == 0 && order[0] == Side::App {
                state.phase = Phase::InitialApp;
            }
            for (step, side) in order.into_iter().enumerate() {
                if state.phase != phase_of(side) {
                    continue;
                }
                if step == 1 && side == Side::App && state.app_cursor.is_none() {
                    // The app now also holds the deals just created from HubSpot: count it again.
                    if let Ok(app) = self.app.count().await {
                        self.store.set_progress_total(&self.sync_id, Some(done + app)).await?;
                    }
                }
                // The next page is read while this one is decided, written and committed.
                let reader = self.on(side);
                let mut prefetched: Option<Result<Page, ApiError>> = None;
                while state.phase == phase_of(side) {
                    let page = match prefetched.take() {
                        Some(page) => page?,
                        None => {
                            let cursor = if side == Side::HubSpot { state.hub_cursor.clone() } else { state.app_cursor.clone() };
                            list_at_least(reader, cursor.as_deref(), INITIAL_GROUP).await?
                        }
                    };
                    done += page.records.len() as i64;
                    let checkpoint = match (&page.next, step) {
                        (Some(c), _) => Checkpoint {
                            phase: phase_of(side),
                            hub_cursor: (side == Side::HubSpot).then(|| c.clone()),
                            app_cursor: (side == Side::App).then(|| c.clone()),
                            progress_done: done,
                        },
                        (None, 0) => Checkpoint { phase: phase_of(order[1]), hub_cursor: None, app_cursor: None, progress_done: done },
                        (None, _) => {
                            // From here on, read what changed since the initial sync began.
                            let since = (state.initial_started_at.unwrap_or(0) - CURSOR_MARGIN_MS).to_string();
                            Checkpoint {
                                phase: Phase::Incremental,
                                hub_cursor: Some(since.clone()),
                                app_cursor: Some(since),
                                progress_done: done,
                            }
                        }
                    };
                    match page.next.as_deref() {
                        Some(next) => {
                            let (processed, fetched) = tokio::join!(
                                self.process(side, page.records, false, Some(checkpoint.clone())),
                                list_at_least(reader, Some(next), INITIAL_GROUP)
                            );
                            processed?;
                            prefetched = Some(fetched);
                        }
                        None => self.process(side, page.records, false, Some(checkpoint.clone())).await?,
                    }
                    state.phase = checkpoint.phase;
                    state.hub_cursor = checkpoint.hub_cursor;
                    state.app_cursor = checkpoint.app_cursor;
                }
            }
            state.progress_done = done;
            // The initial run ends here, every record on both sides. What changed meanwhile
            // (from the cursor set at its start) is read by the next run, due at once: a run of
            // its own in the history, and the initial one is not held up reading back its own
            // creations.
            return Ok(());
        }
        // Incremental: each side from its cursor (a modification time in ms); the app first for
        // contacts and companies (see the initial sync).
        let sides = if self.plan.matched() { [Side::App, Side::HubSpot] } else { [Side::HubSpot, Side::App] };
        for side in sides {
            let since = state.cursor(side).and_then(|c| c.parse::<i64>().ok()).unwrap_or(0).max(0);
            let mut query_since = since;
            let mut newest = since;
            // The cursor kept is the newest change read, but never later than what had surely
            // reached the read when it began (a change made just before may show up only later,
            // older than the newest one read): what is newer is read again by the next run, and
            // only that. Reaching back a fixed margin instead read a burst of changes again on
            // every run until something newer came.
            let reader = self.on(side);
            let settled = now_ms() - reader.settles_within_ms();
            let kept = |newest: i64| newest.min(settled).max(since);
            let mut page_cursor: Option<String> = None;
            let mut read_in_window = 0usize;
            // As in the initial sync, the next page is read while this one is processed.
            let mut prefetched: Option<Result<Page, ApiError>> = None;
            loop {
                let page = match prefetched.take() {
                    Some(page) => page?,
                    None => reader.changed_since(query_since, page_cursor.as_deref()).await?,
                };
                read_in_window += page.records.len();
                newest = page.records.iter().map(|d| d.updated_at).max().unwrap_or(newest).max(newest);
                let checkpoint = Checkpoint {
                    phase: Phase::Incremental,
                    hub_cursor: if side == Side::HubSpot { Some(kept(newest).to_string()) } else { state.hub_cursor.clone() },
                    app_cursor: if side == Side::App { Some(kept(newest).to_string()) } else { state.app_cursor.clone() },
                    progress_done: state.progress_done,
                };
                // The next read: the next page of this search, or (HubSpot's search stops at
                // 10,000 results) a new search from the newest time read. Should a whole window
                // share one millisecond, it steps past it (warned).
                let mut next_read: Option<(i64, Option<String>)> = match page.next.clone() {
                    None => None,
                    Some(_) if side == Side::HubSpot && read_in_window >= self.search_window => {
                        if newest <= query_since {
                            tracing::warn!(sync_id = %self.sync_id, at = newest, "a whole search window changed in one millisecond; moving past it");
                            newest += 1;
                        }
                        Some((newest, None))
                    }
                    Some(next) => Some((query_since, Some(next))),
                };
                let hub_written = self.run.created_in_hub + self.run.updated_in_hub;
                match &next_read {
                    Some((since, cursor)) => {
                        let (processed, fetched) = tokio::join!(
                            self.process(side, page.records, false, Some(checkpoint.clone())),
                            reader.changed_since(*since, cursor.as_deref())
                        );
                        processed?;
                        prefetched = Some(fetched);
                    }
                    None => self.process(side, page.records, false, Some(checkpoint.clone())).await?,
                }
                // HubSpot's search pages by offset, over results sorted by modification time: the
                // deals this page's writes changed moved to the end, so the next offset would
                // pass over as many deals not read yet. After such writes the read goes on with a
                // new search from the newest time read (what it reads again is skipped as
                // unchanged; Tandem's own writes come back at the end and are known as its own).
                let wrote_hub = self.run.created_in_hub + self.run.updated_in_hub != hub_written;
                if side == Side::HubSpot && wrote_hub && next_read.as_ref().is_some_and(|(_, cursor)| cursor.is_some()) {
                    prefetched = None;
                    if newest <= query_since {
                        tracing::warn!(sync_id = %self.sync_id, at = newest, "a whole page changed in one millisecond; moving past it");
                        newest += 1;
                    }
                    next_read = Some((newest, None));
                }
                state.hub_cursor = checkpoint.hub_cursor;
                state.app_cursor = checkpoint.app_cursor;
                match next_read {
                    None => break,
                    Some((since, cursor)) => {
                        if cursor.is_none() {
                            read_in_window = 0;
                        }
                        query_since = since;
                        page_cursor = cursor;
                    }
                }
            }
        }
        Ok(())
    }

    /// Creations whose outcome is unknown (a crash or a dropped connection after the request
    /// left): look for their Tandem ids on the target side and link what exists; the rest are
    /// created again by processing their source deal anew.
    pub(super) async fn recover_creations(&mut self) -> Result<(), EngineError> {
        loop {
            let pending = self.store.records_in_state(&self.sync_id, RecordState::Creating, 200).await?;
            if pending.is_empty() {
                return Ok(());
            }
            for target in [Side::HubSpot, Side::App] {
                let rows: Vec<&RecordRow> = pending.iter().filter(|r| r.create_on.as_deref() == Some(target.as_str())).collect();
                if rows.is_empty() {
                    continue;
                }
                let since = rows.iter().map(|r| r.updated_at).min().unwrap_or(0) - 60_000;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let found = self.on(target).find_tandem_ids(&ids, since).await?;
                let found: HashMap<String, RemoteRecord> = found.into_iter().filter_map(|d| Some((d.tandem_id.clone()?, d))).collect();
                let mut linked = Vec::new();
                let mut redo: Vec<RecordRow> = Vec::new();
                for row in rows {
                    let mut row = row.clone();
                    match found.get(&row.id) {
                        Some(deal) => {
                            tracing::info!(record = %row.id, target = target.as_str(), "recovered a deal created before an interruption");
                            row.set_id(target, deal.id.clone());
                            // Compared on the next read against what the create sent.
                            (row.state, row.create_on, row.hub_seen_at, row.app_seen_at) = (RecordState::Linked, None, None, None);
                            row.updated_at = now_ms();
                            linked.push(row);
                        }
                        None => {
                            row.state = RecordState::Failed;
                            row.reason = Some(Category::Network.into());
                            row.message = Some("The create was interrupted before its outcome was known; it is retried.".into());
                            row.create_on = None;
                            redo.push(row);
                        }
                    }
                }
                linked.extend(redo);
                self.store.save_records(&linked).await?;
            }
        }
    }

    /// Records that failed for a passing reason (rate limit, provider error, network) are read
    /// again from their source side and processed as if they had changed.
    pub(super) async fn retry_failed(&mut self) -> Result<(), EngineError> {
        let transient: Vec<&str> = Category::ALL.iter().filter(|c| c.transient()).map(|c| c.as_str()).collect();
        let retry = self.store.records_to_retry(&self.sync_id, &transient, RETRY_PER_RUN).await?;
        if retry.is_empty() {
            return Ok(());
        }
        for side in [Side::HubSpot, Side::App] {
            let ids: Vec<String> =
                retry.iter().filter(|r| Side::parse(&r.origin) == Some(side)).filter_map(|r| r.id_on(side).map(str::to_string)).collect();
            if ids.is_empty() {
                continue;
            }
            let deals = self.on(side).read(&ids).await?;
            self.process(side, deals, true, None).await?;
        }
        // An admin's request is acted on once, whatever the outcome (a failure shows again);
        // cleared once acted on, so a retry cut short (or stopped for a schema read again) is
        // tried again.
        let ids: Vec<String> = retry.iter().map(|r| r.id.clone()).collect();
        self.store.clear_retry_requests(&self.sync_id, &ids).await?;
        Ok(())
    }

    /// Decides, writes and commits one page of deals read from `side`. `force` compares even
    /// records whose modification time was already seen (retries). The planner decides in three
    /// steps; between them this reads what the next step needs.
    pub(super) async fn process(
        &mut self,
        side: Side,
        mut deals: Vec<RemoteRecord>,
        force: bool,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), EngineError> {
        let now = now_ms();
        let key = match side {
            Side::HubSpot => RecordKey::HubSpot,
            Side::App => RecordKey::App,
        };
        let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
        let mut by_id: HashMap<String, RecordRow> = self
            .store
            .records_by(&self.sync_id, key, &ids)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.id_on(side)?.to_string(), r)))
            .collect();
        // Records Tandem created whose link was not yet recorded carry their Tandem id.
        let orphans: Vec<String> = deals.iter().filter(|d| !by_id.contains_key(&d.id)).filter_map(|d| d.tandem_id.clone()).collect();
        let by_tandem: HashMap<String, RecordRow> =
            self.store.records_by(&self.sync_id, RecordKey::Tandem, &orphans).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
        for pairs in &mut self.plan.link_pairs {
            pairs.clear();
        }
        if !self.links.is_empty() {
            let agreed: HashMap<&str, &Agreements> = by_id.iter().map(|(id, r)| (id.as_str(), &r.agreed)).collect();
            self.resolve_links(side, &mut deals, &agreed).await?;
        }

        // Contacts and companies with no counterpart yet (never seen, or left out before, such
        // as a duplicate): the record they match on the other side.
        let unlinked = self.plan.needs_match(side, &deals, &by_id, &by_tandem);
        let mut matches = if unlinked.is_empty() { HashMap::new() } else { self.find_matches(side, &unlinked, now).await? };

        let mut work = PagePlan::new(side);
        let compare = self.plan.classify(side, deals, &mut by_id, &by_tandem, &mut matches, force, now, &mut work);

        // Linked records: read the other side, decide field by field.
        if !compare.is_empty() {
            let other = side.other();
            let mut read = self.on(other).read(&self.plan.counterpart_ids(side, &compare)).await?;
            if !self.links.is_empty() {
                let agreed: HashMap<&str, &Agreements> = compare.iter().filter_map(|(r, _)| Some((r.id_on(other)?, &r.agreed))).collect();
                self.resolve_links(other, &mut read, &agreed).await?;
            }
            let counterparts: HashMap<String, RemoteRecord> = read.into_iter().map(|d| (d.id.clone(), d)).collect();
            let pairs = self.plan.pair(side, compare, &counterparts, now, &mut work);
            // Where a field changed on both sides, "later" is decided by when that field changed
            // in HubSpot (its property history), not by when the record last changed.
            // Pipedrive's side likewise, by the deal's changelog.
            let contested = self.plan.contested(&pairs);
            let (mut times, mut app_times) = if contested.is_empty() {
                (HashMap::new(), HashMap::new())
            } else {
                let (fields, app_fields) = (self.plan.hub_fields(), self.plan.app_fields());
                let hub_ids: Vec<String> = contested.iter().map(|(h, _)| h.clone()).collect();
                let app_ids: Vec<String> = contested.iter().map(|(_, a)| a.clone()).collect();
                let (hub_times, app_times) =
                    tokio::join!(self.hub.field_times(&hub_ids, &fields), self.app.field_times(&app_ids, &app_fields));
                (hub_times?, app_times?)
            };
            let times = pairs
                .iter()
                .map(|(_, hub, app)| FieldTimes {
                    hub: times.remove(&hub.id).unwrap_or_default(),
                    app: app_times.remove(&app.id).unwrap_or_default(),
                })
                .collect();
            self.plan.compare_pairs(pairs, times, now, &mut work);
        }

        // A value the schema has no counterpart for: read again first where the schema was
        // kept from an earlier run (a user or an option may have been added since), unless this
        // very schema was already found to lack it.
        {
            let mut known = self.unmatched.lock().unwrap_or_else(|p| p.into_inner());
            if self.schema_kept && work.unmatched.iter().any(|u| !known.contains(u)) {
                return Err(EngineError::SchemaOutOfDate);
            }
            if !self.schema_kept {
                known.extend(work.unmatched.iter().cloned());
            }
        }
        self.write(&mut work, now).await?;
        self.run.skipped += work.skipped;
        self.run.skipped_from_hub += work.skipped_from_hub;
        self.run.conflicts += work.conflicts;
        super::count_calls(self.run, self.hub_stats, self.app_stats);
        let run = self.run.clone();
        let lease_until = now_ms() + self.lease_ms;
        let page = PageCommit {
            sync_id: &self.sync_id,
            lease_owner: self.instance,
            lease_until,
            records: std::mem::take(&mut work.records),
            events: std::mem::take(&mut work.events),
            run: Some(&run),
            checkpoint,
        };
        self.store.commit_page(&page, now_ms()).await?;
        Ok(())
    }
}
