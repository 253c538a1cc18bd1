//! One API budget per provider account, shared by every instance through the database: the
//! provider's window as its answers state it, the share of it Tandem may use, the calls sent in
//! each tenth of a second, a pause after a 429, and the calls of the day.

use super::{on_pool, Db, Result, Store};
use crate::clock::DAY_MS;

/// A tenth of a second: the calls of all instances are counted per slot of this length.
pub const SLOT_MS: i64 = 100;
/// Slots older than this are dropped (no provider window is longer than a minute).
const KEEP_MS: i64 = 60_000;
/// The share of an account's limit Tandem uses unless an admin sets another.
pub const DEFAULT_SHARE: i64 = 80;

/// What the store holds of one account's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Budget {
    /// Percent of the provider's limit Tandem may use.
    pub share: i64,
    /// At most `window_max` calls per `window_ms` (0: no window known, the limits are off).
    pub window_max: i64,
    pub window_ms: i64,
    pub paused_until: i64,
}

impl Budget {
    /// Whether each call must take its turn in the store: a window applies or a pause lasts.
    pub fn governed(&self, now: i64) -> bool {
        self.window_max > 0 || self.paused_until > now
    }

    /// The calls Tandem may send per window: the share of the provider's, at least one.
    pub fn allowed(&self) -> i64 {
        model::apps::share_of(self.window_max, self.share)
    }
}

/// Calls sent in one slot (Unix ms / [`SLOT_MS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Slot {
    pub slot: i64,
    pub calls: i64,
    pub searches: i64,
}

/// Whether a call may go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Sent and counted; `governed` says whether the next call must ask again.
    Go { governed: bool },
    /// Not before this time (Unix ms).
    WaitUntil(i64),
}

/// The first slot a window of `window_ms` ending at `now` counts: every slot that overlaps it
/// (a call counted up to a tenth of a second longer than the provider counts it, never shorter).
fn first_slot(now: i64, window_ms: i64) -> i64 {
    (now - window_ms).div_euclid(SLOT_MS)
}

/// When the calls counted in `slots` (oldest first) fall under `allowed` for a window of
/// `window_ms`: once enough of the oldest slots have left it. `count` picks what is counted.
fn wait_for_room(slots: &[Slot], allowed: i64, window_ms: i64, count: impl Fn(&Slot) -> i64) -> Option<i64> {
    let mut left: i64 = slots.iter().map(&count).sum();
    if left < allowed {
        return None;
    }
    for s in slots {
        left -= count(s);
        if left < allowed {
            return Some((s.slot + 1) * SLOT_MS + window_ms);
        }
    }
    // Unreachable with `allowed` ≥ 1; wait a whole window to be safe.
    Some(slots.last().map_or(0, |s| s.slot + 1) * SLOT_MS + window_ms)
}

/// Whether a call may go at `now`, given the budget and the calls counted in the last window
/// (`slots`, oldest first, those from [`first_slot`] of the longer of the window and a second).
/// A search also keeps under `search_per_second` (its share, at least one).
pub fn decide(budget: &Budget, slots: &[Slot], now: i64, search: bool, search_per_second: i64) -> Turn {
    if budget.paused_until > now {
        return Turn::WaitUntil(budget.paused_until);
    }
    if budget.window_max <= 0 {
        return Turn::Go { governed: false };
    }
    let from = first_slot(now, budget.window_ms);
    let in_window: Vec<Slot> = slots.iter().filter(|s| s.slot >= from).copied().collect();
    let mut until = wait_for_room(&in_window, budget.allowed(), budget.window_ms, |s| s.calls);
    if search && search_per_second > 0 {
        let from = first_slot(now, 1_000);
        let last_second: Vec<Slot> = slots.iter().filter(|s| s.slot >= from).copied().collect();
        let allowed = model::apps::share_of(search_per_second, budget.share);
        until = until.max(wait_for_room(&last_second, allowed, 1_000, |s| s.searches));
    }
    match until {
        Some(t) => Turn::WaitUntil(t),
        None => Turn::Go { governed: true },
    }
}

/// An account's use of its budget, for its connection's page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub budget: Budget,
    /// Calls Tandem sent in the window now ending (all instances).
    pub window_calls: i64,
    /// Calls Tandem sent today (UTC).
    pub day_calls: i64,
}

const ENSURE: &str = "INSERT INTO api_budgets (connection_id) VALUES ($1) ON CONFLICT (connection_id) DO NOTHING";
const READ_SQLITE: &str = "SELECT c.api_share AS share, b.window_max, b.window_ms, b.paused_until \
     FROM api_budgets b JOIN connections c ON c.id = b.connection_id WHERE b.connection_id = $1";
/// Postgres: the budget's row is locked until the call is counted, so instances take turns.
const READ_POSTGRES: &str = "SELECT c.api_share AS share, b.window_max, b.window_ms, b.paused_until \
     FROM api_budgets b JOIN connections c ON c.id = b.connection_id WHERE b.connection_id = $1 FOR UPDATE OF b";
const SLOTS: &str = "SELECT slot, calls, searches FROM api_calls WHERE connection_id = $1 AND slot >= $2 ORDER BY slot";
const COUNT_SLOT: &str = "INSERT INTO api_calls (connection_id, slot, calls, searches) VALUES ($1, $2, 1, $3) \
     ON CONFLICT (connection_id, slot) DO UPDATE SET calls = api_calls.calls + 1, searches = api_calls.searches + excluded.searches";
const COUNT_DAY: &str = "UPDATE api_budgets SET day_calls = CASE WHEN day = $2 THEN day_calls + $3 ELSE $3 END, day = $2 \
     WHERE connection_id = $1";
const PRUNE: &str = "DELETE FROM api_calls WHERE connection_id = $1 AND slot < $2";

impl Store {
    /// Takes one call's turn from a connection's budget at `now` (Unix ms): counted when it may
    /// go, else the time to ask again. On SQLite the first statement writes, so the transaction
    /// holds the write lock from its start; on Postgres the budget's row is locked.
    pub async fn take_call(&self, connection_id: &str, now: i64, search: bool, search_per_second: i64) -> Result<Turn> {
        let read = match self.db {
            Db::Sqlite(_) => READ_SQLITE,
            Db::Postgres(_) => READ_POSTGRES,
        };
        macro_rules! take {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(ENSURE).bind(connection_id).execute(&mut *tx).await?;
                // The insert above fails for a connection that does not exist (its foreign key).
                let budget: Budget = sqlx::query_as(read).bind(connection_id).fetch_one(&mut *tx).await?;
                let from = first_slot(now, budget.window_ms.max(1_000));
                let slots: Vec<Slot> = if budget.window_max > 0 {
                    sqlx::query_as(SLOTS).bind(connection_id).bind(from).fetch_all(&mut *tx).await?
                } else {
                    Vec::new()
                };
                let turn = decide(&budget, &slots, now, search, search_per_second);
                if let Turn::Go { .. } = turn {
                    // Counted in its slot even with no window known yet: the call that teaches
                    // the window is in it.
                    sqlx::query(COUNT_SLOT)
                        .bind(connection_id)
                        .bind(now.div_euclid(SLOT_MS))
                        .bind(i64::from(search))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(PRUNE).bind(connection_id).bind((now - KEEP_MS).div_euclid(SLOT_MS)).execute(&mut *tx).await?;
                    sqlx::query(COUNT_DAY).bind(connection_id).bind(now.div_euclid(DAY_MS)).bind(1_i64).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(turn)
            }};
        }
        Ok(on_pool!(self, |pool| take!(pool))?)
    }

    /// Adds `calls` sent without taking turns (no window applies) to today's, and answers the
    /// budget as it stands (another instance may have learned a window, or paused the account).
    pub async fn count_calls(&self, connection_id: &str, now: i64, calls: i64) -> Result<Budget> {
        macro_rules! count {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(ENSURE).bind(connection_id).execute(&mut *tx).await?;
                sqlx::query(COUNT_DAY).bind(connection_id).bind(now.div_euclid(DAY_MS)).bind(calls).execute(&mut *tx).await?;
                let budget: Budget = sqlx::query_as(READ_SQLITE).bind(connection_id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(budget)
            }};
        }
        Ok(on_pool!(self, |pool| count!(pool))?)
    }

    /// Records the window a provider's answer stated (`max` calls per `window_ms`; 0 for none).
    pub async fn learn_window(&self, connection_id: &str, max: i64, window_ms: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO api_budgets (connection_id, window_max, window_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (connection_id) DO UPDATE SET window_max = excluded.window_max, window_ms = excluded.window_ms"
                )
                .bind(connection_id)
                .bind(max)
                .bind(window_ms)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// No call on the account before `until` (Unix ms), by any instance.
    pub async fn pause_calls(&self, connection_id: &str, until: i64) -> Result<()> {
        on_pool!(
            self,
            exec | pool
                | sqlx::query(
                    "INSERT INTO api_budgets (connection_id, paused_until) VALUES ($1, $2) \
                     ON CONFLICT (connection_id) DO UPDATE SET paused_until = \
                     CASE WHEN api_budgets.paused_until > excluded.paused_until THEN api_budgets.paused_until ELSE excluded.paused_until END"
                )
                .bind(connection_id)
                .bind(until)
                .execute(pool)
                .await
        )?;
        Ok(())
    }

    /// The budget of a connection and what Tandem used of it, at `now`; `None` when there is no
    /// such connection.
    pub async fn api_usage(&self, connection_id: &str, now: i64) -> Result<Option<Usage>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            share: i64,
            window_max: i64,
            window_ms: i64,
            paused_until: i64,
            day: i64,
            day_calls: i64,
        }
        let row: Option<Row> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT c.api_share AS share, COALESCE(b.window_max, 0) AS window_max, COALESCE(b.window_ms, 0) AS window_ms, \
                    COALESCE(b.paused_until, 0) AS paused_until, COALESCE(b.day, 0) AS day, COALESCE(b.day_calls, 0) AS day_calls \
             FROM connections c LEFT JOIN api_budgets b ON b.connection_id = c.id WHERE c.id = $1"
        )
        .bind(connection_id)
        .fetch_optional(pool)
        .await)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let budget = Budget { share: row.share, window_max: row.window_max, window_ms: row.window_ms, paused_until: row.paused_until };
        let window_calls = if budget.window_max > 0 {
            let (sum,): (Option<i64>,) = on_pool!(self, |pool| sqlx::query_as(
                "SELECT CAST(SUM(calls) AS BIGINT) FROM api_calls WHERE connection_id = $1 AND slot >= $2"
            )
            .bind(connection_id)
            .bind(first_slot(now, budget.window_ms))
            .fetch_one(pool)
            .await)?;
            sum.unwrap_or(0)
        } else {
            0
        };
        let day_calls = if row.day == now.div_euclid(DAY_MS) { row.day_calls } else { 0 };
        Ok(Some(Usage { budget, window_calls, day_calls }))
    }

    /// Sets the share of a connection's limit Tandem may use (percent, 1 to 100); false when
    /// there is no such connection.
    pub async fn set_api_share(&self, connection_id: &str, share: i64) -> Result<bool> {
        let n = on_pool!(
            self,
            exec | pool
                | sqlx::query("UPDATE connections SET api_share = $2 WHERE id = $1")
                    .bind(connection_id)
                    .bind(share.clamp(1, 100))
                    .execute(pool)
                    .await
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: i64, share: i64) -> Budget {
        Budget { share, window_max: max, window_ms: 10_000, paused_until: 0 }
    }

    fn slot(slot: i64, calls: i64, searches: i64) -> Slot {
        Slot { slot, calls, searches }
    }

    #[test]
    fn a_call_waits_once_the_share_of_the_window_is_spent_until_the_oldest_slot_leaves_it() {
        let now = 1_000_000;
        // 110 a window at 80 %: 88 calls.
        let b = budget(110, 80);
        assert_eq!(b.allowed(), 88);
        let slots = [slot(9_900, 40, 0), slot(9_950, 47, 0)];
        assert_eq!(decide(&b, &slots, now, false, 5), Turn::Go { governed: true });
        let full = [slot(9_900, 40, 0), slot(9_950, 48, 0)];
        // The oldest slot (9,900: 990,000–990,100 ms) leaves the window at 1,000,100.
        assert_eq!(decide(&b, &full, now, false, 5), Turn::WaitUntil(1_000_100));
        // The whole window at 100 %.
        assert_eq!(decide(&budget(110, 100), &full, now, false, 5), Turn::Go { governed: true });
        // Slots older than the window do not count.
        assert_eq!(decide(&b, &[slot(9_899, 500, 0), slot(9_950, 10, 0)], now, false, 5), Turn::Go { governed: true });
    }

    #[test]
    fn searches_keep_to_their_share_of_five_a_second() {
        let now = 1_000_000;
        let b = budget(110, 80);
        // 80 % of 5 a second: 4.
        let slots = [slot(9_991, 2, 2), slot(9_995, 2, 2)];
        assert_eq!(decide(&b, &slots, now, false, 5), Turn::Go { governed: true });
        assert_eq!(decide(&b, &slots, now, true, 5), Turn::WaitUntil((9_991 + 1) * SLOT_MS + 1_000));
        // A search a second earlier has left the second.
        assert_eq!(decide(&b, &[slot(9_989, 4, 4)], now, true, 5), Turn::Go { governed: true });
    }

    #[test]
    fn a_pause_holds_every_call_and_no_window_lets_them_go_uncounted() {
        let paused = Budget { paused_until: 1_002_000, ..budget(110, 80) };
        assert_eq!(decide(&paused, &[], 1_000_000, false, 5), Turn::WaitUntil(1_002_000));
        assert!(paused.governed(1_000_000));
        let off = Budget { window_max: 0, ..budget(0, 80) };
        assert_eq!(decide(&off, &[], 1_000_000, true, 5), Turn::Go { governed: false });
        assert!(!off.governed(1_000_000));
        let paused_off = Budget { paused_until: 1_002_000, ..off };
        assert_eq!(decide(&paused_off, &[], 1_000_000, false, 5), Turn::WaitUntil(1_002_000));
        // A tiny limit still lets one call a window through.
        assert_eq!(budget(1, 10).allowed(), 1);
    }
}
