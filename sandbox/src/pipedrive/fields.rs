//! API v1 field definitions (`getDealFields`, `getPersonFields`, `getOrganizationFields`, one
//! shape for all three) and the check of a v2 body's `custom_fields` against them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{DealField, PdData};
use super::{invalid, require_any_scope, Pipedrive};
use crate::oauth::AccessToken;

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
    add_field(&pd, &token, body, &["deal-fields:full", "admin"], "deal", |d| &mut d.deal_fields)
}

/// POST /api/v1/personFields (`addPersonField`): a custom person field, as for deals.
pub async fn add_person_field(State(pd): State<Arc<Pipedrive>>, Extension(token): Extension<AccessToken>, body: FieldBody) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "person", |d| &mut d.person_fields)
}

/// POST /api/v1/organizationFields (`addOrganizationField`): a custom organization field.
pub async fn add_organization_field(
    State(pd): State<Arc<Pipedrive>>,
    Extension(token): Extension<AccessToken>,
    body: FieldBody,
) -> Response {
    add_field(&pd, &token, body, &["contact-fields:full", "admin"], "organization", |d| &mut d.organization_fields)
}

fn add_field(
    pd: &Pipedrive,
    token: &AccessToken,
    body: FieldBody,
    scopes: &[&str],
    what: &str,
    fields: impl Fn(&mut super::data::PdData) -> &mut Vec<DealField>,
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
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty()) else {
        return invalid("name: is required");
    };
    let Some(field_type) = body.get("field_type").and_then(Value::as_str).filter(|t| TYPES.contains(t)) else {
        return invalid(&format!("field_type: must be one of {}", TYPES.join(", ")));
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
    let one = json!({
        "id": field.id, "key": field.key, "name": field.name, "order_nr": field.order_nr, "field_type": field.field_type,
        "add_time": "2024-01-01 09:00:00", "update_time": "2024-01-01 09:00:00", "active_flag": true, "edit_flag": true,
        "index_visible_flag": true, "details_visible_flag": true, "add_visible_flag": true, "important_flag": false,
        "bulk_edit_allowed": true, "searchable_flag": false, "filtering_allowed": true, "sortable_flag": true,
        "mandatory_flag": false, "options": field.options,
    });
    Json(json!({"success": true, "data": one})).into_response()
}
