//! The CSV export of a sync's runs or record events over a date range, written page by page so
//! the response streams.

use model::timefmt;

use model::dashboard::{FieldChange, RunFilter};

use super::{event_summary, run_query, Dashboards, Result};
use crate::store::{NamedEventRow, RunRow};

const RUN_HEADER: &str = "run_id,started_at,ended_at,trigger,outcome,created_in_hubspot,updated_in_hubspot,created_in_app,updated_in_app,\
skipped_from_hubspot,skipped_from_app,failed_to_hubspot,failed_to_app,conflicts,api_calls,calls_read,calls_write,calls_lookup,calls_schema,rate_limit_waits,rate_limit_wait_ms,message";
const EVENT_HEADER: &str =
    "event_id,at,run_id,record_id,record_name,event,side,field,old_value,new_value,hubspot_value,app_value,winner,rule,category,message";
/// Rows per query while exporting (the response streams page by page).
const EXPORT_PAGE: i64 = 1_000;

impl Dashboards {
    /// The CSV export of runs or record events started in `[from, to)`, written page by page
    /// into `out` (one call per page; None when done).
    pub async fn export_page(
        &self,
        sync_id: &str,
        kind: ExportKind,
        from: i64,
        to: i64,
        cursor: &mut ExportCursor,
    ) -> Result<Option<String>> {
        if cursor.done {
            return Ok(None);
        }
        let mut out = String::new();
        if !cursor.header_written {
            self.context(sync_id).await?;
            out.push_str(match kind {
                ExportKind::Runs => RUN_HEADER,
                ExportKind::Events => EVENT_HEADER,
            });
            out.push_str("\r\n");
            cursor.header_written = true;
        }
        let after = cursor.after.clone();
        let (n, last) = match kind {
            ExportKind::Runs => {
                let rows = self.store().runs_between(sync_id, from, to, after, EXPORT_PAGE).await?;
                for r in &rows {
                    write_run_csv(&mut out, r);
                }
                (rows.len(), rows.last().map(|r| (r.started_at, r.id.clone())))
            }
            ExportKind::Events => {
                let rows = self.store().events_between(sync_id, from, to, after, EXPORT_PAGE).await?;
                for r in &rows {
                    write_event_csv(&mut out, r);
                }
                (rows.len(), rows.last().map(|r| (r.event.at, r.event.id.clone())))
            }
        };
        cursor.after = last;
        cursor.done = (n as i64) < EXPORT_PAGE;
        Ok(Some(out))
    }
}

/// What the CSV export covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    Runs,
    Events,
}

impl ExportKind {
    pub fn parse(s: &str) -> Option<ExportKind> {
        match s {
            "runs" => Some(ExportKind::Runs),
            "events" => Some(ExportKind::Events),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Runs => "runs",
            ExportKind::Events => "events",
        }
    }
}

/// Where a CSV export stands between pages.
#[derive(Clone, Debug, Default)]
pub struct ExportCursor {
    header_written: bool,
    after: Option<(i64, String)>,
    done: bool,
}

impl ExportCursor {
    /// A cursor with nothing left to export (after a failure).
    pub fn finished() -> ExportCursor {
        ExportCursor { header_written: true, after: None, done: true }
    }
}

/// The date range of an export: `YYYY-MM-DD` days, both included (default: the last 30 days).
pub fn export_range(from: Option<&str>, to: Option<&str>, now: i64) -> Result<(i64, i64)> {
    let filter = RunFilter { from: from.map(str::to_string), to: to.map(str::to_string), ..RunFilter::default() };
    let q = run_query(&filter)?;
    let to = q.to.unwrap_or(now + 1);
    Ok((q.from.unwrap_or(to - 30 * 86_400_000).max(0), to))
}

pub(super) fn parse_cursor(c: &str) -> Option<(i64, String)> {
    let (at, id) = c.split_once('_')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// One CSV cell: quoted when it must be, and never read as a formula by a spreadsheet.
fn cell(out: &mut String, value: &str) {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&guarded.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&guarded);
    }
}

fn row(out: &mut String, cells: &[&str]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        cell(out, c);
    }
    out.push_str("\r\n");
}

fn write_run_csv(out: &mut String, r: &RunRow) {
    let n = |v: i64| v.to_string();
    row(
        out,
        &[
            &r.id,
            &timefmt::iso_seconds(r.started_at),
            &r.ended_at.map(timefmt::iso_seconds).unwrap_or_default(),
            r.trigger.as_str(),
            r.outcome.as_str(),
            &n(r.created_in_hub),
            &n(r.updated_in_hub),
            &n(r.created_in_app),
            &n(r.updated_in_app),
            &n(r.skipped_from_hub),
            &n((r.skipped - r.skipped_from_hub).max(0)),
            &n(r.failed_to_hub),
            &n(r.failed_to_app),
            &n(r.conflicts),
            &n(r.api_calls),
            &n(r.calls_read),
            &n(r.calls_write),
            &n(r.calls_lookup),
            &n(r.calls_schema),
            &n(r.rate_limit_waits),
            &n(r.rate_limit_wait_ms),
            r.message.as_deref().unwrap_or(""),
        ],
    );
}

/// One line per field an event touched (one line when it touched none).
fn write_event_csv(out: &mut String, r: &NamedEventRow) {
    let summary = event_summary(r.clone());
    let at = timefmt::iso_seconds(summary.at);
    let base = |out: &mut String, c: Option<&FieldChange>| {
        let v = |x: Option<&Option<String>>| x.and_then(|o| o.as_deref()).unwrap_or("").to_string();
        row(
            out,
            &[
                &summary.id,
                &at,
                &summary.run_id,
                &summary.record_id,
                &summary.record_name,
                summary.kind.as_str(),
                summary.side.as_str(),
                c.map(|c| c.field.as_str()).unwrap_or(""),
                &v(c.map(|c| &c.old)),
                &v(c.map(|c| &c.new)),
                &v(c.map(|c| &c.hubspot)),
                &v(c.map(|c| &c.app)),
                &v(c.map(|c| &c.winner)),
                summary.rule.as_deref().unwrap_or(""),
                summary.category.map(model::states::RecordReason::as_str).unwrap_or(""),
                summary.message.as_deref().unwrap_or(""),
            ],
        );
    };
    if summary.changes.is_empty() {
        base(out, None);
    } else {
        for c in &summary.changes {
            base(out, Some(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::row;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        let mut out = String::new();
        row(&mut out, &["plain", "a,b", "say \"hi\"", "=HYPERLINK(\"x\")", "-12.5", "line\nbreak"]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",-12.5,\"line\nbreak\"\r\n");
    }
}
