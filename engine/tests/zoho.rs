//! Zoho CRM against the sandboxes over HTTP, on SQLite and Postgres, where Zoho is what is
//! tested: the install in the admin's data centre (Accept, the code exchanged at the accounts
//! server the callback names, a foreign one refused, tokens refreshed and revoked there, a revoked
//! grant), Zoho's schema (pipelines, forecast types, picklists), stage counts and notification
//! channels, contacts and accounts with Zoho's lookups and required last name, and the
//! organisation's API credits running out. What every app must do (faults, interrupted creates,
//! matching, associations) is in the conformance suite (`conformance.rs`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::deals::*;
use common::*;
use engine::clock::MINUTE_MS;
use engine::connections::Connections;
use engine::connectors::http::Api;
use engine::connectors::record::RecordSpec;
use engine::connectors::Provider;
use engine::syncs::Syncs;
use engine::webhooks::WebhookError;
use engine::ConnectionError;
use model::apps::{ConnectionStatus, InstallResult, ObjectKind};
use model::states::RunOutcome;
use model::sync::{ConflictRule, FieldKind, Outcome, PipelineMapping, Schemas, SyncSettings};
use reqwest::Method;
use sandbox::walk::Decision;
use serde_json::{json, Value};

/// HubSpot's default pipeline onto Zoho's Standard one: four stages, won to won, lost to lost.
fn map_stages(s: &mut SyncSettings, schemas: &Schemas) {
    let standard = schemas.app.pipelines.iter().find(|p| p.name == "Standard").expect("Zoho's Standard pipeline");
    let mut mapping = PipelineMapping { hubspot_pipeline: "default".into(), app_pipeline: standard.id.clone(), stages: vec![] };
    for (hub, app) in [
        ("appointmentscheduled", "Qualification"),
        ("qualifiedtobuy", "Needs Analysis"),
        ("closedwon", "Closed Won"),
        ("closedlost", "Closed Lost"),
    ] {
        mapping.set_stage(hub, Some(app.to_string()));
    }
    s.pipelines = vec![mapping];
    s.conflict_rule = ConflictRule::DefaultToHubSpot;
}

on_both_backends!(installs_zoho_in_the_admins_data_centre);
async fn installs_zoho_in_the_admins_data_centre(env: Env) -> Env {
    // The authorization URL asks for a refresh token, and the scopes as Zoho takes them.
    let url = env.connections.start(&env.admin, &env.session, "zoho", None, None).await.unwrap();
    assert!(url.starts_with(&format!("{}/oauth/v2/auth?", env.zoho.url())), "{url}");
    let query: HashMap<String, String> = reqwest::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert_eq!((query["access_type"].as_str(), query["prompt"].as_str()), ("offline", "consent"));
    let scopes: Vec<&str> = query["scope"].split(',').collect();
    assert!(scopes.contains(&"ZohoCRM.modules.deals.ALL") && scopes.contains(&"ZohoCRM.org.READ"), "{scopes:?}");

    // Reject installs nothing.
    let rejected = env.authorize("zoho", None, Decision::Deny).await;
    assert_eq!(rejected.error.as_deref(), Some("access_denied"));
    assert_eq!(env.complete("zoho", &rejected).await, (InstallResult::Denied, None));

    // A callback naming an accounts server that is not Zoho's is refused: the code (and Tandem's
    // client secret) never go there, nor anywhere else.
    let mut foreign = env.authorize("zoho", None, Decision::Allow).await;
    assert_eq!(foreign.accounts_server.as_deref(), Some(env.zoho.url().as_str()), "the sandbox names its accounts server");
    foreign.accounts_server = Some("https://accounts.zoho.eu.attacker.example".into());
    assert_eq!(env.complete("zoho", &foreign).await, (InstallResult::ExchangeFailed, None));
    assert_eq!(env.control(&env.zoho, "/_sandbox/oauth-stats").await["authorization_code"], 0);
    assert!(env.connections.list().await.unwrap().is_empty());

    // Accept: the code is exchanged at the accounts server named; the organisation identified on
    // the API host the token names.
    let id = env.install("zoho").await;
    let c = env.connections.get(&id).await.unwrap();
    assert_eq!(
        (c.provider_name.as_str(), c.account_id.as_str(), c.account_name.as_str(), c.account_domain.as_deref()),
        ("Zoho CRM (Sandbox)", "5725767", "Sandbox Sales Co", Some("org5725767"))
    );
    assert_eq!(c.logo, "/apps/zoho.svg");
    assert!(c.scopes.iter().any(|s| s == "ZohoCRM.notifications.ALL"), "{:?}", c.scopes);
    let row = env.connections.store().connection(&id).await.unwrap().unwrap();
    assert_eq!(row.accounts_server.as_deref(), Some(env.zoho.url().as_str()));
    let token = env.connections.access_token(&id).await.unwrap();
    assert_eq!(token.api_base, env.zoho.url());
    let org = env
        .http
        .get(format!("{}/crm/v8/org", token.api_base))
        .header("Authorization", format!("Zoho-oauthtoken {}", token.token))
        .send()
        .await
        .unwrap();
    assert_eq!(org.status(), 200);

    // An instance whose configured accounts server is another (unreachable) one still refreshes
    // and revokes at the connection's own.
    let elsewhere =
        Connections::new(env.connections.store().clone(), env.secrets.clone(), vec![zoho_provider("http://127.0.0.1:9")], TANDEM_URL);
    let fresh = elsewhere.access_token_at(&id, token.expires_at - MINUTE_MS).await.unwrap();
    assert_ne!(fresh.token, token.token);
    assert_eq!(env.refreshes(&env.zoho).await, 1);
    let gone = elsewhere.uninstall(&env.admin, &id).await.unwrap();
    assert_eq!(gone.revoke_failed, None);
    assert_eq!(env.control(&env.zoho, "/_sandbox/oauth-stats").await["revoked"], 1);
    env
}

on_both_backends!(a_revoked_zoho_grant_needs_reconnection);
/// Zoho refuses a revoked refresh token with 200 and `{"error": "invalid_code"}`: the connection
/// needs reconnecting, and is not refreshed again and again.
async fn a_revoked_zoho_grant_needs_reconnection(env: Env) -> Env {
    let id = env.install("zoho").await;
    let first = env.connections.access_token(&id).await.unwrap();
    env.control(&env.zoho, "/_sandbox/revoke-tokens").await;
    let err = env.connections.access_token_at(&id, first.expires_at - MINUTE_MS).await.unwrap_err();
    assert!(matches!(err, ConnectionError::NeedsReconnection(_)), "{err:?}");
    let c = env.connections.get(&id).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReconnection);
    assert!(matches!(env.connections.access_token(&id).await, Err(ConnectionError::NeedsReconnection(_))));
    assert_eq!(env.control(&env.zoho, "/_sandbox/oauth-stats").await["refused"], 1, "asked once");
    env
}

on_both_backends!(zoho_deals_sync_both_ways_with_their_stages_mapped);
async fn zoho_deals_sync_both_ways_with_their_stages_mapped(env: Env) -> Env {
    let sync = set_up_app(&env, "zoho", ObjectKind::Deal, map_stages).await;
    // Zoho's schema: pipelines with their stages, won and lost by forecast type; fields by kind.
    let app = &sync.schemas.app;
    let standard = app.pipelines.iter().find(|p| p.name == "Standard").unwrap();
    let outcome = |name: &str| standard.stages.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no stage {name}")).closed;
    assert_eq!((outcome("Closed Won"), outcome("Closed Lost"), outcome("Qualification")), (Some(Outcome::Won), Some(Outcome::Lost), None));
    assert!(app.pipelines.iter().any(|p| p.name == "Renewals"));
    assert_eq!(app.field("Amount").map(|f| f.kind), Some(FieldKind::Number));
    assert_eq!(app.field("Closing_Date").map(|f| f.kind), Some(FieldKind::Date));
    assert_eq!(app.field("Owner").map(|f| f.kind), Some(FieldKind::Owner));
    let source = app.field("Lead_Source").unwrap();
    assert!(source.kind == FieldKind::Enum && source.options.iter().any(|o| o.value == "Cold Call"), "{source:?}");
    assert!(!source.options.iter().any(|o| o.value == "-None-"));
    assert!(app.field("Stage").is_none() && app.field("Account_Name").is_none(), "the stage grid and the associations handle those");

    env.hs_create(json!({"dealname": "Acme renewal", "amount": "1500.00", "pipeline": "default", "dealstage": "appointmentscheduled", "closedate": "2027-01-31"}), None).await;
    env.hs_create(json!({"dealname": "Globex expansion", "amount": "99000", "pipeline": "default", "dealstage": "closedwon"}), None).await;
    env.hs_create(json!({"dealname": "Initech pilot", "amount": "10", "pipeline": "default", "dealstage": "contractsent"}), None).await;
    let umbrella = env
        .zo_create("Deals", json!({"Deal_Name": "Umbrella deal", "Amount": 5000, "Pipeline": "Standard", "Stage": "Needs Analysis"}), None)
        .await;
    env.zo_create("Deals", json!({"Deal_Name": "Parked deal", "Amount": 7, "Pipeline": "Standard", "Stage": "Value Proposition"}), None)
        .await;

    let engine = engine(&env);
    let first = run(&engine, &sync).await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{:?}", first.message);
    assert_eq!((first.created_in_app, first.created_in_hub), (2, 1), "{first:?}");
    let zo = env.zo_deals(&sync).await;
    let acme = &zo["Acme renewal"];
    assert_eq!(
        (acme["Amount"].as_f64(), acme["Closing_Date"].as_str(), acme["Pipeline"].as_str(), acme["Stage"].as_str()),
        (Some(1500.0), Some("2027-01-31"), Some("Standard"), Some("Qualification"))
    );
    assert!(acme["Tandem_record_ID"].as_str().is_some_and(|t| !t.is_empty()), "created with its Tandem id: {acme}");
    assert_eq!(zo["Globex expansion"]["Stage"], "Closed Won", "closed won maps to Closed Won");
    assert!(!zo.contains_key("Initech pilot"), "a deal in an unmapped stage stays where it is");
    let hs = env.hs_deals(&sync).await;
    assert_eq!(
        (hs["Umbrella deal"].1["amount"].as_str(), hs["Umbrella deal"].1["dealstage"].as_str()),
        (Some("5000"), Some("qualifiedtobuy"))
    );
    assert!(!hs.contains_key("Parked deal"));

    // The stage grid's counts, from Zoho's record count.
    let counts = Syncs::new(env.connections.clone()).stage_counts(&sync.app, "default", &standard.id).await.unwrap();
    assert_eq!(
        (
            counts.app_count("Qualification"),
            counts.app_count("Needs Analysis"),
            counts.app_count("Value Proposition"),
            counts.app_count("Closed Won")
        ),
        (1, 1, 1, 1)
    );

    // Nothing changed: nothing is written.
    let second = run(&engine, &sync).await;
    assert_eq!((second.created_in_app, second.created_in_hub, second.updated_in_app, second.updated_in_hub), (0, 0, 0, 0), "{second:?}");

    // Both sides change: the amount in HubSpot, the stage (won) in Zoho.
    let now = engine::clock::now_ms();
    env.hs_edit(&hs["Acme renewal"].0, json!({"amount": "2500"}), Some(now)).await;
    env.zo_edit("Deals", &umbrella, json!({"Stage": "Closed Won"}), Some(now)).await;
    let third = run(&engine, &sync).await;
    assert_eq!((third.outcome, third.updated_in_app, third.updated_in_hub), (RunOutcome::Succeeded, 1, 1), "{third:?}");
    assert_eq!(env.zo_deals(&sync).await["Acme renewal"]["Amount"].as_f64(), Some(2500.0));
    assert_eq!(env.hs_deals(&sync).await["Umbrella deal"].1["dealstage"], "closedwon");

    // The engine subscribed a notification channel for the connection; a delivery wakes the
    // sync only with the channel's token.
    let token = env.token(&sync.app).await;
    let watch: Value = env
        .http
        .get(format!("{}/crm/v8/actions/watch", env.zoho.url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{TANDEM_URL}/webhooks/zoho/{}", sync.app);
    let channel = watch["watch"].as_array().unwrap().iter().find(|w| w["notify_url"] == url.as_str()).unwrap_or_else(|| panic!("{watch}"));
    let (_, secret) = env.connections.webhook_credentials(Provider::ZOHO, &sync.app);
    assert_eq!(channel["token"], secret.as_str());
    assert!(channel["events"].as_array().unwrap().iter().any(|e| e == "Deals.all"), "{channel}");
    let delivery = |token: &str| {
        json!({"module": "Deals", "operation": "update", "ids": [umbrella], "channel_id": channel["channel_id"], "token": token})
            .to_string()
    };
    let woken = engine::webhooks::app(&env.connections, "zoho", &sync.app, None, delivery(&secret).as_bytes()).await.unwrap();
    assert_eq!(woken, vec![sync.id.clone()]);
    let forged = engine::webhooks::app(&env.connections, "zoho", &sync.app, None, delivery("guessed").as_bytes()).await;
    assert!(matches!(forged, Err(WebhookError::Refused(_))), "{forged:?}");

    // Registering again changes a channel that differs (here its token), in place.
    let limiter = env.connections.limiter(&sync.app);
    let api = Api::open(&env.connections, &sync.app, Provider::ZOHO, limiter, Default::default()).await.unwrap();
    Provider::ZOHO.register_webhooks(&api, &url, "tandem", "a-new-token").await.unwrap();
    let summary = env.zo_control(Method::GET, "/_sandbox/summary", Value::Null).await;
    assert_eq!(summary["channels"], 1, "{summary}");
    let watch: Value = env
        .http
        .get(format!("{}/crm/v8/actions/watch", env.zoho.url()))
        .header("Authorization", format!("Zoho-oauthtoken {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(watch["watch"][0]["token"], "a-new-token", "{watch}");
    env
}

on_both_backends!(zoho_contacts_by_email_accounts_by_domain_and_lookups_as_associations);
async fn zoho_contacts_by_email_accounts_by_domain_and_lookups_as_associations(env: Env) -> Env {
    let companies = set_up_app(&env, "zoho", ObjectKind::Company, |_, _| {}).await;
    let defaults = SyncSettings::new_for(ObjectKind::Company, &companies.schemas);
    let fields: Vec<(&str, &str)> = defaults.fields.iter().map(|m| (m.hubspot_property.as_str(), m.app_field.as_str())).collect();
    assert!(fields.contains(&("domain", "Website")) && fields.contains(&("name", "Account_Name")), "{fields:?}");
    let contacts = add_sync(&env, &companies, ObjectKind::Contact, |s, _| s.conflict_rule = ConflictRule::DefaultToHubSpot).await;
    let deals = add_sync(&env, &companies, ObjectKind::Deal, map_stages).await;
    let base = engine::clock::now_ms() - 60 * MINUTE;
    // Accounts: Initrode in both apps (Zoho's website a full URL, HubSpot's name later), Umbrella
    // in Zoho only, Hooli in HubSpot only.
    let initrode_zo =
        env.zo_create("Accounts", json!({"Account_Name": "Initrode GmbH", "Website": "https://www.Initrode.example/about"}), base).await;
    let initrode_hs = env.hs_object("companies", json!({"name": "Initrode", "domain": "initrode.example"}), base + 20 * MINUTE).await;
    env.zo_create("Accounts", json!({"Account_Name": "Umbrella Corp", "Website": "http://umbrella.example"}), base).await;
    let hooli_hs = env.hs_object("companies", json!({"name": "Hooli", "domain": "hooli.example"}), base).await;
    // Contacts: Ada in both (her email's case differs, HubSpot's phone later), Peter in Zoho at
    // Initrode, Gavin in HubSpot at Hooli, Katherine in HubSpot with a first name only.
    let ada_zo = env.zo_create("Contacts", json!({"First_Name": "Ada", "Last_Name": "Lovelace", "Email": "Ada@Example.com"}), base).await;
    let ada_hs = env
        .hs_object(
            "contacts",
            json!({"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0999"}),
            base + 20 * MINUTE,
        )
        .await;
    let peter_zo = env
        .zo_create(
            "Contacts",
            json!({"First_Name": "Peter", "Last_Name": "Gibbons", "Email": "peter@initrode.example", "Account_Name": {"id": initrode_zo}}),
            base,
        )
        .await;
    let gavin_hs =
        env.hs_object("contacts", json!({"firstname": "Gavin", "lastname": "Belson", "email": "gavin@hooli.example"}), base).await;
    env.hs_object("contacts", json!({"firstname": "Katherine", "email": "katherine@example.com"}), base).await;
    // Deals: TPS reports in Zoho with Peter and Initrode; Nucleus in HubSpot with Gavin and Hooli.
    env.zo_create(
        "Deals",
        json!({"Deal_Name": "TPS reports", "Amount": 100, "Pipeline": "Standard", "Stage": "Qualification", "Contact_Name": {"id": peter_zo}, "Account_Name": {"id": initrode_zo}}),
        base,
    )
    .await;
    let nucleus_hs = env
        .hs_object(
            "deals",
            json!({"dealname": "Nucleus", "amount": "900", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            base,
        )
        .await;
    env.hs_associate(&deals, "contacts", &gavin_hs, "companies", &hooli_hs).await;
    env.hs_associate(&deals, "deals", &nucleus_hs, "contacts", &gavin_hs).await;
    env.hs_associate(&deals, "deals", &nucleus_hs, "companies", &hooli_hs).await;

    let engine = engine(&env);
    for sync in [&companies, &contacts, &deals] {
        let r = run(&engine, sync).await;
        assert_eq!((r.outcome.as_str(), r.failed_to_app, r.failed_to_hub), ("succeeded", 0, 0), "{r:?}");
    }

    // Accounts matched on the website's domain: linked, not copied; HubSpot's later name wins.
    let hs_companies = env.hs_by(&companies, "companies", "domain", "name,domain").await;
    let zo_accounts = env.zo_by(&companies, "Accounts", |a| a["Account_Name"].as_str().unwrap_or_default().to_string()).await;
    assert!(
        hs_companies.values().all(|list| list.len() == 1) && zo_accounts.values().all(|list| list.len() == 1),
        "{hs_companies:?} {zo_accounts:?}"
    );
    assert_eq!(hs_companies["initrode.example"][0].0, initrode_hs);
    assert!(!zo_accounts.contains_key("Initrode GmbH"), "{:?}", zo_accounts.keys());
    assert_eq!(zo_accounts["Initrode"][0]["id"], initrode_zo.as_str());
    assert_eq!(hs_companies["umbrella.example"][0].1["name"], "Umbrella Corp");
    assert_eq!(zo_accounts["Hooli"][0]["Website"], "hooli.example");
    let hooli_zo = zo_accounts["Hooli"][0]["id"].as_str().unwrap().to_string();

    // Contacts matched on email, created once on the other side with their names.
    let hs_contacts = env.hs_by(&contacts, "contacts", "email", "firstname,lastname,email,phone").await;
    let zo_contacts = env.zo_by(&contacts, "Contacts", |c| c["Email"].as_str().unwrap_or_default().to_lowercase()).await;
    assert!(
        hs_contacts.values().all(|list| list.len() == 1) && zo_contacts.values().all(|list| list.len() == 1),
        "{hs_contacts:?} {zo_contacts:?}"
    );
    assert_eq!(hs_contacts["ada@example.com"][0].0, ada_hs);
    let ada = &zo_contacts["ada@example.com"][0];
    assert_eq!((ada["id"].as_str(), ada["Phone"].as_str()), (Some(ada_zo.as_str()), Some("+44 20 7946 0999")), "{ada}");
    let peter_hs = hs_contacts["peter@initrode.example"][0].clone();
    assert_eq!((peter_hs.1["firstname"].as_str(), peter_hs.1["lastname"].as_str()), (Some("Peter"), Some("Gibbons")));
    let gavin_zo = zo_contacts["gavin@hooli.example"][0].clone();
    assert_eq!((gavin_zo["First_Name"].as_str(), gavin_zo["Last_Name"].as_str()), (Some("Gavin"), Some("Belson")));
    let katherine = &zo_contacts["katherine@example.com"][0];
    assert_eq!(katherine["Last_Name"], "Katherine", "Zoho's required last name holds a lone first name: {katherine}");

    // Zoho's lookups and HubSpot's associations, both ways.
    assert_eq!(gavin_zo["Account_Name"]["id"], hooli_zo.as_str(), "Gavin works at Hooli in Zoho too");
    assert_eq!(env.hs_associated(&deals, "contacts", &peter_hs.0, "companies").await, [initrode_hs.as_str()]);
    let tps_hs = env.hs_find(&deals, "deals", "dealname", "TPS reports").await;
    assert_eq!(env.hs_associated(&deals, "deals", &tps_hs, "contacts").await, [peter_hs.0.as_str()]);
    assert_eq!(env.hs_associated(&deals, "deals", &tps_hs, "companies").await, [initrode_hs.as_str()]);
    let nucleus_zo = env.zo_deals(&deals).await["Nucleus"].clone();
    assert_eq!(
        (nucleus_zo["Contact_Name"]["id"].as_str(), nucleus_zo["Account_Name"]["id"].as_str()),
        (gavin_zo["id"].as_str(), Some(hooli_zo.as_str())),
        "{nucleus_zo}"
    );

    // Zoho finds its contacts by email and its accounts by their website's domain.
    let api = Api::open(&env.connections, &companies.app, Provider::ZOHO, env.connections.limiter(&companies.app), Default::default())
        .await
        .unwrap();
    for (object, key, id) in [(ObjectKind::Contact, "ada@example.com", &ada_zo), (ObjectKind::Company, "initrode.example", &initrode_zo)] {
        let spec = RecordSpec { object, fields: vec![], tandem_key: "Tandem_record_ID".into(), schema: &[] };
        let found = Provider::ZOHO.records(&api, spec).find_by_match_keys(&[key.to_string(), "nobody.example".into()]).await.unwrap();
        let found: Vec<(&str, Option<&str>)> = found.iter().map(|r| (r.id.as_str(), r.match_key.as_deref())).collect();
        assert_eq!(found, [(id.as_str(), Some(key))]);
    }

    // Everything is in step: nothing is written again.
    for sync in [&companies, &contacts, &deals] {
        let again = run(&engine, sync).await;
        assert_eq!((again.created_in_app, again.created_in_hub, again.updated_in_app, again.updated_in_hub), (0, 0, 0, 0), "{again:?}");
    }
    env
}

on_both_backends!(zoho_credits_exhausted_are_reported_then_the_sync_resumes);
/// The organisation's API credits for the last 24 hours are spent (429 `LIMIT_EXCEEDED`): the
/// run says so at once rather than waiting a day; once credits are there again, the sync goes on.
async fn zoho_credits_exhausted_are_reported_then_the_sync_resumes(env: Env) -> Env {
    let sync = set_up_app(&env, "zoho", ObjectKind::Deal, map_stages).await;
    for i in 0..5 {
        env.hs_create(
            json!({"dealname": format!("Deal {i}"), "amount": "1", "pipeline": "default", "dealstage": "appointmentscheduled"}),
            None,
        )
        .await;
    }
    let credits = env.zo_control(Method::GET, "/_sandbox/credits", Value::Null).await;
    let used = credits["used"].as_u64().unwrap();
    env.zo_control(Method::PUT, "/_sandbox/credits", json!({"total": used})).await;
    let engine = engine(&env);
    let started = Instant::now();
    let refused = run(&engine, &sync).await;
    assert!(started.elapsed() < Duration::from_secs(20), "reported, not waited for: {:?}", started.elapsed());
    assert_ne!(refused.outcome, RunOutcome::Succeeded, "{refused:?}");
    let message = refused.message.clone().unwrap_or_default();
    assert!(message.contains("API credits"), "the run says why: {message}");
    let summary = env.zo_control(Method::GET, "/_sandbox/summary", Value::Null).await;
    assert_eq!(summary["deals"]["live"], 0, "nothing was created: {summary}");

    env.zo_control(Method::PUT, "/_sandbox/credits", json!({"total": 55_000})).await;
    let resumed = run(&engine, &sync).await;
    assert_eq!((resumed.outcome, resumed.created_in_app), (RunOutcome::Succeeded, 5), "{resumed:?}");
    assert_eq!(env.zo_deals(&sync).await.len(), 5);
    env
}
