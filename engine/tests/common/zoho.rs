//! Zoho CRM as a user sees it in the sandbox: records created and edited "as a user" at a chosen
//! time, and every live record of a module read over its API (`Authorization: Zoho-oauthtoken`).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::deals::Sync;
use super::Env;

/// The fields the tests read of each module.
fn fields_of(module: &str) -> &'static str {
    match module {
        "Deals" => "Deal_Name,Amount,Closing_Date,Pipeline,Stage,Contact_Name,Account_Name,Tandem_record_ID,Modified_Time",
        "Contacts" => "First_Name,Last_Name,Full_Name,Email,Phone,Account_Name,Tandem_record_ID,Modified_Time",
        _ => "Account_Name,Website,Phone,Tandem_record_ID,Modified_Time",
    }
}

impl Env {
    /// Creates a Zoho record of `module` (`Deals`, `Contacts`, `Accounts`) as a user would, at
    /// a chosen time (now when `None`); its id.
    pub async fn zo_create(&self, module: &str, fields: Value, at: impl Into<Option<i64>>) -> String {
        let body = json!({"fields": fields, "timestamp": at.into()});
        let r = self.http.post(format!("{}/_sandbox/{module}", self.zoho.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let answer: Value = r.json().await.unwrap();
        answer["id"].as_str().map(str::to_string).unwrap_or_else(|| answer["id"].to_string())
    }

    pub async fn zo_edit(&self, module: &str, id: &str, fields: Value, at: impl Into<Option<i64>>) {
        let body = json!({"fields": fields, "timestamp": at.into()});
        let r = self.http.patch(format!("{}/_sandbox/{module}/{id}", self.zoho.url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }

    /// Every live Zoho record of `module`, through the connection's token.
    pub async fn zo_records(&self, sync: &Sync, module: &str) -> Vec<Value> {
        let token = self.token(&sync.app).await;
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut q = vec![("fields", fields_of(module).to_string()), ("per_page", "200".to_string())];
            if let Some(t) = &page_token {
                q.push(("page_token", t.clone()));
            }
            let r = self
                .http
                .get(format!("{}/crm/v8/{module}", self.zoho.url()))
                .query(&q)
                .header("Authorization", format!("Zoho-oauthtoken {token}"))
                .send()
                .await
                .unwrap();
            if r.status() == 204 {
                return out;
            }
            assert_eq!(r.status(), 200);
            let page: Value = r.json().await.unwrap();
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            page_token = page["info"]["next_page_token"].as_str().filter(|_| page["info"]["more_records"] == true).map(str::to_string);
            if page_token.is_none() {
                return out;
            }
        }
    }

    /// Every live Zoho record of `module`, by what `key` picks from it.
    pub async fn zo_by(&self, sync: &Sync, module: &str, key: impl Fn(&Value) -> String) -> HashMap<String, Vec<Value>> {
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        for r in self.zo_records(sync, module).await {
            out.entry(key(&r)).or_default().push(r);
        }
        out
    }

    /// Every live Zoho deal by name; a second deal with one name fails the test.
    pub async fn zo_deals(&self, sync: &Sync) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        for d in self.zo_records(sync, "Deals").await {
            let name = d["Deal_Name"].as_str().unwrap_or_default().to_string();
            assert!(out.insert(name.clone(), d.clone()).is_none(), "two Zoho deals named {name}");
        }
        out
    }

    /// The Zoho sandbox's control API (`/_sandbox/...`) with a JSON body.
    pub async fn zo_control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self.http.request(method, format!("{}{path}", self.zoho.url())).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }
}
