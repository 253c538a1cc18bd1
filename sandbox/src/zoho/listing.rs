//! `GET /crm/v8/{module}` (Get Records) and `GET /crm/v8/{module}/deleted`: `fields` (required),
//! `per_page` (at most 200), `page` (up to the 2,000th record; further only with `page_token`),
//! `sort_by` (`id`, `Created_Time`, `Modified_Time`), `sort_order`, `ids`, and the
//! `If-Modified-Since` header (304 when nothing changed since). An empty list answers 204.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::data::{Module, Record};
use super::paging::Paging;
use super::render::data_answer;
use super::values::user_ref;
use super::{module_for, param_invalid, param_missing, param_unsupported, zoho_time, Zoho};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};
use crate::table::{Table, TimeOrder};
use crate::time::DAY_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortBy {
    Id,
    CreatedTime,
    ModifiedTime,
}

impl SortBy {
    fn parse(s: &str) -> Option<SortBy> {
        match s {
            "id" => Some(SortBy::Id),
            "Created_Time" => Some(SortBy::CreatedTime),
            "Modified_Time" => Some(SortBy::ModifiedTime),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::CreatedTime => "Created_Time",
            SortBy::ModifiedTime => "Modified_Time",
        }
    }

    fn key(self, r: &Record) -> (i64, u64) {
        match self {
            SortBy::Id => (r.id as i64, r.id),
            SortBy::CreatedTime => (r.created_time, r.id),
            SortBy::ModifiedTime => (r.modified_time, r.id),
        }
    }
}

/// What a page token carries: the list it continues and where.
#[derive(Serialize, Deserialize)]
struct PageToken {
    module: Module,
    sort_by: SortBy,
    desc: bool,
    since: Option<i64>,
    after: (i64, u64),
    page: u32,
    expires: i64,
}

fn encode(token: &PageToken) -> String {
    let raw = serde_json::to_vec(token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode(s: &str) -> Option<PageToken> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// The records of `table` in the asked order after `after`, those `keep` keeps, from the
/// `skip`th, `take` of them. Modified since `since` reads only the records modified since (the
/// table's modification-time index); otherwise the walk starts at the cursor.
#[allow(clippy::too_many_arguments)]
pub fn walk(
    table: &Table<Record>,
    by: SortBy,
    desc: bool,
    since: Option<i64>,
    after: Option<(i64, u64)>,
    skip: usize,
    take: usize,
    keep: impl Fn(&Record) -> bool,
) -> Vec<&Record> {
    let past = |r: &Record| is_past(by, desc, after, r);
    let record = |(_, id): &(i64, u64)| table.get(id);
    if let Some(since) = since {
        let mut changed: Vec<&Record> = table
            .by(TimeOrder::Update)
            .range((Bound::Excluded((since, u64::MAX)), Bound::Unbounded))
            .filter_map(record)
            .filter(|r| keep(r) && past(r))
            .collect();
        changed.sort_by_key(|r| by.key(r));
        if desc {
            changed.reverse();
        }
        return changed.into_iter().skip(skip).take(take).collect();
    }
    let kept = |r: &&Record| keep(r) && past(r);
    match by {
        SortBy::Id => {
            let from = after.map(|(_, id)| id);
            match (desc, from) {
                (false, None) => table.values().filter(kept).skip(skip).take(take).collect(),
                (false, Some(id)) => {
                    table.range((Bound::Excluded(id), Bound::Unbounded)).map(|(_, r)| r).filter(kept).skip(skip).take(take).collect()
                }
                (true, None) => table.values().rev().filter(kept).skip(skip).take(take).collect(),
                (true, Some(id)) => table.range(..id).rev().map(|(_, r)| r).filter(kept).skip(skip).take(take).collect(),
            }
        }
        SortBy::CreatedTime | SortBy::ModifiedTime => {
            let keys = table.by(if by == SortBy::CreatedTime { TimeOrder::Add } else { TimeOrder::Update });
            match (desc, after) {
                (false, None) => keys.iter().filter_map(record).filter(kept).skip(skip).take(take).collect(),
                (false, Some(a)) => {
                    keys.range((Bound::Excluded(a), Bound::Unbounded)).filter_map(record).filter(kept).skip(skip).take(take).collect()
                }
                (true, None) => keys.iter().rev().filter_map(record).filter(kept).skip(skip).take(take).collect(),
                (true, Some(a)) => keys.range(..a).rev().filter_map(record).filter(kept).skip(skip).take(take).collect(),
            }
        }
    }
}

/// The records of `ids`, each looked up by its id, in the asked order and paged as [`walk`]
/// pages. (They were found by reading the whole table and asking each record whether its id
/// was one of them: at 100,000 deals, a read of the 100 records a batch had just written took
/// longer than the write.)
#[allow(clippy::too_many_arguments)]
fn by_ids<'t>(
    table: &'t Table<Record>,
    ids: &[u64],
    by: SortBy,
    desc: bool,
    since: Option<i64>,
    after: Option<(i64, u64)>,
    skip: usize,
    take: usize,
) -> Vec<&'t Record> {
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    let mut rows: Vec<&Record> = unique
        .iter()
        .filter_map(|id| table.get(id))
        .filter(|r| since.is_none_or(|since| r.modified_time > since))
        .filter(|r| is_past(by, desc, after, r))
        .collect();
    rows.sort_by_key(|r| by.key(r));
    if desc {
        rows.reverse();
    }
    rows.into_iter().skip(skip).take(take).collect()
}

/// Whether `r` comes after the cursor `after` in the asked order.
fn is_past(by: SortBy, desc: bool, after: Option<(i64, u64)>, r: &Record) -> bool {
    match after {
        None => true,
        Some(a) if desc => by.key(r) < a,
        Some(a) => by.key(r) > a,
    }
}

/// The `If-Modified-Since` header as Unix ms.
pub fn modified_since(headers: &HeaderMap) -> Result<Option<i64>, Response> {
    match headers.get("if-modified-since").map(|v| v.to_str().ok().and_then(crate::time::parse_rfc3339)) {
        None => Ok(None),
        Some(Some(t)) => Ok(Some(t)),
        Some(None) => {
            Err(param_invalid("If-Modified-Since", "If-Modified-Since must be an ISO 8601 date-time, e.g. 2026-12-06T10:15:30+00:00"))
        }
    }
}

pub fn not_modified() -> Response {
    StatusCode::NOT_MODIFIED.into_response()
}

/// The `fields` of a call, split.
pub fn field_list(pairs: &[(String, String)]) -> Option<Vec<String>> {
    query_one(pairs, "fields")
        .map(|f| f.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .filter(|f: &Vec<String>| !f.is_empty())
}

/// GET /crm/v8/{module} (Get Records)
pub async fn list(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let module = match module_for(&raw, &token, "READ") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let Some(fields) = field_list(&pairs) else { return param_missing("fields") };
    let paging = match Paging::parse(&pairs, "DISCRETE_PAGINATION_LIMIT_EXCEEDED") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let per_page = paging.take();
    let now = zoho.clock.now();
    let (by, desc, since, after, page, skip) = match query_one(&pairs, "page_token") {
        Some(raw_token) => {
            let Some(t) = decode(raw_token).filter(|t| t.module == module) else {
                return param_invalid("page_token", "invalid page token");
            };
            if t.expires <= now {
                return param_invalid("page_token", "page token expired");
            }
            (t.sort_by, t.desc, t.since, Some(t.after), t.page, 0)
        }
        None => {
            let Some(by) = SortBy::parse(query_one(&pairs, "sort_by").unwrap_or("id")) else {
                return param_unsupported("sort_by", &["id", "Created_Time", "Modified_Time"]);
            };
            let desc = match query_one(&pairs, "sort_order").unwrap_or("desc") {
                "asc" => false,
                "desc" => true,
                _ => return param_unsupported("sort_order", &["asc", "desc"]),
            };
            let since = match modified_since(&headers) {
                Ok(s) => s,
                Err(r) => return r,
            };
            (by, desc, since, None, paging.page, paging.skip())
        }
    };
    let ids: Option<Vec<u64>> = match query_one(&pairs, "ids").map(|s| s.split(',').map(|i| i.trim().parse::<u64>()).collect()) {
        None => None,
        Some(Ok(ids)) => Some(ids),
        Some(Err(_)) => return param_invalid("ids", "the id given seems to be invalid"),
    };
    let data = zoho.read();
    let table = data.table(module);
    let mut rows = match &ids {
        Some(ids) => by_ids(table, ids, by, desc, since, after, skip, per_page + 1),
        None => walk(table, by, desc, since, after, skip, per_page + 1, |_| true),
    };
    let more = rows.len() > per_page;
    rows.truncate(per_page);
    if rows.is_empty() {
        // 304 only when nothing changed at all: the first page of the changes is empty.
        let first_page = after.is_none() && skip == 0;
        return if since.is_some() && first_page { not_modified() } else { StatusCode::NO_CONTENT.into_response() };
    }
    let next = more.then(|| {
        let last = rows.last().map(|r| by.key(r)).unwrap_or_default();
        let expires = now + DAY_MS;
        (encode(&PageToken { module, sort_by: by, desc, since, after: last, page: page.saturating_add(1), expires }), expires)
    });
    let info = json!({
        "per_page": paging.per_page,
        "count": rows.len(),
        "page": page,
        "sort_by": by.name(),
        "sort_order": if desc { "desc" } else { "asc" },
        "more_records": more,
        "next_page_token": next.as_ref().map(|(t, _)| t),
        "previous_page_token": query_one(&pairs, "page_token"),
        "page_token_expiry": next.as_ref().map(|(_, e)| zoho_time(*e)),
    });
    data_answer(&data, module, Some(&fields), rows.into_iter(), Some(&info))
}

/// GET /crm/v8/{module}/deleted (Get Deleted Records): `type` `all` (default), `recycle` or
/// `permanent`; newest deletion first.
pub async fn deleted(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let module = match module_for(&raw, &token, "READ") {
        Ok(m) => m,
        Err(r) => return r,
    };
    let pairs = query_pairs(query.as_deref());
    let paging = match Paging::parse(&pairs, "DISCRETE_PAGINATION_LIMIT_EXCEEDED") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let kind = query_one(&pairs, "type").unwrap_or("all");
    if !matches!(kind, "all" | "recycle" | "permanent") {
        return param_unsupported("type", &["all", "recycle", "permanent"]);
    }
    let since = match modified_since(&headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let data = zoho.read();
    // Records are only ever moved to the recycle bin here; none are deleted permanently.
    let mut all: Vec<_> = match (kind, data.deleted.get(&module)) {
        ("permanent", _) | (_, None) => Vec::new(),
        (_, Some(bin)) => bin.values().filter(|d| since.is_none_or(|s| d.deleted_time > s)).collect(),
    };
    if all.is_empty() {
        return if since.is_some() { not_modified() } else { StatusCode::NO_CONTENT.into_response() };
    }
    all.sort_by_key(|d| std::cmp::Reverse((d.deleted_time, d.record.id)));
    let (page, more) = paging.slice(&all);
    let rows: Vec<Value> = page
        .iter()
        .map(|d| {
            json!({
                "deleted_by": user_ref(&data, d.deleted_by, false),
                "id": d.record.id.to_string(),
                "display_name": d.display_name,
                "type": "recycle",
                "created_by": user_ref(&data, d.record.created_by, false),
                "deleted_time": zoho_time(d.deleted_time),
            })
        })
        .collect();
    if rows.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(json!({"data": rows, "info": paging.info(rows.len(), more)})).into_response()
}
