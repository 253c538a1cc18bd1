//! Deal sync helpers: a saved sync between the two sandboxes, edits "as a user" on either side,
//! and both sides' deals by name.

use std::collections::HashMap;

use engine::runner::{Engine, EngineConfig, Trigger};
use engine::store::RecordRow;
use engine::syncs::Syncs;
use model::apps::ObjectKind;
use model::sync::{Schemas, SyncSettings};
use serde_json::{json, Value};

use super::Env;

pub const MINUTE: i64 = 60_000;

pub struct Sync {
    pub id: String,
    /// The app's connection (Pipedrive's in the Pipedrive tests).
    pub pipedrive: String,
    pub hubspot: String,
    pub schemas: Schemas,
    /// The app's connection, whichever app it is.
    pub app: String,
}

/// Installs both apps and saves a deal sync: Auto-mapped first pipelines, default fields,
/// adjusted by `tweak`.
pub async fn set_up(env: &Env, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
    set_up_object(env, ObjectKind::Deal, tweak).await
}

/// Installs both apps and saves a sync of `object` with its default settings, adjusted by `tweak`.
pub async fn set_up_object(env: &Env, object: ObjectKind, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
    set_up_app(env, "pipedrive", object, tweak).await
}

/// Installs HubSpot and `app` and saves a sync of `object` with its default settings, adjusted
/// by `tweak`.
pub async fn set_up_app(env: &Env, app: &str, object: ObjectKind, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
    let hubspot = env.install("hubspot").await;
    let app_connection = env.install(app).await;
    let syncs = Syncs::new(env.connections.clone());
    let schemas = syncs.schemas(&app_connection, object).await.expect("schemas");
    let mut settings = SyncSettings::new_for(object, &schemas);
    tweak(&mut settings, &schemas);
    let saved = syncs.save(&env.admin, &app_connection, &settings).await.expect("save the sync");
    Sync { id: saved.id, pipedrive: app_connection.clone(), hubspot, schemas, app: app_connection }
}

/// Saves another sync (of `object`) for the apps `first` installed.
pub async fn add_sync(env: &Env, first: &Sync, object: ObjectKind, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
    let syncs = Syncs::new(env.connections.clone());
    let schemas = syncs.schemas(&first.app, object).await.expect("schemas");
    let mut settings = SyncSettings::new_for(object, &schemas);
    tweak(&mut settings, &schemas);
    let saved = syncs.save(&env.admin, &first.app, &settings).await.expect("save the sync");
    Sync { id: saved.id, pipedrive: first.app.clone(), hubspot: first.hubspot.clone(), schemas, app: first.app.clone() }
}

pub fn engine(env: &Env) -> Engine {
    Engine::new(env.connections.clone(), EngineConfig::default())
}

pub async fn run(engine: &Engine, sync: &Sync) -> engine::store::RunRow {
    engine.run_sync(&sync.id, Trigger::Manual).await.expect("run").expect("the sync ran").run
}

/// The Pipedrive stage id of a stage name in pipeline 1 (Sales).
pub fn pd_stage(sync: &Sync, name: &str) -> String {
    let sales = sync.schemas.app.pipeline("1").expect("Sales");
    sales.stages.iter().find(|s| s.name == name).map(|s| s.id.clone()).unwrap_or_else(|| panic!("no stage {name}"))
}

impl Env {
    pub async fn hs_create(&self, props: Value, at: Option<i64>) -> String {
        self.hs_object("deals", props, at).await
    }

    pub async fn hs_edit(&self, id: &str, props: Value, at: Option<i64>) {
        self.hs_object_edit("deals", id, props, at).await
    }

    pub async fn pd_create(&self, fields: Value, at: Option<i64>) -> String {
        self.pd_object("deals", fields, at).await
    }

    pub async fn pd_edit(&self, id: &str, fields: Value, at: Option<i64>) {
        self.pd_object_edit("deals", id, fields, at).await
    }

    /// Creates a HubSpot record of `object` (`deals`, `contacts`, `companies`) as a user would,
    /// at a chosen time (now when `None`).
    pub async fn hs_object(&self, object: &str, props: Value, at: impl Into<Option<i64>>) -> String {
        let body = json!({"properties": props, "timestamp": at.into()});
        let r = self.http.post(format!("{}/_sandbox/objects/{object}", self.hubspot.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    pub async fn hs_object_edit(&self, object: &str, id: &str, props: Value, at: impl Into<Option<i64>>) {
        let body = json!({"properties": props, "timestamp": at.into()});
        let r = self.http.patch(format!("{}/_sandbox/objects/{object}/{id}", self.hubspot.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }

    /// Creates a Pipedrive deal, person or organization (`object` as in the control paths,
    /// `fields` as API v2 takes them) as a user would.
    pub async fn pd_object(&self, object: &str, fields: Value, at: impl Into<Option<i64>>) -> String {
        let body = json!({"fields": fields, "timestamp": at.into()});
        let r = self.http.post(format!("{}/_sandbox/{object}", self.pipedrive.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["id"].to_string()
    }

    pub async fn pd_object_edit(&self, object: &str, id: &str, fields: Value, at: impl Into<Option<i64>>) {
        let body = json!({"fields": fields, "timestamp": at.into()});
        let r = self.http.patch(format!("{}/_sandbox/{object}/{id}", self.pipedrive.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }

    pub async fn token(&self, connection: &str) -> String {
        self.connections.access_token(connection).await.expect("token").token
    }

    /// Every HubSpot deal by name: (id, properties).
    pub async fn hs_deals(&self, sync: &Sync) -> HashMap<String, (String, Value)> {
        let token = self.token(&sync.hubspot).await;
        let mut out = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut q =
                vec![("limit", "100".to_string()), ("properties", "dealname,amount,closedate,pipeline,dealstage,tandem_record_id".into())];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page: Value = self
                .http
                .get(format!("{}/crm/v3/objects/deals", self.hubspot.url()))
                .query(&q)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for d in page["results"].as_array().unwrap() {
                let name = d["properties"]["dealname"].as_str().unwrap_or_default().to_string();
                assert!(
                    out.insert(name.clone(), (d["id"].as_str().unwrap().to_string(), d["properties"].clone())).is_none(),
                    "two HubSpot deals named {name}"
                );
            }
            after = page["paging"]["next"]["after"].as_str().map(str::to_string);
            if after.is_none() {
                return out;
            }
        }
    }

    /// Every live Pipedrive deal by title.
    pub async fn pd_deals(&self, sync: &Sync) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        for d in self.pd_records(sync, "deals").await {
            let title = d["title"].as_str().unwrap().to_string();
            assert!(out.insert(title.clone(), d).is_none(), "two Pipedrive deals titled {title}");
        }
        out
    }

    /// Both sandboxes answer some calls with 429, 500 or 503 or drop the connection, and every
    /// token they issued has expired.
    pub async fn fault_both(&self) {
        let faults = json!({"rate_429": 0.1, "rate_500": 0.1, "rate_503": 0.05, "rate_drop": 0.05});
        self.faults(&self.hubspot, faults.clone()).await;
        self.faults(&self.pipedrive, faults).await;
        let _ = self.control(&self.hubspot, "/_sandbox/expire-tokens").await;
        let _ = self.control(&self.pipedrive, "/_sandbox/expire-tokens").await;
    }

    pub async fn clear_faults(&self) {
        self.faults(&self.hubspot, json!({})).await;
        self.faults(&self.pipedrive, json!({})).await;
    }

    pub async fn faults(&self, sandbox: &sandbox::RunningSandbox, config: Value) {
        let r = self.http.put(format!("{}/_sandbox/faults", sandbox.url())).json(&config).send().await.unwrap();
        assert!(r.status().is_success());
    }
}

pub async fn records(env: &Env, sync: &Sync) -> Vec<RecordRow> {
    env.connections.store().all_records(&sync.id).await.unwrap()
}
