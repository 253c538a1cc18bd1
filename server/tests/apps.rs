//! Installing an app over HTTP, as a browser does it: Install app, the sandbox's sign-in and
//! consent pages, the redirect back, the app's page; refusals for Viewers, tampered and replayed
//! callbacks; the audit log; uninstall. Against SQLite and Postgres.

mod common;

use std::net::SocketAddr;

use common::TestApp;
use engine::store::Backend;
use sandbox::walk::{consent, Decision};
use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, RunningSandbox, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::Value;

struct Setup {
    app: TestApp,
    hubspot: RunningSandbox,
    pipedrive: RunningSandbox,
}

/// Tandem on a port chosen first (the sandboxes register its callback URL), both sandboxes, and
/// Tandem configured to use them.
async fn start(backend: Backend) -> Setup {
    // Tandem's port is bound first and kept: the sandboxes register its callback URL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tandem_url = format!("http://{}", listener.local_addr().unwrap());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (_, hubspot) = sandbox::start_hubspot(HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]), any, None).await.unwrap();
    let (_, pipedrive) =
        sandbox::start_pipedrive(PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]), any, None).await.unwrap();
    let (hs, pd) = (hubspot.url(), pipedrive.url());
    let app = TestApp::spawn_on(listener, backend, move |config| {
        config.hubspot_app_url = hs.clone();
        config.hubspot_api_url = hs;
        config.pipedrive_oauth_url = pd;
        // Long enough that only a webhook (or a new sync) makes a run happen during a test.
        config.sync_interval_secs = 3600;
        for (id, secret) in [
            (&mut config.hubspot_client_id, &mut config.hubspot_client_secret),
            (&mut config.pipedrive_client_id, &mut config.pipedrive_client_secret),
        ] {
            *id = Some(DEMO_CLIENT_ID.into());
            *secret = Some(DEMO_CLIENT_SECRET.into());
        }
    })
    .await;
    Setup { app, hubspot, pipedrive }
}

macro_rules! with_sandboxes {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let s = super::start(engine::store::Backend::Sqlite).await;
                super::$name(&s).await;
                super::stop(s).await;
            }
            #[tokio::test]
            async fn postgres() {
                let s = super::start(engine::store::Backend::Postgres).await;
                super::$name(&s).await;
                super::stop(s).await;
            }
        }
    };
}

async fn stop(s: Setup) {
    s.app.stop().await;
    s.hubspot.stop().await;
    s.pipedrive.stop().await;
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Install app → the provider's pages → back to Tandem: the redirect Tandem answers.
async fn install(s: &Setup, browser: &reqwest::Client, app: &str, decision: Decision) -> (String, String) {
    let r = s.app.call(browser, "start_install", &[("app", app)]).await;
    assert_eq!(r.status(), 200, "start_install");
    let authorize: String = r.json().await.unwrap();
    let (email, password) =
        if app == "hubspot" { ("admin@hubspot-sandbox.example", "sandbox") } else { ("dana@pipedrive-sandbox.example", "sandbox") };
    let callback = consent(&authorize, email, password, decision).await.expect("consent");
    let back = browser.get(&callback).send().await.unwrap();
    assert!(back.status().is_redirection(), "callback answered {}", back.status());
    (callback, location(&back))
}

with_sandboxes!(install_allow_then_uninstall);
async fn install_allow_then_uninstall(s: &Setup) {
    let admin = s.app.admin().await;
    let r = s.app.call(&admin, "start_install", &[("app", "pipedrive")]).await;
    let authorize: String = r.json().await.unwrap();
    let expected_redirect = format!("redirect_uri={}", url_encode(&format!("{}/oauth/callback/pipedrive", s.app.url)));
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?", s.pipedrive.url())), "{authorize}");
    for part in ["response_type=code", "code_challenge_method=S256", "code_challenge=", "state=", &expected_redirect] {
        assert!(authorize.contains(part), "{part} missing from {authorize}");
    }

    let (callback, landed) = install(s, &admin, "pipedrive", Decision::Allow).await;
    assert!(landed.starts_with("/settings/integrations/connected-apps/pipedrive?result=installed&connection="), "{landed}");
    let page = s.app.get(&admin, &landed).await.text().await.unwrap();
    assert!(page.contains("Pipedrive (Sandbox) is connected"), "success message on the app's page");
    assert!(page.contains("Sandbox Sales Co"), "the account's name");
    assert!(page.contains("Connected"));
    // No HubSpot account yet: the page says so where Set up sync would be.
    assert!(page.contains("connect one before setting up a sync") && !page.contains("Set up sync"), "the HubSpot step first");

    // The same callback again is refused.
    let replay = admin.get(&callback).send().await.unwrap();
    assert!(location(&replay).ends_with("result=state_invalid"), "{}", location(&replay));

    // Connections say who and what, never a credential.
    let r = s.app.call(&admin, "connections", &[]).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains("v1u:") && !text.to_lowercase().contains("token"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list[0]["status"], "Connected");
    assert_eq!(list[0]["installed_by"], "Ada Admin");
    let id = list[0]["id"].as_str().unwrap().to_string();

    let listing = s.app.get(&admin, "/settings/integrations/connected-apps").await.text().await.unwrap();
    assert!(listing.contains("Pipedrive (Sandbox)") && listing.contains("Connect HubSpot"), "apps table and the HubSpot step");

    let r = s.app.call(&admin, "uninstall_app", &[("connection_id", &id)]).await;
    assert_eq!(r.status(), 200);
    let message: String = r.json().await.unwrap();
    assert!(message.contains("uninstalled and its access revoked"), "{message}");
    let list: Value = s.app.call(&admin, "connections", &[]).await.json().await.unwrap();
    assert_eq!(list[0]["status"], "Uninstalled");

    let audit: Value = s.app.call(&admin, "audit_log", &[]).await.json().await.unwrap();
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["app.uninstalled", "app.installed"]);
}

with_sandboxes!(deny_tamper_and_roles);
async fn deny_tamper_and_roles(s: &Setup) {
    let admin = s.app.admin().await;
    let (_, landed) = install(s, &admin, "pipedrive", Decision::Deny).await;
    assert_eq!(landed, "/settings/integrations/connected-apps/pipedrive?result=denied");
    let page = s.app.get(&admin, &landed).await.text().await.unwrap();
    assert!(page.contains("access was denied"), "the page explains the denial");

    let forged = admin.get(format!("{}/oauth/callback/pipedrive?code=abc&state=forged", s.app.url)).send().await.unwrap();
    assert_eq!(location(&forged), "/settings/integrations/connected-apps/pipedrive?result=state_invalid");
    let unknown = admin.get(format!("{}/oauth/callback/salesforce?code=abc&state=x", s.app.url)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let list: Value = s.app.call(&admin, "connections", &[]).await.json().await.unwrap();
    assert_eq!(list, serde_json::json!([]), "nothing stored");

    // A Viewer sees the Marketplace but cannot install, uninstall or read the audit log.
    let viewer = s.app.invited(&admin, "vic@example.com", "viewer").await;
    let r = s.app.call(&viewer, "catalogue", &[]).await;
    assert_eq!(r.status(), 200);
    let r = s.app.call(&viewer, "start_install", &[("app", "pipedrive")]).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("App Marketplace Access"));
    assert_eq!(s.app.call(&viewer, "uninstall_app", &[("connection_id", "x")]).await.status(), 403);
    assert_eq!(s.app.call(&viewer, "audit_log", &[]).await.status(), 403);
    // Nor spend the providers' API limit counting deals (before: any signed-in user could).
    let r = s.app.call(&viewer, "stage_counts", &[("connection_id", "x"), ("hubspot_pipeline", "default"), ("app_pipeline", "1")]).await;
    assert_eq!(r.status(), 403);
    let page = s.app.get(&viewer, "/marketplace/pipedrive").await.text().await.unwrap();
    assert!(page.contains("Install app") && page.contains("You need the Super Admin or App Marketplace Access permission"));

    // App Marketplace Access may install; a signed-out visitor may not even list apps.
    let installer = s.app.invited(&admin, "ami@example.com", "app_marketplace_access").await;
    let (_, landed) = install(s, &installer, "hubspot", Decision::Allow).await;
    assert!(landed.contains("result=installed"), "{landed}");
    assert_eq!(s.app.call(&s.app.browser(), "catalogue", &[]).await.status(), 401);
    assert_eq!(s.app.call(&admin, "start_install", &[("app", "salesforce")]).await.status(), 404);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` for up to 20 seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..80 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

with_sandboxes!(webhooks_wake_the_engine);
/// A saved sync runs in the server's engine at once; afterwards (with an hour between scheduled
/// runs) only webhooks wake it: Pipedrive's, registered by the engine with HTTP Basic
/// credentials, and HubSpot's, signed with signature v3. Unsigned or wrongly authenticated
/// webhooks are refused.
async fn webhooks_wake_the_engine(s: &Setup) {
    let admin = s.app.admin().await;
    let DealSync { pipedrive, hub_id } = deal_sync_with_webhooks(s, &admin, &["amount"]).await;
    let http = reqwest::Client::new();
    let pd_id = pd_deals(s).await.iter().find(|d| d["title"] == "From HubSpot").unwrap()["id"].to_string();

    // A Pipedrive edit: its webhook wakes the engine, HubSpot gets the new amount.
    let r = http
        .patch(format!("{}/_sandbox/deals/{pd_id}", s.pipedrive.url()))
        .json(&serde_json::json!({"fields": {"value": 77}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let hub_amount = || async {
        let token = sandbox::walk::mint_token(&s.hubspot.url(), DEMO_CLIENT_ID, &["crm.objects.deals.read"]).await.unwrap();
        let deal: Value = http
            .get(format!("{}/crm/v3/objects/deals/{hub_id}?properties=amount", s.hubspot.url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        deal["properties"]["amount"].as_str().unwrap_or_default().to_string()
    };
    eventually("the Pipedrive webhook's run", || async { hub_amount().await == "77" }).await;

    // A HubSpot edit: its signed webhook wakes the engine, Pipedrive gets the new amount.
    hs_edit(s, &hub_id, serde_json::json!({"amount": "88"})).await;
    eventually("the HubSpot webhook's run", || async {
        pd_deals(s).await.iter().any(|d| d["title"] == "From HubSpot" && d["value"].as_f64() == Some(88.0))
    })
    .await;
    let delivered: Value = http.get(format!("{}/_sandbox/webhooks", s.hubspot.url())).send().await.unwrap().json().await.unwrap();
    assert!(delivered["delivered_events"].as_u64().unwrap_or(0) >= 1, "{delivered}");

    // Forged webhooks are refused.
    let r = http.post(format!("{}/webhooks/hubspot", s.app.url)).json(&serde_json::json!([])).send().await.unwrap();
    assert_eq!(r.status(), 401, "no signature");
    let r = http
        .post(format!("{}/webhooks/hubspot", s.app.url))
        .header("x-hubspot-signature-v3", "bm9wZQ==")
        .header("x-hubspot-request-timestamp", engine::clock::now_ms().to_string())
        .json(&serde_json::json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong signature");
    let r = http
        .post(format!("{}/webhooks/pipedrive/{pipedrive}", s.app.url))
        .basic_auth("tandem", Some("guess"))
        .json(&serde_json::json!({"meta": {"entity": "deal"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "wrong Basic credentials");

    dashboards_export_and_metrics(s, &admin).await;
}

with_sandboxes!(a_stage_renamed_in_pipedrive_is_named_anew_by_the_next_run);
/// A Pipedrive stage renamed after the engine kept the sync's schema: Pipedrive's stage webhook
/// tells Tandem, and the next run's history names the stage anew (it showed the old name for up
/// to ten minutes, until the kept schema was read again).
async fn a_stage_renamed_in_pipedrive_is_named_anew_by_the_next_run(s: &Setup) {
    let admin = s.app.admin().await;
    let DealSync { pipedrive, hub_id } = deal_sync_with_webhooks(s, &admin, &["dealstage"]).await;
    let http = reqwest::Client::new();
    let deal = pd_deals(s).await.into_iter().find(|d| d["title"] == "From HubSpot").unwrap();
    let stage = deal["stage_id"].clone();
    let store = engine::Store::open(Some(&s.app.database_url), &std::env::temp_dir()).await.unwrap();
    eventually("the run after the initial one", || async {
        let syncs = store.syncs().await.unwrap();
        store.runs(&syncs[0].id, 10).await.unwrap().iter().filter(|r| r.ended_at.is_some()).count() >= 2
    })
    .await;
    assert_eq!(store.schema_changes(&pipedrive).await.unwrap(), 0);

    // A Pipedrive admin renames the stage the deal is in.
    let token = sandbox::walk::mint_token(&s.pipedrive.url(), DEMO_CLIENT_ID, &["admin"]).await.unwrap();
    let r = http
        .patch(format!("{}/api/v2/stages/{}", s.pipedrive.url(), stage))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Renamed in Pipedrive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    eventually("Pipedrive's stage webhook", || async { store.schema_changes(&pipedrive).await.unwrap() > 0 }).await;

    // The deal moves on in HubSpot: the run that writes its new stage to Pipedrive shows the
    // stage it left by its new name.
    hs_edit(s, &hub_id, serde_json::json!({"dealstage": "qualifiedtobuy"})).await;
    eventually("the stage in Pipedrive", || async {
        pd_deals(s).await.iter().any(|d| d["title"] == "From HubSpot" && d["stage_id"] != stage)
    })
    .await;
    let sync_id = store.syncs().await.unwrap()[0].id.clone();
    store.close().await;
    let csv = admin
        .get(format!("{}/settings/integrations/syncs/{sync_id}/export/events.csv", s.app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.lines().any(|l| l.contains("Renamed in Pipedrive")), "the stage's new name: {csv}");
}

/// Both apps installed, HubSpot's webhooks delivering changes of `properties` to Tandem, and a
/// deals sync saved with the default settings, its initial sync done: HubSpot's deal "From
/// HubSpot" is in Pipedrive.
async fn deal_sync_with_webhooks(s: &Setup, admin: &reqwest::Client, properties: &[&str]) -> DealSync {
    install(s, admin, "hubspot", Decision::Allow).await;
    install(s, admin, "pipedrive", Decision::Allow).await;
    let list: Value = s.app.call(admin, "connections", &[]).await.json().await.unwrap();
    let pipedrive = list.as_array().unwrap().iter().find(|c| c["provider"] == "pipedrive").unwrap()["id"].as_str().unwrap().to_string();
    let hub_deal = serde_json::json!({"properties": {"dealname": "From HubSpot", "amount": "10", "pipeline": "default", "dealstage": "appointmentscheduled"}});
    let http = reqwest::Client::new();
    let r = http.post(format!("{}/_sandbox/objects/deals", s.hubspot.url())).json(&hub_deal).send().await.unwrap();
    let hub_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    // HubSpot's app settings: deliver deal changes to Tandem.
    let hapikey = "hapikey=tandem-sandbox-developer-key";
    let settings = serde_json::json!({"targetUrl": format!("{}/webhooks/hubspot", s.app.url), "throttling": {"maxConcurrentRequests": 5}});
    let r = http.put(format!("{}/webhooks/v3/1234567/settings?{hapikey}", s.hubspot.url())).json(&settings).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for property in properties {
        let subscription = serde_json::json!({"eventType": "deal.propertyChange", "propertyName": property, "active": true});
        let r =
            http.post(format!("{}/webhooks/v3/1234567/subscriptions?{hapikey}", s.hubspot.url())).json(&subscription).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    let schemas: Value =
        s.app.call(admin, "sync_schemas", &[("connection_id", pipedrive.as_str()), ("object", "Deal")]).await.json().await.unwrap();
    let schemas: model::sync::Schemas = serde_json::from_value(schemas).unwrap();
    let settings = model::sync::SyncSettings::new_for(model::apps::ObjectKind::Deal, &schemas);
    let r = admin
        .post(format!("{}/api/save_sync", s.app.url))
        .header("origin", &s.app.url)
        .json(&serde_json::json!({"connection_id": pipedrive, "settings": settings}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The initial sync: HubSpot's deal arrives in Pipedrive.
    eventually("the initial sync", || async { pd_deals(s).await.iter().any(|d| d["title"] == "From HubSpot") }).await;
    DealSync { pipedrive, hub_id }
}

struct DealSync {
    /// The Pipedrive connection's id.
    pipedrive: String,
    /// The HubSpot deal's id.
    hub_id: String,
}

/// A HubSpot user's edit of a deal's `properties`.
async fn hs_edit(s: &Setup, hub_id: &str, properties: Value) {
    let r = reqwest::Client::new()
        .patch(format!("{}/_sandbox/objects/deals/{hub_id}", s.hubspot.url()))
        .json(&serde_json::json!({ "properties": properties }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// Pipedrive's deals, as its API lists them.
async fn pd_deals(s: &Setup) -> Vec<Value> {
    let token = sandbox::walk::mint_token(&s.pipedrive.url(), DEMO_CLIENT_ID, &["deals:read"]).await.unwrap();
    let page: Value = reqwest::Client::new()
        .get(format!("{}/api/v2/deals", s.pipedrive.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"].as_array().cloned().unwrap_or_default()
}

/// After those runs: the Health read, the CSV export (signed in only, streamed as a download)
/// and `/metrics` for scrapers.
async fn dashboards_export_and_metrics(s: &Setup, admin: &reqwest::Client) {
    let syncs: Value = s.app.call(admin, "syncs", &[]).await.json().await.unwrap();
    let sync_id = syncs[0]["id"].as_str().unwrap().to_string();
    let health: Value = s.app.call(admin, "sync_health", &[("sync_id", sync_id.as_str())]).await.json().await.unwrap();
    assert_eq!(health["in_sync"], 1, "{health}");
    assert_eq!(health["status"], "Syncing", "{health}");
    let missing = s.app.call(admin, "sync_health", &[("sync_id", "no-such-sync")]).await;
    assert_eq!(missing.status(), 404);
    // A Viewer reads the dashboards but cannot retry; a signed-out visitor reads nothing.
    let viewer = s.app.invited(admin, "val@example.com", "viewer").await;
    assert_eq!(s.app.call(&viewer, "sync_health", &[("sync_id", sync_id.as_str())]).await.status(), 200);
    let refused = s.app.call(&viewer, "retry_records", &[("sync_id", sync_id.as_str())]).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("App Marketplace Access"));
    assert_eq!(s.app.call(&s.app.browser(), "sync_health", &[("sync_id", sync_id.as_str())]).await.status(), 401);
    let none = s.app.call(admin, "retry_records", &[("sync_id", sync_id.as_str())]).await.json::<String>().await.unwrap();
    assert_eq!(none, "Nothing is failing there any more; there is nothing to retry.");
    // With a record failing (as a refused write leaves it), the admin's Health offers Retry all and
    // the Viewer's does not; the record is put back afterwards.
    let store = engine::Store::open(Some(&s.app.database_url), &std::env::temp_dir()).await.unwrap();
    let linked = store.all_records(&sync_id).await.unwrap().remove(0);
    let mut failed = linked.clone();
    (failed.state, failed.reason, failed.message) =
        (model::states::RecordState::Failed, Some(model::states::Category::Validation.into()), Some("Pipedrive refused the values".into()));
    store.save_records(&[failed]).await.unwrap();
    let health_path = format!("/settings/integrations/syncs/{sync_id}");
    let admin_page = s.app.get(admin, &health_path).await.text().await.unwrap();
    assert!(admin_page.contains("Validation") && admin_page.contains("Retry all"), "the admin may retry");
    let page = s.app.get(&viewer, &health_path).await.text().await.unwrap();
    assert!(page.contains("In sync") && page.contains("Validation") && !page.contains("Retry all"), "a Viewer sees no Retry");
    store.save_records(&[linked]).await.unwrap();
    store.close().await;
    // The chart reads without JavaScript: the server's HTML holds the labelled SVG with a bar per
    // day, and the figures as a table.
    let month = s.app.get(admin, &format!("{health_path}?range=30d")).await.text().await.unwrap();
    assert!(month.contains(r#"role="img" aria-labelledby="chart-title chart-desc""#), "an accessible SVG");
    assert!(month.contains(r#"<title id="chart-title">Records synced and errors, last 30 days</title>"#), "its title");
    assert_eq!(month.matches(r#"class="bar-synced""#).count(), 30, "a bar per day");
    let figures = month.split("<details class=\"chart-data\">").nth(1).expect("the figures table");
    assert_eq!(figures.split("</table>").next().unwrap().matches("<tr><th scope=\"row\">").count(), 30, "a row per day");

    let export = |path: String| admin.get(format!("{}{path}", s.app.url)).send();
    let base = format!("/settings/integrations/syncs/{sync_id}/export");
    let r = export(format!("{base}/runs.csv")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"tandem-runs-"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("run_id,started_at,ended_at,trigger,outcome,"), "{csv}");
    assert!(lines[0].contains(",api_calls,calls_read,calls_write,calls_lookup,calls_schema,"), "{csv}");
    assert!(lines.len() >= 4, "the initial run and two webhook runs: {csv}");
    assert!(lines.iter().any(|l| l.contains(",webhook,succeeded,")), "{csv}");
    // Sent compressed to a browser that accepts it, still a download by its name.
    let r = admin.get(format!("{}{base}/events.csv", s.app.url)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!((r.status(), r.headers()["content-encoding"].to_str().unwrap()), (reqwest::StatusCode::OK, "gzip"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"tandem-events-"));
    let gzipped = r.bytes().await.expect("the whole body, to its end");
    assert!(gzipped.starts_with(&[0x1f, 0x8b]));
    let events = export(format!("{base}/events.csv")).await.unwrap().text().await.unwrap();
    assert!(events.lines().any(|l| l.contains(",updated,hubspot,Amount,10,77,")), "{events}");
    let empty = export(format!("{base}/runs.csv?from=2001-01-01&to=2001-01-31")).await.unwrap().text().await.unwrap();
    assert_eq!(empty.lines().count(), 1, "only the header: {empty}");
    assert_eq!(export(format!("{base}/runs.csv?from=yesterday")).await.unwrap().status(), 400);
    assert_eq!(export(format!("{base}/everything.csv")).await.unwrap().status(), 404);
    assert_eq!(export("/settings/integrations/syncs/nope/export/runs.csv".into()).await.unwrap().status(), 404);
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = anonymous.get(format!("{}{base}/runs.csv", s.app.url)).send().await.unwrap();
    assert!(r.status().is_redirection() && location(&r).starts_with("/login"), "signed out: {} {}", r.status(), location(&r));

    let metrics = anonymous.get(format!("{}/metrics", s.app.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    let labels = format!("sync=\"{sync_id}\",app=\"pipedrive\",object=\"deal\"");
    assert!(text.lines().any(|l| l.starts_with(&format!("tandem_sync_runs_total{{{labels},outcome=\"succeeded\"}} "))), "{text}");
    assert!(text.lines().any(|l| l == format!("tandem_sync_records{{{labels},bucket=\"in_sync\",reason=\"\"}} 1")), "{text}");
    assert!(text.lines().any(|l| l.starts_with(&format!("tandem_sync_lag_seconds{{{labels}}} "))), "{text}");
    assert!(!text.contains("secret") && !text.contains("token"), "no credentials in metrics");
}

with_sandboxes!(an_accounts_api_share_is_shown_and_set_by_admins_only);
/// Each connected account's card shows its API limit and Tandem's share of it (80 % by
/// default); an admin sets another share, checked on the server and audited; a Viewer cannot.
async fn an_accounts_api_share_is_shown_and_set_by_admins_only(s: &Setup) {
    let admin = s.app.admin().await;
    let (_, landed) = install(s, &admin, "pipedrive", Decision::Allow).await;
    let id = landed.split("connection=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let page = s.app.get(&admin, "/settings/integrations/connected-apps/pipedrive").await.text().await.unwrap();
    assert!(page.contains("API limit") && page.contains("share of the limit (%)"), "the account's API limit on its card");
    assert!(page.contains(r#"name="share""#) && page.contains(r#"value="80""#), "the default share in the form");
    assert!(page.contains("Calls today (UTC)"));

    for bad in ["0", "101", "half", ""] {
        let r = s.app.call(&admin, "set_api_share", &[("connection_id", &id), ("share", bad)]).await;
        assert_eq!(r.status(), 422, "{bad:?}");
        assert!(r.text().await.unwrap().contains("Enter a whole percent from 1 to 100."), "{bad:?}");
    }
    let viewer = s.app.invited(&admin, "vic@example.com", "viewer").await;
    let r = s.app.call(&viewer, "set_api_share", &[("connection_id", &id), ("share", "100")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.app.call(&admin, "set_api_share", &[("connection_id", "nope"), ("share", "50")]).await.status(), 404);

    let r = s.app.call(&admin, "set_api_share", &[("connection_id", &id), ("share", "50 %")]).await;
    assert_eq!(r.status(), 200);
    let saved: Value = r.json().await.unwrap();
    assert_eq!((saved["connection_id"].as_str(), saved["share"].as_i64()), (Some(id.as_str()), Some(50)));
    let all: Value = s.app.call(&viewer, "api_usages", &[]).await.json().await.unwrap();
    assert_eq!(all[0]["share"], 50, "{all}");
    let page = s.app.get(&viewer, "/settings/integrations/connected-apps/pipedrive").await.text().await.unwrap();
    assert!(page.contains(r#"value="50""#), "the share saved");
    let audit: Value = s.app.call(&admin, "audit_log", &[]).await.json().await.unwrap();
    let summary = audit["entries"][0]["summary"].as_str().unwrap();
    assert_eq!(audit["entries"][0]["action"], "app.api_share");
    assert!(summary.contains("50 % of the API limit of Pipedrive (Sandbox)") && summary.contains("(was 80 %)"), "{summary}");
}

/// Install app → the provider's pages (choosing `account` there) → back to Tandem, for the
/// HubSpot account `hub`: where Tandem lands the browser.
async fn install_account(s: &Setup, browser: &reqwest::Client, app: &str, account: &str, hub: Option<&str>) -> String {
    let mut form = vec![("app", app)];
    form.extend(hub.map(|h| ("hub", h)));
    let r = s.app.call(browser, "start_install", &form).await;
    assert_eq!(r.status(), 200, "start_install");
    let authorize: String = r.json().await.unwrap();
    let (email, password) =
        if app == "hubspot" { ("admin@hubspot-sandbox.example", "sandbox") } else { ("dana@pipedrive-sandbox.example", "sandbox") };
    let callback = sandbox::walk::consent_for(&authorize, email, password, Decision::Allow, Some(account)).await.expect("consent");
    location(&browser.get(&callback).send().await.unwrap())
}

with_sandboxes!(several_hubspot_accounts_are_chosen_at_install_and_grouped);
async fn several_hubspot_accounts_are_chosen_at_install_and_grouped(s: &Setup) {
    let http = reqwest::Client::new();
    for sandbox in [&s.hubspot, &s.pipedrive] {
        assert_eq!(http.post(format!("{}/_sandbox/accounts", sandbox.url())).send().await.unwrap().status(), 201);
    }
    let admin = s.app.admin().await;
    let landed = install_account(s, &admin, "hubspot", "24681357", None).await;
    assert!(landed.contains("result=installed"), "{landed}");
    // The HubSpot page offers another account once one is connected.
    let page = s.app.get(&admin, "/settings/integrations/connected-apps/hubspot").await.text().await.unwrap();
    assert!(page.contains("Connect another HubSpot account"), "a second HubSpot account can be connected");
    let landed = install_account(s, &admin, "hubspot", "24681358", None).await;
    assert!(landed.contains("result=installed"), "a second portal is installed beside the first: {landed}");
    let list: Value = s.app.call(&admin, "connections", &[]).await.json().await.unwrap();
    let hubs: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["provider"] == "hubspot")
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["account_id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(hubs.iter().map(|(_, portal)| portal.as_str()).collect::<Vec<_>>(), ["24681357", "24681358"]);

    // The Marketplace's install asks which HubSpot account; the server insists on one.
    let page = s.app.get(&admin, "/marketplace/pipedrive").await.text().await.unwrap();
    assert!(page.contains(r#"name="hub""#) && page.contains("HubSpot account"), "the install asks which HubSpot account");
    for (id, portal) in &hubs {
        assert!(page.contains(&format!(r#"value="{id}""#)) && page.contains(&format!("portal {portal}")), "{portal} offered");
    }
    let r = s.app.call(&admin, "start_install", &[("app", "pipedrive")]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Choose the HubSpot account this app syncs with."));
    let landed = install_account(s, &admin, "pipedrive", "7701235", Some(&hubs[1].0)).await;
    assert!(landed.contains("result=installed"), "{landed}");

    // Connected apps groups the apps under the HubSpot account each syncs with.
    let page = s.app.get(&admin, "/settings/integrations/connected-apps").await.text().await.unwrap();
    let first = page.find("Apps syncing with sandbox-portal.example").expect("the first account's group");
    let second = page.find("Apps syncing with sandbox-portal-2.example").expect("the second account's group");
    let company = page.find("Sandbox Sales Co 2").expect("the installed company");
    assert!(first < second && second < company, "the company is listed under the second HubSpot account");
    assert!(page.contains("No app syncs with this HubSpot account yet."), "the first account has no app yet");
    // The app's card names its HubSpot account and offers a sync.
    let page = s.app.get(&admin, "/settings/integrations/connected-apps/pipedrive").await.text().await.unwrap();
    assert!(page.contains("sandbox-portal-2.example · portal 24681358"), "the card names its HubSpot account");
    assert!(page.contains("Set up sync"));

    // With its HubSpot account uninstalled (and the other too), the company waits for it; the
    // page still offers to connect HubSpot.
    for (id, _) in &hubs {
        assert_eq!(s.app.call(&admin, "uninstall_app", &[("connection_id", id)]).await.status(), 200);
    }
    let page = s.app.get(&admin, "/settings/integrations/connected-apps").await.text().await.unwrap();
    assert!(page.contains("Connect HubSpot") && page.contains("Apps without a connected HubSpot account"), "{page}");
    let page = s.app.get(&admin, "/settings/integrations/connected-apps/pipedrive").await.text().await.unwrap();
    assert!(page.contains("run against the HubSpot account sandbox-portal-2.example · portal 24681358, which was uninstalled"));
    assert!(!page.contains("Set up sync"));
}
