//! Property definitions (list, get by name, create) and owners (list, get by id).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{HubData, ObjectType, Owner, PropertyDef};
use super::{error, require_scope, HubSpot};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};
use crate::time::iso_ms;

type Reply = Result<Response, Response>;

fn object_type(raw: &str) -> Result<ObjectType, Response> {
    ObjectType::parse(raw)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Unable to infer object type from: {raw}")))
}

/// A property as `Property` in the spec; a deal's `pipeline` and `dealstage` list the portal's
/// pipelines and stages as their options.
fn property_json(data: &HubData, object: ObjectType, p: &PropertyDef) -> Value {
    let options: Vec<Value> = if p.name == "pipeline" && object == ObjectType::Deals {
        data.pipelines
            .iter()
            .map(|pl| json!({"label": pl.label, "value": pl.id, "displayOrder": pl.display_order, "hidden": false}))
            .collect()
    } else if p.name == "dealstage" && object == ObjectType::Deals {
        data.pipelines
            .iter()
            .flat_map(|pl| pl.stages.iter())
            .map(|s| json!({"label": s.label, "value": s.id, "displayOrder": s.display_order, "hidden": false}))
            .collect()
    } else {
        p.options.iter().map(|o| json!({"label": o.label, "value": o.value, "displayOrder": o.display_order, "hidden": o.hidden})).collect()
    };
    json!({
        "name": p.name,
        "label": p.label,
        "type": p.kind,
        "fieldType": p.field_type,
        "groupName": p.group_name,
        "description": p.description,
        "options": options,
        "hubspotDefined": p.hubspot_defined,
        "calculated": false,
        "externalOptions": false,
        "hidden": false,
        "formField": !p.read_only,
        "displayOrder": -1,
        "hasUniqueValue": p.unique || p.name == "hs_object_id",
        "createdAt": iso_ms(p.created_at),
        "updatedAt": iso_ms(p.created_at),
        "archived": false,
        "modificationMetadata": {"archivable": !p.hubspot_defined, "readOnlyDefinition": p.hubspot_defined, "readOnlyValue": p.read_only},
    })
}

/// GET /crm/v3/properties/{objectType} (`get-/crm/v3/properties/{objectType}_getAll`); with
/// `archived=true` the archived ones, of which the sandbox keeps none.
pub async fn list(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
) -> Reply {
    let object = object_type(&raw)?;
    require_scope(&token, &object.scope(false))?;
    let archived = query_one(&query_pairs(query.as_deref()), "archived") == Some("true");
    let data = hubspot.read();
    let results: Vec<Value> = if archived {
        Vec::new()
    } else {
        data.properties.get(&object).into_iter().flatten().map(|p| property_json(&data, object, p)).collect()
    };
    Ok(Json(json!({ "results": results })).into_response())
}

/// GET /crm/v3/properties/{objectType}/{propertyName}
/// (`get-/crm/v3/properties/{objectType}/{propertyName}_getByName`): 404 for an unknown name.
pub async fn get_one(
    State(hubspot): State<Arc<HubSpot>>,
    Path((raw, name)): Path<(String, String)>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
) -> Reply {
    let object = object_type(&raw)?;
    require_scope(&token, &object.scope(false))?;
    let archived = query_one(&query_pairs(query.as_deref()), "archived") == Some("true");
    let data = hubspot.read();
    match data.property(object, &name).filter(|_| !archived) {
        Some(p) => Ok(Json(property_json(&data, object, p)).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unable to find property {name} for object type {}", object.name()),
        )),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyCreate {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    field_type: String,
    group_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    options: Vec<Value>,
    #[serde(default)]
    has_unique_value: bool,
}

/// POST /crm/v3/properties/{objectType} (`post-/crm/v3/properties/{objectType}_create`): 201.
pub async fn create(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    body: Result<Json<PropertyCreate>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let object = object_type(&raw)?;
    require_scope(&token, &format!("crm.schemas.{}.write", object.name()))?;
    let Json(input) = body.map_err(|e| error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("Invalid input JSON: {e}")))?;
    const KINDS: [&str; 7] = ["bool", "date", "datetime", "enumeration", "number", "phone_number", "string"];
    let name_ok = !input.name.is_empty() && input.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok || !KINDS.contains(&input.kind.as_str()) {
        return Err(error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "name must be lowercase letters, digits and _; type must be one of bool, date, datetime, enumeration, number, phone_number, string"));
    }
    let mut data = hubspot.write();
    if data.property(object, &input.name).is_some() {
        return Err(error(StatusCode::CONFLICT, "OBJECT_ALREADY_EXISTS", format!("Property named '{}' already exists.", input.name)));
    }
    let options = input
        .options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            Some(super::data::PropertyOption {
                label: o.get("label")?.as_str()?.to_string(),
                value: o.get("value")?.as_str()?.to_string(),
                display_order: o.get("displayOrder").and_then(Value::as_i64).unwrap_or(i as i64) as i32,
                hidden: o.get("hidden").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect();
    let def = PropertyDef {
        name: input.name,
        label: input.label,
        kind: input.kind,
        field_type: input.field_type,
        group_name: input.group_name,
        description: input.description,
        options,
        hubspot_defined: false,
        read_only: false,
        unique: input.has_unique_value,
        created_at: crate::time::now_ms(),
    };
    let out = property_json(&data, object, &def);
    data.properties.entry(object).or_default().push(def);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

fn owners_scope(token: &AccessToken) -> Result<(), Response> {
    if token.grant.scopes.iter().any(|s| s == "automation") {
        return Ok(());
    }
    require_scope(token, "crm.objects.owners.read")
}

fn owner_json(o: &Owner) -> Value {
    json!({
        "id": o.id, "email": o.email, "firstName": o.first_name, "lastName": o.last_name,
        "userId": o.user_id, "userIdIncludingInactive": o.user_id, "type": "PERSON",
        "createdAt": iso_ms(0), "updatedAt": iso_ms(0), "archived": false, "teams": [],
    })
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// GET /crm/v3/owners (`get-/crm/v3/owners_/crm/v3/owners`): `email`, `limit` (default 100,
/// at most 500), `after` and `archived` (the sandbox keeps no archived owners).
pub async fn owners(State(hubspot): State<Arc<HubSpot>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Reply {
    owners_scope(&token)?;
    let q = query_pairs(query.as_deref());
    let limit = match query_one(&q, "limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => return Err(bad("limit must be a whole number from 1 to 500")),
    };
    let after = match query_one(&q, "after").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(bad("after must be a paging cursor returned by a previous page")),
    };
    let archived = query_one(&q, "archived") == Some("true");
    let email = query_one(&q, "email");
    let data = hubspot.read();
    let matching: Vec<&Owner> = data.owners.iter().filter(|o| !archived && email.is_none_or(|e| o.email.eq_ignore_ascii_case(e))).collect();
    let results: Vec<Value> = matching.iter().skip(after).take(limit).map(|o| owner_json(o)).collect();
    let mut body = json!({ "results": results });
    if matching.len() > after + limit {
        let next = (after + limit).to_string();
        body["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    Ok(Json(body).into_response())
}

/// GET /crm/v3/owners/{ownerId} (`get-/crm/v3/owners/{ownerId}_getById`): by owner id, or by
/// user id with `idProperty=userId`; 404 when there is none.
pub async fn owner(
    State(hubspot): State<Arc<HubSpot>>,
    Path(raw): Path<String>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
) -> Reply {
    owners_scope(&token)?;
    let q = query_pairs(query.as_deref());
    let id: u64 = raw.parse().map_err(|_| bad(format!("ownerId must be an integer, got {raw}")))?;
    let by_user = match query_one(&q, "idProperty") {
        None | Some("id") => false,
        Some("userId") => true,
        Some(other) => return Err(bad(format!("idProperty must be one of id, userId; got {other}"))),
    };
    let archived = query_one(&q, "archived") == Some("true");
    let data = hubspot.read();
    let found = data.owners.iter().filter(|_| !archived).find(|o| if by_user { o.user_id == id } else { o.id == raw });
    match found {
        Some(o) => Ok(Json(owner_json(o)).into_response()),
        None => {
            Err(error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", format!("No owner with {} {id}", if by_user { "userId" } else { "id" })))
        }
    }
}
