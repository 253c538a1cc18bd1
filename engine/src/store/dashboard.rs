//! What the sync health and history dashboards read, and an admin's retry requests. Pages are
//! keyset pages over indexed columns (never OFFSET), so a page costs the same with a million
//! events behind it.

use model::states::{RecordReason, RecordState, RunOutcome, RunTrigger};

use super::engine::{EventRow, MaybeWord, RecordRow, RunRow, RECORD_COLUMNS, RUN_COLUMNS};
use super::{on_pool, Result, Store};

/// How many records of a sync are in one state (and reason).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StateCount {
    pub sync_id: String,
    #[sqlx(try_from = "String")]
    pub state: RecordState,
    #[sqlx(try_from = "MaybeWord")]
    pub reason: Option<RecordReason>,
    pub count: i64,
}

/// An event with the name of its record.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct NamedEventRow {
    #[sqlx(flatten)]
    pub event: EventRow,
    pub record_name: Option<String>,
}

/// Which runs a History page lists.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    /// Started at or after (Unix ms).
    pub from: Option<i64>,
    /// Started before (Unix ms).
    pub to: Option<i64>,
    pub trigger: Option<RunTrigger>,
    pub outcome: Option<RunOutcome>,
    /// The page ends before this (started_at, id).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// One bar of a chart: records written and failed in runs that started in the bucket.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RunBucket {
    pub bucket: i64,
    pub synced: i64,
    pub errors: i64,
}

/// A sync's run totals, for `/metrics` and the overview.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RunTotals {
    pub sync_id: String,
    pub runs: i64,
    pub created_in_app: i64,
    pub updated_in_app: i64,
    pub created_in_hub: i64,
    pub updated_in_hub: i64,
    pub skipped: i64,
    pub failed: i64,
    pub conflicts: i64,
    pub api_calls: i64,
    pub rate_limit_waits: i64,
    pub rate_limit_wait_ms: i64,
}

/// Runs per sync and outcome, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutcomeCount {
    pub sync_id: String,
    #[sqlx(try_from = "String")]
    pub outcome: RunOutcome,
    pub count: i64,
}

const EVENT_COLUMNS: &str = "e.id, e.sync_id, e.run_id, e.record_id, e.at, e.kind, e.side, e.changes, e.rule, e.category, e.message";

/// `LIKE` pattern for text containing `q` (its own `%`, `_` and `\` taken literally).
fn contains_pattern(q: &str) -> String {
    let escaped: String = q.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    format!("%{escaped}%")
}

impl Store {
    /// Records per state and reason, for every sync (`sync_id` None) or one.
    pub async fn record_counts(&self, sync_id: Option<&str>) -> Result<Vec<StateCount>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, StateCount>(
            "SELECT sync_id, state, reason, COUNT(*) AS count FROM sync_records WHERE ($1 IS NULL OR sync_id = $1) \
             GROUP BY sync_id, state, reason ORDER BY sync_id, state, reason"
        )
        .bind(sync_id)
        .fetch_all(pool)
        .await)?)
    }

    /// One page of the records in a state (and reason), in Tandem id order after `after`.
    pub async fn records_in_bucket(
        &self,
        sync_id: &str,
        state: RecordState,
        reason: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecordRow>> {
        let after = after.unwrap_or("");
        Ok(match reason {
            Some(reason) => {
                let sql = format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND state = $2 AND reason = $3 AND id > $4 ORDER BY id LIMIT $5");
                on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql))
                    .bind(sync_id)
                    .bind(state.as_str())
                    .bind(reason)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
            None => {
                let sql =
                    format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND state = $2 AND id > $3 ORDER BY id LIMIT $4");
                on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql))
                    .bind(sync_id)
                    .bind(state.as_str())
                    .bind(after)
                    .bind(limit)
                    .fetch_all(pool)
                    .await)?
            }
        })
    }

    /// Records whose Tandem, HubSpot or app id is `q`, then those whose name contains it (any case).
    pub async fn search_records(&self, sync_id: &str, q: &str, limit: i64) -> Result<Vec<RecordRow>> {
        // One indexed lookup per id column (an OR of the three would read every record).
        let by_id = format!(
            "SELECT {RECORD_COLUMNS} FROM sync_records WHERE id = $2 AND sync_id = $1 \
             UNION SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND hubspot_id = $2 \
             UNION SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND app_id = $2 LIMIT $3"
        );
        let mut found: Vec<RecordRow> = on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(by_id))
            .bind(sync_id)
            .bind(q)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        // SQLite's LIKE ignores ASCII case already; Postgres says so with ILIKE. The name index
        // is read in order, so the scan stops once enough names match.
        let like = match self.backend() {
            super::Backend::Sqlite => "LIKE",
            super::Backend::Postgres => "ILIKE",
        };
        let by_name = format!(
            "SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND name {like} $2 ESCAPE '\\' ORDER BY name, id LIMIT $3"
        );
        let named: Vec<RecordRow> = on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(by_name))
            .bind(sync_id)
            .bind(contains_pattern(q))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        for row in named {
            if found.len() as i64 >= limit {
                break;
            }
            if !found.iter().any(|f| f.id == row.id) {
                found.push(row);
            }
        }
        Ok(found)
    }

    pub async fn record(&self, record_id: &str) -> Result<Option<RecordRow>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM sync_records WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql)).bind(record_id).fetch_optional(pool).await)?)
    }

    /// Whether an admin asked to retry these records (by Tandem id) and it has not run yet.
    pub async fn retry_requested(&self, ids: &[String]) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id FROM sync_records WHERE retry_requested_at IS NOT NULL AND id IN ({})",
            (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        );
        let rows: Vec<(String,)> = on_pool!(self, |pool| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Asks the engine to retry failed records: one (`record_id`), those of one error category,
    /// or all. Answers how many were marked.
    pub async fn request_retry(&self, sync_id: &str, record_id: Option<&str>, category: Option<&str>, now: i64) -> Result<u64> {
        Ok(on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "UPDATE sync_records SET retry_requested_at = $4 WHERE sync_id = $1 AND state = 'failed' \
             AND ($2 IS NULL OR id = $2) AND ($3 IS NULL OR reason = $3)"
                )
                .bind(sync_id)
                .bind(record_id)
                .bind(category)
                .bind(now)
                .execute(pool)
                .await
        )?)
    }

    /// Failed records the engine retries: those an admin asked for, then those whose error
    /// category passes (`transient`), oldest first.
    pub async fn records_to_retry(&self, sync_id: &str, transient: &[&str], limit: i64) -> Result<Vec<RecordRow>> {
        let categories = (3..transient.len() + 3).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM sync_records WHERE sync_id = $1 AND state = 'failed' \
             AND (retry_requested_at IS NOT NULL OR reason IN ({categories})) \
             ORDER BY CASE WHEN retry_requested_at IS NULL THEN 1 ELSE 0 END, updated_at, id LIMIT $2"
        );
        Ok(on_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, RecordRow>(sqlx::AssertSqlSafe(sql)).bind(sync_id).bind(limit);
            for category in transient {
                query = query.bind(*category);
            }
            query.fetch_all(pool).await
        })?)
    }

    /// The retry requests of these records have been acted on.
    pub async fn clear_retry_requests(&self, sync_id: &str, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(100) {
            let sql = format!(
                "UPDATE sync_records SET retry_requested_at = NULL WHERE sync_id = $1 AND id IN ({})",
                (2..chunk.len() + 2).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
            );
            on_pool!(
                self,
                exec | pool | {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sync_id);
                    for id in chunk {
                        query = query.bind(id);
                    }
                    query.execute(pool).await
                }
            )?;
        }
        Ok(())
    }

    /// A page of a sync's runs, newest first.
    pub async fn runs_page(&self, sync_id: &str, q: &RunQuery) -> Result<Vec<RunRow>> {
        let (before_at, before_id) = q.before.clone().unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE sync_id = $1 AND started_at >= $2 AND started_at < $3 \
             AND ($4 IS NULL OR trigger = $4) AND ($5 IS NULL OR outcome = $5) \
             AND (started_at < $6 OR (started_at = $6 AND ($7 = '' OR id < $7))) \
             ORDER BY started_at DESC, id DESC LIMIT $8"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql))
            .bind(sync_id)
            .bind(q.from.unwrap_or(0))
            .bind(q.to.unwrap_or(i64::MAX))
            .bind(q.trigger.map(RunTrigger::as_str))
            .bind(q.outcome.map(RunOutcome::as_str))
            .bind(before_at)
            .bind(before_id)
            .bind(q.limit)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql)).bind(run_id).fetch_optional(pool).await)?)
    }

    /// A page of one run's events (in the order they happened), with record names.
    pub async fn run_events(&self, run_id: &str, after: Option<&str>, limit: i64) -> Result<Vec<NamedEventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS}, r.name AS record_name FROM record_events e LEFT JOIN sync_records r ON r.id = e.record_id \
             WHERE e.run_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, NamedEventRow>(sqlx::AssertSqlSafe(sql))
            .bind(run_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// A page of a sync's events in a time range (export), oldest first after (at, id).
    pub async fn events_between(
        &self,
        sync_id: &str,
        from: i64,
        to: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<NamedEventRow>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = format!(
            "SELECT {EVENT_COLUMNS}, r.name AS record_name FROM record_events e LEFT JOIN sync_records r ON r.id = e.record_id \
             WHERE e.sync_id = $1 AND e.at >= $2 AND e.at < $3 AND (e.at > $4 OR (e.at = $4 AND e.id > $5)) \
             ORDER BY e.at, e.id LIMIT $6"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, NamedEventRow>(sqlx::AssertSqlSafe(sql))
            .bind(sync_id)
            .bind(from)
            .bind(to)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// A page of a sync's runs in a time range (export), oldest first after (started_at, id).
    pub async fn runs_between(&self, sync_id: &str, from: i64, to: i64, after: Option<(i64, String)>, limit: i64) -> Result<Vec<RunRow>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE sync_id = $1 AND started_at >= $2 AND started_at < $3 \
             AND (started_at > $4 OR (started_at = $4 AND id > $5)) ORDER BY started_at, id LIMIT $6"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql))
            .bind(sync_id)
            .bind(from)
            .bind(to)
            .bind(after_at)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// A page of a record's events, newest first (its timeline), before (at, id).
    pub async fn record_timeline(&self, record_id: &str, before: Option<(i64, String)>, limit: i64) -> Result<Vec<NamedEventRow>> {
        let (before_at, before_id) = before.unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {EVENT_COLUMNS}, r.name AS record_name FROM record_events e LEFT JOIN sync_records r ON r.id = e.record_id \
             WHERE e.record_id = $1 AND (e.at < $2 OR (e.at = $2 AND ($3 = '' OR e.id < $3))) ORDER BY e.at DESC, e.id DESC LIMIT $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, NamedEventRow>(sqlx::AssertSqlSafe(sql))
            .bind(record_id)
            .bind(before_at)
            .bind(before_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Records written and failed per bucket of `bucket_ms` from `from`, by the runs that
    /// started then (buckets with no run are absent).
    pub async fn run_buckets(&self, sync_id: &str, from: i64, bucket_ms: i64) -> Result<Vec<RunBucket>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunBucket>(
            "SELECT (started_at - $2) / $3 AS bucket, \
                 CAST(SUM(created_in_app + updated_in_app + created_in_hub + updated_in_hub) AS BIGINT) AS synced, \
                 CAST(SUM(failed_to_app + failed_to_hub) AS BIGINT) AS errors \
             FROM sync_runs WHERE sync_id = $1 AND started_at >= $2 GROUP BY 1 ORDER BY 1"
        )
        .bind(sync_id)
        .bind(from)
        .bind(bucket_ms)
        .fetch_all(pool)
        .await)?)
    }

    /// Run totals per sync for runs started at or after `since` (0: all).
    pub async fn run_totals(&self, since: i64) -> Result<Vec<RunTotals>> {
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunTotals>(
            "SELECT sync_id, COUNT(*) AS runs, \
                 CAST(SUM(created_in_app) AS BIGINT) AS created_in_app, CAST(SUM(updated_in_app) AS BIGINT) AS updated_in_app, \
                 CAST(SUM(created_in_hub) AS BIGINT) AS created_in_hub, CAST(SUM(updated_in_hub) AS BIGINT) AS updated_in_hub, \
                 CAST(SUM(skipped) AS BIGINT) AS skipped, CAST(SUM(failed_to_app + failed_to_hub) AS BIGINT) AS failed, \
                 CAST(SUM(conflicts) AS BIGINT) AS conflicts, CAST(SUM(api_calls) AS BIGINT) AS api_calls, \
                 CAST(SUM(rate_limit_waits) AS BIGINT) AS rate_limit_waits, CAST(SUM(rate_limit_wait_ms) AS BIGINT) AS rate_limit_wait_ms \
             FROM sync_runs WHERE started_at >= $1 GROUP BY sync_id ORDER BY sync_id"
        )
        .bind(since)
        .fetch_all(pool)
        .await)?)
    }

    /// Finished runs per sync and outcome (a running run is not counted until it ends, so the
    /// counts only grow).
    pub async fn run_outcomes(&self) -> Result<Vec<OutcomeCount>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, OutcomeCount>(
            "SELECT sync_id, outcome, COUNT(*) AS count FROM sync_runs WHERE outcome <> 'running' GROUP BY sync_id, outcome ORDER BY sync_id, outcome"
        )
        .fetch_all(pool)
        .await
        })?)
    }

    /// The newest run of a sync.
    pub async fn last_run(&self, sync_id: &str) -> Result<Option<RunRow>> {
        Ok(self.runs(sync_id, 1).await?.into_iter().next())
    }

    /// The newest run of every sync that has run, in one query (one index seek per sync).
    pub async fn last_runs(&self) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id IN \
                 (SELECT (SELECT n.id FROM sync_runs n WHERE n.sync_id = s.id ORDER BY n.started_at DESC, n.id DESC LIMIT 1) FROM syncs s)"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?)
    }

    /// Every sync's state.
    pub async fn sync_states(&self) -> Result<Vec<super::SyncStateRow>> {
        let sql = format!("SELECT {} FROM sync_state ORDER BY sync_id", super::engine::STATE_COLUMNS);
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, super::SyncStateRow>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?)
    }

    /// Sets what the initial sync's progress counts towards.
    pub async fn set_progress_total(&self, sync_id: &str, total: Option<i64>) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE sync_state SET progress_total = $2 WHERE sync_id = $1").bind(sync_id).bind(total).execute(pool).await
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("Acme"), "%Acme%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
