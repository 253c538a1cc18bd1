//! HubSpot's deal pipelines and their stages over HTTP, against `v3/pipelines.json` (each test
//! names the operations it covers by their `operationId`).

#[path = "support/hubspot.rs"]
mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_error, start};

const PARTNER: &str = "75e28846-ad0d-4be2-a027-5e1da6590b98";

fn labels(stages: &Value) -> Vec<String> {
    stages.as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap().to_string()).collect()
}

/// `get-/crm/v3/pipelines/{objectType}/{pipelineId}_getById`,
/// `get-/crm/v3/pipelines/{objectType}/{pipelineId}/stages_getAll` and
/// `get-/crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}_getById`: the seeded
/// pipelines as `Pipeline` and `PipelineStage`, 404 in HubSpot's error shape for unknown ids.
#[tokio::test]
async fn a_pipeline_and_its_stages_are_read_by_id() {
    let s = start().await;
    let token = s.mint(&["crm.objects.deals.read"]).await;
    let got = s.call(Method::GET, &format!("/crm/v3/pipelines/deals/{PARTNER}"), &token, None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        (got.body["id"].as_str(), got.body["label"].as_str(), got.body["displayOrder"].as_i64()),
        (Some(PARTNER), Some("Partner Deals"), Some(1))
    );
    assert_eq!(got.body["archived"], false);
    assert!(got.body["createdAt"].as_str().unwrap().ends_with('Z') && got.body["updatedAt"].is_string());
    assert_eq!(labels(&got.body["stages"]), ["Intro Call", "Demo Done", "Proposal Sent", "In Negotiation", "Won", "Lost"]);

    // By type id too.
    let stages = s.call(Method::GET, &format!("/crm/v3/pipelines/0-3/{PARTNER}/stages"), &token, None).await;
    assert_eq!(stages.status, 200);
    assert_eq!(stages.body["results"], got.body["stages"]);

    let won = s.call(Method::GET, &format!("/crm/v3/pipelines/deals/{PARTNER}/stages/1294825"), &token, None).await;
    assert_eq!(won.status, 200);
    assert_eq!(
        (won.body["id"].as_str(), won.body["label"].as_str(), won.body["displayOrder"].as_i64()),
        (Some("1294825"), Some("Won"), Some(4))
    );
    assert_eq!(won.body["metadata"], json!({"probability": "1.0", "isClosed": "true"}));
    for required in ["createdAt", "updatedAt", "archived"] {
        assert!(!won.body[required].is_null(), "{required} is required by PipelineStage");
    }

    assert_error(&s.call(Method::GET, "/crm/v3/pipelines/deals/no-such-pipeline", &token, None).await, 404, "OBJECT_NOT_FOUND");
    assert_error(&s.call(Method::GET, "/crm/v3/pipelines/deals/no-such-pipeline/stages", &token, None).await, 404, "OBJECT_NOT_FOUND");
    // A stage of the other pipeline is not one of this one's.
    assert_error(&s.call(Method::GET, "/crm/v3/pipelines/deals/default/stages/1294825", &token, None).await, 404, "OBJECT_NOT_FOUND");
    let other = s.mint(&["crm.objects.companies.read"]).await;
    assert_error(&s.call(Method::GET, "/crm/v3/pipelines/deals/default", &other, None).await, 403, "MISSING_SCOPES");
    s.running.stop().await;
}

/// `patch-/crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}_update`,
/// `put-..._replace` and `delete-..._archive` on a pipeline made with
/// `post-/crm/v3/pipelines/{objectType}_create` and `post-.../stages_create`.
#[tokio::test]
async fn stages_are_updated_replaced_and_archived() {
    let s = start().await;
    let token = s.token().await;
    let body = json!({"label": "Synced", "displayOrder": 3, "stages": [
        {"label": "New", "displayOrder": 0, "metadata": {"probability": "0.1"}},
        {"label": "Won", "displayOrder": 1, "metadata": {"probability": "1.0", "isClosed": "true"}},
    ]});
    let created = s.call(Method::POST, "/crm/v3/pipelines/deals", &token, Some(body)).await;
    assert_eq!(created.status, 201);
    let pipeline = created.body["id"].as_str().unwrap().to_string();
    let (new, won) =
        (created.body["stages"][0]["id"].as_str().unwrap().to_string(), created.body["stages"][1]["id"].as_str().unwrap().to_string());
    let stage_path = |id: &str| format!("/crm/v3/pipelines/deals/{pipeline}/stages/{id}");

    // PATCH changes what it names; metadata is required by PipelineStagePatchInput.
    let patched =
        s.call(Method::PATCH, &stage_path(&new), &token, Some(json!({"label": "Qualified", "metadata": {"probability": "0.2"}}))).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        (patched.body["id"].as_str(), patched.body["label"].as_str(), patched.body["displayOrder"].as_i64()),
        (Some(new.as_str()), Some("Qualified"), Some(0))
    );
    assert_eq!(patched.body["metadata"], json!({"probability": "0.2", "isClosed": "false"}));
    assert!(patched.body["updatedAt"].as_str() >= created.body["stages"][0]["updatedAt"].as_str());
    assert_error(&s.call(Method::PATCH, &stage_path(&new), &token, Some(json!({"label": "Renamed"}))).await, 400, "VALIDATION_ERROR");
    assert_error(
        &s.call(Method::PATCH, &stage_path(&new), &token, Some(json!({"label": "won", "metadata": {}}))).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &s.call(Method::PATCH, &stage_path(&new), &token, Some(json!({"metadata": {"probability": "1.5"}}))).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(&s.call(Method::PATCH, &stage_path("nope"), &token, Some(json!({"metadata": {}}))).await, 404, "OBJECT_NOT_FOUND");

    // PUT replaces the whole stage and keeps its id; everything PipelineStageReplaceInput requires must come.
    let replaced = s
        .call(
            Method::PUT,
            &stage_path(&won),
            &token,
            Some(json!({"label": "Closed Won", "displayOrder": 5, "metadata": {"probability": "1.0", "isClosed": "true"}})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        (replaced.body["id"].as_str(), replaced.body["label"].as_str(), replaced.body["displayOrder"].as_i64()),
        (Some(won.as_str()), Some("Closed Won"), Some(5))
    );
    assert_eq!(replaced.body["createdAt"], created.body["stages"][1]["createdAt"]);
    assert_error(
        &s.call(Method::PUT, &stage_path(&won), &token, Some(json!({"label": "No order", "metadata": {"probability": "1.0"}}))).await,
        400,
        "VALIDATION_ERROR",
    );
    assert_error(
        &s.call(Method::PUT, &stage_path(&won), &token, Some(json!({"label": "No metadata", "displayOrder": 1}))).await,
        400,
        "VALIDATION_ERROR",
    );
    let got = s.call(Method::GET, &stage_path(&won), &token, None).await;
    assert_eq!(got.body, replaced.body, "what PUT answered is what is stored");

    // A stage holding a deal is refused when asked to validate references; otherwise archived (204).
    s.create(&token, "deals", json!({"dealname": "In the new stage", "pipeline": pipeline, "dealstage": new})).await;
    let refused = s.call(Method::DELETE, &format!("{}?validateReferencesBeforeDelete=true", stage_path(&new)), &token, None).await;
    assert_error(&refused, 409, "CONFLICT");
    let gone = s.call(Method::DELETE, &stage_path(&new), &token, None).await;
    assert_eq!((gone.status, gone.body.clone()), (204, Value::Null));
    assert_error(&s.call(Method::GET, &stage_path(&new), &token, None).await, 404, "OBJECT_NOT_FOUND");
    let listed = s.call(Method::GET, &format!("/crm/v3/pipelines/deals/{pipeline}/stages"), &token, None).await;
    assert_eq!(labels(&listed.body["results"]), ["Closed Won"]);
    // The last stage stays: a pipeline needs one.
    assert_error(&s.call(Method::DELETE, &stage_path(&won), &token, None).await, 400, "VALIDATION_ERROR");
    // `"archived": false` brings the archived stage back.
    let restored = s.call(Method::PATCH, &stage_path(&new), &token, Some(json!({"archived": false, "metadata": {}}))).await;
    assert_eq!((restored.status, restored.body["archived"].as_bool()), (200, Some(false)));
    let listed = s.call(Method::GET, &format!("/crm/v3/pipelines/deals/{pipeline}/stages"), &token, None).await;
    assert_eq!(labels(&listed.body["results"]), ["Qualified", "Closed Won"]);

    let reader = s.mint(&["crm.objects.deals.read"]).await;
    assert_error(&s.call(Method::DELETE, &stage_path(&won), &reader, None).await, 403, "MISSING_SCOPES");
    s.running.stop().await;
}

/// `put-/crm/v3/pipelines/{objectType}/{pipelineId}_replace`: label, order and stages all given;
/// a stage named by `stageId` stays (with its deals), the others left out are archived.
#[tokio::test]
async fn a_pipeline_is_replaced_whole() {
    let s = start().await;
    let token = s.token().await;
    let path = format!("/crm/v3/pipelines/deals/{PARTNER}");
    let deal = s.create(&token, "deals", json!({"dealname": "Partner deal", "pipeline": PARTNER, "dealstage": "1294822"})).await;
    let replacement = json!({"label": "Partners", "displayOrder": 7, "stages": [
        {"stageId": "1294822", "label": "Demo Done", "displayOrder": 0, "metadata": {"probability": "0.3"}},
        {"label": "Signed", "displayOrder": 1, "metadata": {"probability": "1.0", "isClosed": "true"}},
    ]});

    // Dropping "Demo Done" while it holds a deal is refused when asked to validate.
    let dropping = json!({"label": "Partners", "displayOrder": 7, "stages": [{"label": "Only", "displayOrder": 0, "metadata": {"probability": "0.5"}}]});
    let refused = s.call(Method::PUT, &format!("{path}?validateDealStageUsagesBeforeDelete=true"), &token, Some(dropping)).await;
    assert_error(&refused, 409, "CONFLICT");

    let replaced = s.call(Method::PUT, &path, &token, Some(replacement)).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        (replaced.body["id"].as_str(), replaced.body["label"].as_str(), replaced.body["displayOrder"].as_i64()),
        (Some(PARTNER), Some("Partners"), Some(7))
    );
    assert_eq!(labels(&replaced.body["stages"]), ["Demo Done", "Signed"]);
    assert_eq!(replaced.body["stages"][0]["id"], "1294822", "the stage named by stageId keeps its id");
    assert_eq!(replaced.body["stages"][1]["metadata"]["isClosed"], "true");
    assert_eq!(s.call(Method::GET, &path, &token, None).await.body, replaced.body);
    assert_error(&s.call(Method::GET, &format!("{path}/stages/1294825"), &token, None).await, 404, "OBJECT_NOT_FOUND");
    let kept = s.call(Method::GET, &format!("/crm/v3/objects/deals/{deal}?properties=dealstage"), &token, None).await;
    assert_eq!(kept.body["properties"]["dealstage"], "1294822");

    for bad in [
        json!({"displayOrder": 1, "stages": [{"label": "A", "displayOrder": 0, "metadata": {"probability": "0.1"}}]}),
        json!({"label": "No order", "stages": [{"label": "A", "displayOrder": 0, "metadata": {"probability": "0.1"}}]}),
        json!({"label": "No stages", "displayOrder": 1}),
        json!({"label": "Twice", "displayOrder": 1, "stages": [
            {"label": "A", "displayOrder": 0, "metadata": {"probability": "0.1"}}, {"label": "a", "displayOrder": 1, "metadata": {"probability": "0.2"}}]}),
    ] {
        assert_error(&s.call(Method::PUT, &path, &token, Some(bad.clone())).await, 400, "VALIDATION_ERROR");
    }
    let taken = json!({"label": "Sales Pipeline", "displayOrder": 1, "stages": [{"label": "A", "displayOrder": 0, "metadata": {"probability": "0.1"}}]});
    assert_error(&s.call(Method::PUT, &path, &token, Some(taken)).await, 409, "CONFLICT");
    let unknown =
        json!({"label": "X", "displayOrder": 1, "stages": [{"label": "A", "displayOrder": 0, "metadata": {"probability": "0.1"}}]});
    assert_error(&s.call(Method::PUT, "/crm/v3/pipelines/deals/nope", &token, Some(unknown)).await, 404, "OBJECT_NOT_FOUND");
    s.running.stop().await;
}
