//! HubSpot's contacts, companies and deals by name and by type id, their lists and batch limits,
//! and the property and owner definitions, over HTTP, against `v3/contacts.json`,
//! `v3/companies.json`, `v3/deals.json`, `v3/objects.json`, `v3/properties.json`,
//! `v3/crmOwners.json` and `v3/accountInfo.json` (each test names its `operationId`s).

#[path = "support/hubspot.rs"]
mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_error, start};

/// `post-/crm/v3/objects/contacts_create`, `get-/crm/v3/objects/contacts/{contactId}_getById`,
/// `patch-/crm/v3/objects/contacts/{contactId}_update`, `delete-/crm/v3/objects/contacts/{contactId}_archive`
/// and the same four for companies (`..._companies_...`) and deals (`0-3`), each object addressed
/// by its name for some calls and its type id (`0-1`, `0-2`, `0-3`) for others.
#[tokio::test]
async fn contacts_companies_and_deals_by_name_and_type_id() {
    let s = start().await;
    let token = s.token().await;
    for (name, type_id, create, update, field) in [
        (
            "contacts",
            "0-1",
            json!({"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}),
            json!({"jobtitle": "Analyst"}),
            "jobtitle",
        ),
        (
            "companies",
            "0-2",
            json!({"name": "Analytical Engines", "domain": "engines.example"}),
            json!({"numberofemployees": 12}),
            "numberofemployees",
        ),
        ("deals", "0-3", json!({"dealname": "Engine order", "amount": "900"}), json!({"dealstage": "closedwon"}), "dealstage"),
    ] {
        let created = s.call(Method::POST, &format!("/crm/v3/objects/{type_id}"), &token, Some(json!({"properties": create}))).await;
        assert_eq!(created.status, 201, "{name}: {}", created.body);
        let id = created.body["id"].as_str().unwrap().to_string();
        for (key, value) in create.as_object().unwrap() {
            assert_eq!(&created.body["properties"][key], value, "{name}.{key}");
        }
        assert_eq!(created.body["properties"]["hs_object_id"], id.as_str());
        assert_eq!((created.body["archived"].as_bool(), created.body["createdAt"].is_string()), (Some(false), true));

        // Read by name: the object's default properties when none are named.
        let got = s.call(Method::GET, &format!("/crm/v3/objects/{name}/{id}"), &token, None).await;
        assert_eq!(got.status, 200);
        let defaults: Vec<&str> = got.body["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let expected: &[&str] = match name {
            "contacts" => &["firstname", "lastname", "email"],
            "companies" => &["name", "domain"],
            _ => &["dealname", "amount", "closedate", "pipeline", "dealstage"],
        };
        assert!(expected.iter().all(|p| defaults.contains(p)), "{name}: {defaults:?}");
        assert!(["hs_object_id", "createdate", "hs_lastmodifieddate"].iter().all(|p| defaults.contains(p)), "{name}: {defaults:?}");

        let updated = s.call(Method::PATCH, &format!("/crm/v3/objects/{type_id}/{id}"), &token, Some(json!({"properties": update}))).await;
        assert_eq!(updated.status, 200, "{name}: {}", updated.body);
        let sent = &update[field];
        assert_eq!(
            updated.body["properties"][field].as_str(),
            Some(sent.as_str().map(str::to_string).unwrap_or(sent.to_string()).as_str()),
            "{name}: values are strings"
        );
        let bad = s
            .call(Method::PATCH, &format!("/crm/v3/objects/{name}/{id}"), &token, Some(json!({"properties": {"no_such_property": "1"}})))
            .await;
        assert_error(&bad, 400, "VALIDATION_ERROR");

        let gone = s.call(Method::DELETE, &format!("/crm/v3/objects/{type_id}/{id}"), &token, None).await;
        assert_eq!((gone.status, gone.body.clone()), (204, Value::Null));
        assert_error(&s.call(Method::GET, &format!("/crm/v3/objects/{name}/{id}"), &token, None).await, 404, "OBJECT_NOT_FOUND");
        let archived = s.call(Method::GET, &format!("/crm/v3/objects/{type_id}/{id}?archived=true"), &token, None).await;
        assert_eq!((archived.status, archived.body["archived"].as_bool()), (200, Some(true)));
    }
    // An email is a contact's unique id: `idProperty=email` finds it.
    let id = s.create(&token, "contacts", json!({"email": "grace@example.com"})).await;
    let by_email = s.call(Method::GET, "/crm/v3/objects/contacts/grace@example.com?idProperty=email", &token, None).await;
    assert_eq!((by_email.status, by_email.body["id"].as_str()), (200, Some(id.as_str())));
    assert_error(&s.call(Method::GET, "/crm/v3/objects/tickets", &token, None).await, 400, "VALIDATION_ERROR");
    s.running.stop().await;
}

/// `post-/crm/v3/objects/contacts_create`, `post-/crm/v3/objects/contacts/batch/create_create`
/// and `patch-/crm/v3/objects/contacts/{contactId}_update`: HubSpot keeps one contact per email.
/// A second contact with an email another has (in any case) is refused with 409 CONFLICT naming
/// the existing contact; a batch holding one is refused whole, and nothing of it is created.
#[tokio::test]
async fn a_second_contact_with_an_email_is_refused() {
    let s = start().await;
    let token = s.token().await;
    let ada = s.create(&token, "contacts", json!({"email": "ada@example.com", "firstname": "Ada"})).await;
    let again = s.call(Method::POST, "/crm/v3/objects/contacts", &token, Some(json!({"properties": {"email": "Ada@Example.com"}}))).await;
    assert_error(&again, 409, "CONFLICT");
    assert_eq!(again.body["message"], format!("Contact already exists. Existing ID: {ada}"));

    let batch = json!({"inputs": [
        {"properties": {"email": "grace@example.com"}},
        {"properties": {"email": "ADA@example.com"}},
    ]});
    let refused = s.call(Method::POST, "/crm/v3/objects/contacts/batch/create", &token, Some(batch)).await;
    assert_error(&refused, 409, "CONFLICT");
    assert_eq!(refused.body["message"], format!("Contact already exists. Existing ID: {ada}"));
    let twice = json!({"inputs": [{"properties": {"email": "alan@example.com"}}, {"properties": {"email": "alan@example.com"}}]});
    assert_error(&s.call(Method::POST, "/crm/v3/objects/contacts/batch/create", &token, Some(twice)).await, 409, "CONFLICT");
    let grace = s.call(Method::GET, "/crm/v3/objects/contacts/grace@example.com?idProperty=email", &token, None).await;
    assert_eq!(grace.status, 404, "nothing of a refused batch is created: {}", grace.body);

    // An update may keep its own email, not take another contact's.
    let grace = s.create(&token, "contacts", json!({"email": "grace@example.com"})).await;
    let own = s
        .call(
            Method::PATCH,
            &format!("/crm/v3/objects/contacts/{ada}"),
            &token,
            Some(json!({"properties": {"email": "ada@example.com", "lastname": "Lovelace"}})),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let taken = s
        .call(
            Method::PATCH,
            &format!("/crm/v3/objects/contacts/{grace}"),
            &token,
            Some(json!({"properties": {"email": "ada@example.com"}})),
        )
        .await;
    assert_error(&taken, 409, "CONFLICT");
    // Companies may share a domain; archived contacts give their email up.
    for _ in 0..2 {
        s.create(&token, "companies", json!({"name": "Initech", "domain": "initech.example"})).await;
    }
    assert_eq!(s.call(Method::DELETE, &format!("/crm/v3/objects/contacts/{ada}"), &token, None).await.status, 204);
    s.create(&token, "contacts", json!({"email": "ada@example.com"})).await;
    s.running.stop().await;
}

/// `post-/crm/v3/objects/contacts/batch/create_create`, many at once with one new email: HubSpot
/// creates one contact and refuses the rest with 409. (The sandbox used to check the email under
/// a read lock and create under a write lock taken after it, so batches sent together could
/// each pass the check and create a contact apiece.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_sent_together_with_one_new_email_create_one_contact() {
    use sandbox::hubspot::data::ObjectType;
    let s = start().await;
    let token = s.token().await;
    // Other contacts, so that each check takes a moment, as in a real portal.
    {
        let mut data = s.hubspot.write();
        for n in 0..20_000 {
            data.insert_record(ObjectType::Contacts, [("email".to_string(), format!("person{n}@example.com"))].into(), 0, "CRM_UI");
        }
    }
    let mut sent = tokio::task::JoinSet::new();
    for n in 0..40 {
        let request = s
            .api(Method::POST, "/crm/v3/objects/contacts/batch/create", &token)
            .json(&json!({"inputs": [{"properties": {"email": "race@example.com", "firstname": format!("Attempt {n}")}}]}));
        sent.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = sent.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    let created = statuses.iter().filter(|&&s| s == 201).count();
    assert_eq!((created, statuses.iter().filter(|&&s| s == 409).count()), (1, 39), "{statuses:?}");
    let with_email = s
        .hubspot
        .read()
        .records(ObjectType::Contacts)
        .filter(|r| r.properties.get("email").map(String::as_str) == Some("race@example.com"))
        .count();
    assert_eq!(with_email, 1, "one contact per email");
    s.running.stop().await;
}

/// `get-/crm/v3/objects/contacts_getPage` (and `0-2`, `0-3`): `properties`,
/// `propertiesWithHistory` and `archived=true`.
#[tokio::test]
async fn lists_name_their_properties_histories_and_archived_records() {
    let s = start().await;
    let token = s.token().await;
    let mut ids = Vec::new();
    for name in ["Initech", "Hooli", "Globex"] {
        ids.push(s.create(&token, "companies", json!({"name": name, "city": "Austin"})).await);
    }
    let r = s
        .call(Method::PATCH, &format!("/crm/v3/objects/companies/{}", ids[1]), &token, Some(json!({"properties": {"city": "Lagos"}})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.call(Method::DELETE, &format!("/crm/v3/objects/0-2/{}", ids[2]), &token, None).await.status, 204);

    let page = s.call(Method::GET, "/crm/v3/objects/0-2?properties=city,industry&propertiesWithHistory=city", &token, None).await;
    assert_eq!(page.status, 200);
    let results = page.body["results"].as_array().unwrap();
    assert_eq!(results.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), ids[..2].to_vec(), "the archived one is not listed");
    let properties = results[1]["properties"].as_object().unwrap();
    let mut keys: Vec<&str> = properties.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["city", "createdate", "hs_lastmodifieddate", "hs_object_id", "industry"], "the named ones and the always-on ones");
    assert_eq!((properties["city"].as_str(), properties["industry"].clone()), (Some("Lagos"), Value::Null));
    let history: Vec<(&str, &str)> = results[1]["propertiesWithHistory"]["city"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["value"].as_str().unwrap(), h["sourceType"].as_str().unwrap()))
        .collect();
    assert_eq!(history, [("Lagos", "INTEGRATION"), ("Austin", "INTEGRATION")], "newest first");
    assert!(results[1]["propertiesWithHistory"]["city"][0]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(page.body["paging"].is_null(), "one page");

    let archived = s.call(Method::GET, "/crm/v3/objects/companies?archived=true&properties=name", &token, None).await;
    let results = archived.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!((results[0]["id"].as_str(), results[0]["archived"].as_bool()), (Some(ids[2].as_str()), Some(true)));
    assert!(results[0]["archivedAt"].as_str().unwrap().ends_with('Z'));
    assert_error(&s.call(Method::GET, "/crm/v3/objects/0-1?limit=0", &token, None).await, 400, "VALIDATION_ERROR");
    assert_error(&s.call(Method::GET, "/crm/v3/objects/0-1?after=abc", &token, None).await, 400, "VALIDATION_ERROR");
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3/batch/read_read`, `..._update_update`, `..._upsert_upsert` and
/// `..._archive_archive` refuse more than 100 inputs (400, nothing changed); batch read by a
/// unique property (`idProperty`).
#[tokio::test]
async fn batches_of_more_than_a_hundred_are_refused() {
    let s = start().await;
    let token = s.token().await;
    let id = s.create(&token, "deals", json!({"dealname": "Kept"})).await;
    let many = |item: Value| Value::Array(vec![item; 101]);
    for (operation, item) in [
        ("read", json!({"id": id})),
        ("update", json!({"id": id, "properties": {"dealname": "Changed"}})),
        ("upsert", json!({"idProperty": "hs_object_id", "id": id, "properties": {"dealname": "Changed"}})),
        ("archive", json!({"id": id})),
    ] {
        let r =
            s.call(Method::POST, &format!("/crm/v3/objects/deals/batch/{operation}"), &token, Some(json!({"inputs": many(item)}))).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
        assert!(r.body["message"].as_str().unwrap().contains("100"), "{operation}: {}", r.body);
    }
    let kept = s.call(Method::GET, &format!("/crm/v3/objects/deals/{id}"), &token, None).await;
    assert_eq!((kept.status, kept.body["properties"]["dealname"].as_str()), (200, Some("Kept")));
    let hundred: Vec<Value> = (0..100).map(|_| json!({"id": id})).collect();
    let r = s.call(Method::POST, "/crm/v3/objects/deals/batch/read", &token, Some(json!({"inputs": hundred}))).await;
    assert_eq!((r.status, r.body["results"].as_array().map(Vec::len)), (200, Some(100)), "a hundred is allowed");

    // Contacts by email, in one batch: found, missing.
    let ada = s.create(&token, "contacts", json!({"email": "ada@example.com"})).await;
    let r = s
        .call(
            Method::POST,
            "/crm/v3/objects/contacts/batch/read",
            &token,
            Some(json!({"idProperty": "email", "inputs": [{"id": "ada@example.com"}, {"id": "nobody@example.com"}]})),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    assert_eq!(r.body["results"][0]["id"], ada.as_str());
    assert_eq!(r.body["errors"][0]["context"]["ids"], json!(["nobody@example.com"]));
    s.running.stop().await;
}

/// `get-/crm/v3/properties/{objectType}/{propertyName}_getByName`: one property as `Property`;
/// 404 for an unknown one.
#[tokio::test]
async fn a_property_is_read_by_name() {
    let s = start().await;
    let token = s.token().await;
    let stage = s.call(Method::GET, "/crm/v3/properties/deals/dealstage", &token, None).await;
    assert_eq!(stage.status, 200, "{}", stage.body);
    assert_eq!(
        (stage.body["name"].as_str(), stage.body["type"].as_str(), stage.body["fieldType"].as_str()),
        (Some("dealstage"), Some("enumeration"), Some("radio"))
    );
    assert_eq!((stage.body["groupName"].as_str(), stage.body["label"].as_str()), (Some("dealinformation"), Some("Deal Stage")));
    assert!(stage.body["options"].as_array().unwrap().iter().any(|o| o["value"] == "closedwon" && o["label"] == "Closed Won"));
    let all = s.call(Method::GET, "/crm/v3/properties/deals", &token, None).await;
    let listed = all.body["results"].as_array().unwrap().iter().find(|p| p["name"] == "dealstage").unwrap();
    assert_eq!(listed, &stage.body, "the same as in the list");
    let email = s.call(Method::GET, "/crm/v3/properties/0-1/email", &token, None).await;
    assert_eq!((email.status, email.body["type"].as_str()), (200, Some("string")));
    assert_error(&s.call(Method::GET, "/crm/v3/properties/deals/no_such_property", &token, None).await, 404, "OBJECT_NOT_FOUND");
    assert_error(&s.call(Method::GET, "/crm/v3/properties/deals/dealname?archived=true", &token, None).await, 404, "OBJECT_NOT_FOUND");
    let contacts_only = s.mint(&["crm.objects.contacts.read"]).await;
    assert_error(&s.call(Method::GET, "/crm/v3/properties/deals/dealname", &contacts_only, None).await, 403, "MISSING_SCOPES");
    s.running.stop().await;
}

/// `get-/crm/v3/owners_/crm/v3/owners` (`email`, `limit`, `after`), `get-/crm/v3/owners/{ownerId}_getById`
/// (by id and by `idProperty=userId`) and `get-/account-info/v3/details_get`.
#[tokio::test]
async fn owners_and_account_details() {
    let s = start().await;
    let token = s.mint(&["crm.objects.owners.read"]).await;
    let all = s.call(Method::GET, "/crm/v3/owners", &token, None).await;
    assert_eq!(all.status, 200);
    let owners = all.body["results"].as_array().unwrap();
    assert_eq!(owners.len(), 5);
    let alex = &owners[0];
    assert_eq!(
        (alex["id"].as_str(), alex["email"].as_str(), alex["type"].as_str()),
        (Some("70110001"), Some("alex.morgan@sandbox-portal.example"), Some("PERSON"))
    );
    assert_eq!((alex["userId"].as_u64(), alex["archived"].as_bool()), (Some(9_100_001), Some(false)));

    let by_email = s.call(Method::GET, "/crm/v3/owners?email=dana@pipedrive-sandbox.example", &token, None).await;
    assert_eq!(by_email.body["results"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect::<Vec<_>>(), ["70110004"]);
    let first = s.call(Method::GET, "/crm/v3/owners?limit=2", &token, None).await;
    assert_eq!(first.body["results"].as_array().unwrap().len(), 2);
    let after = first.body["paging"]["next"]["after"].as_str().unwrap().to_string();
    let rest = s.call(Method::GET, &format!("/crm/v3/owners?limit=10&after={after}"), &token, None).await;
    assert_eq!(rest.body["results"][0]["id"], "70110003");
    assert!(rest.body["paging"].is_null());
    assert_error(&s.call(Method::GET, "/crm/v3/owners?limit=0", &token, None).await, 400, "VALIDATION_ERROR");

    let one = s.call(Method::GET, "/crm/v3/owners/70110002", &token, None).await;
    assert_eq!((one.status, one.body["firstName"].as_str(), one.body["lastName"].as_str()), (200, Some("Sam"), Some("Lee")));
    let by_user = s.call(Method::GET, "/crm/v3/owners/9100002?idProperty=userId", &token, None).await;
    assert_eq!(by_user.body, one.body);
    assert_error(&s.call(Method::GET, "/crm/v3/owners/12345", &token, None).await, 404, "OBJECT_NOT_FOUND");
    assert_error(&s.call(Method::GET, "/crm/v3/owners/sam", &token, None).await, 400, "VALIDATION_ERROR");
    assert_error(&s.call(Method::GET, "/crm/v3/owners/70110002?idProperty=email", &token, None).await, 400, "VALIDATION_ERROR");
    let deals_only = s.mint(&["crm.objects.deals.read"]).await;
    assert_error(&s.call(Method::GET, "/crm/v3/owners", &deals_only, None).await, 403, "MISSING_SCOPES");

    let account = s.call(Method::GET, "/account-info/v3/details", &token, None).await;
    assert_eq!(account.status, 200);
    assert_eq!(
        (account.body["portalId"].as_u64(), account.body["timeZone"].as_str(), account.body["companyCurrency"].as_str()),
        (Some(24_681_357), Some("US/Eastern"), Some("USD"))
    );
    assert_eq!((account.body["utcOffset"].as_str(), account.body["utcOffsetMilliseconds"].as_i64()), (Some("-05:00"), Some(-18_000_000)));
    assert_eq!(account.body["uiDomain"], "app.hubspot.com");
    s.running.stop().await;
}

/// `post-/crm/v3/objects/0-3/search_doSearch`, `post-/crm/v3/objects/0-3/batch/create_create` and
/// `post-/crm/v3/objects/0-3_create`: the spec marks `after`, `filterGroups`, `limit`,
/// `properties` and `sorts` required in a search (`PublicObjectSearchRequest`), and `properties`
/// and `associations` in a create input (`SimplePublicObjectInputForCreate`). HubSpot accepts
/// bodies without them (its own guides leave them out), and so does the sandbox; with strict
/// checks on (`PUT /_sandbox/strict`, for tests of clients) it refuses them as HubSpot refuses a
/// body it cannot build, naming what is missing, and accepts complete ones.
#[tokio::test]
async fn strict_checks_refuse_bodies_without_what_the_spec_requires() {
    let s = start().await;
    let token = s.token().await;
    let search = json!({"filterGroups": [], "properties": ["dealname"], "limit": 10});
    let create = json!({"inputs": [{"properties": {"dealname": "Lenient"}}]});
    assert_eq!(s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(search.clone())).await.status, 200);
    assert_eq!(s.call(Method::POST, "/crm/v3/objects/deals/batch/create", &token, Some(create.clone())).await.status, 201);
    assert_eq!(s.control(Method::GET, "/_sandbox/strict", json!(null)).await.body["required_fields"], false);

    let on = s.control(Method::PUT, "/_sandbox/strict", json!({"required_fields": true})).await;
    assert_eq!((on.status, on.body["required_fields"].as_bool()), (200, Some(true)));
    let refused = s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(search)).await;
    assert_error(&refused, 400, "VALIDATION_ERROR");
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("PublicObjectSearchRequest") && message.contains("[after, sorts]"), "{message}");
    let refused = s.call(Method::POST, "/crm/v3/objects/deals/batch/create", &token, Some(create)).await;
    assert_error(&refused, 400, "VALIDATION_ERROR");
    assert!(refused.body["message"].as_str().unwrap().contains("[associations]"), "{}", refused.body);
    let single = s.call(Method::POST, "/crm/v3/objects/deals", &token, Some(json!({"properties": {"dealname": "One"}}))).await;
    assert_error(&single, 400, "VALIDATION_ERROR");

    let complete = json!({
        "filterGroups": [], "properties": ["dealname"], "limit": 10, "after": "0",
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    });
    let found = s.call(Method::POST, "/crm/v3/objects/deals/search", &token, Some(complete)).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body["results"].as_array().unwrap().iter().any(|r| r["properties"]["dealname"] == "Lenient"));
    let created = s
        .call(
            Method::POST,
            "/crm/v3/objects/deals/batch/create",
            &token,
            Some(json!({"inputs": [{"properties": {"dealname": "Strict"}, "associations": []}]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let single =
        s.call(Method::POST, "/crm/v3/objects/deals", &token, Some(json!({"properties": {"dealname": "One"}, "associations": []}))).await;
    assert_eq!(single.status, 201, "{}", single.body);
    s.control(Method::PUT, "/_sandbox/strict", json!({"required_fields": false})).await;
    s.running.stop().await;
}
