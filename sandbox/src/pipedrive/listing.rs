//! API v2 list paging shared by deals, persons and organizations: `limit` (at most 500), an opaque
//! `cursor`, `sort_by` (`id`, `update_time`, `add_time`), `sort_direction`, `updated_since` and
//! `updated_until` (RFC 3339), `ids` and integer filters such as `owner_id`.

use std::ops::Bound;

use axum::response::Response;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use super::invalid;
use crate::query::{query_one, query_pairs};
use crate::table::{Row, Table, TimeOrder};
use crate::time::parse_rfc3339;

pub const MAX_LIMIT: usize = 500;

/// The parsed query of a v2 list call.
pub struct ListQuery {
    pairs: Vec<(String, String)>,
    pub limit: usize,
    pub sort_by: &'static str,
    pub descending: bool,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub ids: Option<Vec<u64>>,
    /// The integer filters given, among those the operation knows.
    pub filters: Vec<(&'static str, u64)>,
    after: Option<(i64, u64)>,
}

fn time_param(pairs: &[(String, String)], name: &str) -> Result<Option<i64>, Response> {
    match query_one(pairs, name) {
        None => Ok(None),
        Some(s) => {
            parse_rfc3339(s).map(Some).ok_or_else(|| invalid(&format!("{name}: must be an RFC 3339 date-time, e.g. 2025-01-01T10:20:00Z")))
        }
    }
}

impl ListQuery {
    /// Parses and checks the query; `filter_names` are the integer filters the operation takes.
    pub fn parse(raw: Option<&str>, filter_names: &[&'static str]) -> Result<ListQuery, Response> {
        let pairs = query_pairs(raw);
        let limit = match query_one(&pairs, "limit").map(str::parse::<usize>) {
            None => 100,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => return Err(invalid(&format!("limit: must be an integer from 1 to {MAX_LIMIT}"))),
        };
        let sort_by = match query_one(&pairs, "sort_by").unwrap_or("id") {
            "id" => "id",
            "update_time" => "update_time",
            "add_time" => "add_time",
            _ => return Err(invalid("sort_by: must be one of id, update_time, add_time")),
        };
        let descending = match query_one(&pairs, "sort_direction").unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            _ => return Err(invalid("sort_direction: must be asc or desc")),
        };
        let mut filters = Vec::new();
        for name in filter_names {
            if let Some(v) = query_one(&pairs, name) {
                let v = v.parse::<u64>().map_err(|_| invalid(&format!("{name}: must be an integer")))?;
                filters.push((*name, v));
            }
        }
        let since = time_param(&pairs, "updated_since")?;
        let until = time_param(&pairs, "updated_until")?;
        let ids = query_one(&pairs, "ids").map(|s| s.split(',').filter_map(|i| i.trim().parse().ok()).collect());
        let after = match query_one(&pairs, "cursor") {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| invalid("cursor: not a cursor this API returned"))?),
        };
        Ok(ListQuery { pairs, limit, sort_by, descending, since, until, ids, filters, after })
    }

    /// A query parameter by name.
    pub fn get(&self, name: &str) -> Option<&str> {
        query_one(&self.pairs, name)
    }

    /// Whether `record` passes the time window, `ids` and the filters (`matches(name, value)`
    /// tells whether the record passes the filter `name=value`).
    pub fn keeps<T: Row>(&self, record: &T, matches: impl Fn(&str, u64) -> bool) -> bool {
        self.since.is_none_or(|t| record.update_time() >= t)
            && self.until.is_none_or(|t| record.update_time() < t)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&record.id()))
            && self.filters.iter().all(|(name, v)| matches(name, *v))
    }

    fn key<T: Row>(&self, record: &T) -> (i64, u64) {
        let value = match self.sort_by {
            "update_time" => record.update_time(),
            "add_time" => record.add_time(),
            _ => record.id() as i64,
        };
        (value, record.id())
    }

    /// Whether `key` comes after the cursor in the asked order.
    fn after_cursor(&self, key: (i64, u64)) -> bool {
        match self.after {
            None => true,
            Some(after) if self.descending => key < after,
            Some(after) => key > after,
        }
    }

    /// The page after the cursor of the records in `all` that `keep` keeps, in the asked order,
    /// and the next cursor. It walks the records in that order from the cursor (by id, or by the
    /// table's time order; from `updated_since` when sorted by update time), so the work follows
    /// the page, not the store.
    pub fn page<'a, T: Row>(&self, all: &'a Table<T>, keep: impl Fn(&T) -> bool) -> (Vec<&'a T>, Option<String>) {
        let take = self.limit + 1;
        let kept = |r: &&T| keep(r);
        let mut page: Vec<&T> = match self.sort_by {
            "id" => {
                // Sorted by id the key is (id, id); a cursor from another order still compares.
                let from = self.after.map(|(value, _)| value.max(0) as u64);
                let after = |r: &&T| self.after_cursor((r.id() as i64, r.id()));
                match (self.descending, from) {
                    (false, None) => all.values().filter(kept).take(take).collect(),
                    (false, Some(id)) => all.range(id..).map(|(_, r)| r).skip_while(|r| !after(r)).filter(kept).take(take).collect(),
                    (true, None) => all.values().rev().filter(kept).take(take).collect(),
                    (true, Some(id)) => all.range(..=id).rev().map(|(_, r)| r).skip_while(|r| !after(r)).filter(kept).take(take).collect(),
                }
            }
            sort => {
                let order = if sort == "update_time" { TimeOrder::Update } else { TimeOrder::Add };
                // The time window bounds the walk when the order is by update time.
                let (since, until) = if order == TimeOrder::Update { (self.since, self.until) } else { (None, None) };
                let keys = all.by(order);
                let record = |(_, id): &(i64, u64)| all.get(id);
                if self.descending {
                    let upper = match (self.after, until) {
                        (Some(after), Some(t)) if (t, 0) <= after => Bound::Excluded((t, 0)),
                        (Some(after), _) => Bound::Excluded(after),
                        (None, Some(t)) => Bound::Excluded((t, 0)),
                        (None, None) => Bound::Unbounded,
                    };
                    keys.range((Bound::Unbounded, upper))
                        .rev()
                        .take_while(|(t, _)| since.is_none_or(|s| *t >= s))
                        .filter_map(record)
                        .filter(kept)
                        .take(take)
                        .collect()
                } else {
                    let lower = match (self.after, since) {
                        (Some(after), Some(s)) if after < (s, 0) => Bound::Included((s, 0)),
                        (Some(after), _) => Bound::Excluded(after),
                        (None, Some(s)) => Bound::Included((s, 0)),
                        (None, None) => Bound::Unbounded,
                    };
                    keys.range((lower, Bound::Unbounded))
                        .take_while(|(t, _)| until.is_none_or(|u| *t < u))
                        .filter_map(record)
                        .filter(kept)
                        .take(take)
                        .collect()
                }
            }
        };
        let more = page.len() > self.limit;
        page.truncate(self.limit);
        let next = more.then(|| page.last().map(|r| encode_cursor(self.sort_by, self.key(*r), self.descending))).flatten();
        (page, next)
    }
}

pub(super) fn encode_cursor(field: &str, (value, id): (i64, u64), descending: bool) -> String {
    let direction = if descending { "desc" } else { "asc" };
    let raw = json!({"field": field, "fieldValue": value, "sortDirection": direction, "id": id}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(super) fn decode_cursor(cursor: &str) -> Option<(i64, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some((v["fieldValue"].as_i64()?, v["id"].as_u64()?))
}

/// A v2 list answer: `{success, data, additional_data: {next_cursor}}`.
#[derive(Serialize)]
struct ListBody<T> {
    success: bool,
    data: Vec<T>,
    additional_data: Additional,
}

#[derive(Serialize)]
struct Additional {
    next_cursor: Option<String>,
}

/// A v2 list answer: `{success, data, additional_data: {next_cursor}}`.
pub fn list_response<T: Serialize>(items: Vec<T>, next_cursor: Option<String>) -> Response {
    crate::json::ok(&ListBody { success: true, data: items, additional_data: Additional { next_cursor } })
}

/// A v2 list answer whose records `write` writes (see [`crate::json::Object`]).
pub fn list_written<T>(items: &[&T], write: impl Fn(&T, &mut Vec<u8>), next_cursor: Option<String>) -> Response {
    // About 700 bytes a deal, person or organization.
    let mut out = Vec::with_capacity(256 + items.len() * 768);
    out.extend_from_slice(b"{\"success\":true,\"data\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, &mut out);
    }
    out.extend_from_slice(b"],\"additional_data\":{\"next_cursor\":");
    match &next_cursor {
        Some(cursor) => crate::json::write_str(&mut out, cursor),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
    crate::json::ok_written(out)
}

/// A single-record answer, `{success, data}`, whose record `write` writes.
pub fn data_written<T>(item: &T, write: impl Fn(&T, &mut Vec<u8>)) -> Response {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"success\":true,\"data\":");
    write(item, &mut out);
    out.push(b'}');
    crate::json::ok_written(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipedrive::data::Deal;
    use crate::time::iso_seconds;

    /// Every page of `query` (without `cursor`), following the cursors.
    fn all_pages(table: &Table<Deal>, query: &str) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let raw = match &cursor {
                None => query.to_string(),
                Some(c) => format!("{query}&cursor={c}"),
            };
            let q = ListQuery::parse(Some(&raw), &[]).unwrap_or_else(|_| panic!("{raw}"));
            let (page, next) = q.page(table, |d| !d.is_deleted && q.keeps(d, |_, _| false));
            assert!(page.len() <= q.limit);
            ids.extend(page.iter().map(|d| d.id));
            assert!(ids.len() <= table.len(), "{query}: the pages repeat records");
            match next {
                Some(c) => cursor = Some(c),
                None => return ids,
            }
        }
    }

    #[test]
    fn walking_the_time_orders_pages_exactly_as_sorting_every_record_would() {
        // 300 deals whose times collide often, some deleted.
        let mut state = 17u64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let base = 1_700_000_000_000_i64;
        let mut table = Table::default();
        for id in 1..=300u64 {
            let mut deal = Deal::new(id * 3, 1, base + next(40) as i64 * 1000);
            deal.update_time = deal.add_time + next(60) as i64 * 1000;
            deal.is_deleted = next(10) == 0;
            table.insert(deal.id, deal);
        }
        let mut checked = 0;
        for sort in ["id", "update_time", "add_time"] {
            for direction in ["asc", "desc"] {
                for (since, until) in [(None, None), (Some(20), None), (None, Some(50)), (Some(10), Some(45)), (Some(200), None)] {
                    for limit in [1, 7, 100, 500] {
                        let mut query = format!("limit={limit}&sort_by={sort}&sort_direction={direction}");
                        if let Some(s) = since {
                            query += &format!("&updated_since={}", iso_seconds(base + s * 1000));
                        }
                        if let Some(u) = until {
                            query += &format!("&updated_until={}", iso_seconds(base + u * 1000));
                        }
                        let mut expected: Vec<&Deal> = table
                            .values()
                            .filter(|d| !d.is_deleted)
                            .filter(|d| since.is_none_or(|s| d.update_time >= base + s * 1000))
                            .filter(|d| until.is_none_or(|u| d.update_time < base + u * 1000))
                            .collect();
                        expected.sort_by_key(|d| match sort {
                            "update_time" => (d.update_time, d.id),
                            "add_time" => (d.add_time, d.id),
                            _ => (d.id as i64, d.id),
                        });
                        if direction == "desc" {
                            expected.reverse();
                        }
                        let expected: Vec<u64> = expected.into_iter().map(|d| d.id).collect();
                        assert_eq!(all_pages(&table, &query), expected, "{query}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 120);
    }
}
