//! Shared by the chaos test and the sync benchmark: a Tandem database (in `data_dir`, sealed with
//! `key`) where an admin installed both sandboxes through their consent pages and saved a deal
//! sync, ready for a `tandem` process (or an in-process engine) to run.

use std::path::Path;

use engine::connections::{CallbackParams, Connections};
use engine::connectors::{hubspot, pipedrive};
use engine::crypto::SecretBox;
use engine::syncs::Syncs;
use engine::{Accounts, Store};
use model::apps::ObjectKind;
use model::sync::{Schemas, SyncSettings};
use sandbox::walk::{consent, Decision};
use sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};

/// Answers the Pipedrive connection's id and the sync's id.
pub async fn install_and_sync_deals(
    data_dir: &Path,
    database_url: Option<&str>,
    key: &str,
    tandem_url: &str,
    hubspot_url: &str,
    pipedrive_url: &str,
    tweak: impl FnOnce(&mut SyncSettings, &Schemas),
) -> (String, String) {
    let store = Store::open(database_url, data_dir).await.unwrap();
    store.migrate().await.unwrap();
    let accounts = Accounts::new(store.clone());
    let admin = accounts.create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.unwrap();
    let providers = vec![
        hubspot::config(hubspot_url, hubspot_url, Some(DEMO_CLIENT_ID.into()), Some(DEMO_CLIENT_SECRET.into())),
        pipedrive::config(pipedrive_url, Some(DEMO_CLIENT_ID.into()), Some(DEMO_CLIENT_SECRET.into())),
    ];
    let connections = Connections::new(store.clone(), SecretBox::load(Some(key), data_dir).unwrap(), providers, tandem_url);
    let mut app_connection = String::new();
    for (app, email) in [("hubspot", "admin@hubspot-sandbox.example"), ("pipedrive", "dana@pipedrive-sandbox.example")] {
        let url = connections.start(&admin.user, &admin.token, app, None).await.unwrap();
        let back = consent(&url, email, "sandbox", Decision::Allow).await.unwrap();
        let back = reqwest::Url::parse(&back).unwrap();
        let get = |k: &str| back.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        let params = CallbackParams { code: get("code"), state: get("state"), ..Default::default() };
        let done = connections.complete(app, Some((&admin.user, &admin.token)), &params).await.unwrap();
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
