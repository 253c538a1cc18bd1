//! The app side of the conformance suite: each app HubSpot syncs with, seen as a user sees it,
//! through one vocabulary (deals with a name, an amount, a stage, a close date, a person and a
//! company; persons by email; companies by name). A test written against [`App`] runs against
//! every app; a third app adds a variant here and a line to [`conformance!`].

use std::collections::HashMap;

use model::apps::ObjectKind;
use model::sync::{PipelineMapping, Schemas, SyncSettings};
use sandbox::RunningSandbox;
use serde_json::{json, Map, Value};

use super::deals::{set_up_app, Sync};
use super::Env;

/// An app HubSpot syncs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    Pipedrive,
    Zoho,
}

/// A stage of the app's main pipeline, by the part it plays in the suite's stage mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Mapped from HubSpot's "Appointment scheduled".
    First,
    /// Mapped from HubSpot's "Qualified to buy".
    Second,
    /// Mapped from HubSpot's "Closed won".
    Won,
    /// Mapped from HubSpot's "Closed lost".
    Lost,
    /// No HubSpot stage maps to it: its deals are held back.
    Unmapped,
}

/// A deal's fields as a user types them; `None` leaves a field as it is (or empty).
#[derive(Clone, Debug, Default)]
pub struct DealFields<'a> {
    pub name: Option<&'a str>,
    pub amount: Option<f64>,
    pub stage: Option<Stage>,
    pub close_date: Option<&'a str>,
    /// The person's id in the app.
    pub person: Option<&'a str>,
    /// The company's id in the app.
    pub company: Option<&'a str>,
}

/// A deal as the app's API reads it.
#[derive(Clone, Debug)]
pub struct Deal {
    pub id: String,
    pub name: String,
    pub amount: Option<f64>,
    /// The stage's name as the app shows it (Pipedrive's won and lost deals: "Won", "Lost").
    pub stage: String,
    pub close_date: Option<String>,
    pub person: Option<String>,
    pub company: Option<String>,
}

/// A person's fields as a user types them.
#[derive(Clone, Debug, Default)]
pub struct PersonFields<'a> {
    pub first: Option<&'a str>,
    pub last: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub company: Option<&'a str>,
}

/// A person as the app's API reads it.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    /// The whole name as the app shows it.
    pub name: String,
    pub email: String,
    pub phone: String,
    pub company: Option<String>,
}

/// A company as the app's API reads it.
#[derive(Clone, Debug)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub website: String,
    /// The street address, where the app's company has one that syncs by default.
    pub address: Option<String>,
}

/// A Pipedrive email or phone list with one primary entry.
fn pd_list(value: &str) -> Value {
    json!([{"value": value, "primary": true, "label": "work"}])
}

/// A Pipedrive person's primary email or phone.
fn pd_primary(person: &Value, list: &str) -> String {
    let items = person[list].as_array().cloned().unwrap_or_default();
    let chosen = items.iter().find(|i| i["primary"] == true).or(items.first()).cloned().unwrap_or(Value::Null);
    chosen["value"].as_str().unwrap_or_default().to_string()
}

/// An id as an app's JSON holds it (Pipedrive's numbers, Zoho's strings), or `None` for null.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(id_of),
        other => Some(other.to_string()),
    }
}

fn number(id: &str) -> u64 {
    id.parse().unwrap_or_else(|_| panic!("a Pipedrive id: {id}"))
}

impl App {
    /// The app's name in Tandem's URLs and registry.
    pub fn name(self) -> &'static str {
        match self {
            App::Pipedrive => "pipedrive",
            App::Zoho => "zoho",
        }
    }

    pub fn sandbox(self, env: &Env) -> &RunningSandbox {
        match self {
            App::Pipedrive => &env.pipedrive,
            App::Zoho => &env.zoho,
        }
    }

    /// The main pipeline's stage that plays `stage`'s part.
    pub fn stage_name(self, stage: Stage) -> &'static str {
        match (self, stage) {
            (App::Pipedrive, Stage::First) => "Meeting Scheduled",
            (App::Pipedrive, Stage::Second) => "Proposal Made",
            (App::Pipedrive, Stage::Won) => "Won",
            (App::Pipedrive, Stage::Lost) => "Lost",
            (App::Pipedrive, Stage::Unmapped) => "Negotiations Started",
            (App::Zoho, Stage::First) => "Qualification",
            (App::Zoho, Stage::Second) => "Needs Analysis",
            (App::Zoho, Stage::Won) => "Closed Won",
            (App::Zoho, Stage::Lost) => "Closed Lost",
            (App::Zoho, Stage::Unmapped) => "Value Proposition",
        }
    }

    /// The deal field holding the amount (what a filter on the amount names).
    pub fn amount_field(self) -> &'static str {
        match self {
            App::Pipedrive => "value",
            App::Zoho => "Amount",
        }
    }

    fn main_pipeline(self) -> &'static str {
        match self {
            App::Pipedrive => "Sales",
            App::Zoho => "Standard",
        }
    }

    /// HubSpot's default pipeline onto the app's main one: appointment scheduled, qualified to
    /// buy, closed won and closed lost onto [`Stage::First`], [`Stage::Second`], won and lost;
    /// every other stage left unmapped.
    pub fn map_stages(self, settings: &mut SyncSettings, schemas: &Schemas) {
        let pipeline = self.pipeline(schemas);
        let mut mapping = PipelineMapping { hubspot_pipeline: "default".into(), app_pipeline: pipeline.id.clone(), stages: vec![] };
        for (hub, stage) in [
            ("appointmentscheduled", Stage::First),
            ("qualifiedtobuy", Stage::Second),
            ("closedwon", Stage::Won),
            ("closedlost", Stage::Lost),
        ] {
            mapping.set_stage(hub, Some(self.stage_id(schemas, stage)));
        }
        settings.pipelines = vec![mapping];
    }

    fn pipeline(self, schemas: &Schemas) -> &model::sync::PipelineInfo {
        schemas
            .app
            .pipelines
            .iter()
            .find(|p| p.name == self.main_pipeline())
            .unwrap_or_else(|| panic!("no pipeline {}", self.main_pipeline()))
    }

    /// The id the app's schema gives the stage.
    pub fn stage_id(self, schemas: &Schemas, stage: Stage) -> String {
        let name = self.stage_name(stage);
        let pipeline = self.pipeline(schemas);
        pipeline.stages.iter().find(|s| s.name == name).map(|s| s.id.clone()).unwrap_or_else(|| panic!("no stage {name}"))
    }

    fn stage_by_id(self, schemas: &Schemas, id: &str) -> String {
        let pipeline = self.pipeline(schemas);
        pipeline.stages.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_else(|| format!("stage {id}"))
    }

    /// Installs HubSpot and the app and saves a sync of `object` with its default settings (deals:
    /// the suite's stage mapping), adjusted by `tweak`.
    pub async fn set_up(self, env: &Env, object: ObjectKind, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
        set_up_app(env, self.name(), object, |s, schemas| {
            if object == ObjectKind::Deal {
                self.map_stages(s, schemas);
            }
            tweak(s, schemas)
        })
        .await
    }

    /// Saves another sync of `object` for the apps `first` installed.
    pub async fn add_sync(self, env: &Env, first: &Sync, object: ObjectKind, tweak: impl FnOnce(&mut SyncSettings, &Schemas)) -> Sync {
        super::deals::add_sync(env, first, object, |s, schemas| {
            if object == ObjectKind::Deal {
                self.map_stages(s, schemas);
            }
            tweak(s, schemas)
        })
        .await
    }

    fn deal_body(self, sync: &Sync, fields: &DealFields<'_>) -> Value {
        let mut body = Map::new();
        let mut put = |key: &str, value: Value| {
            body.insert(key.to_string(), value);
        };
        match self {
            App::Pipedrive => {
                if let Some(name) = fields.name {
                    put("title", json!(name));
                }
                if let Some(amount) = fields.amount {
                    put("value", json!(amount));
                }
                if let Some(date) = fields.close_date {
                    put("expected_close_date", json!(date));
                }
                match fields.stage {
                    Some(Stage::Won) => put("status", json!("won")),
                    Some(Stage::Lost) => put("status", json!("lost")),
                    Some(stage) => {
                        put("pipeline_id", json!(number(&self.pipeline(&sync.schemas).id)));
                        put("stage_id", json!(number(&self.stage_id(&sync.schemas, stage))));
                        put("status", json!("open"));
                    }
                    None => {}
                }
                if let Some(person) = fields.person {
                    put("person_id", json!(number(person)));
                }
                if let Some(company) = fields.company {
                    put("org_id", json!(number(company)));
                }
            }
            App::Zoho => {
                if let Some(name) = fields.name {
                    put("Deal_Name", json!(name));
                }
                if let Some(amount) = fields.amount {
                    put("Amount", json!(amount));
                }
                if let Some(date) = fields.close_date {
                    put("Closing_Date", json!(date));
                }
                if let Some(stage) = fields.stage {
                    put("Pipeline", json!(self.main_pipeline()));
                    put("Stage", json!(self.stage_name(stage)));
                }
                if let Some(person) = fields.person {
                    put("Contact_Name", json!({"id": person}));
                }
                if let Some(company) = fields.company {
                    put("Account_Name", json!({"id": company}));
                }
            }
        }
        Value::Object(body)
    }

    /// Creates a deal as a user would, at a chosen time (now when `None`); its id.
    pub async fn create_deal(self, env: &Env, sync: &Sync, fields: DealFields<'_>, at: impl Into<Option<i64>>) -> String {
        let mut body = self.deal_body(sync, &fields);
        if self == App::Pipedrive && matches!(fields.stage, Some(Stage::Won | Stage::Lost)) {
            // A won or lost deal still sits in a pipeline.
            body["pipeline_id"] = json!(number(&self.pipeline(&sync.schemas).id));
        }
        match self {
            App::Pipedrive => env.pd_object("deals", body, at).await,
            App::Zoho => env.zo_create("Deals", body, at).await,
        }
    }

    /// Edits a deal as a user would.
    pub async fn edit_deal(self, env: &Env, sync: &Sync, id: &str, fields: DealFields<'_>, at: impl Into<Option<i64>>) {
        let body = self.deal_body(sync, &fields);
        match self {
            App::Pipedrive => env.pd_object_edit("deals", id, body, at).await,
            App::Zoho => env.zo_edit("Deals", id, body, at).await,
        }
    }

    /// Deletes a deal through the app's API.
    pub async fn delete_deal(self, env: &Env, sync: &Sync, id: &str) {
        let token = env.token(&sync.app).await;
        let request = match self {
            App::Pipedrive => env.http.delete(format!("{}/api/v2/deals/{id}", env.pipedrive.url())).bearer_auth(&token),
            App::Zoho => {
                env.http.delete(format!("{}/crm/v8/Deals/{id}", env.zoho.url())).header("Authorization", format!("Zoho-oauthtoken {token}"))
            }
        };
        let r = request.send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Every live deal of the app by name; a second deal with one name fails the test.
    pub async fn deals(self, env: &Env, sync: &Sync) -> HashMap<String, Deal> {
        let deals: Vec<Deal> = match self {
            App::Pipedrive => env
                .pd_deals(sync)
                .await
                .into_values()
                .map(|d| Deal {
                    id: d["id"].to_string(),
                    name: d["title"].as_str().unwrap_or_default().to_string(),
                    amount: d["value"].as_f64(),
                    stage: match d["status"].as_str() {
                        Some("won") => "Won".to_string(),
                        Some("lost") => "Lost".to_string(),
                        _ => self.stage_by_id(&sync.schemas, &d["stage_id"].to_string()),
                    },
                    close_date: d["expected_close_date"].as_str().map(str::to_string),
                    person: id_of(&d["person_id"]),
                    company: id_of(&d["org_id"]),
                })
                .collect(),
            App::Zoho => env
                .zo_deals(sync)
                .await
                .into_values()
                .map(|d| Deal {
                    id: id_of(&d["id"]).unwrap_or_default(),
                    name: d["Deal_Name"].as_str().unwrap_or_default().to_string(),
                    amount: d["Amount"].as_f64(),
                    stage: d["Stage"].as_str().unwrap_or_default().to_string(),
                    close_date: d["Closing_Date"].as_str().map(str::to_string),
                    person: id_of(&d["Contact_Name"]),
                    company: id_of(&d["Account_Name"]),
                })
                .collect(),
        };
        let mut out = HashMap::new();
        for deal in deals {
            let name = deal.name.clone();
            assert!(out.insert(name.clone(), deal).is_none(), "two deals named {name}");
        }
        out
    }

    fn person_body(self, fields: &PersonFields<'_>) -> Value {
        let mut body = Map::new();
        match self {
            App::Pipedrive => {
                let name: Vec<&str> = [fields.first, fields.last].into_iter().flatten().collect();
                if !name.is_empty() {
                    body.insert("name".into(), json!(name.join(" ")));
                }
                if let Some(email) = fields.email {
                    body.insert("emails".into(), pd_list(email));
                }
                if let Some(phone) = fields.phone {
                    body.insert("phones".into(), pd_list(phone));
                }
                if let Some(company) = fields.company {
                    body.insert("org_id".into(), json!(number(company)));
                }
            }
            App::Zoho => {
                for (key, value) in
                    [("First_Name", fields.first), ("Last_Name", fields.last), ("Email", fields.email), ("Phone", fields.phone)]
                {
                    if let Some(value) = value {
                        body.insert(key.into(), json!(value));
                    }
                }
                if let Some(company) = fields.company {
                    body.insert("Account_Name".into(), json!({"id": company}));
                }
            }
        }
        Value::Object(body)
    }

    /// Creates a person (Pipedrive) or contact (Zoho) as a user would; its id.
    pub async fn create_person(self, env: &Env, fields: PersonFields<'_>, at: impl Into<Option<i64>>) -> String {
        let body = self.person_body(&fields);
        match self {
            App::Pipedrive => env.pd_object("persons", body, at).await,
            App::Zoho => env.zo_create("Contacts", body, at).await,
        }
    }

    /// Edits a person as a user would (a new name: both parts given).
    pub async fn edit_person(self, env: &Env, id: &str, fields: PersonFields<'_>, at: impl Into<Option<i64>>) {
        let body = self.person_body(&fields);
        match self {
            App::Pipedrive => env.pd_object_edit("persons", id, body, at).await,
            App::Zoho => env.zo_edit("Contacts", id, body, at).await,
        }
    }

    /// Every live person by lower-cased email (blank for none).
    pub async fn persons(self, env: &Env, sync: &Sync) -> HashMap<String, Vec<Person>> {
        let persons: Vec<Person> = match self {
            App::Pipedrive => env
                .pd_records(sync, "persons")
                .await
                .into_iter()
                .map(|p| Person {
                    id: p["id"].to_string(),
                    name: p["name"].as_str().unwrap_or_default().to_string(),
                    email: pd_primary(&p, "emails"),
                    phone: pd_primary(&p, "phones"),
                    company: id_of(&p["org_id"]),
                })
                .collect(),
            App::Zoho => env
                .zo_records(sync, "Contacts")
                .await
                .into_iter()
                .map(|c| Person {
                    id: id_of(&c["id"]).unwrap_or_default(),
                    name: c["Full_Name"].as_str().unwrap_or_default().to_string(),
                    email: c["Email"].as_str().unwrap_or_default().to_string(),
                    phone: c["Phone"].as_str().unwrap_or_default().to_string(),
                    company: id_of(&c["Account_Name"]),
                })
                .collect(),
        };
        let mut out: HashMap<String, Vec<Person>> = HashMap::new();
        for p in persons {
            out.entry(p.email.to_lowercase()).or_default().push(p);
        }
        out
    }

    /// Creates a company (Pipedrive's organization, Zoho's account) as a user would; its id.
    pub async fn create_company(self, env: &Env, name: &str, website: &str, address: Option<&str>, at: impl Into<Option<i64>>) -> String {
        match self {
            App::Pipedrive => {
                let mut body = json!({"name": name, "website": website});
                if let Some(address) = address {
                    body["address"] = json!({"value": address});
                }
                env.pd_object("organizations", body, at).await
            }
            App::Zoho => env.zo_create("Accounts", json!({"Account_Name": name, "Website": website}), at).await,
        }
    }

    /// Whether a company's street address syncs with HubSpot's `address` by default.
    pub fn syncs_company_address(self) -> bool {
        self == App::Pipedrive
    }

    /// Every live company by name.
    pub async fn companies(self, env: &Env, sync: &Sync) -> HashMap<String, Vec<Company>> {
        let companies: Vec<Company> = match self {
            App::Pipedrive => env
                .pd_records(sync, "organizations")
                .await
                .into_iter()
                .map(|o| Company {
                    id: o["id"].to_string(),
                    name: o["name"].as_str().unwrap_or_default().to_string(),
                    website: o["website"].as_str().unwrap_or_default().to_string(),
                    address: o["address"]["value"].as_str().map(str::to_string),
                })
                .collect(),
            App::Zoho => env
                .zo_records(sync, "Accounts")
                .await
                .into_iter()
                .map(|a| Company {
                    id: id_of(&a["id"]).unwrap_or_default(),
                    name: a["Account_Name"].as_str().unwrap_or_default().to_string(),
                    website: a["Website"].as_str().unwrap_or_default().to_string(),
                    address: None,
                })
                .collect(),
        };
        let mut out: HashMap<String, Vec<Company>> = HashMap::new();
        for c in companies {
            out.entry(c.name.clone()).or_default().push(c);
        }
        out
    }

    /// HubSpot and the app answer some calls with 429, 500 or 503 or drop the connection, and
    /// every token they issued has expired.
    pub async fn fault_both(self, env: &Env) {
        let faults = json!({"rate_429": 0.1, "rate_500": 0.1, "rate_503": 0.05, "rate_drop": 0.05});
        env.faults(&env.hubspot, faults.clone()).await;
        env.faults(self.sandbox(env), faults).await;
        let _ = env.control(&env.hubspot, "/_sandbox/expire-tokens").await;
        let _ = env.control(self.sandbox(env), "/_sandbox/expire-tokens").await;
    }

    pub async fn clear_faults(self, env: &Env) {
        env.faults(&env.hubspot, json!({})).await;
        env.faults(self.sandbox(env), json!({})).await;
    }
}

impl Env {
    /// Every live Pipedrive record of `object` (`persons`, `organizations`, `deals`) over API v2.
    pub async fn pd_records(&self, sync: &Sync, object: &str) -> Vec<Value> {
        let token = self.token(&sync.app).await;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", "500".to_string())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let url = format!("{}/api/v2/{object}", self.pipedrive.url());
            let page: Value = self.http.get(url).query(&q).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            cursor = page["additional_data"]["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return out;
            }
        }
    }
}

/// Runs a conformance test against every app, on SQLite and Postgres:
/// `conformance!(name)` makes `name::pipedrive::sqlite`, `name::zoho::postgres`, ….
#[macro_export]
macro_rules! conformance {
    ($name:ident) => {
        mod $name {
            $crate::conformance!(@app $name, pipedrive, Pipedrive);
            $crate::conformance!(@app $name, zoho, Zoho);
        }
    };
    (@app $name:ident, $module:ident, $variant:ident) => {
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::with_env(engine::store::Backend::Sqlite, |env| super::super::$name(env, $crate::common::apps::App::$variant)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::with_env(engine::store::Backend::Postgres, |env| super::super::$name(env, $crate::common::apps::App::$variant))
                    .await
            }
        }
    };
}
