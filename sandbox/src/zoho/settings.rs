//! Settings: modules, fields (and creating a custom field), layouts, and pipelines with their
//! stages (probability and forecast type, so won and lost are known).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::data::{FieldDef, Module, ZohoData};
use super::listing::{modified_since, not_modified};
use super::seed::layout_id;
use super::values::{invalid_data, record_error};
use super::{
    body_invalid, invalid_module, member_missing, param_invalid, param_missing, param_unsupported, require_scope, zoho_time, JsonBody, Zoho,
};
use crate::oauth::AccessToken;
use crate::query::{query_one, query_pairs};

/// Members the spec requires of a module that the sandbox has nothing for (`null`).
const MODULE_MEMBERS: [&str; 44] = [
    "description",
    "recycle_bin_on_delete",
    "inventory_template_supported",
    "presence_sub_menu",
    "triggers_supported",
    "chart_view",
    "isBlueprintSupported",
    "visibility",
    "emailTemplate_support",
    "email_parser_supported",
    "filter_supported",
    "show_as_tab",
    "web_link",
    "quick_create",
    "feeds_required",
    "scoring_supported",
    "webform_supported",
    "arguments",
    "chart_view_supported",
    "profile_count",
    "business_card_field_limit",
    "track_current_data",
    "modified_by",
    "parent_module",
    "activity_badge",
    "$field_states",
    "business_card_fields",
    "$properties",
    "$on_demand_properties",
    "search_layout_fields",
    "kanban_view_supported",
    "lookup_field_properties",
    "kanban_view",
    "related_lists",
    "filter_status",
    "related_list_properties",
    "display_field",
    "layouts",
    "fields",
    "custom_view",
    "zia_view",
    "default_mapping_fields",
    "layout_associations",
    "per_page",
];

/// Adds each of `members` that `value` lacks, as `null`.
fn with_members(mut value: Value, members: &[&str]) -> Value {
    if let Value::Object(o) = &mut value {
        for m in members {
            o.entry(*m).or_insert(Value::Null);
        }
    }
    value
}

fn module_json(data: &ZohoData, m: Module, sequence: usize) -> Value {
    let module = json!({
        "id": m.id(data.org_id).to_string(), "api_name": m.api_name(), "module_name": m.api_name(),
        "singular_label": m.singular(), "plural_label": m.api_name(), "api_supported": true, "generated_type": "default",
        "creatable": true, "editable": true, "deletable": true, "viewable": true, "convertable": false,
        "global_search_supported": true, "visible": true, "sequence_number": sequence, "status": "visible",
        "profiles": [{"name": "Administrator", "id": (data.org_id * 1_000_000 + 26_011).to_string()}],
        "modified_time": zoho_time(data.module_modified(m)), "modified_by": null, "visibility": 1, "description": null,
        "quick_create": true, "per_page": 200, "show_as_tab": true, "recycle_bin_on_delete": true, "parent_module": {},
        "business_card_fields": [], "related_lists": [], "fields": [], "layouts": [], "search_layout_fields": [],
    });
    with_members(module, &MODULE_MEMBERS)
}

/// GET /crm/v8/settings/modules: with `If-Modified-Since`, only the modules whose fields changed
/// since (304 when none), as Zoho's SDKs ask to refresh their field cache.
pub async fn modules(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, headers: HeaderMap) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("modules"), "READ") {
        return r;
    }
    let since = match modified_since(&headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let data = zoho.read();
    let modules: Vec<Value> = Module::ALL
        .iter()
        .enumerate()
        .filter(|(_, m)| since.is_none_or(|s| data.module_modified(**m) > s))
        .map(|(i, m)| module_json(&data, *m, i + 1))
        .collect();
    if modules.is_empty() {
        return not_modified();
    }
    Json(json!({"modules": modules})).into_response()
}

/// GET /crm/v8/settings/modules/{api_name}: one module (Zoho's SDKs refresh a module's metadata
/// from it).
pub async fn module(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, Path(raw): Path<String>) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("modules"), "READ") {
        return r;
    }
    let Some((i, m)) = Module::ALL.iter().enumerate().find(|(_, m)| m.api_name().eq_ignore_ascii_case(&raw)) else {
        return invalid_module();
    };
    let data = zoho.read();
    Json(json!({"modules": [module_json(&data, *m, i + 1)]})).into_response()
}

fn module_param(pairs: &[(String, String)]) -> Result<Module, Response> {
    let raw = query_one(pairs, "module").ok_or_else(|| param_missing("module"))?;
    Module::parse(raw).ok_or_else(invalid_module)
}

/// Members the spec requires of a field that the sandbox has nothing for (`null`).
const FIELD_MEMBERS: [&str; 52] = [
    "operation_type",
    "webhook",
    "blueprint_supported",
    "virtual_field",
    "customizable_properties",
    "businesscard_supported",
    "available_in_user_layout",
    "display_field",
    "pick_list_values_sorted_lexically",
    "separator",
    "enable_colour_code",
    "type",
    "column_name",
    "display_type",
    "ui_type",
    "colour_code_enabled_by_system",
    "quick_sequence_number",
    "email_parser",
    "rollup_summary",
    "refer_from_field",
    "created_time",
    "modified_time",
    "show_type",
    "category",
    "multi_module_lookup",
    "sharing_properties",
    "currency",
    "file_upolad_optionlist",
    "profiles",
    "view_type",
    "sub_module",
    "subform",
    "external",
    "formula",
    "convert_mapping",
    "multiselectlookup",
    "multiuserlookup",
    "autonumber",
    "auto_number",
    "crypt",
    "tooltip",
    "history_tracking",
    "association_details",
    "allowed_modules",
    "additional_column",
    "hipaa_compliance_enabled",
    "hipaa_compliance",
    "_update_existing_records",
    "number_separator",
    "textarea",
    "static_field",
    "associated_module",
];

/// A picklist value as `GET /settings/fields` gives it; a deal stage with its probability,
/// forecast type and category, and the pipelines holding it (`maps`).
fn picklist_value(data: &ZohoData, f: &FieldDef, i: usize, v: &str) -> Value {
    let id = super::ids::base(data.org_id) + 6_000_000 + (f.id % 10_000) * 100 + i as u64;
    let mut value = json!({
        "display_value": v, "actual_value": v, "sequence_number": i + 1, "id": id.to_string(), "type": "used",
        "colour_code": null,
    });
    if f.api_name == "Stage" {
        let holding: Vec<&super::data::Pipeline> = data.pipelines.iter().filter(|p| p.stages.iter().any(|s| s.name == v)).collect();
        if let Some(stage) = holding.iter().flat_map(|p| p.stages.iter()).find(|s| s.name == v) {
            value["probability"] = json!(stage.probability);
            value["forecast_type"] = json!(stage.forecast_type);
            value["forecast_category"] =
                json!({"name": stage.forecast_category, "id": forecast_category_id(data, &stage.forecast_category).to_string()});
        }
        let pipelines: Vec<Value> = holding
            .iter()
            .map(|p| json!({"display_value": p.name, "actual_value": p.name, "id": p.id.to_string(), "sequence_number": 1, "type": "used", "colour_code": null}))
            .collect();
        value["maps"] = json!([{"api_name": "Pipeline", "pick_list_values": pipelines}]);
    }
    value
}

fn forecast_category_id(data: &ZohoData, category: &str) -> u64 {
    super::ids::base(data.org_id)
        + 4_900_000
        + match category {
            "Pipeline" => 1,
            "Closed" => 2,
            _ => 3,
        }
}

fn field_json(data: &ZohoData, f: &FieldDef, module: Module) -> Value {
    let org_id = data.org_id;
    let json_type = match f.data_type.as_str() {
        "currency" | "double" => "double",
        "integer" | "bigint" => "integer",
        "boolean" => "boolean",
        "lookup" | "ownerlookup" => "jsonobject",
        _ => "string",
    };
    // Picklist values get ids of their own: the field's number, then the value's.
    let picklist: Vec<Value> = f.pick_list_values.iter().enumerate().map(|(i, v)| picklist_value(data, f, i, v)).collect();
    let lookup = match f.lookup {
        Some(target) => json!({
            "module": {"api_name": target.api_name(), "id": target.id(org_id).to_string()}, "display_label": target.singular(),
            "api_name": target.api_name(), "id": null, "query_details": {}, "revalidate_filter_during_edit": false, "show_fields": [],
        }),
        None => json!({}),
    };
    let field = json!({
        "id": f.id.to_string(), "api_name": f.api_name, "field_label": f.field_label, "display_label": f.field_label,
        "data_type": f.data_type, "json_type": json_type, "custom_field": f.custom_field, "system_mandatory": f.system_mandatory,
        "read_only": f.read_only, "field_read_only": f.read_only, "visible": true, "length": f.length, "pick_list_values": picklist,
        "lookup": lookup, "unique": if f.unique { json!({"casesensitive": "false"}) } else { json!({}) },
        "sortable": true, "filterable": true, "searchable": true, "created_source": if f.custom_field { "custom" } else { "default" },
        "mass_update": !f.read_only, "default_value": null, "decimal_place": null,
        "layout_associations": [{"name": "Standard", "id": layout_id(org_id, module).to_string()}],
    });
    with_members(field, &FIELD_MEMBERS)
}

/// GET /crm/v8/settings/fields?module=…
pub async fn fields(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("fields"), "READ") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let module = match module_param(&pairs) {
        Ok(m) => m,
        Err(r) => return r,
    };
    // `type=unused` lists the fields no layout uses: every field here is on the Standard layout.
    let unused = match query_one(&pairs, "type") {
        None | Some("all") => false,
        Some("unused") => true,
        Some(_) => return param_unsupported("type", &["all", "unused"]),
    };
    let data = zoho.read();
    let fields: Vec<Value> = data.fields_of(module).iter().filter(|_| !unused).map(|f| field_json(&data, f, module)).collect();
    Json(json!({"fields": fields})).into_response()
}

const CREATABLE_TYPES: [&str; 10] = ["text", "textarea", "email", "phone", "website", "integer", "double", "currency", "date", "datetime"];

/// The API name Zoho makes of a label: words joined by `_`, other characters dropped.
fn api_name_of(label: &str) -> String {
    label.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join("_")
}

/// POST /crm/v8/settings/fields?module=… (Create Field): a custom field of the types above; 201
/// with its id, after which records take values for it.
pub async fn create_field(
    State(zoho): State<Arc<Zoho>>,
    Extension(token): Extension<AccessToken>,
    RawQuery(query): RawQuery,
    body: JsonBody,
) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("fields"), "CREATE") {
        return r;
    }
    let module = match module_param(&query_pairs(query.as_deref())) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let items = match body.0 {
        Some(Value::Object(mut o)) => match o.remove("fields") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => return member_missing("fields"),
        },
        _ => return body_invalid(),
    };
    let mut data = zoho.write();
    let mut answers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = |f: &str| format!("$.fields[{i}].{f}");
        let Some(label) = item.get("field_label").and_then(Value::as_str).map(str::trim).filter(|l| !l.is_empty()) else {
            answers.push(record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "field_label", "json_path": path("field_label")}),
            ));
            continue;
        };
        let Some(data_type) = item.get("data_type").and_then(Value::as_str) else {
            answers.push(record_error(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "data_type", "json_path": path("data_type")}),
            ));
            continue;
        };
        if !CREATABLE_TYPES.contains(&data_type) {
            answers
                .push(invalid_data(json!({"api_name": "data_type", "json_path": path("data_type"), "supported_values": CREATABLE_TYPES})));
            continue;
        }
        let length = item.get("length").and_then(Value::as_u64).unwrap_or(255).clamp(1, 32_000) as u32;
        let api_name = api_name_of(label);
        if api_name.is_empty()
            || data.field(module, &api_name).is_some()
            || data.fields_of(module).iter().any(|f| f.field_label.eq_ignore_ascii_case(label))
        {
            answers.push(record_error(
                "DUPLICATE_DATA",
                "duplicate data",
                json!({"api_name": "field_label", "json_path": path("field_label")}),
            ));
            continue;
        }
        // Field ids are the organisation's: one past the highest of every module's.
        let id = data.fields.values().flatten().map(|f| f.id).max().unwrap_or(super::ids::base(data.org_id)) + 1;
        data.fields.entry(module).or_default().push(FieldDef {
            id,
            api_name: api_name.clone(),
            field_label: label.to_string(),
            data_type: data_type.to_string(),
            custom_field: true,
            system_mandatory: false,
            read_only: false,
            length,
            pick_list_values: Vec::new(),
            lookup: None,
            unique: false,
        });
        data.modules_modified.insert(module, zoho.now_seconds());
        data.settings_changed();
        tracing::info!(module = module.api_name(), api_name = %api_name, "Zoho sandbox: custom field created");
        answers.push(json!({"code": "SUCCESS", "details": {"id": id.to_string()}, "message": "field created", "status": "success"}));
    }
    let status = if answers.iter().all(|a| a["status"] == "success") { StatusCode::CREATED } else { StatusCode::BAD_REQUEST };
    (status, Json(json!({"fields": answers}))).into_response()
}

/// GET /crm/v8/settings/layouts?module=…: the Standard layout, one section holding every field.
pub async fn layouts(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("layouts"), "READ") {
        return r;
    }
    let module = match module_param(&query_pairs(query.as_deref())) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let data = zoho.read();
    let fields: Vec<Value> = data.fields_of(module).iter().map(|f| field_json(&data, f, module)).collect();
    Json(json!({"layouts": [{
        "id": layout_id(data.org_id, module).to_string(), "name": "Standard", "api_name": "Standard", "display_label": "Standard",
        "status": "active", "visible": true, "source": "crm", "created_time": null, "modified_time": null,
        "profiles": [{"name": "Administrator", "default": true, "id": (data.org_id * 1_000_000 + 26_011).to_string()}],
        "sections": [{"display_label": format!("{} Information", module.singular()), "api_name": format!("{} Information", module.singular()), "sequence_number": 1, "column_count": 2, "fields": fields}],
    }]}))
    .into_response()
}

fn pipeline_json(data: &ZohoData, p: &super::data::Pipeline) -> Value {
    let maps: Vec<Value> = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "display_value": s.name, "actual_value": s.name, "id": s.id.to_string(), "sequence_number": i + 1,
                "forecast_type": s.forecast_type, "probability": s.probability, "colour_code": null,
                "forecast_category": {"name": s.forecast_category, "id": forecast_category_id(data, &s.forecast_category).to_string()},
            })
        })
        .collect();
    json!({"id": p.id.to_string(), "display_value": p.name, "actual_value": p.name, "default": p.default, "child_available": false, "parent": null, "maps": maps})
}

/// GET /crm/v8/settings/pipeline?layout_id=…: the pipelines of the Deals layout.
pub async fn pipelines(State(zoho): State<Arc<Zoho>>, Extension(token): Extension<AccessToken>, RawQuery(query): RawQuery) -> Response {
    if let Err(r) = require_scope(&token, "settings", Some("pipeline"), "READ") {
        return r;
    }
    let pairs = query_pairs(query.as_deref());
    let Some(layout) = query_one(&pairs, "layout_id") else { return param_missing("layout_id") };
    let data = zoho.read();
    if layout.parse::<u64>().ok() != Some(layout_id(data.org_id, Module::Deals)) {
        return param_invalid("layout_id", "invalid data");
    }
    let list: Vec<Value> = data.pipelines.iter().map(|p| pipeline_json(&data, p)).collect();
    Json(json!({"pipeline": list})).into_response()
}
