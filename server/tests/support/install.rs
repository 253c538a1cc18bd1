//! Shared by the chaos test and the sync benchmark: a Tandem database (in `data_dir`, sealed with
//! `key`) where an admin installed HubSpot and another app's sandbox (Pipedrive or Zoho CRM)
//! through their consent pages and saved a deal sync, ready for a `tandem` process (or an
//! in-process engine) to run.

use std::path::Path;

use engine::connections::{CallbackParams, Connections};
use engine::connectors::{hubspot, pipedrive, zoho, ProviderConfig};
use engine::crypto::SecretBox;
use engine::syncs::Syncs;
use engine::{Accounts, Store};
use model::apps::ObjectKind;
use model::sync::{Schemas, SyncSettings};
use sandbox::walk::{consent, Decision};
use sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

/// The app's provider (`pipedrive` or `zoho`) served by its sandbox at `url`, with the demo
/// OAuth app.
pub fn app_provider(app: &str, url: &str) -> ProviderConfig {
    let (id, secret) = (Some(DEMO_CLIENT_ID.to_string()), Some(DEMO_CLIENT_SECRET.to_string()));
    match app {
        "pipedrive" => pipedrive::config(url, id, secret),
        "zoho" => zoho::config(url, id, secret),
        other => panic!("no sandbox for {other}"),
    }
}

/// The sandbox's own user, who installs the app.
fn sandbox_user(app: &str) -> &'static str {
    match app {
        "hubspot" => "admin@hubspot-sandbox.example",
        "zoho" => "priya@zoho-sandbox.example",
        _ => "dana@pipedrive-sandbox.example",
    }
}

/// Installs HubSpot and Pipedrive and saves a deal sync between them (`tweak` adjusts the new
/// sync's settings). Answers the Pipedrive connection's id and the sync's id.
#[allow(dead_code)] // Not every includer syncs Pipedrive.
pub async fn install_and_sync_deals(
    data_dir: &Path,
    database_url: Option<&str>,
    key: &str,
    tandem_url: &str,
    hubspot_url: &str,
    pipedrive_url: &str,
    tweak: impl FnOnce(&mut SyncSettings, &Schemas),
) -> (String, String) {
    install_and_sync_app_deals(data_dir, database_url, key, tandem_url, hubspot_url, "pipedrive", pipedrive_url, tweak).await
}

/// Installs HubSpot and `app` (`pipedrive` or `zoho`, its sandbox at `app_url`) and saves a deal
/// sync between them (`tweak` adjusts the new sync's settings). Answers the app connection's id
/// and the sync's id.
#[allow(clippy::too_many_arguments)]
pub async fn install_and_sync_app_deals(
    data_dir: &Path,
    database_url: Option<&str>,
    key: &str,
    tandem_url: &str,
    hubspot_url: &str,
    app: &str,
    app_url: &str,
    tweak: impl FnOnce(&mut SyncSettings, &Schemas),
) -> (String, String) {
    let store = Store::open(database_url, data_dir).await.unwrap();
    store.migrate().await.unwrap();
    let accounts = Accounts::new(store.clone());
    let admin = accounts.create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.unwrap();
    let providers = vec![
        hubspot::config(hubspot_url, hubspot_url, Some(DEMO_CLIENT_ID.into()), Some(DEMO_CLIENT_SECRET.into())),
        app_provider(app, app_url),
    ];
    let connections = Connections::new(store.clone(), SecretBox::load(Some(key), data_dir).unwrap(), providers, tandem_url);
    let mut app_connection = String::new();
    for provider in ["hubspot", app] {
        let url = connections.start(&admin.user, &admin.token, provider, None, None).await.unwrap();
        let back = consent(&url, sandbox_user(provider), "sandbox", Decision::Allow).await.unwrap();
        let back = reqwest::Url::parse(&back).unwrap();
        let get = |k: &str| back.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        // Zoho's callback names the accounts server of the admin's data centre.
        let params =
            CallbackParams { code: get("code"), state: get("state"), accounts_server: get("accounts-server"), ..Default::default() };
        let done = connections.complete(provider, Some((&admin.user, &admin.token)), &params).await.unwrap();
        app_connection = done.connection_id.unwrap();
    }
    let syncs = Syncs::new(connections.clone());
    let schemas = syncs.schemas(&app_connection, ObjectKind::Deal).await.unwrap();
    let mut settings = SyncSettings::new_for(ObjectKind::Deal, &schemas);
    tweak(&mut settings, &schemas);
    let saved = syncs.save(&admin.user, &app_connection, &settings).await.unwrap();
    store.close().await;
    (app_connection, saved.id)
}
