//! The engine task that runs beside the web server. Today it keeps the store tidy (expired
//! sessions, invitations and login locks); the sync scheduler joins it here.

use std::time::Duration;

use tokio::sync::watch;

use crate::Accounts;

/// How often housekeeping runs.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);

/// Runs until `shutdown` turns true.
pub async fn run(accounts: Accounts, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("engine task started");
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => match accounts.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "expired sessions and invitations removed"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    tracing::info!("engine task stopped");
}
