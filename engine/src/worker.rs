//! The engine task that runs beside the web server (or alone, as `tandem worker`): it runs every
//! sync that is due (each on its interval, or at once when a webhook wakes it) and keeps the
//! store tidy (expired sessions, invitations and login locks).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::runner::{Engine, Trigger};
use crate::Accounts;

/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often the engine looks for syncs that are due.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Wakes the engine before its next poll (a webhook arrived, an admin asked for a run).
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// Runs until `shutdown` turns true. A run cut short by shutdown resumes from its last
/// checkpoint; the leases this instance held are given back.
pub async fn run(accounts: Accounts, engine: Option<Engine>, wake: Wake, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(syncing = engine.is_some(), "engine task started");
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Some(engine) = &engine {
        if let Err(e) = engine.reclaim_after_restart().await {
            tracing::warn!(error = %e, "could not release leases left by an earlier run of this instance");
        }
    }
    loop {
        let trigger = tokio::select! {
            _ = housekeeping.tick() => {
                match accounts.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "expired sessions and invitations removed"),
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
                }
                continue;
            }
            _ = poll.tick() => Trigger::Scheduled,
            _ = wake.0.notified() => Trigger::Webhook,
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        };
        let Some(engine) = &engine else { continue };
        tokio::select! {
            result = engine.run_due(trigger) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "the sync engine could not read its work; will retry");
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    if let Some(engine) = &engine {
        if let Err(e) = engine.release_leases().await {
            tracing::warn!(error = %e, "could not release this instance's leases");
        }
    }
    tracing::info!("engine task stopped");
}
