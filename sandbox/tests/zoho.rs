//! The Zoho CRM sandbox over real HTTP, checked against Zoho's OpenAPI description of CRM API v8
//! (`record.json`, `fields.json`, `layouts.json`, `modules.json`, `pipeline.json`, `users.json`,
//! `org.json`, `record_count.json`, `notifications.json`, `common.json`) and Zoho's accounts
//! server: each test names the operations it covers.

#[path = "support/zoho.rs"]
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{assert_error, ids, param, query_of, redacted, start, start_with, wait_until, Sandbox, CLIENT_ID, CLIENT_SECRET, REDIRECT};

fn at(rfc3339: &str) -> i64 {
    sandbox::time::parse_rfc3339(rfc3339).unwrap()
}

async fn code_of(s: &Sandbox, extra: &[(&str, &str)]) -> String {
    let location = s.consent(extra, "accept").await;
    param(&query_of(&location), "code").unwrap_or_else(|| panic!("no code in {location}")).to_string()
}

/// The accounts server: sign-in, consent with **Accept**, the redirect with `code`, `state`,
/// `location` and `accounts-server`; the code exchanged with the client's credentials in the form
/// body; a refresh token that does not rotate; errors answered 200 `{"error": …}` as Zoho does;
/// revoke.
#[tokio::test]
async fn oauth_accept_exchange_refresh_and_revoke() {
    let s = start().await;
    let location = s.consent(&[("access_type", "offline"), ("prompt", "consent")], "accept").await;
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(&location);
    assert_eq!(param(&q, "state"), Some("st-42"));
    assert_eq!(param(&q, "location"), Some("us"));
    assert_eq!(param(&q, "accounts-server"), Some(s.url.as_str()));
    let code = param(&q, "code").unwrap().to_string();

    let wrong_secret = s
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert_eq!((wrong_secret.status, &wrong_secret.body), (200, &json!({"error": "invalid_client_secret"})));
    let unknown_client = s
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", "1000.OTHER"),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert_eq!(unknown_client.body, json!({"error": "invalid_client"}));

    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("redirect_uri", REDIRECT),
        ("code", code.as_str()),
    ];
    let tokens = s.token_request(&form).await;
    assert_eq!(tokens.status, 200, "{}", redacted(&tokens.body));
    assert_eq!(tokens.body["token_type"], "Bearer");
    assert_eq!(tokens.body["expires_in"], 3600);
    assert_eq!(tokens.body["api_domain"], s.url.as_str());
    let access = tokens.body["access_token"].as_str().unwrap().to_string();
    let refresh = tokens.body["refresh_token"].as_str().expect("access_type=offline gives a refresh token").to_string();
    let org = s.get("/crm/v8/org", &access).await;
    assert_eq!(org.status, 200, "{}", org.body);
    assert_eq!(org.body["org"][0]["company_name"], "Sandbox Sales Co");

    let reused = s.token_request(&form).await;
    assert_eq!((reused.status, &reused.body), (200, &json!({"error": "invalid_code"})), "a code is good once");

    let refresh_form =
        [("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET), ("refresh_token", refresh.as_str())];
    let mut seen = HashSet::from([access]);
    for _ in 0..2 {
        let r = s.token_request(&refresh_form).await;
        assert_eq!(r.status, 200);
        assert!(r.body.get("refresh_token").is_none(), "a refresh answers no new refresh token: {}", redacted(&r.body));
        assert_eq!(r.body["api_domain"], s.url.as_str());
        let fresh = r.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(s.get("/crm/v8/org", &fresh).await.status, 200);
        assert!(seen.insert(fresh), "every refresh gives a new access token");
    }

    let revoked = s.http.post(format!("{}/oauth/v2/token/revoke", s.url)).query(&[("token", refresh.as_str())]).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.json::<Value>().await.unwrap(), json!({"status": "success"}));
    let after = s.token_request(&refresh_form).await;
    assert_eq!(after.body, json!({"error": "invalid_code"}));
    s.running.stop().await;
}

/// **Reject** sends the user back with `error=access_denied`; `access_type=online` (the
/// default) gives an access token without a refresh token; a wrong password stays on the page.
#[tokio::test]
async fn oauth_reject_online_access_and_wrong_password() {
    let s = start().await;
    let location = s.consent(&[], "reject").await;
    let q = query_of(&location);
    assert_eq!((param(&q, "error"), param(&q, "state")), (Some("access_denied"), Some("st-42")));
    assert!(param(&q, "code").is_none());

    let code = code_of(&s, &[]).await;
    let tokens = s
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert!(tokens.body["access_token"].is_string(), "{}", redacted(&tokens.body));
    assert!(tokens.body.get("refresh_token").is_none(), "online access has no refresh token: {}", redacted(&tokens.body));

    // Zoho's pages: the sign-in form at its path, then the consent page listing the scopes with
    // **Accept** and **Reject**.
    let page = s.http.get(s.authorize_url(&[])).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Zoho CRM (Sandbox)") && html.contains(r#"action="/oauth/v2/auth/login""#), "{html}");
    let signed_in = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL"),
        ("email", "priya@zoho-sandbox.example"),
        ("password", "sandbox"),
    ];
    let consent = s.http.post(format!("{}/oauth/v2/auth/login", s.url)).form(&signed_in).send().await.unwrap();
    let html = consent.text().await.unwrap();
    assert!(html.contains(">Accept</button>") && html.contains(">Reject</button>"), "{html}");
    assert!(html.contains("ZohoCRM.settings.ALL"), "the consent page lists the scopes: {html}");

    let params = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("scope", "ZohoCRM.modules.ALL"),
        ("email", "priya@zoho-sandbox.example"),
        ("password", "wrong"),
    ];
    let r = s.http.post(format!("{}/oauth/v2/auth/login", s.url)).form(&params).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains(">Accept</button>"));
    s.running.stop().await;
}

/// The walker other crates' tests use (`sandbox::walk::consent`) finds Zoho's form paths and
/// buttons: **Accept** gives a code, **Reject** `access_denied`.
#[tokio::test]
async fn the_shared_walker_answers_zohos_pages() {
    use sandbox::walk::{consent, Decision};
    let s = start().await;
    let url = format!(
        "{}/oauth/v2/auth?scope=ZohoCRM.modules.ALL&client_id={CLIENT_ID}&response_type=code&access_type=offline&redirect_uri={}&state=w1",
        s.url,
        sandbox::oauth::url_encode(REDIRECT)
    );
    let accepted = consent(&url, "priya@zoho-sandbox.example", "sandbox", Decision::Allow).await.unwrap();
    let code = param(&query_of(&accepted), "code").expect("a code").to_string();
    let tokens = s
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("redirect_uri", REDIRECT),
            ("code", &code),
        ])
        .await;
    assert!(tokens.body["refresh_token"].is_string(), "{}", redacted(&tokens.body));
    let rejected = consent(&url, "priya@zoho-sandbox.example", "sandbox", Decision::Deny).await.unwrap();
    assert_eq!(param(&query_of(&rejected), "error"), Some("access_denied"));
    s.running.stop().await;
}

/// Get Records: `fields` is required; `per_page` at most 200; `page` reaches the 2,000th record
/// and `page_token` goes further; `info` as the spec's `Info` has it; `sort_order` (desc by
/// default) and `sort_by`.
#[tokio::test]
async fn records_page_past_2000_with_page_token() {
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 0, 2_150).await;
    assert_error(&s.get("/crm/v8/Accounts", &token).await, 400, "REQUIRED_PARAM_MISSING");
    assert_error(&s.get("/crm/v8/Accounts?fields=Account_Name&per_page=201", &token).await, 400, "INVALID_DATA");
    assert_error(&s.get("/crm/v8/Widgets?fields=Name", &token).await, 400, "INVALID_MODULE");
    let beyond = s.get("/crm/v8/Accounts?fields=Account_Name&per_page=200&page=11", &token).await;
    assert_error(&beyond, 400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED");

    let first = s.get("/crm/v8/Accounts?fields=Account_Name,Website", &token).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let info = &first.body["info"];
    assert_eq!((info["per_page"].as_u64(), info["count"].as_u64(), info["page"].as_u64()), (Some(200), Some(200), Some(1)));
    assert_eq!(
        (info["more_records"].as_bool(), info["sort_by"].as_str(), info["sort_order"].as_str()),
        (Some(true), Some("id"), Some("desc"))
    );
    assert!(info["page_token_expiry"].as_str().unwrap().ends_with("+00:00"));
    let record = &first.body["data"][0];
    assert_eq!(record.as_object().unwrap().len(), 3, "only id and the fields asked for: {record}");
    assert!(record["id"].as_str().unwrap().len() == 19, "Zoho's 19-digit ids: {record}");

    let mut all: Vec<String> = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            None => "/crm/v8/Accounts?fields=Account_Name".to_string(),
            Some(t) => format!("/crm/v8/Accounts?fields=Account_Name&page_token={t}"),
        };
        let a = s.get(&path, &token).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        all.extend(ids(&a));
        match a.body["info"]["next_page_token"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => {
                assert_eq!(a.body["info"]["more_records"], false);
                break;
            }
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(all.len(), 2_150);
    let numbers: Vec<u64> = all.iter().map(|i| i.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest id first, no repeats");

    let asc = s.get("/crm/v8/Accounts?fields=Account_Name&sort_by=id&sort_order=asc&per_page=3&page=2", &token).await;
    let mut expected: Vec<u64> = numbers.clone();
    expected.sort();
    assert_eq!(ids(&asc), expected[3..6].iter().map(u64::to_string).collect::<Vec<_>>());
    assert_error(&s.get("/crm/v8/Accounts?fields=Account_Name&sort_by=Account_Name", &token).await, 400, "INVALID_DATA");
    s.running.stop().await;
}

/// `If-Modified-Since`: only the records changed since (by `Modified_Time`), 304 when none.
#[tokio::test]
async fn if_modified_since_lists_changes_or_answers_304() {
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 6, 2).await;
    let list = s.get("/crm/v8/Contacts?fields=Last_Name", &token).await;
    let contacts = ids(&list);
    let edited = &contacts[2];
    let r = s
        .control(
            Method::PATCH,
            &format!("/_sandbox/Contacts/{edited}"),
            json!({"fields": {"Title": "VP Sales"}, "timestamp": at("2030-01-01T10:15:30Z")}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);

    let since = |t: &'static str| {
        s.http
            .get(format!("{}/crm/v8/Contacts?fields=Title,Modified_Time", s.url))
            .header("authorization", format!("Zoho-oauthtoken {token}"))
            .header("If-Modified-Since", t)
            .send()
    };
    let changed = support::answer(since("2030-01-01T00:00:00+00:00").await.unwrap()).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(ids(&changed), vec![edited.clone()]);
    assert_eq!(changed.body["data"][0]["Modified_Time"], "2030-01-01T10:15:30+00:00");
    assert_eq!(changed.body["data"][0]["Title"], "VP Sales");
    let nothing = since("2030-01-01T10:15:30+00:00").await.unwrap();
    assert_eq!(nothing.status(), 304);
    assert!(nothing.bytes().await.unwrap().is_empty());
    let everything = support::answer(since("2000-01-01T00:00:00+00:00").await.unwrap()).await;
    assert_eq!(everything.body["info"]["count"], 6);
    let one = |t: &'static str| {
        s.http
            .get(format!("{}/crm/v8/Contacts/{edited}", s.url))
            .header("authorization", format!("Zoho-oauthtoken {token}"))
            .header("If-Modified-Since", t)
            .send()
    };
    assert_eq!(one("2030-01-01T10:15:30+00:00").await.unwrap().status(), 304);
    assert_eq!(one("2030-01-01T11:15:29+01:00").await.unwrap().status(), 200, "an offset is read as such");
    s.running.stop().await;
}

/// Create Records: at most 100 records a call; each answered on its own (`SUCCESS`,
/// `MANDATORY_NOT_FOUND`, `DUPLICATE_DATA`, `INVALID_DATA`); 201 when all were added, 400 when
/// none, 207 when some.
#[tokio::test]
async fn create_answers_each_record_and_caps_batches_at_100() {
    let s = start().await;
    let token = s.token().await;
    let many: Vec<Value> = (0..101).map(|i| json!({"Account_Name": format!("Account {i}")})).collect();
    let refused = s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": many}))).await;
    assert_error(&refused, 400, "LIMIT_EXCEEDED");
    assert_eq!(s.control(Method::GET, "/_sandbox/summary", Value::Null).await.body["accounts"]["live"], 0);
    let hundred: Vec<Value> = (0..100).map(|i| json!({"Account_Name": format!("Account {i}")})).collect();
    let ok = s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": hundred}))).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["data"].as_array().unwrap().len(), 100);
    let first = &ok.body["data"][0];
    assert_eq!(
        (first["code"].as_str(), first["status"].as_str(), first["message"].as_str()),
        (Some("SUCCESS"), Some("success"), Some("record added"))
    );
    assert_eq!(first["details"]["Created_By"]["name"], "Priya Raman");

    let mixed = s
        .call(
            Method::POST,
            "/crm/v8/Contacts",
            &token,
            Some(json!({"data": [
                {"First_Name": "Anna", "Last_Name": "Keller", "Email": "anna.keller@northwind.example"},
                {"First_Name": "No", "Email": "no.last@northwind.example"},
                {"Last_Name": "Twin", "Email": "Anna.Keller@northwind.example"},
                {"Last_Name": "Bad", "Email": "not-an-email"},
            ]})),
        )
        .await;
    assert_eq!(mixed.status, 207, "{}", mixed.body);
    let answers = mixed.body["data"].as_array().unwrap();
    let codes: Vec<&str> = answers.iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["SUCCESS", "MANDATORY_NOT_FOUND", "DUPLICATE_DATA", "INVALID_DATA"]);
    assert_eq!(answers[1]["details"], json!({"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"}));
    assert_eq!(answers[2]["details"]["duplicate_record"]["id"], answers[0]["details"]["id"]);
    assert_eq!(answers[2]["details"]["duplicate_record"]["module"]["api_name"], "Contacts");
    assert_eq!(answers[3]["details"]["api_name"], "Email");

    // Zoho's SDKs send their JSON without a Content-Type.
    let bare = s
        .http
        .post(format!("{}/crm/v8/Contacts", s.url))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .body(json!({"data": [{"Last_Name": "Bare"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 201);

    let none = s.call(Method::POST, "/crm/v8/Contacts", &token, Some(json!({"data": [{"First_Name": "Only"}]}))).await;
    assert_eq!(none.status, 400);
    assert_eq!(none.body["data"][0]["code"], "MANDATORY_NOT_FOUND");
    assert_error(&s.call(Method::POST, "/crm/v8/Contacts", &token, Some(json!({"data": []}))).await, 400, "MANDATORY_NOT_FOUND");
    s.running.stop().await;
}

/// Deals: `Deal_Name` and `Stage` are mandatory, the stage must be one of the pipeline's (the
/// default "Standard" one when none is given) and sets the probability; `Account_Name` and
/// `Contact_Name` are lookups written `{name, id}`; a lookup to no record is `INVALID_DATA`.
#[tokio::test]
async fn deals_check_stages_and_write_lookups() {
    let s = start().await;
    let token = s.token().await;
    let account = s
        .call(
            Method::POST,
            "/crm/v8/Accounts",
            &token,
            Some(json!({"data": [{"Account_Name": "Contoso Ltd", "Website": "https://www.contoso.example"}]})),
        )
        .await;
    let account_id = account.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let contact = s
        .call(
            Method::POST,
            "/crm/v8/Contacts",
            &token,
            Some(json!({"data": [{"First_Name": "Priya", "Last_Name": "Shah", "Account_Name": {"id": account_id}}]})),
        )
        .await;
    let contact_id = contact.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let r = s
        .call(
            Method::POST,
            "/crm/v8/Deals",
            &token,
            Some(json!({"data": [
                {"Deal_Name": "Contoso renewal", "Stage": "Negotiation/Review", "Amount": 12500.5, "Closing_Date": "2026-12-24",
                 "Account_Name": {"id": account_id}, "Contact_Name": {"id": contact_id}},
                {"Deal_Name": "Wrong stage", "Stage": "Renewal Due"},
                {"Deal_Name": "Renewal", "Pipeline": "Renewals", "Stage": "Renewal Due"},
                {"Deal_Name": "No stage"},
                {"Deal_Name": "Ghost account", "Stage": "Qualification", "Account_Name": {"id": "5725767000000000001"}},
                {"Deal_Name": "Bad date", "Stage": "Qualification", "Closing_Date": "24/12/2026"},
            ]})),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    let codes: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["SUCCESS", "INVALID_DATA", "SUCCESS", "MANDATORY_NOT_FOUND", "INVALID_DATA", "INVALID_DATA"]);
    assert_eq!(r.body["data"][1]["message"], "Pipeline doesn't contain the Stage");
    assert_eq!(r.body["data"][4]["details"]["api_name"], "Account_Name");
    let id = r.body["data"][0]["details"]["id"].as_str().unwrap();
    let got = s.get(&format!("/crm/v8/Deals/{id}"), &token).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let deal = &got.body["data"][0];
    assert_eq!(deal["Account_Name"], json!({"name": "Contoso Ltd", "id": account_id}));
    assert_eq!(deal["Contact_Name"], json!({"name": "Priya Shah", "id": contact_id}));
    assert_eq!(
        (deal["Pipeline"].as_str(), deal["Probability"].as_i64(), deal["Amount"].as_f64()),
        (Some("Standard"), Some(90), Some(12500.5))
    );
    assert_eq!(deal["Owner"]["email"], "priya@zoho-sandbox.example");
    let created = deal["Created_Time"].as_str().unwrap();
    assert!(created.len() == 25 && created.ends_with("+00:00"), "{created}");
    s.running.stop().await;
}

/// Update Records (`PUT /Deals`, each record naming its id, and `PUT /Deals/{id}`), Delete
/// Records (`DELETE ?ids=`), Get Record (204 for a deleted one) and Get Deleted Records.
#[tokio::test]
async fn update_delete_and_the_recycle_bin() {
    let s = start().await;
    let token = s.token().await;
    s.seed(3, 0, 0).await;
    let deals = ids(&s.get("/crm/v8/Deals?fields=Deal_Name", &token).await);
    let r = s
        .call(
            Method::PUT,
            "/crm/v8/Deals",
            &token,
            Some(
                json!({"data": [{"id": deals[0], "Stage": "Closed Won"}, {"Stage": "Closed Lost"}, {"id": "123", "Stage": "Closed Lost"}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 207, "{}", r.body);
    let codes: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["SUCCESS", "MANDATORY_NOT_FOUND", "INVALID_DATA"]);
    assert_eq!(r.body["data"][0]["message"], "record updated");
    let one = s.call(Method::PUT, &format!("/crm/v8/Deals/{}", deals[1]), &token, Some(json!({"data": [{"Deal_Name": "Renamed"}]}))).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let got = s.get(&format!("/crm/v8/Deals/{}?fields=Deal_Name,Stage,Probability", deals[0]), &token).await;
    assert_eq!((got.body["data"][0]["Stage"].as_str(), got.body["data"][0]["Probability"].as_i64()), (Some("Closed Won"), Some(100)));
    assert_eq!(s.get(&format!("/crm/v8/Deals/{}", deals[1]), &token).await.body["data"][0]["Deal_Name"], "Renamed");

    let deleted = s.call(Method::DELETE, &format!("/crm/v8/Deals?ids={},{},999", deals[0], deals[1]), &token, None).await;
    assert_eq!(deleted.status, 207, "{}", deleted.body);
    assert_eq!(
        deleted.body["data"][0],
        json!({"code": "SUCCESS", "details": {"id": deals[0]}, "message": "record deleted", "status": "success"})
    );
    assert_eq!(deleted.body["data"][2]["code"], "INVALID_DATA");
    assert_eq!(s.get(&format!("/crm/v8/Deals/{}", deals[0]), &token).await.status, 204);
    assert_eq!(ids(&s.get("/crm/v8/Deals?fields=Deal_Name", &token).await), vec![deals[2].clone()]);
    assert_error(&s.call(Method::DELETE, "/crm/v8/Deals", &token, None).await, 400, "REQUIRED_PARAM_MISSING");

    let bin = s.get("/crm/v8/Deals/deleted?type=recycle", &token).await;
    assert_eq!(bin.status, 200, "{}", bin.body);
    let names: HashSet<&str> = bin.body["data"].as_array().unwrap().iter().map(|d| d["display_name"].as_str().unwrap()).collect();
    assert!(names.contains("Renamed"), "{}", bin.body);
    assert_eq!(bin.body["data"][0]["type"], "recycle");
    assert_eq!(bin.body["data"][0]["deleted_by"]["name"], "Priya Raman");
    assert_eq!(bin.body["info"]["count"], 2);
    assert_eq!(s.get("/crm/v8/Deals/deleted?type=permanent", &token).await.status, 204);
    assert_eq!(s.get("/crm/v8/Accounts/deleted", &token).await.status, 204);
    s.running.stop().await;
}

/// Upsert Records: the record found by `duplicate_check_fields` is updated (`action: update`,
/// `duplicate_field`), otherwise one is inserted.
#[tokio::test]
async fn upsert_updates_by_the_duplicate_check_fields() {
    let s = start().await;
    let token = s.token().await;
    let made = s
        .call(Method::POST, "/crm/v8/Contacts", &token, Some(json!({"data": [{"Last_Name": "Keller", "Email": "anna@northwind.example"}]})))
        .await;
    let id = made.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let r = s
        .call(
            Method::POST,
            "/crm/v8/Contacts/upsert",
            &token,
            Some(json!({"data": [
                {"Last_Name": "Keller", "First_Name": "Anna", "Email": "ANNA@northwind.example"},
                {"Last_Name": "Weber", "Email": "jonas@northwind.example"},
            ], "duplicate_check_fields": ["Email"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["data"][0]["action"].as_str(), r.body["data"][0]["duplicate_field"].as_str()), (Some("update"), Some("Email")));
    assert_eq!(r.body["data"][0]["details"]["id"], id.as_str());
    assert_eq!((r.body["data"][1]["action"].as_str(), r.body["data"][1]["duplicate_field"].as_str()), (Some("insert"), None));
    assert_eq!(s.get(&format!("/crm/v8/Contacts/{id}"), &token).await.body["data"][0]["Full_Name"], "Anna Keller");
    assert_eq!(s.get("/crm/v8/Contacts/actions/count", &token).await.body, json!({"count": 2}));
    let by_name = s.call(Method::POST, "/crm/v8/Accounts/upsert", &token, Some(json!({"data": [{"Account_Name": "Initech"}]}))).await;
    assert_eq!(by_name.body["data"][0]["action"], "insert");
    let again = s
        .call(
            Method::POST,
            "/crm/v8/Accounts/upsert",
            &token,
            Some(json!({"data": [{"Account_Name": "Initech", "Website": "https://initech.example"}]})),
        )
        .await;
    assert_eq!(
        (again.body["data"][0]["action"].as_str(), again.body["data"][0]["duplicate_field"].as_str()),
        (Some("update"), Some("Account_Name"))
    );
    s.running.stop().await;
}

/// Search Records (`criteria` with `and`/`or`, `email`, `word`; 204 when nothing matches;
/// `INVALID_QUERY` for a bad criteria) and Record Count with the same filters.
#[tokio::test]
async fn search_by_criteria_email_and_word_and_count() {
    let s = start().await;
    let token = s.token().await;
    let contacts = json!({"data": [
        {"First_Name": "Anna", "Last_Name": "Keller", "Email": "anna@northwind.example", "Title": "CFO"},
        {"First_Name": "Jonas", "Last_Name": "Keller", "Email": "jonas@northwind.example", "Title": "CEO"},
        {"First_Name": "Marcus", "Last_Name": "Lee", "Email": "marcus@fabrikam.example", "Title": "CFO"},
    ]});
    let made = s.call(Method::POST, "/crm/v8/Contacts", &token, Some(contacts)).await;
    let made: Vec<String> =
        made.body["data"].as_array().unwrap().iter().map(|a| a["details"]["id"].as_str().unwrap().to_string()).collect();
    let search = |q: &'static str| {
        s.http
            .get(format!("{}/crm/v8/Contacts/search", s.url))
            .query(&[q.split_once('=').unwrap()])
            .header("authorization", format!("Zoho-oauthtoken {token}"))
            .send()
    };
    let found = |a: &support::Answer| -> HashSet<String> { ids(a).into_iter().collect() };

    let a = support::answer(search("criteria=((Last_Name:equals:Keller)and(Title:equals:CFO))").await.unwrap()).await;
    assert_eq!(found(&a), HashSet::from([made[0].clone()]));
    assert_eq!(a.body["info"]["count"], 1);
    let a = support::answer(search("criteria=((Title:equals:CEO)or(Last_Name:starts_with:le))").await.unwrap()).await;
    assert_eq!(found(&a), HashSet::from([made[1].clone(), made[2].clone()]));
    let a = support::answer(search("email=MARCUS@fabrikam.example").await.unwrap()).await;
    assert_eq!(found(&a), HashSet::from([made[2].clone()]));
    let a = support::answer(search("word=northwind").await.unwrap()).await;
    assert_eq!(found(&a), HashSet::from([made[0].clone(), made[1].clone()]));
    assert_eq!(search("criteria=(Last_Name:equals:Nobody)").await.unwrap().status(), 204);
    assert_error(&support::answer(search("criteria=(Last_Name:like:K)").await.unwrap()).await, 400, "INVALID_QUERY");
    assert_error(&support::answer(search("criteria=(Shoe_Size:equals:9)").await.unwrap()).await, 400, "INVALID_QUERY");
    assert_error(&s.get("/crm/v8/Contacts/search", &token).await, 400, "REQUIRED_PARAM_MISSING");

    assert_eq!(s.get("/crm/v8/Contacts/actions/count", &token).await.body, json!({"count": 3}));
    let counted = s
        .http
        .get(format!("{}/crm/v8/Contacts/actions/count", s.url))
        .query(&[("criteria", "(Title:equals:CFO)")])
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(counted.json::<Value>().await.unwrap(), json!({"count": 2}));
    s.running.stop().await;
}

/// Get Modules, Get Fields, Get Layouts, get pipelines (the Standard pipeline with Zoho's
/// default stages, probabilities and forecast types), Get Users (`type`), Get User, Get
/// Organization.
#[tokio::test]
async fn settings_users_and_org() {
    let s = start().await;
    let token = s.token().await;
    let modules = s.get("/crm/v8/settings/modules", &token).await;
    let names: Vec<&str> = modules.body["modules"].as_array().unwrap().iter().map(|m| m["api_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Deals", "Contacts", "Accounts"]);

    assert_error(&s.get("/crm/v8/settings/fields", &token).await, 400, "REQUIRED_PARAM_MISSING");
    let fields = s.get("/crm/v8/settings/fields?module=Deals", &token).await;
    let stage = fields.body["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Stage").unwrap();
    assert_eq!(
        (stage["data_type"].as_str(), stage["system_mandatory"].as_bool(), stage["custom_field"].as_bool()),
        (Some("picklist"), Some(true), Some(false))
    );
    assert_eq!(stage["pick_list_values"][0]["actual_value"], "Qualification");
    let account = fields.body["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Account_Name").unwrap();
    assert_eq!((account["data_type"].as_str(), account["lookup"]["module"]["api_name"].as_str()), (Some("lookup"), Some("Accounts")));

    let layouts = s.get("/crm/v8/settings/layouts?module=Deals", &token).await;
    assert_eq!(layouts.body["layouts"][0]["name"], "Standard");
    let layout_id = layouts.body["layouts"][0]["id"].as_str().unwrap().to_string();
    assert_error(&s.get("/crm/v8/settings/pipeline", &token).await, 400, "REQUIRED_PARAM_MISSING");
    let pipelines = s.get(&format!("/crm/v8/settings/pipeline?layout_id={layout_id}"), &token).await;
    assert_eq!(pipelines.status, 200, "{}", pipelines.body);
    let standard = &pipelines.body["pipeline"][0];
    assert_eq!((standard["display_value"].as_str(), standard["default"].as_bool()), (Some("Standard"), Some(true)));
    let stages: Vec<(&str, i64, &str)> = standard["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["display_value"].as_str().unwrap(), m["probability"].as_i64().unwrap(), m["forecast_type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("Qualification", 10, "Open"),
            ("Needs Analysis", 20, "Open"),
            ("Value Proposition", 40, "Open"),
            ("Identify Decision Makers", 60, "Open"),
            ("Proposal/Price Quote", 75, "Open"),
            ("Negotiation/Review", 90, "Open"),
            ("Closed Won", 100, "Closed Won"),
            ("Closed Lost", 0, "Closed Lost"),
            ("Closed-Lost to Competition", 0, "Closed Lost"),
        ]
    );
    assert_eq!(standard["maps"][6]["forecast_category"]["name"], "Closed");
    assert_eq!(pipelines.body["pipeline"][1]["display_value"], "Renewals");

    let all = s.get("/crm/v8/users?type=AllUsers", &token).await;
    let active = s.get("/crm/v8/users?type=ActiveUsers", &token).await;
    assert_eq!((all.body["users"].as_array().unwrap().len(), active.body["users"].as_array().unwrap().len()), (5, 4));
    let me = s.get("/crm/v8/users?type=CurrentUser", &token).await;
    assert_eq!(me.body["users"].as_array().unwrap().len(), 1);
    assert_eq!(me.body["users"][0]["email"], "priya@zoho-sandbox.example", "the token's user");
    let first = all.body["users"][0]["id"].as_str().unwrap();
    let one = s.get(&format!("/crm/v8/users/{first}"), &token).await;
    assert_eq!(one.body["users"][0]["email"], "priya@zoho-sandbox.example");
    assert_eq!(s.get("/crm/v8/users/42", &token).await.status, 204);
    let org = s.get("/crm/v8/org", &token).await;
    assert_eq!(org.body["org"][0]["id"], "5725767");
    s.running.stop().await;
}

/// Create Field: a custom text field ("Tandem record ID") that records then take and give back.
#[tokio::test]
async fn a_created_custom_field_takes_values() {
    let s = start().await;
    let token = s.token().await;
    let before = s
        .call(
            Method::POST,
            "/crm/v8/Deals",
            &token,
            Some(json!({"data": [{"Deal_Name": "Early", "Stage": "Qualification", "Tandem_record_ID": "hs-1"}]})),
        )
        .await;
    let early = before.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    assert!(
        s.get(&format!("/crm/v8/Deals/{early}"), &token).await.body["data"][0].get("Tandem_record_ID").is_none(),
        "unknown fields are ignored"
    );

    let r = s
        .call(
            Method::POST,
            "/crm/v8/settings/fields?module=Deals",
            &token,
            Some(json!({"fields": [{"field_label": "Tandem record ID", "data_type": "text", "length": 64}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["fields"][0]["code"].as_str(), r.body["fields"][0]["status"].as_str()), (Some("SUCCESS"), Some("success")));
    let again = s
        .call(
            Method::POST,
            "/crm/v8/settings/fields?module=Deals",
            &token,
            Some(json!({"fields": [{"field_label": "Tandem record ID", "data_type": "text"}]})),
        )
        .await;
    assert_eq!((again.status, again.body["fields"][0]["code"].as_str()), (400, Some("DUPLICATE_DATA")));
    let fields = s.get("/crm/v8/settings/fields?module=Deals", &token).await;
    let field = fields.body["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Tandem_record_ID").expect("listed");
    // Zoho's SDKs refresh their field cache from the modules changed since they last looked.
    let changed = s
        .http
        .get(format!("{}/crm/v8/settings/modules", s.url))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .header("If-Modified-Since", "2025-01-01T00:00:00+00:00")
        .send()
        .await
        .unwrap();
    let changed = support::answer(changed).await;
    let names: Vec<&str> = changed.body["modules"].as_array().unwrap().iter().map(|m| m["api_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Deals"]);
    let later = sandbox::zoho::zoho_time(sandbox::time::now_ms() + 60_000);
    let unchanged = s
        .http
        .get(format!("{}/crm/v8/settings/modules", s.url))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .header("If-Modified-Since", later)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!((field["custom_field"].as_bool(), field["length"].as_u64()), (Some(true), Some(64)));

    let made = s
        .call(
            Method::POST,
            "/crm/v8/Deals",
            &token,
            Some(json!({"data": [{"Deal_Name": "Synced", "Stage": "Qualification", "Tandem_record_ID": "hs-2"}]})),
        )
        .await;
    let id = made.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("/crm/v8/Deals/{id}"), &token).await.body["data"][0]["Tandem_record_ID"], "hs-2");
    let too_long =
        s.call(Method::PUT, &format!("/crm/v8/Deals/{id}"), &token, Some(json!({"data": [{"Tandem_record_ID": "x".repeat(65)}]}))).await;
    assert_eq!((too_long.status, too_long.body["data"][0]["code"].as_str()), (400, Some("INVALID_DATA")));
    let search = s
        .http
        .get(format!("{}/crm/v8/Deals/search", s.url))
        .query(&[("criteria", "(Tandem_record_ID:equals:hs-2)")])
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&support::answer(search).await), vec![id]);
    s.running.stop().await;
}

/// API credits over a rolling 24 hours: every call costs one, however many records it carries;
/// past the total, 429 `LIMIT_EXCEEDED` until the calls of 24 hours ago drop out of the window.
#[tokio::test]
async fn api_credits_are_spent_over_a_rolling_24_hours() {
    let s = start_with(|c| c.daily_credits = 4, None).await;
    let token = s.token().await;
    let set_clock = |now: i64| s.control(Method::PUT, "/_sandbox/clock", json!({"now": now}));
    assert_eq!(set_clock(at("2026-05-04T10:00:00Z")).await.status, 200);
    let records: Vec<Value> = (0..25).map(|i| json!({"Account_Name": format!("A{i}")})).collect();
    assert_eq!(s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": records}))).await.status, 201);
    assert_eq!(s.control(Method::GET, "/_sandbox/credits", Value::Null).await.body["used"], 1, "25 records in one call cost 1 credit");
    assert_eq!(set_clock(at("2026-05-04T16:00:00Z")).await.status, 200);
    for _ in 0..3 {
        assert_eq!(s.get("/crm/v8/Accounts?fields=Account_Name", &token).await.status, 200);
    }
    let refused = s.get("/crm/v8/Accounts?fields=Account_Name", &token).await;
    assert_error(&refused, 429, "LIMIT_EXCEEDED");
    // 24 hours after the write, its credit is back; the reads of 16:00 still count.
    assert_eq!(set_clock(at("2026-05-05T09:59:59Z")).await.status, 200);
    assert_error(&s.get("/crm/v8/org", &token).await, 429, "LIMIT_EXCEEDED");
    // (A second later than the write's clock reading, which the write itself took a moment after.)
    assert_eq!(set_clock(at("2026-05-05T10:00:01Z")).await.status, 200);
    assert_eq!(s.get("/crm/v8/org", &token).await.status, 200);
    assert_error(&s.get("/crm/v8/org", &token).await, 429, "LIMIT_EXCEEDED");
    s.running.stop().await;
}

/// The concurrency limit: an app's calls in flight at once beyond it are refused 429
/// `TOO_MANY_REQUESTS`; another app's calls are counted apart. The calls held in flight wait on
/// a latency only the test ends (`PUT /_sandbox/faults` again), and the test waits for what the
/// sandbox counts in flight (`GET /_sandbox/in-flight`): nothing depends on timing.
#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_refused() {
    let s = start_with(
        |c| {
            c.concurrency_limit = 2;
            c.clients.push(sandbox::OAuthClient {
                client_id: "1000.OTHERAPP".into(),
                client_secret: "other".into(),
                redirect_uris: vec![],
            });
        },
        None,
    )
    .await;
    let token = s.token().await;
    let other = s.control(Method::POST, "/_sandbox/tokens", json!({"client_id": "1000.OTHERAPP", "scopes": ["ZohoCRM.org.READ"]})).await;
    let other = other.body["access_token"].as_str().unwrap().to_string();
    let in_flight = async |app: &str| s.control(Method::GET, "/_sandbox/in-flight", Value::Null).await.body[app].as_u64().unwrap_or(0);
    // An hour of latency: the calls stay in flight until the faults are cleared.
    s.control(Method::PUT, "/_sandbox/faults", json!({"latency_ms": 3_600_000})).await;
    let held = futures_util::future::join_all((0..2).map(|_| s.get("/crm/v8/org", &token)));
    let checks = async {
        wait_until("both slots are taken", async || in_flight(CLIENT_ID).await == 2).await;
        let refused = s.get("/crm/v8/org", &token).await;
        assert_error(&refused, 429, "TOO_MANY_REQUESTS");
        // The limit is per connected app: another app's call takes a slot of its own.
        let theirs = s.get("/crm/v8/org", &other);
        let meanwhile = async {
            wait_until("the other app's call is in flight", async || in_flight("1000.OTHERAPP").await == 1).await;
            assert_eq!(in_flight(CLIENT_ID).await, 2);
            s.control(Method::PUT, "/_sandbox/faults", json!({})).await;
        };
        let (theirs, ()) = tokio::join!(theirs, meanwhile);
        theirs
    };
    let (mine, theirs) = tokio::join!(held, checks);
    assert!(mine.iter().all(|a| a.status == 200), "the held calls are answered once released");
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    wait_until("the slots are given back", async || in_flight(CLIENT_ID).await == 0).await;

    // `PUT /_sandbox/rate-limit` sets the concurrency limit.
    assert_eq!(s.control(Method::PUT, "/_sandbox/rate-limit", json!({"limit": 1})).await.status, 204);
    s.control(Method::PUT, "/_sandbox/faults", json!({"latency_ms": 3_600_000})).await;
    let one = s.get("/crm/v8/org", &token);
    let checks = async {
        wait_until("the one slot is taken", async || in_flight(CLIENT_ID).await == 1).await;
        assert_error(&s.get("/crm/v8/org", &token).await, 429, "TOO_MANY_REQUESTS");
        s.control(Method::PUT, "/_sandbox/faults", json!({})).await;
    };
    let (one, ()) = tokio::join!(one, checks);
    assert_eq!(one.status, 200);
    assert_eq!(s.get("/crm/v8/org", &token).await.status, 200, "slots are given back");
    s.running.stop().await;
}

/// Expired, revoked and missing tokens: 401 `INVALID_TOKEN` / `AUTHENTICATION_FAILURE`; a scope
/// that does not cover the call: 401 `OAUTH_SCOPE_MISMATCH`; `Bearer` is taken too.
#[tokio::test]
async fn tokens_and_scopes_are_checked() {
    let s = start().await;
    let token = s.token().await;
    let bearer = s.http.get(format!("{}/crm/v8/org", s.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bearer.status(), 200);
    let none = support::answer(s.http.get(format!("{}/crm/v8/org", s.url)).send().await.unwrap()).await;
    assert_error(&none, 401, "AUTHENTICATION_FAILURE");
    assert_error(&s.get("/crm/v8/org", "1000.unknown").await, 401, "INVALID_TOKEN");

    let deals_read = s.mint(&["ZohoCRM.modules.deals.READ"]).await;
    assert_eq!(s.get("/crm/v8/Deals?fields=Deal_Name", &deals_read).await.status, 204);
    assert_error(&s.get("/crm/v8/Contacts?fields=Last_Name", &deals_read).await, 401, "OAUTH_SCOPE_MISMATCH");
    let write =
        s.call(Method::POST, "/crm/v8/Deals", &deals_read, Some(json!({"data": [{"Deal_Name": "x", "Stage": "Qualification"}]}))).await;
    assert_error(&write, 401, "OAUTH_SCOPE_MISMATCH");
    assert_error(&s.get("/crm/v8/settings/fields?module=Deals", &deals_read).await, 401, "OAUTH_SCOPE_MISMATCH");

    assert_eq!(s.control(Method::POST, "/_sandbox/expire-tokens", json!({})).await.status, 200);
    assert_error(&s.get("/crm/v8/org", &token).await, 401, "INVALID_TOKEN");
    let fresh = s.token().await;
    assert_eq!(s.get("/crm/v8/org", &fresh).await.status, 200);
    assert_eq!(s.control(Method::POST, "/_sandbox/revoke-tokens", json!({})).await.status, 200);
    assert_error(&s.get("/crm/v8/org", &fresh).await, 401, "INVALID_TOKEN");
    s.running.stop().await;
}

/// `PUT /_sandbox/faults`: 429, 500, 503 and 400 in Zoho's error shape, dropped connections,
/// latency, scoped to a method and path.
#[tokio::test]
async fn injected_faults_answer_in_zohos_shape() {
    let s = start().await;
    let token = s.token().await;
    let set = |faults: Value| s.control(Method::PUT, "/_sandbox/faults", faults);
    for (fault, status, code) in [
        ("rate_429", 429, "TOO_MANY_REQUESTS"),
        ("rate_500", 500, "INTERNAL_ERROR"),
        ("rate_503", 503, "INTERNAL_ERROR"),
        ("rate_400", 400, "INVALID_DATA"),
    ] {
        let mut faults = json!({});
        faults[fault] = json!(1.0);
        assert_eq!(set(faults).await.status, 200);
        assert_error(&s.get("/crm/v8/Deals?fields=Deal_Name", &token).await, status, code);
    }
    set(json!({"rate_drop": 1.0})).await;
    let dropped = async {
        s.http.get(format!("{}/crm/v8/org", s.url)).header("authorization", format!("Zoho-oauthtoken {token}")).send().await?.bytes().await
    };
    assert!(dropped.await.is_err(), "the connection must fail");
    set(json!({"rate_500": 1.0, "only_method": "POST", "only_path": "/crm/v8/Deals"})).await;
    assert_eq!(s.get("/crm/v8/Deals?fields=Deal_Name", &token).await.status, 204);
    let refused =
        s.call(Method::POST, "/crm/v8/Deals", &token, Some(json!({"data": [{"Deal_Name": "x", "Stage": "Qualification"}]}))).await;
    assert_error(&refused, 500, "INTERNAL_ERROR");
    assert_eq!(s.control(Method::GET, "/_sandbox/summary", Value::Null).await.body["deals"]["live"], 0, "nothing was stored");
    set(json!({"latency_ms": 200})).await;
    let started = Instant::now();
    assert_eq!(s.get("/crm/v8/org", &token).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    s.running.stop().await;
}

/// The organisation, its records and custom fields, the recycle bin and the app's tokens survive
/// a restart.
#[tokio::test]
async fn the_organisation_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("sandbox-zoho-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("zoho.json");
    let s = start_with(|_| {}, Some(file.clone())).await;
    let minted = s.control(Method::POST, "/_sandbox/tokens", json!({"client_id": CLIENT_ID, "scopes": support::ALL_SCOPES})).await;
    let (token, refresh) =
        (minted.body["access_token"].as_str().unwrap().to_string(), minted.body["refresh_token"].as_str().unwrap().to_string());
    s.call(
        Method::POST,
        "/crm/v8/settings/fields?module=Contacts",
        &token,
        Some(json!({"fields": [{"field_label": "Tandem record ID", "data_type": "text"}]})),
    )
    .await;
    let made = s
        .call(
            Method::POST,
            "/crm/v8/Contacts",
            &token,
            Some(json!({"data": [{"Last_Name": "Kept", "Email": "kept@example.com", "Tandem_record_ID": "hs-9"}, {"Last_Name": "Gone"}]})),
        )
        .await;
    let kept = made.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let gone = made.body["data"][1]["details"]["id"].as_str().unwrap().to_string();
    assert_eq!(s.call(Method::DELETE, &format!("/crm/v8/Contacts/{gone}"), &token, None).await.status, 200);
    s.running.stop().await;
    assert!(file.exists());

    let s = start_with(|_| {}, Some(file.clone())).await;
    let got = s.get(&format!("/crm/v8/Contacts/{kept}"), &token).await;
    assert_eq!(got.status, 200, "the token and the contact were kept: {}", got.body);
    assert_eq!(got.body["data"][0]["Tandem_record_ID"], "hs-9");
    assert_eq!(s.get("/crm/v8/Contacts/deleted", &token).await.body["data"][0]["id"], gone.as_str());
    let dup =
        s.call(Method::POST, "/crm/v8/Contacts", &token, Some(json!({"data": [{"Last_Name": "Twin", "Email": "KEPT@example.com"}]}))).await;
    assert_eq!(dup.body["data"][0]["code"], "DUPLICATE_DATA", "the email index is rebuilt on load");
    let r = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", &refresh),
        ])
        .await;
    assert!(r.body["access_token"].is_string(), "{}", redacted(&r.body));
    s.running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The control API: seed, summary, a record created and edited as a Zoho user at a chosen time,
/// credits, reset.
#[tokio::test]
async fn control_api_seeds_edits_and_resets() {
    let s = start().await;
    let token = s.token().await;
    s.seed(20, 15, 5).await;
    let summary = s.control(Method::GET, "/_sandbox/summary", Value::Null).await.body;
    assert_eq!(
        (summary["deals"]["live"].as_u64(), summary["contacts"]["live"].as_u64(), summary["accounts"]["live"].as_u64()),
        (Some(20), Some(15), Some(5))
    );
    let deals = s.get("/crm/v8/Deals?fields=Deal_Name,Stage,Account_Name,Contact_Name", &token).await;
    assert!(
        deals.body["data"].as_array().unwrap().iter().all(|d| d["Account_Name"]["name"].is_string()),
        "seeded deals name their account: {}",
        deals.body
    );

    let made = s.control(Method::POST, "/_sandbox/Deals", json!({"fields": {"Deal_Name": "Made in Zoho", "Stage": "Qualification"}, "timestamp": at("2026-03-01T08:00:00Z"), "user": "tomas@zoho-sandbox.example"})).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();
    let edit = s
        .control(
            Method::PATCH,
            &format!("/_sandbox/Deals/{id}"),
            json!({"fields": {"Stage": "Closed Won"}, "timestamp": at("2026-03-02T09:30:00Z")}),
        )
        .await;
    assert_eq!(edit.status, 204, "{}", edit.body);
    let got = s.get(&format!("/crm/v8/Deals/{id}"), &token).await.body["data"][0].clone();
    assert_eq!(
        (got["Created_Time"].as_str(), got["Modified_Time"].as_str()),
        (Some("2026-03-01T08:00:00+00:00"), Some("2026-03-02T09:30:00+00:00"))
    );
    assert_eq!(
        (got["Created_By"]["name"].as_str(), got["Modified_By"]["name"].as_str(), got["Stage"].as_str()),
        (Some("Tomas Novak"), Some("Priya Raman"), Some("Closed Won"))
    );
    let refused = s.control(Method::PATCH, &format!("/_sandbox/Deals/{id}"), json!({"fields": {"Stage": "Nowhere"}})).await;
    assert_eq!((refused.status, refused.body["code"].as_str()), (400, Some("INVALID_DATA")));

    let credits = s.control(Method::PUT, "/_sandbox/credits", json!({"total": 1000})).await.body;
    assert_eq!(credits["total"], 1000);
    assert_eq!(s.control(Method::POST, "/_sandbox/reset", json!({})).await.status, 204);
    let summary = s.control(Method::GET, "/_sandbox/summary", Value::Null).await.body;
    assert_eq!((summary["deals"]["live"].as_u64(), summary["pipelines"].as_u64()), (Some(0), Some(2)));
    assert_eq!(s.get("/crm/v8/org", &token).await.status, 200, "the app's tokens stay");
    assert_eq!(s.control(Method::GET, "/_sandbox/credits", Value::Null).await.body["used"], 1, "the credits spent start again");
    s.running.stop().await;
}

/// Notifications: Enable (`Deals.all` with a token), Get, deliveries naming the operation and
/// the ids with the token echoed, Disable of an event, Delete; a channel past its expiry gets
/// nothing.
#[tokio::test]
async fn notifications_deliver_changes_until_the_channel_expires() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/zoho",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/zoho", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = start().await;
    let token = s.token().await;
    assert_eq!(s.get("/crm/v8/actions/watch", &token).await.status, 204);
    let enabled = s
        .call(Method::POST, "/crm/v8/actions/watch", &token, Some(json!({"watch": [{"channel_id": "1000000068001", "events": ["Deals.all", "Contacts.create"], "notify_url": notify_url, "token": "tandem-secret"}]})))
        .await;
    assert_eq!(enabled.status, 201, "{}", enabled.body);
    assert_eq!(enabled.body["watch"][0]["code"], "SUCCESS");
    let bad = s
        .call(
            Method::POST,
            "/crm/v8/actions/watch",
            &token,
            Some(json!({"watch": [{"channel_id": "2", "events": ["Deals.nothing"], "notify_url": notify_url}]})),
        )
        .await;
    assert_eq!((bad.status, bad.body["watch"][0]["code"].as_str()), (202, Some("INVALID_DATA")));
    let listed = s.get("/crm/v8/actions/watch", &token).await;
    assert_eq!(listed.body["watch"][0]["token"], "tandem-secret");

    let made =
        s.call(Method::POST, "/crm/v8/Deals", &token, Some(json!({"data": [{"Deal_Name": "Watched", "Stage": "Qualification"}]}))).await;
    let id = made.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    s.call(Method::PUT, &format!("/crm/v8/Deals/{id}"), &token, Some(json!({"data": [{"Stage": "Closed Won"}]}))).await;
    wait_until("two deliveries", async || received.lock().unwrap().len() >= 2).await;
    {
        let got = received.lock().unwrap();
        let ops: Vec<&str> = got.iter().map(|n| n["operation"].as_str().unwrap()).collect();
        assert_eq!(ops, ["insert", "update"]);
        assert!(got.iter().all(|n| n["ids"] == json!([id])
            && n["token"] == "tandem-secret"
            && n["module"] == "Deals"
            && n["channel_id"] == "1000000068001"));
    }
    let disabled = s
        .call(
            Method::PATCH,
            "/crm/v8/actions/watch",
            &token,
            Some(json!({"watch": [{"channel_id": "1000000068001", "events": ["Deals.all"], "_delete_events": true}]})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    s.call(Method::DELETE, &format!("/crm/v8/Deals/{id}"), &token, None).await;
    s.call(Method::POST, "/crm/v8/Contacts", &token, Some(json!({"data": [{"Last_Name": "Seen"}]}))).await;
    wait_until("a third delivery", async || received.lock().unwrap().len() >= 3).await;
    assert_eq!(received.lock().unwrap().last().unwrap()["module"], "Contacts", "the deal's deletion is no longer watched");
    assert_eq!(received.lock().unwrap().len(), 3);

    let removed = s.call(Method::DELETE, "/crm/v8/actions/watch?channel_ids=1000000068001", &token, None).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(s.get("/crm/v8/actions/watch", &token).await.status, 204);

    // A channel expires by the sandbox's clock: an hour by default, then the clock moves on two.
    let short = s
        .call(
            Method::POST,
            "/crm/v8/actions/watch",
            &token,
            Some(json!({"watch": [{"channel_id": "3", "events": ["Accounts.all"], "notify_url": notify_url}]})),
        )
        .await;
    assert_eq!(short.status, 201, "{}", short.body);
    assert_eq!(s.control(Method::PUT, "/_sandbox/clock", json!({"offset_ms": 2 * 3_600_000})).await.status, 200);
    s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": [{"Account_Name": "Too late"}]}))).await;
    let expired = async || s.control(Method::GET, "/_sandbox/notifications", Value::Null).await.body["expired"] == 1;
    wait_until("the change is counted as too late for the channel", expired).await;
    assert_eq!(received.lock().unwrap().len(), 3, "nothing reaches an expired channel");
    s.running.stop().await;
}

/// A snapshot written in chunks loads back as the same state: the records, their values and
/// lookups, the email index, the fields and the tokens.
#[test]
fn snapshot_loads_back_as_the_same_state() {
    use sandbox::persist::Snapshots;
    use sandbox::zoho::data::Module;
    let zoho = sandbox::Zoho::new(sandbox::ZohoConfig::new(vec![support::client()]), None);
    sandbox::zoho::seed::generate(&mut zoho.write(), 5_000, 5_000, 200, 3, 1_700_000_000_000);
    let issued = zoho.oauth.mint(CLIENT_ID, vec!["ZohoCRM.modules.ALL".into()]).unwrap();
    let mut out = Vec::new();
    zoho.write_snapshot(&mut out).unwrap();
    let loaded: sandbox::zoho::data::ZohoData = serde_json::from_slice(&out).unwrap();
    let reloaded = sandbox::Zoho::new(sandbox::ZohoConfig::new(vec![support::client()]), Some(loaded));

    let before = zoho.read();
    let after = reloaded.read();
    assert_eq!((after.deals.len(), after.contacts.len(), after.accounts.len()), (5_000, 5_000, 200));
    let deal = before.deals.values().nth(1_234).unwrap();
    let kept = after.deals.get(&deal.id).expect("the deal is kept");
    assert_eq!(kept.text("Deal_Name"), deal.text("Deal_Name"));
    assert!(kept.text("Deal_Name").is_some_and(|n| n.contains(" #")));
    assert_eq!(kept.fields.get("Amount"), deal.fields.get("Amount"));
    assert!(kept.fields["Amount"].as_f64().is_some());
    assert_eq!(kept.lookup("Account_Name"), deal.lookup("Account_Name"));
    assert!(after.accounts.contains_key(&kept.lookup("Account_Name").unwrap()), "the lookup names a kept account");
    assert_eq!((kept.created_time, kept.modified_time), (1_700_000_000_000, 1_700_000_000_000));
    let contact = before.contacts.values().last().unwrap();
    let email = contact.text("Email").unwrap().to_lowercase();
    assert_eq!(after.contacts.with_key(&format!("email:{email}")), vec![contact.id], "the email index is rebuilt");
    assert_eq!(after.fields_of(Module::Deals).len(), before.fields_of(Module::Deals).len());
    assert_eq!(after.pipelines[1].name, "Renewals");
    assert_eq!(after.next_id, before.next_id);
    assert!(reloaded.oauth.access(&issued.access_token).is_ok(), "the access token is kept");
    assert!(reloaded.oauth.refresh_grant(&issued.refresh_token).is_some(), "the refresh token is kept");
}

/// Ids of a write's per-record answers.
fn written(a: &support::Answer) -> Vec<String> {
    a.body["data"].as_array().unwrap().iter().map(|r| r["details"]["id"].as_str().unwrap().to_string()).collect()
}

/// A deeply nested or long `criteria` is refused 400 `INVALID_QUERY` (Zoho's caps: 10 criteria,
/// nesting 10 deep), never parsed into a stack overflow.
#[tokio::test]
async fn criteria_past_zohos_caps_are_refused() {
    let s = start().await;
    let token = s.token().await;
    let deep = format!("{}(Last_Name:equals:K){}", "(".repeat(10_000), ")".repeat(10_000));
    assert_error(&s.get_query("/crm/v8/Contacts/search", &[("criteria", &deep)], &token).await, 400, "INVALID_QUERY");
    let eleven = (0..11).map(|i| format!("(Last_Name:equals:K{i})")).collect::<Vec<_>>().join("or");
    assert_error(&s.get_query("/crm/v8/Contacts/search", &[("criteria", &eleven)], &token).await, 400, "INVALID_QUERY");
    let ten = (0..10).map(|i| format!("(Last_Name:equals:K{i})")).collect::<Vec<_>>().join("or");
    assert_eq!(s.get_query("/crm/v8/Contacts/search", &[("criteria", &ten)], &token).await.status, 204);
    assert_eq!(s.get("/crm/v8/org", &token).await.status, 200, "the sandbox still serves");
    s.running.stop().await;
}

/// `page` is an int32 and reaches the 2,000th record (`page=10&per_page=200` is the last page);
/// past it, or past int32, the call is refused the same way on every list; a forged page token
/// at the last page does not overflow.
#[tokio::test]
async fn pages_are_bounded_on_every_list() {
    use base64::Engine as _;
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 0, 3).await;
    assert_eq!(s.get("/crm/v8/Accounts?fields=Account_Name&page=10&per_page=200", &token).await.status, 204, "the last page is served");
    for path in [
        "/crm/v8/Accounts?fields=Account_Name&page=4294967296",
        "/crm/v8/Accounts?fields=Account_Name&page=18446744073709551616",
        "/crm/v8/Accounts/deleted?page=4294967296",
        "/crm/v8/users?page=4294967296",
        "/crm/v8/actions/watch?page=4294967296",
    ] {
        assert_error(&s.get(path, &token).await, 400, "INVALID_DATA");
    }
    for path in [
        "/crm/v8/Accounts?fields=Account_Name&page=2001&per_page=1",
        "/crm/v8/Accounts/deleted?page=11",
        "/crm/v8/users?page=4294967295&per_page=200",
        "/crm/v8/actions/watch?page=11",
    ] {
        assert_error(&s.get(path, &token).await, 400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED");
    }
    let search = s.get_query("/crm/v8/Accounts/search", &[("word", "a"), ("page", "11")], &token).await;
    assert_error(&search, 400, "LIMIT_REACHED");
    assert_eq!(s.get_query("/crm/v8/Accounts/search", &[("word", "a"), ("page", "10")], &token).await.status, 204);

    let forged = |page: u64| {
        let raw = json!({"module": "Accounts", "sort_by": "Id", "desc": true, "since": null,
            "after": [i64::MAX, u64::MAX], "page": page, "expires": i64::MAX});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.to_string())
    };
    let last = s.get(&format!("/crm/v8/Accounts?fields=Account_Name&per_page=1&page_token={}", forged(u64::from(u32::MAX))), &token).await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!(last.body["info"]["page"], u32::MAX);
    assert!(last.body["info"]["next_page_token"].is_string());
    let beyond = s.get(&format!("/crm/v8/Accounts?fields=Account_Name&per_page=1&page_token={}", forged(u64::MAX)), &token).await;
    assert_error(&beyond, 400, "INVALID_DATA");
    s.running.stop().await;
}

/// Page tokens carry the list they continue: `If-Modified-Since` and `sort_by=Modified_Time`
/// go on through them; a token of another module or an expired one is refused; `ids=` narrows
/// the list and a bad id is refused.
#[tokio::test]
async fn page_tokens_keep_their_list() {
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 0, 5).await;
    let all = ids(&s.get("/crm/v8/Accounts?fields=Account_Name&sort_by=id&sort_order=asc", &token).await);
    for (i, id) in all.iter().enumerate().take(3) {
        let t = at("2030-01-01T00:00:00Z") + i as i64 * 60_000;
        let r = s
            .control(Method::PATCH, &format!("/_sandbox/Accounts/{id}"), json!({"fields": {"Billing_City": "Oslo"}, "timestamp": t}))
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let path = "/crm/v8/Accounts?fields=Account_Name&sort_by=Modified_Time&sort_order=asc&per_page=2";
    let first = s.get_since(path, "2029-12-31T00:00:00+00:00", &token).await;
    assert_eq!(ids(&first), all[..2].to_vec());
    let next = first.body["info"]["next_page_token"].as_str().unwrap().to_string();
    let second = s.get(&format!("{path}&page_token={next}"), &token).await;
    assert_eq!(ids(&second), all[2..3].to_vec(), "the token goes on with the changes only");
    assert_eq!((second.body["info"]["more_records"].as_bool(), second.body["info"]["page"].as_u64()), (Some(false), Some(2)));
    let elsewhere = s.get(&format!("/crm/v8/Deals?fields=Deal_Name&page_token={next}"), &token).await;
    assert_error(&elsewhere, 400, "INVALID_DATA");
    assert_eq!(s.control(Method::PUT, "/_sandbox/clock", json!({"offset_ms": 2 * 86_400_000})).await.status, 200);
    let expired = s.get(&format!("{path}&page_token={next}"), &token).await;
    assert_error(&expired, 400, "INVALID_DATA");
    assert_eq!(s.control(Method::PUT, "/_sandbox/clock", json!({"offset_ms": 0})).await.status, 200);

    let some = s.get(&format!("/crm/v8/Accounts?fields=Account_Name&ids={},{}", all[0], all[4]), &token).await;
    assert_eq!(ids(&some).into_iter().collect::<HashSet<_>>(), HashSet::from([all[0].clone(), all[4].clone()]));
    assert_error(&s.get("/crm/v8/Accounts?fields=Account_Name&ids=", &token).await, 400, "INVALID_DATA");
    assert_error(&s.get("/crm/v8/Accounts?fields=Account_Name&ids=12,abc", &token).await, 400, "INVALID_DATA");
    s.running.stop().await;
}

/// `If-Modified-Since` answers 304 only when nothing changed at all: a later page past the
/// changes is merely empty (204).
#[tokio::test]
async fn if_modified_since_past_the_last_page_is_204() {
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 0, 2).await;
    let since = "2000-01-01T00:00:00+00:00";
    assert_eq!(s.get_since("/crm/v8/Accounts?fields=Account_Name", since, &token).await.status, 200);
    assert_eq!(s.get_since("/crm/v8/Accounts?fields=Account_Name&page=2&per_page=2", since, &token).await.status, 204);
    assert_eq!(s.get_since("/crm/v8/Accounts?fields=Account_Name", "2100-01-01T00:00:00+00:00", &token).await.status, 304);
    s.running.stop().await;
}

/// Upsert finds the record whatever form the body gives the value in: a number as a currency
/// (`5` for `5.0`), a lookup as `{"id"}`, a field named in another case, text of another case.
#[tokio::test]
async fn upsert_compares_values_as_stored() {
    let s = start().await;
    let token = s.token().await;
    let account =
        written(&s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": [{"Account_Name": "Initech"}]}))).await)[0].clone();
    let deal = json!({"data": [{"Deal_Name": "Printer", "Stage": "Qualification", "Amount": 5.0, "Account_Name": {"id": account}}]});
    let deal = written(&s.call(Method::POST, "/crm/v8/Deals", &token, Some(deal)).await)[0].clone();
    let upsert = async |module: &str, body: Value| s.call(Method::POST, &format!("/crm/v8/{module}/upsert"), &token, Some(body)).await;

    let by_amount = upsert(
        "Deals",
        json!({"data": [{"Deal_Name": "Printer 2", "Stage": "Qualification", "Amount": 5}], "duplicate_check_fields": ["Amount"]}),
    )
    .await;
    assert_eq!(by_amount.status, 200, "{}", by_amount.body);
    assert_eq!(
        (by_amount.body["data"][0]["action"].as_str(), by_amount.body["data"][0]["details"]["id"].as_str()),
        (Some("update"), Some(deal.as_str()))
    );
    let by_lookup = upsert(
        "Deals",
        json!({"data": [{"Deal_Name": "Printer 3", "Stage": "Qualification", "account_name": {"id": account}}], "duplicate_check_fields": ["account_name"]}),
    )
    .await;
    assert_eq!(
        (by_lookup.body["data"][0]["action"].as_str(), by_lookup.body["data"][0]["duplicate_field"].as_str()),
        (Some("update"), Some("Account_Name")),
        "{}",
        by_lookup.body
    );
    let by_name = upsert("Accounts", json!({"data": [{"Account_Name": "INITECH", "Website": "https://initech.example"}]})).await;
    assert_eq!(by_name.body["data"][0]["details"]["id"], account.as_str(), "{}", by_name.body);
    assert_eq!(s.get("/crm/v8/Deals/actions/count", &token).await.body, json!({"count": 1}));
    assert_eq!(s.get("/crm/v8/Accounts/actions/count", &token).await.body, json!({"count": 1}));
    s.running.stop().await;
}

/// Search: a field the module lacks is refused before any record is read (an empty module
/// too); `in` splits on unescaped commas only; numbers, lookups (by id) and custom datetimes
/// compare as such; `phone`; two filters at once are ambiguous.
#[tokio::test]
async fn search_checks_fields_and_compares_by_type() {
    let s = start().await;
    let token = s.token().await;
    assert_error(&s.get_query("/crm/v8/Deals/search", &[("criteria", "(Shoe_Size:equals:9)")], &token).await, 400, "INVALID_QUERY");
    let created = s
        .call(
            Method::POST,
            "/crm/v8/settings/fields?module=Deals",
            &token,
            Some(json!({"fields": [{"field_label": "Synced At", "data_type": "datetime"}]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let accounts = s
        .call(
            Method::POST,
            "/crm/v8/Accounts",
            &token,
            Some(json!({"data": [{"Account_Name": "A,B", "Phone": "+1 (555) 010-2030"}, {"Account_Name": "C"}, {"Account_Name": "B"}]})),
        )
        .await;
    let accounts = written(&accounts);
    let deals = json!({"data": [
        {"Deal_Name": "Small", "Stage": "Qualification", "Amount": 900, "Account_Name": {"id": accounts[0]}, "Synced_At": "2026-01-01T10:00:00+00:00"},
        {"Deal_Name": "Large", "Stage": "Qualification", "Amount": 1500.5, "Account_Name": {"id": accounts[1]}, "Synced_At": "2026-03-01T10:00:00+01:00"},
    ]});
    let deals = written(&s.call(Method::POST, "/crm/v8/Deals", &token, Some(deals)).await);
    let search = async |module: &str, q: &[(&str, &str)]| -> HashSet<String> {
        let a = s.get_query(&format!("/crm/v8/{module}/search"), q, &token).await;
        if a.status == 204 {
            return HashSet::new();
        }
        assert_eq!(a.status, 200, "{}", a.body);
        ids(&a).into_iter().collect()
    };
    assert_eq!(
        search("Accounts", &[("criteria", r"(Account_Name:in:A\,B,C)")]).await,
        HashSet::from([accounts[0].clone(), accounts[1].clone()])
    );
    assert_eq!(search("Accounts", &[("criteria", r"(Account_Name:not_in:A\,B,C)")]).await, HashSet::from([accounts[2].clone()]));
    assert_eq!(search("Deals", &[("criteria", "(Amount:greater_than:1000)")]).await, HashSet::from([deals[1].clone()]));
    assert_eq!(
        search("Deals", &[("criteria", &format!("(Account_Name:equals:{})", accounts[0]))]).await,
        HashSet::from([deals[0].clone()])
    );
    assert_eq!(
        search("Deals", &[("criteria", "(Synced_At:greater_than:2026-02-01T00:00:00+00:00)")]).await,
        HashSet::from([deals[1].clone()])
    );
    assert_eq!(search("Accounts", &[("phone", "+1 555 010 2030")]).await, HashSet::from([accounts[0].clone()]));
    let both = s.get_query("/crm/v8/Accounts/search", &[("criteria", "(Account_Name:equals:C)"), ("word", "C")], &token).await;
    assert_error(&both, 400, "AMBIGUITY_DURING_PROCESSING");
    let count = s.get_query("/crm/v8/Accounts/actions/count", &[("email", "a@b.example"), ("phone", "1")], &token).await;
    assert_error(&count, 400, "AMBIGUITY_DURING_PROCESSING");
    s.running.stop().await;
}

/// Search reaches the first 2,000 matches: the tenth page of 200 is the last.
#[tokio::test]
async fn search_stops_at_2000_records() {
    let s = start().await;
    let token = s.token().await;
    s.seed(0, 0, 2_100).await;
    let last = s.get_query("/crm/v8/Accounts/search", &[("word", "www"), ("page", "10"), ("per_page", "200")], &token).await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert_eq!((last.body["info"]["count"].as_u64(), last.body["info"]["more_records"].as_bool()), (Some(200), Some(false)));
    s.running.stop().await;
}

/// Update Record names one record: a body of two is refused whole. A custom field's id is the
/// organisation's (never another module's). A channel `token` of 50 characters is taken however
/// many bytes they are.
#[tokio::test]
async fn single_record_update_field_ids_and_token_length() {
    let s = start().await;
    let token = s.token().await;
    let deal = json!({"data": [{"Deal_Name": "One", "Stage": "Qualification"}]});
    let deal = written(&s.call(Method::POST, "/crm/v8/Deals", &token, Some(deal)).await)[0].clone();
    let two = s
        .call(Method::PUT, &format!("/crm/v8/Deals/{deal}"), &token, Some(json!({"data": [{"Deal_Name": "Two"}, {"Deal_Name": "Three"}]})))
        .await;
    assert_error(&two, 400, "LIMIT_EXCEEDED");
    assert_eq!(s.get(&format!("/crm/v8/Deals/{deal}"), &token).await.body["data"][0]["Deal_Name"], "One", "nothing was applied");

    // Enough custom fields in Deals to pass the ids the seeded fields of Contacts start at.
    let extra: Vec<Value> = (0..90).map(|i| json!({"field_label": format!("Extra {i}"), "data_type": "text"})).collect();
    let created = s.call(Method::POST, "/crm/v8/settings/fields?module=Deals", &token, Some(json!({"fields": extra}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let field_ids = async |module: &str| -> HashSet<String> {
        let fields = s.get(&format!("/crm/v8/settings/fields?module={module}"), &token).await;
        fields.body["fields"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
    };
    let (deals, contacts, accounts) = (field_ids("Deals").await, field_ids("Contacts").await, field_ids("Accounts").await);
    assert!(deals.is_disjoint(&contacts) && deals.is_disjoint(&accounts), "field ids are unique in the organisation");

    let watch = |secret: String| {
        s.call(
            Method::POST,
            "/crm/v8/actions/watch",
            &token,
            Some(json!({"watch": [{"channel_id": "7", "events": ["Deals.all"], "notify_url": "http://127.0.0.1:9/n", "token": secret}]})),
        )
    };
    assert_eq!(watch("é".repeat(50)).await.status, 201);
    assert_eq!(watch("é".repeat(51)).await.body["watch"][0]["code"], "INVALID_DATA");
    s.running.stop().await;
}

/// A wrong method is answered 405 `INVALID_REQUEST_METHOD`; settings and users paths the
/// sandbox does not serve are 404 `INVALID_URL_PATTERN` (never a module's record); Get Module
/// and the users' count are served.
#[tokio::test]
async fn methods_and_paths_outside_the_api() {
    let s = start().await;
    let token = s.token().await;
    let wrong = s.call(Method::PATCH, "/crm/v8/org", &token, None).await;
    assert_error(&wrong, 405, "INVALID_REQUEST_METHOD");
    assert_eq!(wrong.body["message"], "The http request method type is not a valid one");
    assert_error(&s.call(Method::POST, "/crm/v8/Deals/search", &token, None).await, 405, "INVALID_REQUEST_METHOD");
    for path in ["/crm/v8/settings/recycle_bin", "/crm/v8/settings/custom_views/1", "/crm/v8/users/1/territories"] {
        assert_error(&s.get(path, &token).await, 404, "INVALID_URL_PATTERN");
    }
    let module = s.get("/crm/v8/settings/modules/deals", &token).await;
    assert_eq!((module.status, module.body["modules"][0]["api_name"].as_str()), (200, Some("Deals")), "{}", module.body);
    assert_error(&s.get("/crm/v8/settings/modules/Widgets", &token).await, 400, "INVALID_MODULE");
    assert_eq!(s.get("/crm/v8/users/actions/count", &token).await.body, json!({"count": 5}));
    assert_eq!(s.get("/crm/v8/users/actions/count?type=ActiveUsers", &token).await.body, json!({"count": 4}));
    s.running.stop().await;
}

/// Errors carry the members the spec requires: `param_name` and `param` (`ParamDetails`),
/// `supported_values` (`InvalidParamDetails`), `api_name` and `json_path` (`InvalidType`).
#[tokio::test]
async fn errors_name_their_parameter() {
    let s = start().await;
    let token = s.token().await;
    let missing = s.get("/crm/v8/Deals", &token).await;
    assert_error(&missing, 400, "REQUIRED_PARAM_MISSING");
    assert_eq!(missing.body["details"], json!({"param_name": "fields", "param": "fields"}));
    let unsupported = s.get("/crm/v8/Deals?fields=Deal_Name&sort_order=up", &token).await;
    assert_eq!(
        unsupported.body["details"],
        json!({"param_name": "sort_order", "param": "sort_order", "supported_values": ["asc", "desc"]})
    );
    let invalid = s.get("/crm/v8/Deals?fields=Deal_Name&per_page=0", &token).await;
    assert_eq!(invalid.body["details"]["param_name"], "per_page");
    let body = s
        .http
        .post(format!("{}/crm/v8/Deals", s.url))
        .header("authorization", format!("Zoho-oauthtoken {token}"))
        .body("[1]")
        .send()
        .await
        .unwrap();
    let body = support::answer(body).await;
    assert_error(&body, 400, "INVALID_DATA");
    for member in ["expected_data_type", "api_name", "json_path"] {
        assert!(body.body["details"][member].is_string(), "{member}: {}", body.body);
    }
    s.running.stop().await;
}

/// Metadata as strict clients read it: the Stage picklist holds every pipeline's stages with
/// their probability and forecast type; lookups, modules and channels carry the members the
/// spec requires.
#[tokio::test]
async fn metadata_has_the_members_the_spec_requires() {
    let s = start().await;
    let token = s.token().await;
    let fields = s.get("/crm/v8/settings/fields?module=Deals", &token).await;
    let stage = fields.body["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Stage").unwrap().clone();
    let due = stage["pick_list_values"].as_array().unwrap().iter().find(|v| v["actual_value"] == "Renewal Due").expect("a Renewals stage");
    assert_eq!((due["probability"].as_i64(), due["forecast_type"].as_str()), (Some(30), Some("Open")));
    assert_eq!(due["maps"][0]["pick_list_values"][0]["actual_value"], "Renewals");
    assert!(stage["pick_list_values"].as_array().unwrap().iter().any(|v| v["actual_value"] == "Quote Sent"));
    let won = stage["pick_list_values"].as_array().unwrap().iter().filter(|v| v["actual_value"] == "Closed Won").count();
    assert_eq!(won, 1, "a stage of both pipelines is listed once");
    let account = fields.body["fields"].as_array().unwrap().iter().find(|f| f["api_name"] == "Account_Name").unwrap();
    for member in ["query_details", "show_fields", "revalidate_filter_during_edit"] {
        assert!(account["lookup"].get(member).is_some(), "lookup.{member}");
    }
    assert!(account.as_object().unwrap().contains_key("operation_type"));
    let modules = s.get("/crm/v8/settings/modules", &token).await;
    for member in ["modified_by", "visibility", "description", "quick_create", "per_page"] {
        assert!(modules.body["modules"][0].get(member).is_some(), "modules[].{member}");
    }
    let enabled = s
        .call(Method::POST, "/crm/v8/actions/watch", &token, Some(json!({"watch": [{"channel_id": "8", "events": ["Deals.all"], "notify_url": "http://127.0.0.1:9/n", "notify_on_related_action": true}]})))
        .await;
    assert!(enabled.body["watch"][0]["details"]["events"][0].get("notification_condition").is_some(), "{}", enabled.body);
    assert_eq!(s.get("/crm/v8/actions/watch", &token).await.body["watch"][0]["notify_on_related_action"], true);
    assert_eq!(s.get("/crm/v8/settings/fields?module=Deals&type=unused", &token).await.body["fields"], json!([]));
    assert_error(&s.get("/crm/v8/settings/fields?module=Deals&type=some", &token).await, 400, "INVALID_DATA");
    s.running.stop().await;
}

/// Get Users takes `ids` and `If-Modified-Since` (304 when no user changed since).
#[tokio::test]
async fn users_by_ids_and_modified_since() {
    let s = start().await;
    let token = s.token().await;
    let all = s.get("/crm/v8/users", &token).await;
    let first = all.body["users"][0]["id"].as_str().unwrap().to_string();
    let third = all.body["users"][2]["id"].as_str().unwrap().to_string();
    let some = s.get(&format!("/crm/v8/users?ids={first},{third}"), &token).await;
    let got: Vec<&str> = some.body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(got, [first.as_str(), third.as_str()]);
    assert_eq!(s.get_since("/crm/v8/users", "2025-01-01T00:00:00+00:00", &token).await.status, 304);
    assert_eq!(s.get_since("/crm/v8/users", "2023-01-01T00:00:00+00:00", &token).await.status, 200);
    s.running.stop().await;
}

/// Notification delivery is per channel: a receiver that never answers holds back only its own
/// channel, never another's.
#[tokio::test]
async fn a_dead_receiver_delays_only_its_own_channel() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route("/hang", axum::routing::post(std::future::pending::<axum::http::StatusCode>)).route(
        "/ok",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = start().await;
    let token = s.token().await;
    let channels = json!({"watch": [
        {"channel_id": "1", "events": ["Deals.all"], "notify_url": format!("{base}/hang")},
        {"channel_id": "2", "events": ["Deals.all"], "notify_url": format!("{base}/ok")},
    ]});
    assert_eq!(s.call(Method::POST, "/crm/v8/actions/watch", &token, Some(channels)).await.status, 201);
    for name in ["First", "Second"] {
        let deal = json!({"data": [{"Deal_Name": name, "Stage": "Qualification"}]});
        assert_eq!(s.call(Method::POST, "/crm/v8/Deals", &token, Some(deal)).await.status, 201);
        let n = if name == "First" { 1 } else { 2 };
        wait_until("the healthy channel's delivery", async || received.lock().unwrap().len() >= n).await;
    }
    assert!(received.lock().unwrap().iter().all(|n| n["channel_id"] == "2"));
    s.running.stop().await;
}

/// A receiver that refuses is retried up to the configured attempts, each failure counted.
#[tokio::test]
async fn refused_notifications_are_retried() {
    let app = axum::Router::new().route("/no", axum::routing::post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/no", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = start_with(
        |c| {
            c.notify_max_attempts = 3;
            c.notify_retry_base_ms = 1;
        },
        None,
    )
    .await;
    let token = s.token().await;
    let channel = json!({"watch": [{"channel_id": "9", "events": ["Accounts.create"], "notify_url": url}]});
    assert_eq!(s.call(Method::POST, "/crm/v8/actions/watch", &token, Some(channel)).await.status, 201);
    s.call(Method::POST, "/crm/v8/Accounts", &token, Some(json!({"data": [{"Account_Name": "Refused"}]}))).await;
    let failed = async || s.control(Method::GET, "/_sandbox/notifications", Value::Null).await.body["failed_attempts"] == 3;
    wait_until("three failed attempts", failed).await;
    assert_eq!(s.control(Method::GET, "/_sandbox/notifications", Value::Null).await.body["delivered"], 0);
    s.running.stop().await;
}

/// Channels survive a restart, and an updated channel keeps its new subscription.
#[tokio::test]
async fn channels_are_updated_and_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("sandbox-zoho-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("zoho.json");
    let s = start_with(|_| {}, Some(file.clone())).await;
    let minted = s.control(Method::POST, "/_sandbox/tokens", json!({"client_id": CLIENT_ID, "scopes": support::ALL_SCOPES})).await;
    let token = minted.body["access_token"].as_str().unwrap().to_string();
    let channel =
        |events: Value| json!({"watch": [{"channel_id": "11", "events": events, "notify_url": "http://127.0.0.1:9/n", "token": "t-11"}]});
    assert_eq!(s.call(Method::POST, "/crm/v8/actions/watch", &token, Some(channel(json!(["Deals.all"])))).await.status, 201);
    let updated = s.call(Method::PUT, "/crm/v8/actions/watch", &token, Some(channel(json!(["Contacts.edit"])))).await;
    assert_eq!((updated.status, updated.body["watch"][0]["code"].as_str()), (200, Some("SUCCESS")), "{}", updated.body);
    let unknown = s
        .call(
            Method::PUT,
            "/crm/v8/actions/watch",
            &token,
            Some(json!({"watch": [{"channel_id": "12", "events": ["Deals.all"], "notify_url": "http://127.0.0.1:9/n"}]})),
        )
        .await;
    assert_eq!(unknown.body["watch"][0]["code"], "NOT_SUBSCRIBED");
    s.running.stop().await;

    let s = start_with(|_| {}, Some(file.clone())).await;
    let listed = s.get("/crm/v8/actions/watch", &token).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        (listed.body["watch"][0]["events"].clone(), listed.body["watch"][0]["token"].clone()),
        (json!(["Contacts.edit"]), json!("t-11"))
    );
    s.running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The notification outbox is bounded: past its cap the oldest change is dropped and counted.
#[test]
fn the_notification_outbox_is_capped() {
    use sandbox::zoho::data::Module;
    use sandbox::zoho::watch::{Operation, Watch, OUTBOX_CAP};
    let zoho = sandbox::Zoho::new(sandbox::ZohoConfig::new(Vec::new()), None);
    let mut data = zoho.write();
    data.watches.push(Watch {
        channel_id: "1".into(),
        events: vec!["Deals.all".into()],
        notify_url: "http://127.0.0.1:9/n".into(),
        token: None,
        channel_expiry: i64::MAX,
        notify_on_related_action: false,
    });
    for id in 0..=OUTBOX_CAP as u64 {
        data.emit(Module::Deals, Operation::Insert, id, 0);
    }
    assert_eq!((data.outbox.len(), data.outbox_dropped), (OUTBOX_CAP, 1));
    assert_eq!(data.outbox.front().map(|e| e.id), Some(1), "the oldest went");
}
