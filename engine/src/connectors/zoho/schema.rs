//! Zoho CRM's schema as the sync setup reads it: each module's fields with their kinds and
//! picklist options, the deal pipelines of the Deals layouts with their stages (won or lost by
//! forecast type), and how many deals sit in each stage.

use serde::Deserialize;
use serde_json::Value;

use model::apps::ObjectKind;

use super::{module, records, TANDEM_FIELD};
use crate::connectors::http::{Api, ApiError, Category};

#[derive(Deserialize)]
struct FieldsJson {
    #[serde(default)]
    fields: Vec<FieldJson>,
}

#[derive(Deserialize)]
struct FieldJson {
    api_name: String,
    field_label: String,
    data_type: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    field_read_only: bool,
    #[serde(default)]
    custom_field: bool,
    #[serde(default)]
    pick_list_values: Vec<PicklistJson>,
}

#[derive(Deserialize)]
struct PicklistJson {
    display_value: String,
    actual_value: String,
}

#[derive(Deserialize)]
struct LayoutsJson {
    #[serde(default)]
    layouts: Vec<IdJson>,
}

#[derive(Deserialize)]
struct IdJson {
    id: String,
}

#[derive(Deserialize)]
struct PipelinesJson {
    #[serde(default)]
    pipeline: Vec<PipelineJson>,
}

#[derive(Deserialize)]
struct PipelineJson {
    actual_value: String,
    display_value: String,
    #[serde(default)]
    maps: Vec<StageJson>,
}

#[derive(Deserialize)]
struct StageJson {
    actual_value: String,
    display_value: String,
    forecast_type: Option<String>,
}

/// Fields the stage grid and the associations handle, never mapped as fields.
const NOT_MAPPABLE: [&str; 3] = ["Pipeline", "Stage", "id"];

/// The fields of a module's records (`GET /crm/v8/settings/fields?module=`).
async fn fields(api: &Api, object: ObjectKind) -> Result<Vec<FieldJson>, ApiError> {
    let answer = api.get("/crm/v8/settings/fields", &[("module", module(object).to_string())]).await?;
    if answer.is_null() {
        return Ok(Vec::new());
    }
    let fields: FieldsJson = serde_json::from_value(answer)
        .map_err(|e| ApiError::new(Category::Provider, Some(200), format!("Zoho CRM answered its fields unreadably: {e}")))?;
    Ok(fields.fields)
}

/// The fields of `object` with their kinds and picklist options, and for deals the pipelines of
/// the Deals layouts with their stages, each stage won or lost by its forecast type
/// (`GET /crm/v8/settings/layouts?module=Deals`, `GET /crm/v8/settings/pipeline?layout_id=`).
pub async fn schema(api: &Api, object: ObjectKind) -> Result<model::sync::SideSchema, ApiError> {
    use model::sync::{FieldInfo, FieldKind, FieldOption, Outcome, PipelineInfo, SideSchema, StageInfo};
    let mut pipelines: Vec<PipelineInfo> = Vec::new();
    if object == ObjectKind::Deal {
        let layouts: LayoutsJson = api.get_json("/crm/v8/settings/layouts", &[("module", "Deals".to_string())]).await?;
        for layout in layouts.layouts {
            let answer = api.get("/crm/v8/settings/pipeline", &[("layout_id", layout.id)]).await?;
            let list: PipelinesJson = if answer.is_null() {
                PipelinesJson { pipeline: Vec::new() }
            } else {
                serde_json::from_value(answer)
                    .map_err(|e| ApiError::new(Category::Provider, Some(200), format!("Zoho CRM answered its pipelines unreadably: {e}")))?
            };
            for p in list.pipeline {
                let id = records::pipeline_key(&p.actual_value);
                if pipelines.iter().any(|known| known.id == id) {
                    continue;
                }
                let stages = p
                    .maps
                    .into_iter()
                    .map(|s| StageInfo {
                        closed: match s.forecast_type.as_deref() {
                            Some("Closed Won") => Some(Outcome::Won),
                            Some("Closed Lost") => Some(Outcome::Lost),
                            _ => None,
                        },
                        id: s.actual_value,
                        name: s.display_value,
                    })
                    .collect();
                pipelines.push(PipelineInfo { id, name: p.display_value, stages });
            }
        }
    }
    let fields = fields(api, object)
        .await?
        .into_iter()
        .filter(|f| !NOT_MAPPABLE.contains(&f.api_name.as_str()) && f.field_label != TANDEM_FIELD)
        .filter_map(|f| {
            let kind = match f.data_type.as_str() {
                "ownerlookup" if f.api_name == "Owner" => FieldKind::Owner,
                "text" | "textarea" | "email" | "phone" | "website" | "autonumber" => FieldKind::Text,
                "currency" | "double" | "integer" | "bigint" | "decimal" | "percent" => FieldKind::Number,
                "date" => FieldKind::Date,
                "picklist" => FieldKind::Enum,
                "boolean" => FieldKind::Bool,
                // Lookups are links (the associations); other users, times and lists are not mapped.
                _ => return None,
            };
            let options = f
                .pick_list_values
                .into_iter()
                .filter(|o| o.actual_value != "-None-")
                .map(|o| FieldOption { value: o.actual_value, label: o.display_value })
                .collect();
            Some(FieldInfo {
                read_only: f.read_only || f.field_read_only,
                custom: f.custom_field,
                key: f.api_name,
                label: f.field_label,
                kind,
                options,
            })
        })
        .collect();
    Ok(SideSchema { pipelines, fields })
}

/// How many deals of `pipeline` sit in each of `stages`: one Record Count a stage
/// (`GET /crm/v8/Deals/actions/count?criteria=`), each through the connection's limiter.
pub async fn count_deals_in_stages(api: &Api, pipeline: &str, stages: &[String]) -> Result<Vec<(String, u64)>, ApiError> {
    let pipeline = records::pipeline_name(pipeline);
    let mut counts = Vec::new();
    for stage in stages {
        let criteria =
            format!("((Pipeline:equals:{})and(Stage:equals:{}))", records::criteria_value(&pipeline), records::criteria_value(stage));
        let answer = api.get("/crm/v8/Deals/actions/count", &[("criteria", criteria)]).await?;
        counts.push((stage.clone(), answer.get("count").and_then(Value::as_u64).unwrap_or(0)));
    }
    Ok(counts)
}
