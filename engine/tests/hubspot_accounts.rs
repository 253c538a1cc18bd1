//! Several HubSpot accounts on one Tandem: each app connection, and so each of its syncs, belongs
//! to one HubSpot account; an install asks which when there are several; each portal's webhooks
//! wake its own syncs only.

mod common;

use common::deals::{self, Sync};
use common::*;
use engine::syncs::Syncs;
use engine::ConnectionError;
use model::apps::{InstallResult, ObjectKind, HUBSPOT};
use model::sync::SyncSettings;
use serde_json::{json, Value};

const SECOND_PORTAL: &str = "24681358";
const SECOND_COMPANY: &str = "7701235";

on_both_backends!(each_hubspot_account_has_its_own_apps_syncs_and_webhooks);
async fn each_hubspot_account_has_its_own_apps_syncs_and_webhooks(env: Env) -> Env {
    assert_eq!(env.add_account(&env.hubspot).await, SECOND_PORTAL);
    assert_eq!(env.add_account(&env.pipedrive).await, SECOND_COMPANY);
    // The first HubSpot account and Pipedrive company, as one account always worked.
    let first = deals::set_up(&env, |_, _| {}).await;

    // A second HubSpot account connects beside the first.
    let hub2 = env.install_account(HUBSPOT, SECOND_PORTAL, None).await;
    let list = env.connections.list().await.unwrap();
    let hubs: Vec<(&str, &str, &str)> =
        list.iter().filter(|c| c.provider == HUBSPOT).map(|c| (c.id.as_str(), c.provider_name.as_str(), c.account_id.as_str())).collect();
    assert_eq!(hubs, [(first.hubspot.as_str(), "HubSpot (Sandbox)", "24681357"), (hub2.as_str(), "HubSpot (Sandbox)", SECOND_PORTAL)]);

    // With two, an app's install must say which (and name one that is connected).
    let unchosen = env.connections.start(&env.admin, &env.session, "pipedrive", None, None).await;
    assert!(matches!(unchosen, Err(ConnectionError::ChooseHubSpot)), "{unchosen:?}");
    let bogus = env.connections.start(&env.admin, &env.session, "pipedrive", None, Some(&first.app)).await;
    assert!(matches!(bogus, Err(ConnectionError::ChooseHubSpot)), "an app's connection is not a HubSpot account: {bogus:?}");
    let app2 = env.install_account("pipedrive", SECOND_COMPANY, Some(&hub2)).await;
    let first_app = list.iter().find(|c| c.id == first.app).expect("the first company");
    assert_eq!(first_app.hub_connection_id.as_deref(), Some(first.hubspot.as_str()), "the first company syncs with the first portal");
    let app2_row = env.connections.get(&app2).await.unwrap();
    assert_eq!(app2_row.hub_connection_id.as_deref(), Some(hub2.as_str()));

    // Its deal sync reads the second portal's pipelines and writes there only.
    let syncs = Syncs::new(env.connections.clone());
    let schemas = syncs.schemas(&app2, ObjectKind::Deal).await.expect("schemas");
    let settings = SyncSettings::new_for(ObjectKind::Deal, &schemas);
    let saved = syncs.save(&env.admin, &app2, &settings).await.expect("save the second sync");
    let second = Sync { id: saved.id, pipedrive: app2.clone(), hubspot: hub2.clone(), schemas, app: app2.clone() };

    let stage = |sync: &Sync| deals::pd_stage(sync, "Qualified").parse::<u64>().expect("a stage id");
    env.pd_create(json!({"title": "Acme renewal", "value": 1200, "pipeline_id": 1, "stage_id": stage(&first)}), None).await;
    let body = json!({"fields": {"title": "Globex expansion", "value": 5400, "pipeline_id": 1, "stage_id": stage(&second)}});
    let r = env.http.post(format!("{}/_sandbox/accounts/{SECOND_COMPANY}/deals", env.pipedrive.url())).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let engine = deals::engine(&env);
    deals::run(&engine, &first).await;
    deals::run(&engine, &second).await;
    let names = |deals: std::collections::HashMap<String, (String, Value)>| {
        let mut names: Vec<String> = deals.into_keys().collect();
        names.sort();
        names
    };
    assert_eq!(names(env.hs_deals(&first).await), ["Acme renewal"], "the first portal holds the first company's deal only");
    assert_eq!(names(env.hs_deals(&second).await), ["Globex expansion"], "the second portal holds the second company's deal only");

    // A webhook from the second portal wakes the second account's syncs only.
    let events = json!([{"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": 1, "portalId": SECOND_PORTAL.parse::<u64>().unwrap()}]);
    let woken = deliver_hubspot_webhook(&env, &events).await;
    assert_eq!(woken, vec![second.id.clone()]);
    let events = json!([{"eventId": 2, "subscriptionType": "deal.creation", "objectId": 2, "portalId": 24_681_357}]);
    assert_eq!(deliver_hubspot_webhook(&env, &events).await, vec![first.id.clone()]);
    // A portal Tandem does not know wakes nothing.
    let events = json!([{"eventId": 3, "subscriptionType": "deal.creation", "objectId": 3, "portalId": 99_999_999}]);
    assert!(deliver_hubspot_webhook(&env, &events).await.is_empty());

    // Sync health names each sync's HubSpot account.
    let dashboards = engine::dashboards::Dashboards::new(env.connections.clone());
    let overview = dashboards.overview().await.unwrap();
    let account_of =
        |id: &str| overview.iter().find(|r| r.sync.sync_id == id).and_then(|r| r.sync.hub_account.as_ref()).map(|a| a.name.clone());
    assert_eq!(account_of(&first.id).as_deref(), Some("sandbox-portal.example · portal 24681357"));
    assert_eq!(account_of(&second.id).as_deref(), Some("sandbox-portal-2.example · portal 24681358"));

    // An app account keeps the HubSpot account its syncs' records are linked to: installing it
    // for another changes nothing.
    let url = env.connections.start(&env.admin, &env.session, "pipedrive", None, Some(&hub2)).await.unwrap();
    let params =
        callback(&sandbox::walk::consent_for(&url, PD_USER.0, PD_USER.1, sandbox::walk::Decision::Allow, Some("7701234")).await.unwrap());
    assert_eq!(env.complete("pipedrive", &params).await, (InstallResult::OtherHubSpotAccount, None));
    let first_app = env.connections.get(&first.app).await.unwrap();
    assert_eq!(first_app.hub_connection_id.as_deref(), Some(first.hubspot.as_str()));

    // The HubSpot account chosen for an install is uninstalled before the install finishes: none.
    let third_company = env.add_account(&env.pipedrive).await;
    let url = env.connections.start(&env.admin, &env.session, "pipedrive", None, Some(&hub2)).await.unwrap();
    env.connections.uninstall(&env.admin, &hub2).await.unwrap();
    let params = callback(
        &sandbox::walk::consent_for(&url, PD_USER.0, PD_USER.1, sandbox::walk::Decision::Allow, Some(&third_company)).await.unwrap(),
    );
    assert_eq!(env.complete("pipedrive", &params).await, (InstallResult::HubSpotGone, None));
    // The second company's syncs now wait for that HubSpot account; Sync health says which.
    let list = env.connections.list().await.unwrap();
    let app2_row = list.iter().find(|c| c.id == app2).unwrap();
    assert!(app2_row.hub_in(&list).is_none());
    assert_eq!(app2_row.linked_hub(&list).map(|h| h.account_id.as_str()), Some(SECOND_PORTAL));
    let overview = dashboards.overview().await.unwrap();
    let second_row = overview.iter().find(|r| r.sync.sync_id == second.id).unwrap();
    assert!(second_row.sync.hub_account.as_ref().is_some_and(|a| a.uninstalled));
    assert_eq!(second_row.status_detail.as_deref(), Some("HubSpot is not connected. Connect HubSpot to resume."));
    env
}

/// Delivers HubSpot events to Tandem as the sandbox signs them; answers the syncs woken.
async fn deliver_hubspot_webhook(env: &Env, events: &Value) -> Vec<String> {
    let uri = "http://127.0.0.1:3999/webhooks/hubspot";
    let body = events.to_string();
    let ts = engine::clock::now_ms().to_string();
    let signature = sandbox::hubspot::webhooks::signature_v3(sandbox::DEMO_CLIENT_SECRET, "POST", uri, &body, &ts);
    engine::webhooks::hubspot(&env.connections, uri, body.as_bytes(), Some(&ts), Some(&signature)).await.expect("accepted")
}
