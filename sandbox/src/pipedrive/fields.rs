//! Field definitions of deals, persons and organizations, one shape for all three, under API v1
//! (`getDealFields`, `addDealField`, ... : `key`, `name`, v1 pagination) and API v2 (the same
//! operation ids: `field_code`, `field_name`, `subfields`, cursor pagination), and the check of
//! a v2 body's `custom_fields` against them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{DealField, PdData};
use super::listing::{decode_cursor, encode_cursor, list_response, MAX_LIMIT};
use super::{invalid, require_any_scope, Pipedrive};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};

/// The fields in `getDealFields`'s shape, with v1 pagination (all on one page).
fn fields_response(fields: &[DealField]) -> Response {
    let fields: Vec<Value> = fields
        .iter()
        .map(|f| {
            json!({
                "id": f.id, "key": f.key, "name": f.name, "order_nr": f.order_nr, "field_type": f.field_type,
                "add_time": "2024-01-01 09:00:00", "update_time": "2024-01-01 09:00:00",
                "last_updated_by_user_id": null, "created_by_user_id": null,
                "active_flag": true, "edit_flag": f.is_custom, "index_visible_flag": true, "details_visible_flag": true,
                "add_visible_flag": true, "important_flag": false, "bulk_edit_allowed": true, "searchable_flag": false,
                "filtering_allowed": true, "sortable_flag": true, "mandatory_flag": matches!(f.key.as_str(), "title" | "name"),
                "options": f.options,
            })
        })
        .collect();
    Json(json!({
        "success": true,
        "data": fields,
        "additional_data": {"pagination": {"start": 0, "limit": 500, "more_items_in_collection": false}},
    }))
    .into_response()
}

fn list_fields(pd: &Pipedrive, token: &AccessToken, scopes: &[&str], pick: fn(&PdData) -> &[DealField]) -> Response {
    if let Err(r) = require_any_scope(token, scopes) {
        return r;
    }
    fields_response(pick(&pd.read()))
}

/// GET /api/v1/dealFields (`getDealFields`)
pub async fn deal_fields(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    list_fields(&pd, &token, &["deals:read", "deals:full", "deal-fields:full", "admin"], |d| &d.deal_fields)
}

/// GET /api/v1/personFields (`getPersonFields`)
pub async fn person_fields(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    list_fields(&pd, &token, &["contacts:read", "contacts:full", "contact-fields:full", "admin"], |d| &d.person_fields)
}

/// GET /api/v1/organizationFields (`getOrganizationFields`)
pub async fn organization_fields(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>) -> Response {
    list_fields(&pd, &token, &["contacts:read", "contacts:full", "contact-fields:full", "admin"], |d| &d.organization_fields)
}

/// Applies a v2 body's `custom_fields` object to `target`: keys must be custom fields among
/// `defs`, enum values one of the field's option ids, text values strings; `null` clears.
pub fn apply_custom_fields(defs: &[DealField], target: &mut BTreeMap<String, Value>, value: &Value) -> Result<(), Response> {
    let fields = value.as_object().ok_or_else(|| invalid("custom_fields: must be an object"))?;
    for (key, field_value) in fields {
        let Some(def) = defs.iter().find(|f| f.is_custom && &f.key == key) else {
            return Err(invalid(&format!("custom_fields: unknown field {key}")));
        };
        if field_value.is_null() {
            target.remove(key);
            continue;
        }
        match def.field_type.as_str() {
            "enum" if !def.options.iter().flatten().any(|o| o["id"] == *field_value) => {
                return Err(invalid(&format!("custom_fields.{key}: not one of the field's options")));
            }
            "varchar" | "text" | "varchar_auto" | "phone" if !field_value.is_string() => {
                return Err(invalid(&format!("custom_fields.{key}: must be a string")));
            }
            _ => {}
        }
        target.insert(key.clone(), field_value.clone());
    }
    Ok(())
}

type FieldBody = Result<Json<Value>, axum::extract::rejection::JsonRejection>;

/// POST /api/v1/dealFields (`addDealField`): a custom deal field, keyed by a new 40-character
/// hash. Enum and set fields take their options as `[{label}]`; option ids are assigned.
pub async fn add_deal_field(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, body: FieldBody) -> Response {
    add_field(&pd, &token, body, &["deal-fields:full", "admin"], "deal", |d| &mut d.deal_fields, Version::V1)
}

/// POST /api/v1/personFields (`addPersonField`): a custom person field, as for deals.
pub async fn add_person_field(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, body: FieldBody) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "person", |d| &mut d.person_fields, Version::V1)
}

/// POST /api/v1/organizationFields (`addOrganizationField`): a custom organization field.
pub async fn add_organization_field(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: FieldBody,
) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "organization", |d| &mut d.organization_fields, Version::V1)
}

/// The two API versions' shapes of a field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Parses a new field's body (v1: `name`; v2: `field_name`), assigns it an id, a 40-character key
/// and option ids, and adds it to `fields`.
fn add_field(
    pd: &Pipedrive,
    token: &AccessToken,
    body: FieldBody,
    scopes: &[&str],
    what: &str,
    fields: impl Fn(&mut super::data::PdData) -> &mut Vec<DealField>,
    version: Version,
) -> Response {
    if let Err(r) = require_any_scope(token, scopes) {
        return r;
    }
    let body = match super::json_body(body) {
        Ok(body) => body,
        Err(r) => return r,
    };
    const TYPES: [&str; 17] = [
        "address",
        "date",
        "daterange",
        "double",
        "enum",
        "monetary",
        "org",
        "people",
        "phone",
        "set",
        "text",
        "time",
        "timerange",
        "user",
        "varchar",
        "varchar_auto",
        "visible_to",
    ];
    let name_key = if version == Version::V1 { "name" } else { "field_name" };
    let Some(name) = body.get(name_key).and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty() && n.len() <= 255) else {
        return invalid(&format!("{name_key}: is required"));
    };
    // API v2 takes the 16 types its spec lists: all but `visible_to` (the last).
    let types: &[&str] = if version == Version::V1 { &TYPES } else { &TYPES[..16] };
    let Some(field_type) = body.get("field_type").and_then(Value::as_str).filter(|t| types.contains(t)) else {
        return invalid(&format!("field_type: must be one of {}", types.join(", ")));
    };
    let mut data = pd.write();
    let company_id = data.company_id;
    let list = fields(&mut data);
    let id = list.iter().map(|f| f.id).max().unwrap_or(0) + 1;
    let options = if matches!(field_type, "enum" | "set") {
        let Some(given) = body.get("options").and_then(Value::as_array).filter(|o| !o.is_empty()) else {
            return invalid("options: enum and set fields need at least one option");
        };
        let mut options = Vec::new();
        for (i, option) in given.iter().enumerate() {
            let Some(label) = option.get("label").and_then(Value::as_str) else {
                return invalid("options: each option needs a label");
            };
            options.push(json!({"id": id * 1000 + i as u64 + 1, "label": label}));
        }
        Some(options)
    } else {
        None
    };
    let key = {
        use sha2::{Digest, Sha256};
        let seed = if what == "deal" { format!("{company_id}:{id}:{name}") } else { format!("{company_id}:{what}:{id}:{name}") };
        let digest = Sha256::digest(seed.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..40].to_string()
    };
    let order_nr = list.iter().map(|f| f.order_nr).max().unwrap_or(0) + 1;
    let field = DealField { id, key, name: name.to_string(), field_type: field_type.to_string(), options, is_custom: true, order_nr };
    list.push(field.clone());
    drop(data);
    tracing::info!(key = %field.key, name = %field.name, object = what, "field added");
    let one = match version {
        Version::V1 => json!({
            "id": field.id, "key": field.key, "name": field.name, "order_nr": field.order_nr, "field_type": field.field_type,
            "add_time": "2024-01-01 09:00:00", "update_time": "2024-01-01 09:00:00", "active_flag": true, "edit_flag": true,
            "index_visible_flag": true, "details_visible_flag": true, "add_visible_flag": true, "important_flag": false,
            "bulk_edit_allowed": true, "searchable_flag": false, "filtering_allowed": true, "sortable_flag": true,
            "mandatory_flag": false, "options": field.options,
        }),
        Version::V2 => {
            let mut one = v2_field(&field, &Extras::ALL);
            if let Some(description) = body.get("description").and_then(Value::as_str) {
                one["description"] = json!(description);
            }
            one
        }
    };
    Json(json!({"success": true, "data": one})).into_response()
}

// ---- API v2 ----

/// The namespaces `include_fields` adds to each field.
#[derive(Clone, Copy, Default)]
struct Extras {
    ui_visibility: bool,
    important_fields: bool,
    required_fields: bool,
}

impl Extras {
    const ALL: Extras = Extras { ui_visibility: true, important_fields: true, required_fields: true };

    /// `include_fields`: a comma-separated list of `ui_visibility`, `important_fields` and
    /// `required_fields`.
    fn parse(raw: Option<&str>) -> Result<Extras, Response> {
        let mut extras = Extras::default();
        for name in raw.into_iter().flat_map(|r| r.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "ui_visibility" => extras.ui_visibility = true,
                "important_fields" => extras.important_fields = true,
                "required_fields" => extras.required_fields = true,
                other => {
                    return Err(invalid(&format!("include_fields: {other} is not one of ui_visibility, important_fields, required_fields")))
                }
            }
        }
        Ok(extras)
    }
}

/// A field in API v2's shape (`field_code`, `field_name`, `field_type`, `options`, `subfields`,
/// `is_custom_field`, `is_optional_response_field`), with the namespaces `extras` asks for.
fn v2_field(f: &DealField, extras: &Extras) -> Value {
    let subfields = match f.field_type.as_str() {
        "monetary" => {
            let currency = if f.key == "value" { "currency".to_string() } else { format!("{}_currency", f.key) };
            json!([
                {"field_code": f.key, "field_name": format!("Amount of {}", f.name), "field_type": "double"},
                {"field_code": currency, "field_name": format!("Currency of {}", f.name), "field_type": "varchar"},
            ])
        }
        "address" => {
            let parts = [
                ("street_number", "House number"),
                ("route", "Street/road name"),
                ("sublocality", "District/sublocality"),
                ("locality", "City/town/village/locality"),
                ("admin_area_level_1", "State/county"),
                ("admin_area_level_2", "Region"),
                ("country", "Country"),
                ("postal_code", "ZIP/Postal code"),
                ("formatted_address", "Full/combined address"),
            ];
            Value::Array(
                parts
                    .iter()
                    .map(|(code, label)| {
                        json!({"field_code": format!("{}_{code}", f.key), "field_name": format!("{label} of {}", f.name), "field_type": "varchar"})
                    })
                    .collect(),
            )
        }
        _ => Value::Null,
    };
    let mut v = json!({
        "field_name": f.name,
        "field_code": f.key,
        "field_type": f.field_type,
        "options": f.options,
        "subfields": subfields,
        "is_custom_field": f.is_custom,
        "is_optional_response_field": false,
    });
    if extras.ui_visibility {
        v["ui_visibility"] = json!({
            "add_visible_flag": true, "details_visible_flag": true, "projects_detail_visible_flag": false,
            "show_in_pipelines": {"show_in_all": true, "pipeline_ids": []},
        });
    }
    if extras.important_fields {
        v["important_fields"] = json!({"enabled": false, "stage_ids": []});
    }
    if extras.required_fields {
        let required = matches!(f.key.as_str(), "title" | "name");
        v["required_fields"] = json!({"enabled": required, "stage_ids": [], "statuses": {}});
    }
    v
}

/// A v2 field list: by id, `limit` (100 unless given, at most 500) a page, an opaque `cursor`.
fn list_fields_v2(pd: &Pipedrive, token: &AccessToken, raw: Option<&str>, scopes: &[&str], pick: fn(&PdData) -> &[DealField]) -> Response {
    if let Err(r) = require_any_scope(token, scopes) {
        return r;
    }
    let pairs = query_pairs(raw);
    let limit = match query_one(&pairs, "limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return invalid(&format!("limit: must be an integer from 1 to {MAX_LIMIT}")),
    };
    let after = match query_one(&pairs, "cursor") {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some((_, id)) => Some(id),
            None => return invalid("cursor: not a cursor this API returned"),
        },
    };
    let extras = match Extras::parse(query_one(&pairs, "include_fields")) {
        Ok(extras) => extras,
        Err(r) => return r,
    };
    let data = pd.read();
    let mut fields: Vec<&DealField> = pick(&data).iter().filter(|f| after.is_none_or(|a| f.id > a)).collect();
    fields.sort_by_key(|f| f.id);
    let more = fields.len() > limit;
    fields.truncate(limit);
    let next = if more { fields.last().map(|f| encode_cursor("id", (f.id as i64, f.id), false)) } else { None };
    list_response(fields.iter().map(|f| v2_field(f, &extras)).collect(), next)
}

/// GET /api/v2/dealFields (`getDealFields`, v2)
pub async fn deal_fields_v2(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, RawQuery(q): RawQuery) -> Response {
    list_fields_v2(&pd, &token, q.as_deref(), &["deals:read", "deals:full", "deal-fields:full", "admin"], |d| &d.deal_fields)
}

/// GET /api/v2/personFields (`getPersonFields`, v2)
pub async fn person_fields_v2(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    RawQuery(q): RawQuery,
) -> Response {
    list_fields_v2(&pd, &token, q.as_deref(), &["contacts:read", "contacts:full", "contact-fields:full", "admin"], |d| &d.person_fields)
}

/// GET /api/v2/organizationFields (`getOrganizationFields`, v2)
pub async fn organization_fields_v2(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    RawQuery(q): RawQuery,
) -> Response {
    list_fields_v2(&pd, &token, q.as_deref(), &["contacts:read", "contacts:full", "contact-fields:full", "admin"], |d| {
        &d.organization_fields
    })
}

/// POST /api/v2/dealFields (`addDealField`, v2): `field_name`, `field_type`, `options` as `[{label}]`.
pub async fn add_deal_field_v2(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, body: FieldBody) -> Response {
    add_field(&pd, &token, body, &["deal-fields:full", "admin"], "deal", |d| &mut d.deal_fields, Version::V2)
}

/// POST /api/v2/personFields (`addPersonField`, v2)
pub async fn add_person_field_v2(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, body: FieldBody) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "person", |d| &mut d.person_fields, Version::V2)
}

/// POST /api/v2/organizationFields (`addOrganizationField`, v2)
pub async fn add_organization_field_v2(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: FieldBody,
) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "organization", |d| &mut d.organization_fields, Version::V2)
}
