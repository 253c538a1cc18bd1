//! What the sync health and history dashboards show: a sync's health (status, counts per bucket,
//! progress), its runs, record events, a record's timeline, chart series and the overview.
//! Shared by the server (which fills them) and the browser (which renders them).

use serde::{Deserialize, Serialize};

use crate::apps::ObjectKind;
use crate::merge::Side;
use crate::states::{EventKind, RecordReason, RecordState, RunOutcome, RunTrigger};

/// How a sync stands, as the Health tab's badge says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthStatus {
    /// On, and its last run succeeded (or it has not run yet).
    Syncing,
    Paused,
    Off,
    /// The app or HubSpot must be reconnected before anything syncs.
    NeedsReconnection,
    /// On, but its last run failed as a whole.
    Error,
}

impl HealthStatus {
    pub fn label(self) -> &'static str {
        match self {
            HealthStatus::Syncing => "Syncing",
            HealthStatus::Paused => "Paused",
            HealthStatus::Off => "Off",
            HealthStatus::NeedsReconnection => "Needs reconnection",
            HealthStatus::Error => "Error",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Syncing => "syncing",
            HealthStatus::Paused => "paused",
            HealthStatus::Off => "off",
            HealthStatus::NeedsReconnection => "needs_reconnection",
            HealthStatus::Error => "error",
        }
    }

    /// Problems first on the overview.
    pub fn severity(self) -> u8 {
        match self {
            HealthStatus::NeedsReconnection => 0,
            HealthStatus::Error => 1,
            HealthStatus::Paused => 3,
            HealthStatus::Syncing => 4,
            HealthStatus::Off => 5,
        }
    }
}

/// The buckets a synced record falls in on the Health tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordBucket {
    InSync,
    Excluded,
    Failing,
    /// Being created on the other side (an interrupted create waits for recovery).
    Pending,
}

impl RecordBucket {
    /// A bucket named in a link (`?bucket=failing`); a record state's word names its bucket too.
    pub fn parse(s: &str) -> Option<RecordBucket> {
        match s {
            "in_sync" | "linked" => Some(RecordBucket::InSync),
            "excluded" => Some(RecordBucket::Excluded),
            "failing" | "failed" => Some(RecordBucket::Failing),
            "pending" | "creating" => Some(RecordBucket::Pending),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordBucket::InSync => "in_sync",
            RecordBucket::Excluded => "excluded",
            RecordBucket::Failing => "failing",
            RecordBucket::Pending => "pending",
        }
    }

    /// The record state the store keeps for this bucket.
    pub fn state(self) -> RecordState {
        match self {
            RecordBucket::InSync => RecordState::Linked,
            RecordBucket::Excluded => RecordState::Excluded,
            RecordBucket::Failing => RecordState::Failed,
            RecordBucket::Pending => RecordState::Creating,
        }
    }

    /// The bucket a record in `state` falls in.
    pub fn of(state: RecordState) -> RecordBucket {
        match state {
            RecordState::Linked => RecordBucket::InSync,
            RecordState::Excluded => RecordBucket::Excluded,
            RecordState::Failed => RecordBucket::Failing,
            RecordState::Creating => RecordBucket::Pending,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordBucket::InSync => "In sync",
            RecordBucket::Excluded => "Excluded",
            RecordBucket::Failing => "Failing",
            RecordBucket::Pending => "Being created",
        }
    }
}

/// What an excluded record's reason or a failing record's error category, named by its word (as
/// a link's `reason=` does), says to an admin.
pub fn reason_label(reason: &str) -> &'static str {
    RecordReason::parse(reason).map(RecordReason::label).unwrap_or("Other")
}

/// One count on the Health tab, e.g. Excluded › Unmapped stage: 12.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCount {
    /// The reason or error category (`unmapped_stage`, `validation`, …).
    pub reason: String,
    pub label: String,
    pub count: i64,
}

/// The initial sync's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub done: i64,
    /// Records found on both sides when it started (None while unknown).
    pub total: Option<i64>,
    pub started_at: i64,
    /// Records per second so far.
    pub rate: f64,
    /// Seconds left at that rate.
    pub eta_secs: Option<i64>,
}

impl Progress {
    pub fn new(done: i64, total: Option<i64>, started_at: i64, now: i64) -> Progress {
        let elapsed = ((now - started_at).max(1)) as f64 / 1000.0;
        let rate = done as f64 / elapsed;
        let eta_secs = total.filter(|_| rate > 0.0).map(|t| (((t - done).max(0)) as f64 / rate).ceil() as i64);
        Progress { done, total: total.map(|t| t.max(done)), started_at, rate, eta_secs }
    }

    /// Whole percent done, when the total is known.
    pub fn percent(&self) -> Option<u8> {
        self.total.map(|t| if t <= 0 { 100 } else { ((self.done.min(t) * 100) / t) as u8 })
    }
}

/// Which sync, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncLabel {
    pub sync_id: String,
    pub object: ObjectKind,
    pub connection_id: String,
    pub provider: String,
    pub app_name: String,
    pub account_name: String,
    /// The HubSpot account the sync belongs to, when it has one (connected or not).
    pub hub_account: Option<HubAccount>,
}

/// The HubSpot account a sync belongs to, as Sync health groups the syncs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubAccount {
    pub connection_id: String,
    /// Its name and portal ("acme.com · portal 24681357").
    pub name: String,
    pub installed_at: i64,
    pub uninstalled: bool,
}

impl SyncLabel {
    /// "Pipedrive deals", for headings.
    pub fn title(&self) -> String {
        format!("{} {}", self.app_name, self.object.plural().to_lowercase())
    }
}

/// The Health tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncHealth {
    pub sync: SyncLabel,
    pub status: HealthStatus,
    /// Why, for Error and Needs reconnection.
    pub status_detail: Option<String>,
    pub last_success_at: Option<i64>,
    pub next_run_at: Option<i64>,
    pub running: bool,
    pub in_sync: i64,
    pub pending: i64,
    pub excluded: Vec<BucketCount>,
    pub failing: Vec<BucketCount>,
    /// While the initial sync runs.
    pub progress: Option<Progress>,
    pub last_run: Option<RunSummary>,
}

impl SyncHealth {
    pub fn excluded_total(&self) -> i64 {
        self.excluded.iter().map(|c| c.count).sum()
    }
    pub fn failing_total(&self) -> i64 {
        self.failing.iter().map(|c| c.count).sum()
    }
}

/// One synced (or excluded, or failing) record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSummary {
    /// The Tandem id.
    pub id: String,
    pub name: String,
    pub hubspot_id: Option<String>,
    pub app_id: Option<String>,
    pub bucket: RecordBucket,
    pub reason: Option<RecordReason>,
    /// The provider's message for a failing record, or why it is excluded.
    pub message: Option<String>,
    pub updated_at: i64,
    /// An admin asked for a retry that has not run yet.
    pub retry_requested: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordPage {
    pub records: Vec<RecordSummary>,
    /// The cursor of the next page.
    pub next: Option<String>,
}

/// One run on the History tab.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub trigger: RunTrigger,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: RunOutcome,
    pub message: Option<String>,
    pub created_in_app: i64,
    pub updated_in_app: i64,
    pub created_in_hub: i64,
    pub updated_in_hub: i64,
    pub skipped: i64,
    /// Of `skipped`, records read from HubSpot (the rest were read from the app).
    pub skipped_from_hub: i64,
    pub failed_to_app: i64,
    pub failed_to_hub: i64,
    pub conflicts: i64,
    pub api_calls: i64,
    /// Of `api_calls`: reading records, writing them, looking particular ones up, and the
    /// schema (fields, pipelines, owners, Tandem id fields, webhooks).
    pub calls_read: i64,
    pub calls_write: i64,
    pub calls_lookup: i64,
    pub calls_schema: i64,
    pub rate_limit_waits: i64,
    pub rate_limit_wait_ms: i64,
}

impl RunSummary {
    /// The run's calls by purpose, as History shows them ("reads 2 · writes 1 · lookups 0 ·
    /// schema 6"); empty for runs counted before calls were told apart.
    pub fn calls_by_purpose(&self) -> String {
        let counted = [self.calls_read, self.calls_write, self.calls_lookup, self.calls_schema];
        if self.api_calls > 0 && counted.iter().sum::<i64>() == 0 {
            return String::new();
        }
        format!(
            "reads {} · writes {} · lookups {} · schema {}",
            thousands(self.calls_read),
            thousands(self.calls_write),
            thousands(self.calls_lookup),
            thousands(self.calls_schema)
        )
    }

    /// Records read from the app and left as they were.
    pub fn skipped_from_app(&self) -> i64 {
        (self.skipped - self.skipped_from_hub).max(0)
    }

    pub fn duration_ms(&self) -> Option<i64> {
        self.ended_at.map(|e| (e - self.started_at).max(0))
    }
}

/// The History tab's filters; dates are `YYYY-MM-DD` (UTC), both ends included.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub trigger: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    pub next: Option<String>,
}

/// One field in an event: old → new, or both sides' values in a conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
    /// A conflict's values on each side and the side that won.
    pub hubspot: Option<String>,
    pub app: Option<String>,
    pub winner: Option<String>,
}

/// One thing that happened to one record in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub run_id: String,
    pub record_id: String,
    pub record_name: String,
    pub at: i64,
    pub kind: EventKind,
    /// The side the event happened on (written to, or read from).
    pub side: Side,
    pub changes: Vec<FieldChange>,
    pub rule: Option<String>,
    /// An excluded record's reason, or a failed write's error category.
    pub category: Option<RecordReason>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    pub next: Option<String>,
}

/// A run with the first page of its record events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    pub sync: SyncLabel,
    pub run: RunSummary,
    pub events: EventPage,
}

/// A record's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub sync: SyncLabel,
    pub record: RecordSummary,
    /// A page of its events, newest first.
    pub events: Vec<EventSummary>,
    /// Where the next (older) page starts, when there is one.
    pub next: Option<String>,
}

/// The span a chart covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChartRange {
    Day,
    Week,
    Month,
}

impl ChartRange {
    pub fn parse(s: &str) -> Option<ChartRange> {
        match s {
            "24h" => Some(ChartRange::Day),
            "7d" => Some(ChartRange::Week),
            "30d" => Some(ChartRange::Month),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ChartRange::Day => "24h",
            ChartRange::Week => "7d",
            ChartRange::Month => "30d",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ChartRange::Day => "Last 24 hours",
            ChartRange::Week => "Last 7 days",
            ChartRange::Month => "Last 30 days",
        }
    }
    /// Hourly bars over a day, daily bars over a week or a month.
    pub fn bucket_ms(self) -> i64 {
        match self {
            ChartRange::Day => 3_600_000,
            ChartRange::Week | ChartRange::Month => 86_400_000,
        }
    }
    pub fn buckets(self) -> i64 {
        match self {
            ChartRange::Day => 24,
            ChartRange::Week => 7,
            ChartRange::Month => 30,
        }
    }
    /// Where the first bucket starts: whole hours (or UTC days) so bars line up with the clock.
    pub fn start(self, now: i64) -> i64 {
        let size = self.bucket_ms();
        (now / size + 1) * size - self.buckets() * size
    }
}

/// One bar of a chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartBucket {
    pub start: i64,
    pub synced: i64,
    pub errors: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chart {
    pub range: ChartRange,
    pub buckets: Vec<ChartBucket>,
}

/// One row of the overview across all syncs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewRow {
    pub sync: SyncLabel,
    pub status: HealthStatus,
    pub status_detail: Option<String>,
    pub last_success_at: Option<i64>,
    pub in_sync: i64,
    pub excluded: i64,
    pub failing: i64,
    /// Records created or updated in the last 24 hours.
    pub synced_24h: i64,
    pub errors_24h: i64,
    pub runs_24h: i64,
}

/// What an admin is told after asking to retry `n` failing records.
pub fn retry_message(n: u64) -> String {
    match n {
        0 => "Nothing is failing there any more; there is nothing to retry.".to_string(),
        1 => "Retrying 1 record now. Its status updates when the run ends.".to_string(),
        n => format!("Retrying {} records now. Their status updates when the run ends.", thousands(n as i64)),
    }
}

/// 12,345 — counts as the dashboards print them.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// 1.2 s, 3 min 4 s, 2 h 5 min — a duration as the dashboards print it.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let secs = ms / 1000;
    if secs < 3_600 {
        return format!("{} min {} s", secs / 60, secs % 60);
    }
    format!("{} h {} min", secs / 3_600, (secs % 3_600) / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_runs_calls_read_by_purpose_and_older_runs_by_their_total() {
        let run = super::RunSummary {
            api_calls: 1_204,
            calls_read: 1_200,
            calls_write: 2,
            calls_lookup: 1,
            calls_schema: 1,
            ..Default::default()
        };
        assert_eq!(run.calls_by_purpose(), "reads 1,200 · writes 2 · lookups 1 · schema 1");
        // Counted before calls were told apart: no breakdown rather than a wrong one.
        let older = super::RunSummary { api_calls: 9, ..Default::default() };
        assert_eq!(older.calls_by_purpose(), "");
        assert_eq!(super::RunSummary::default().calls_by_purpose(), "reads 0 · writes 0 · lookups 0 · schema 0");
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(duration(950), "950 ms");
        assert_eq!(duration(1_250), "1.2 s");
        assert_eq!(duration(184_000), "3 min 4 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
    }

    use super::*;

    #[test]
    fn progress_rate_and_eta() {
        let p = Progress::new(500, Some(2_000), 0, 10_000);
        assert_eq!(p.rate, 50.0);
        assert_eq!(p.eta_secs, Some(30));
        assert_eq!(p.percent(), Some(25));
        // More done than first counted (records created during the sync): never over 100 %.
        let over = Progress::new(2_100, Some(2_000), 0, 10_000);
        assert_eq!(over.percent(), Some(100));
        assert_eq!(over.eta_secs, Some(0));
        assert_eq!(Progress::new(0, None, 0, 10_000).percent(), None);
    }

    #[test]
    fn chart_buckets_line_up_with_the_clock() {
        let now = 1_700_000_123_456;
        let start = ChartRange::Day.start(now);
        assert_eq!(start % 3_600_000, 0);
        assert!(start + 24 * 3_600_000 > now && start + 23 * 3_600_000 <= now);
        let start = ChartRange::Month.start(now);
        assert_eq!(start % 86_400_000, 0);
        assert!(start + 30 * 86_400_000 > now);
    }
}
