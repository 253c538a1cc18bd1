//! API v2 list paging shared by deals, persons and organizations: `limit` (at most 500), an opaque
//! `cursor`, `sort_by` (`id`, `update_time`, `add_time`), `sort_direction`, `updated_since` and
//! `updated_until` (RFC 3339), `ids` and integer filters such as `owner_id`.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::response::Response;
use serde::Serialize;
use base64::Engine as _;
use serde_json::{json, Value};

use super::invalid;
use crate::cache::Versioned;
use crate::hubspot::{query_one, query_pairs};
use crate::time::parse_rfc3339;

pub const MAX_LIMIT: usize = 500;

/// What a v2 list sorts and filters records by.
pub trait Record {
    fn id(&self) -> u64;
    fn add_time(&self) -> i64;
    fn update_time(&self) -> i64;
}

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
        Some(s) => parse_rfc3339(s)
            .map(Some)
            .ok_or_else(|| invalid(&format!("{name}: must be an RFC 3339 date-time, e.g. 2025-01-01T10:20:00Z"))),
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
    pub fn keeps<T: Record>(&self, record: &T, matches: impl Fn(&str, u64) -> bool) -> bool {
        self.since.is_none_or(|t| record.update_time() >= t)
            && self.until.is_none_or(|t| record.update_time() < t)
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&record.id()))
            && self.filters.iter().all(|(name, v)| matches(name, *v))
    }

    fn key<T: Record>(&self, record: &T) -> (i64, u64) {
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
    /// and the next cursor. Sorted by id (the default), it walks the map from the cursor, so the
    /// work follows the page, not the store; other sorts select the page from the matching records.
    pub fn page<'a, T: Record>(&self, all: &'a BTreeMap<u64, T>, keep: impl Fn(&T) -> bool) -> (Vec<&'a T>, Option<String>) {
        let limit = self.limit;
        let by_id_cursor = match self.after {
            None => Some(None),
            Some((value, id)) if value == id as i64 => Some(Some(id)),
            Some(_) => None,
        };
        let mut page: Vec<&T> = match (self.sort_by, by_id_cursor) {
            ("id", Some(from)) => {
                let kept = |r: &&T| keep(r);
                match (self.descending, from) {
                    (false, None) => all.values().filter(kept).take(limit + 1).collect(),
                    (false, Some(id)) => all.range((Bound::Excluded(id), Bound::Unbounded)).map(|(_, r)| r).filter(kept).take(limit + 1).collect(),
                    (true, None) => all.values().rev().filter(kept).take(limit + 1).collect(),
                    (true, Some(id)) => all.range(..id).rev().map(|(_, r)| r).filter(kept).take(limit + 1).collect(),
                }
            }
            _ => {
                let mut matching: Vec<((i64, u64), &T)> =
                    all.values().filter(|r| keep(r)).map(|r| (self.key(r), r)).filter(|(k, _)| self.after_cursor(*k)).collect();
                let order = |a: &((i64, u64), &T), b: &((i64, u64), &T)| if self.descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
                if matching.len() > limit + 1 {
                    matching.select_nth_unstable_by(limit, order);
                    matching.truncate(limit + 1);
                }
                matching.sort_unstable_by(order);
                matching.into_iter().map(|(_, r)| r).collect()
            }
        };
        let more = page.len() > limit;
        page.truncate(limit);
        let next = more.then(|| page.last().map(|r| encode_cursor(self.sort_by, self.key(*r), self.descending))).flatten();
        (page, next)
    }
}

impl ListQuery {
    /// As [`ListQuery::page`]; lists sorted by a time keep their matching records' order between
    /// pages (per `object` and query, for one `version` of the data), so paging through a long
    /// list sorts it once, not once a page.
    pub fn page_cached<'a, T: Record>(
        &self,
        object: &str,
        all: &'a BTreeMap<u64, T>,
        keep: impl Fn(&T) -> bool,
        cache: &Versioned<Vec<(i64, u64)>>,
        version: u64,
    ) -> (Vec<&'a T>, Option<String>) {
        if self.sort_by == "id" {
            return self.page(all, keep);
        }
        let mut asked: Vec<&(String, String)> = self.pairs.iter().filter(|(k, _)| k != "cursor" && k != "limit").collect();
        asked.sort();
        let key = format!("{object}?{asked:?}");
        let keys = cache.get_or(key, version, || {
            let mut keys: Vec<(i64, u64)> = all.values().filter(|r| keep(r)).map(|r| self.key(r)).collect();
            keys.sort_unstable();
            if self.descending {
                keys.reverse();
            }
            keys
        });
        let start = keys.partition_point(|k| !self.after_cursor(*k));
        let mut page: Vec<&T> = keys[start..].iter().take(self.limit + 1).filter_map(|(_, id)| all.get(id)).collect();
        let more = page.len() > self.limit;
        page.truncate(self.limit);
        let next = more.then(|| page.last().map(|r| encode_cursor(self.sort_by, self.key(*r), self.descending))).flatten();
        (page, next)
    }
}

fn encode_cursor(field: &str, (value, id): (i64, u64), descending: bool) -> String {
    let direction = if descending { "desc" } else { "asc" };
    let raw = json!({"field": field, "fieldValue": value, "sortDirection": direction, "id": id}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Option<(i64, u64)> {
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

/// A single-record answer: `{success, data}`.
#[derive(Serialize)]
pub struct Data<T> {
    pub success: bool,
    pub data: T,
}

/// A v2 list answer: `{success, data, additional_data: {next_cursor}}`.
pub fn list_response<T: Serialize>(items: Vec<T>, next_cursor: Option<String>) -> Response {
    crate::json::ok(&ListBody { success: true, data: items, additional_data: Additional { next_cursor } })
}
