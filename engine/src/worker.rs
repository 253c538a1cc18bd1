//! The engine task that runs beside the web server (or alone, as `tandem worker`): it runs the
//! syncs that are due, several at once ([`EngineConfig::concurrency`]), each on its interval or
//! at once when a webhook wakes it, and keeps the store tidy (expired sessions, invitations and
//! login locks).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::clock::now_ms;
use crate::runner::{Engine, Trigger};
use crate::Accounts;

/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often the engine looks for syncs that are due.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Wakes the engine before its next poll (a webhook arrived, an admin asked for a run), naming
/// the syncs it woke: they start before syncs that are merely due.
#[derive(Clone, Default)]
pub struct Wake {
    notify: Arc<Notify>,
    woken: Arc<Mutex<HashSet<String>>>,
}

impl Wake {
    pub fn now(&self) {
        self.notify.notify_one();
    }

    /// Wakes the engine for these syncs (whose due time the webhook moved to now).
    pub fn syncs(&self, ids: impl IntoIterator<Item = String>) {
        self.woken.lock().unwrap_or_else(|p| p.into_inner()).extend(ids);
        self.notify.notify_one();
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.woken.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The runs this instance has under way, and what it owes the syncs it runs.
#[derive(Default)]
struct Runs {
    tasks: JoinSet<()>,
    /// Running sync → its app connection (syncs of one provider account take turns).
    running: HashMap<String, String>,
    by_task: HashMap<tokio::task::Id, String>,
    /// Syncs a webhook woke that have not started yet.
    woken: HashSet<String>,
    /// Syncs a webhook woke while they ran: due again the moment their run ends (and first),
    /// since the run may have read that side before the change.
    again: HashSet<String>,
}

impl Runs {
    /// Starts due syncs while fewer than the engine's concurrency run: those a webhook woke
    /// first, then those of the provider accounts with the fewest runs under way, then the
    /// longest due.
    async fn start_due(&mut self, engine: &Engine) -> Result<(), crate::StoreError> {
        // A webhook's sync is due now, even when its run ended between the webhook marking it
        // due (a no-op while it ran) and this pass.
        let now = now_ms();
        for id in &self.woken {
            engine.store().wake_sync(id, now).await?;
        }
        let due = engine.store().due_syncs_with_connections(now).await?;
        for id in self.woken.iter().filter(|id| self.running.contains_key(*id)) {
            self.again.insert(id.clone());
        }
        let mut waiting: Vec<(String, String)> = due.into_iter().filter(|(id, _)| !self.running.contains_key(id)).collect();
        while self.running.len() < engine.config().concurrency.max(1) {
            let Some(next) = next_to_start(&waiting, &self.woken, &self.running) else { break };
            let (sync_id, connection) = waiting.remove(next);
            let trigger = if self.woken.remove(&sync_id) { Trigger::Webhook } else { Trigger::Scheduled };
            let (engine, id) = (engine.clone(), sync_id.clone());
            let task = self.tasks.spawn(async move {
                if let Err(e) = engine.run_sync(&id, trigger).await {
                    tracing::warn!(sync_id = %id, error = %e, "sync run failed");
                }
            });
            self.by_task.insert(task.id(), sync_id.clone());
            self.running.insert(sync_id, connection);
        }
        // Woken syncs still waiting for a slot keep their turn; one running is owed a run after
        // it (above); one not due here (off, or another instance holds it) is owed nothing.
        self.woken.retain(|id| waiting.iter().any(|(w, _)| w == id));
        Ok(())
    }

    /// A run ended (or its task panicked): its slot is free, and a sync woken while it ran is
    /// due at once (the next pass marks it due) and starts first.
    fn ended(&mut self, task: tokio::task::Id) {
        let Some(sync_id) = self.by_task.remove(&task) else { return };
        self.running.remove(&sync_id);
        // Woken while it ran (seen by an earlier pass, or just now): it goes first again.
        if self.again.remove(&sync_id) {
            self.woken.insert(sync_id);
        }
    }
}

/// Which of the due syncs (sync, app connection; longest due first) starts next: one a webhook
/// woke, then one of the provider account with the fewest runs under way, then the longest due.
fn next_to_start(waiting: &[(String, String)], woken: &HashSet<String>, running: &HashMap<String, String>) -> Option<usize> {
    let load = |connection: &str| running.values().filter(|c| *c == connection).count();
    (0..waiting.len()).min_by_key(|&i| (!woken.contains(&waiting[i].0), load(&waiting[i].1), i))
}

/// Runs until `shutdown` turns true. Runs cut short by shutdown resume from their last
/// checkpoint; the leases this instance held are given back.
pub async fn run(accounts: Accounts, engine: Option<Engine>, wake: Wake, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(syncing = engine.is_some(), concurrency = engine.as_ref().map(|e| e.config().concurrency), "engine task started");
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Some(engine) = &engine {
        if let Err(e) = engine.reclaim_after_restart().await {
            tracing::warn!(error = %e, "could not release leases left by an earlier run of this instance");
        }
    }
    let mut runs = Runs::default();
    loop {
        tokio::select! {
            _ = housekeeping.tick() => {
                match accounts.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "expired sessions and invitations removed"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
                }
                continue;
            }
            _ = poll.tick() => {}
            _ = wake.notify.notified() => {}
            Some(ended) = runs.tasks.join_next_with_id(), if !runs.tasks.is_empty() => {
                let task = match ended {
                    Ok((task, ())) => task,
                    Err(e) => {
                        tracing::error!(error = %e, "a sync run's task ended abnormally");
                        e.id()
                    }
                };
                // Webhooks that came while it ran are known before its slot is given back.
                runs.woken.extend(wake.take());
                runs.ended(task);
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        }
        let Some(engine) = &engine else { continue };
        runs.woken.extend(wake.take());
        if let Err(e) = runs.start_due(engine).await {
            tracing::warn!(error = %e, "the sync engine could not read its work; will retry");
        }
    }
    runs.tasks.abort_all();
    while runs.tasks.join_next().await.is_some() {}
    if let Some(engine) = &engine {
        if let Err(e) = engine.release_leases().await {
            tracing::warn!(error = %e, "could not release this instance's leases");
        }
    }
    tracing::info!("engine task stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn woken_syncs_start_first_then_the_least_busy_accounts() {
        let waiting = pairs(&[("a1", "A"), ("a2", "A"), ("b1", "B")]);
        let none = HashSet::new();
        // Nothing running: the longest due.
        assert_eq!(next_to_start(&waiting, &none, &HashMap::new()), Some(0));
        // Account A already runs a sync (its long initial sync): B's turn.
        let running: HashMap<String, String> = pairs(&[("a0", "A")]).into_iter().collect();
        assert_eq!(next_to_start(&waiting, &none, &running), Some(2));
        // A webhook woke a2: it goes first whatever runs.
        let woken: HashSet<String> = ["a2".to_string()].into();
        assert_eq!(next_to_start(&waiting, &woken, &running), Some(1));
        assert_eq!(next_to_start(&[], &woken, &running), None);
    }
}
