//! HubSpot's associations v4 between deals, companies and contacts over HTTP, against
//! `v4/associations.json` (each test names the operations it covers by their `operationId`).

#[path = "support/hubspot.rs"]
mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_error, start, Sandbox};

async fn associated(s: &Sandbox, token: &str, from: &str, id: &str, to: &str) -> Vec<(String, i64)> {
    let a = s.call(Method::GET, &format!("/crm/v4/objects/{from}/{id}/associations/{to}"), token, None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["toObjectId"].to_string().trim_matches('"').to_string(), r["associationTypes"][0]["typeId"].as_i64().unwrap()))
        .collect()
}

/// `put-/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}_createDefault`
/// and `get-/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}_getPage` between
/// a deal and a company (types 341 and 342) and a contact and a company (279 and 280), seen from
/// both ends; `delete-..._archive` (204) removes them from both.
#[tokio::test]
async fn deals_and_contacts_are_linked_to_companies() {
    let s = start().await;
    let token = s.token().await;
    let company = s.create(&token, "companies", json!({"name": "Globex", "domain": "globex.example"})).await;
    let deal = s.create(&token, "deals", json!({"dealname": "Globex renewal"})).await;
    let contact = s.create(&token, "contacts", json!({"email": "hank@globex.example"})).await;

    let linked = s.call(Method::PUT, &format!("/crm/v4/objects/deals/{deal}/associations/default/companies/{company}"), &token, None).await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.body["status"], "COMPLETE");
    assert_eq!(linked.body["results"][0]["associationSpec"], json!({"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}));
    assert_eq!(
        (linked.body["results"][0]["from"]["id"].as_str(), linked.body["results"][0]["to"]["id"].as_str()),
        (Some(deal.as_str()), Some(company.as_str()))
    );
    // By type ids: contact (0-1) to company (0-2).
    let linked = s.call(Method::PUT, &format!("/crm/v4/objects/0-1/{contact}/associations/default/0-2/{company}"), &token, None).await;
    assert_eq!(linked.body["results"][0]["associationSpec"]["associationTypeId"], 279);

    assert_eq!(associated(&s, &token, "deals", &deal, "companies").await, [(company.clone(), 341)]);
    assert_eq!(associated(&s, &token, "contacts", &contact, "companies").await, [(company.clone(), 279)]);
    assert_eq!(associated(&s, &token, "companies", &company, "deals").await, [(deal.clone(), 342)]);
    assert_eq!(associated(&s, &token, "0-2", &company, "0-1").await, [(contact.clone(), 280)]);

    let missing = s.call(Method::PUT, &format!("/crm/v4/objects/deals/{deal}/associations/default/companies/999999"), &token, None).await;
    assert_error(&missing, 400, "VALIDATION_ERROR");
    assert_error(&s.call(Method::GET, "/crm/v4/objects/companies/999999/associations/deals", &token, None).await, 404, "OBJECT_NOT_FOUND");

    let gone = s.call(Method::DELETE, &format!("/crm/v4/objects/companies/{company}/associations/deals/{deal}"), &token, None).await;
    assert_eq!(gone.status, 204, "removed from the other end too");
    assert!(associated(&s, &token, "deals", &deal, "companies").await.is_empty());
    assert_eq!(associated(&s, &token, "companies", &company, "contacts").await.len(), 1, "the contact stays");
    s.running.stop().await;
}

/// `put-/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}_create`:
/// the types come in the body (`AssociationSpec`s); 201 with `LabelsBetweenObjectPair` and a
/// `Location`. A type that is not defined between the two objects is refused.
#[tokio::test]
async fn associations_are_created_with_their_type() {
    let s = start().await;
    let token = s.token().await;
    let company = s.create(&token, "companies", json!({"name": "Initech"})).await;
    let deal = s.create(&token, "deals", json!({"dealname": "TPS reports"})).await;
    let path = format!("/crm/v4/objects/deals/{deal}/associations/companies/{company}");

    let created =
        s.call(Method::PUT, &path, &token, Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body,
        json!({"fromObjectTypeId": "0-3", "fromObjectId": deal, "toObjectTypeId": "0-2", "toObjectId": company, "labels": []})
    );
    let location = created.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("/crm/v4/objects/deals/{deal}/associations/companies"));
    assert_eq!(associated(&s, &token, "companies", &company, "deals").await, [(deal.clone(), 342)]);

    // Type 3 is deal to contact, not deal to company.
    let wrong = s.call(Method::PUT, &path, &token, Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]))).await;
    assert_error(&wrong, 400, "VALIDATION_ERROR");
    assert_error(&s.call(Method::PUT, &path, &token, Some(json!([]))).await, 400, "VALIDATION_ERROR");
    assert_error(&s.call(Method::PUT, &path, &token, Some(json!({"associationTypeId": 341}))).await, 400, "VALIDATION_ERROR");
    let reader = s.mint(&["crm.objects.deals.read"]).await;
    let refused =
        s.call(Method::PUT, &path, &reader, Some(json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]))).await;
    assert_error(&refused, 403, "MISSING_SCOPES");
    s.running.stop().await;
}

/// `post-/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/archive_archive`: each input
/// names a `from` and the `to` ids to unlink from it; 204 with no body, more than 100 inputs
/// refused. Checked with `post-.../batch/associate/default_createDefault` and
/// `post-.../batch/read_getPage`.
#[tokio::test]
async fn associations_are_removed_in_batches() {
    let s = start().await;
    let token = s.token().await;
    let company = s.create(&token, "companies", json!({"name": "Hooli"})).await;
    let mut deals = Vec::new();
    for name in ["One", "Two", "Three"] {
        deals.push(s.create(&token, "deals", json!({"dealname": name})).await);
    }
    let inputs: Vec<Value> = deals.iter().map(|d| json!({"from": {"id": company}, "to": {"id": d}})).collect();
    let linked =
        s.call(Method::POST, "/crm/v4/associations/companies/deals/batch/associate/default", &token, Some(json!({"inputs": inputs}))).await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(associated(&s, &token, "companies", &company, "deals").await.len(), 3);

    let body = json!({"inputs": [{"from": {"id": company}, "to": [{"id": deals[0]}, {"id": deals[2]}]}]});
    let archived = s.call(Method::POST, "/crm/v4/associations/companies/deals/batch/archive", &token, Some(body)).await;
    assert_eq!((archived.status, archived.body.clone()), (204, Value::Null));
    assert_eq!(associated(&s, &token, "companies", &company, "deals").await, [(deals[1].clone(), 342)]);
    let read = s
        .call(
            Method::POST,
            "/crm/v4/associations/deals/companies/batch/read",
            &token,
            Some(json!({"inputs": [{"id": deals[0]}, {"id": deals[1]}]})),
        )
        .await;
    assert_eq!(read.status, 207, "{}", read.body);
    assert_eq!(read.body["results"][0]["from"]["id"], deals[1].as_str());
    assert_eq!(read.body["errors"][0]["context"]["fromObjectId"], json!([deals[0]]));

    let too_many: Vec<Value> = (0..101).map(|_| json!({"from": {"id": company}, "to": [{"id": deals[1]}]})).collect();
    let refused =
        s.call(Method::POST, "/crm/v4/associations/companies/deals/batch/archive", &token, Some(json!({"inputs": too_many}))).await;
    assert_error(&refused, 400, "VALIDATION_ERROR");
    assert_eq!(associated(&s, &token, "companies", &company, "deals").await.len(), 1, "nothing was removed");
    assert_error(
        &s.call(Method::POST, "/crm/v4/associations/companies/deals/batch/archive", &token, Some(json!({"nope": []}))).await,
        400,
        "VALIDATION_ERROR",
    );
    s.running.stop().await;
}
