//! Users and the organisation: Get Users (`type`, `ids`, `If-Modified-Since`), the users' count,
//! Get User and Get Organization.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{User, ZohoData, ORG_CREATED};
use super::listing::{modified_since, not_modified};
use super::paging::Paging;
use super::{param_invalid, param_unsupported, path_id_invalid, require_scope, Zoho};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};

fn user_json(data: &ZohoData, u: &User) -> Value {
    let b = super::ids::base(data.org_id);
    json!({
        "id": u.id.to_string(), "first_name": u.first_name, "last_name": u.last_name, "full_name": u.full_name(), "email": u.email,
        "status": if u.active { "active" } else { "disabled" }, "confirm": true,
        "role": {"name": u.role, "id": (b + 2_000_000 + if u.role == "CEO" { 1 } else { 2 }).to_string()},
        "profile": {"name": u.profile, "id": (b + 2_100_000 + if u.profile == "Administrator" { 1 } else { 2 }).to_string()},
        "time_zone": "Etc/UTC", "locale": "en_US", "language": "en_US", "country_locale": "en_US", "zuid": (u.id % 100_000_000).to_string(),
        "created_time": "2024-01-01T09:00:00+00:00", "Modified_Time": "2024-01-01T09:00:00+00:00",
    })
}

const USER_TYPES: [&str; 5] = ["AllUsers", "ActiveUsers", "DeactiveUsers", "AdminUsers", "CurrentUser"];

/// The users `type` (and `ids`) of a call keep.
fn users_kept<'a>(data: &'a ZohoData, pairs: &[(String, String)], me: &str) -> Result<Vec<&'a User>, Response> {
    let kind = query_one(pairs, "type").unwrap_or("AllUsers");
    if !USER_TYPES.contains(&kind) {
        return Err(param_unsupported("type", &USER_TYPES));
    }
    let ids: Option<Vec<u64>> = match query_one(pairs, "ids").map(|s| s.split(',').map(|i| i.trim().parse::<u64>()).collect()) {
        None => None,
        Some(Ok(ids)) => Some(ids),
        Some(Err(_)) => return Err(param_invalid("ids", "the id given seems to be invalid")),
    };
    let keep = |u: &User| match kind {
        "ActiveUsers" => u.active,
        "DeactiveUsers" => !u.active,
        "AdminUsers" => u.profile == "Administrator",
        "CurrentUser" => u.email.eq_ignore_ascii_case(me),
        _ => true,
    };
    Ok(data.users.iter().filter(|u| keep(u) && ids.as_ref().is_none_or(|ids| ids.contains(&u.id))).collect())
}

/// GET /crm/v8/users?type=AllUsers|ActiveUsers|DeactiveUsers|AdminUsers|CurrentUser, `ids`, and
/// `If-Modified-Since` (304 when no user changed since; the sandbox's users never change after the
/// organisation's creation). Zoho's SDKs ask for `CurrentUser` right after a token is issued.
pub async fn users(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = require_scope(&token, "users", None, "READ") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let paging = match Paging::parse(&pairs, "DISCRETE_PAGINATION_LIMIT_EXCEEDED") {
        Ok(p) => p,
        Err(r) => return r,
    };
    let since = match modified_since(&headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let data = zoho.read();
    let all = match users_kept(&data, &pairs, &token.grant.user_email) {
        Ok(all) => all,
        Err(r) => return r,
    };
    if since.is_some_and(|s| ORG_CREATED <= s) {
        return not_modified();
    }
    let (page, more) = paging.slice(&all);
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let shown: Vec<Value> = page.iter().map(|u| user_json(&data, u)).collect();
    Json(json!({"users": shown, "info": paging.info(shown.len(), more)})).into_response()
}

/// GET /crm/v8/users/actions/count: `{"count": N}` of the users `type` keeps.
pub async fn users_count(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "users", None, "READ") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let data = zoho.read();
    match users_kept(&data, &pairs, &token.grant.user_email) {
        Ok(all) => Json(json!({"count": all.len()})).into_response(),
        Err(r) => r,
    }
}

/// GET /crm/v8/users/{id}: 204 when there is no such user.
pub async fn user(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "users", None, "READ") {
        return r;
    }
    let Ok(id) = raw.parse::<u64>() else { return path_id_invalid() };
    let data = zoho.read();
    match data.user(id) {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(u) => Json(json!({"users": [user_json(&data, u)]})).into_response(),
    }
}

/// GET /crm/v8/org
pub async fn org(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>) -> Response {
    if let Err(r) = require_scope(&token, "org", None, "READ") {
        return r;
    }
    let data = zoho.read();
    let admin = data.users.first();
    Json(json!({"org": [{
        "id": data.org_id.to_string(), "company_name": data.company_name, "domain_name": format!("org{}", data.org_id),
        "primary_email": admin.map(|u| u.email.clone()), "primary_zuid": admin.map(|u| (u.id % 100_000_000).to_string()),
        "zgid": data.org_id.to_string(), "time_zone": "Etc/UTC", "iso_code": "USD", "currency_symbol": "$", "currency_locale": "en_US",
        "country_code": "US", "country": "United States", "type": "production", "mc_status": false, "gapps_enabled": false,
        "privacy_settings": true, "hipaa_compliance_enabled": false, "lite_users_enabled": false,
        "license_details": {"paid": true, "paid_type": "enterprise", "users_license_purchased": data.users.len(), "trial_type": null, "trial_expiry": null, "paid_expiry": null},
    }]}))
    .into_response()
}
