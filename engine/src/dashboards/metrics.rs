//! `/metrics`: every sync's status, record counts, failures and run totals in Prometheus' text
//! format.

use std::collections::HashMap;
use std::fmt::Write as _;

use model::dashboard::{HealthStatus, RecordBucket};
use model::states::{RecordReason, RecordState};

use super::{health_of, Dashboards, Result};
use crate::clock::now_ms;
use crate::store::{StateCount, SyncStateRow};

impl Dashboards {
    /// Everything `/metrics` shows, in Prometheus' text format.
    pub async fn metrics(&self) -> Result<String> {
        let now = now_ms();
        let store = self.store();
        let contexts = self.contexts().await?;
        let states: HashMap<String, SyncStateRow> = store.sync_states().await?.into_iter().map(|s| (s.sync_id.clone(), s)).collect();
        let counts = store.record_counts(None).await?;
        let totals = store.run_totals(0).await?;
        let outcomes = store.run_outcomes().await?;
        let labels: HashMap<String, String> = contexts
            .iter()
            .map(|c| {
                (
                    c.row.id.clone(),
                    format!("sync=\"{}\",app=\"{}\",object=\"{}\"", esc(&c.row.id), esc(&c.label.provider), esc(&c.row.object)),
                )
            })
            .collect();
        let label = |id: &str| labels.get(id).cloned().unwrap_or_else(|| format!("sync=\"{}\"", esc(id)));
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };

        family(
            &mut out,
            "tandem_sync_status",
            "gauge",
            "1 for each sync's current status (syncing, paused, off, needs_reconnection, error).",
        );
        let mut last_runs = self.last_runs().await?;
        let mut healths = HashMap::new();
        for ctx in &contexts {
            let sync_counts: Vec<StateCount> = counts.iter().filter(|c| c.sync_id == ctx.row.id).cloned().collect();
            let health = health_of(ctx, states.get(&ctx.row.id), &sync_counts, last_runs.remove(&ctx.row.id), now);
            for s in [HealthStatus::Syncing, HealthStatus::Paused, HealthStatus::Off, HealthStatus::NeedsReconnection, HealthStatus::Error]
            {
                let _ = writeln!(
                    out,
                    "tandem_sync_status{{{},status=\"{}\"}} {}",
                    label(&ctx.row.id),
                    s.as_str(),
                    u8::from(health.status == s)
                );
            }
            healths.insert(ctx.row.id.clone(), health);
        }
        family(
            &mut out,
            "tandem_sync_records",
            "gauge",
            "Records by Health bucket (in_sync, excluded, failing, pending) and reason or error category.",
        );
        for c in &counts {
            let bucket = RecordBucket::of(c.state).as_str();
            let _ = writeln!(
                out,
                "tandem_sync_records{{{},bucket=\"{bucket}\",reason=\"{}\"}} {}",
                label(&c.sync_id),
                esc(c.reason.map(RecordReason::as_str).unwrap_or("")),
                c.count
            );
        }
        family(&mut out, "tandem_sync_failing_records", "gauge", "Records whose last sync attempt failed, by error category.");
        for c in counts.iter().filter(|c| c.state == RecordState::Failed) {
            let _ = writeln!(
                out,
                "tandem_sync_failing_records{{{},category=\"{}\"}} {}",
                label(&c.sync_id),
                esc(c.reason.map(RecordReason::as_str).unwrap_or("other")),
                c.count
            );
        }
        family(&mut out, "tandem_sync_runs_total", "counter", "Sync runs by outcome.");
        for o in &outcomes {
            let _ = writeln!(out, "tandem_sync_runs_total{{{},outcome=\"{}\"}} {}", label(&o.sync_id), o.outcome, o.count);
        }
        family(&mut out, "tandem_sync_records_written_total", "counter", "Records created or updated, by target side.");
        for t in &totals {
            for (target, op, n) in [
                ("hubspot", "created", t.created_in_hub),
                ("hubspot", "updated", t.updated_in_hub),
                ("app", "created", t.created_in_app),
                ("app", "updated", t.updated_in_app),
            ] {
                let _ =
                    writeln!(out, "tandem_sync_records_written_total{{{},target=\"{target}\",operation=\"{op}\"}} {n}", label(&t.sync_id));
            }
        }
        for (name, help, pick) in [
            (
                "tandem_sync_records_failed_total",
                "Record writes that failed.",
                (|t: &crate::store::RunTotals| t.failed) as fn(&crate::store::RunTotals) -> i64,
            ),
            ("tandem_sync_records_skipped_total", "Records read and found unchanged.", |t| t.skipped),
            ("tandem_sync_conflicts_total", "Fields changed on both sides and decided by the conflict rule.", |t| t.conflicts),
            ("tandem_sync_api_calls_total", "Calls made to the providers' APIs.", |t| t.api_calls),
            ("tandem_sync_rate_limit_waits_total", "Times a run waited for a provider's rate limit.", |t| t.rate_limit_waits),
        ] {
            family(&mut out, name, "counter", help);
            for t in &totals {
                let _ = writeln!(out, "{name}{{{}}} {}", label(&t.sync_id), pick(t));
            }
        }
        family(&mut out, "tandem_sync_rate_limit_wait_seconds_total", "counter", "Time spent waiting for providers' rate limits.");
        for t in &totals {
            let _ = writeln!(
                out,
                "tandem_sync_rate_limit_wait_seconds_total{{{}}} {:.3}",
                label(&t.sync_id),
                t.rate_limit_wait_ms as f64 / 1000.0
            );
        }
        family(&mut out, "tandem_sync_lag_seconds", "gauge", "Seconds since each sync last completed a run successfully.");
        for ctx in &contexts {
            if let Some(at) = healths.get(&ctx.row.id).and_then(|h| h.last_success_at) {
                let _ = writeln!(out, "tandem_sync_lag_seconds{{{}}} {:.3}", label(&ctx.row.id), (now - at).max(0) as f64 / 1000.0);
            }
        }
        family(&mut out, "tandem_sync_initial_progress_ratio", "gauge", "Share of records handled by a running initial sync.");
        for ctx in &contexts {
            if let Some(p) = healths.get(&ctx.row.id).and_then(|h| h.progress.clone()) {
                if let Some(total) = p.total.filter(|t| *t > 0) {
                    let _ = writeln!(
                        out,
                        "tandem_sync_initial_progress_ratio{{{}}} {:.4}",
                        label(&ctx.row.id),
                        p.done.min(total) as f64 / total as f64
                    );
                }
            }
        }
        Ok(out)
    }
}

/// A Prometheus label value.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn metric_labels_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
