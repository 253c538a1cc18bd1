//! HubSpot as a user sees it in the sandbox: records by a property, searches, associations.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::deals::Sync;
use super::Env;

impl Env {
    /// Every live HubSpot record of `object`, by the lower-cased value of `key` (email, domain).
    pub async fn hs_by(&self, sync: &Sync, object: &str, key: &str, properties: &str) -> HashMap<String, Vec<(String, Value)>> {
        let token = self.token(&sync.hubspot).await;
        let mut out: HashMap<String, Vec<(String, Value)>> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("limit", "100".to_string()), ("properties", properties.to_string())];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let url = format!("{}/crm/v3/objects/{object}", self.hubspot.url());
            let page: Value = self.http.get(url).query(&q).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            for r in page["results"].as_array().unwrap() {
                let value = r["properties"][key].as_str().unwrap_or_default().to_lowercase();
                out.entry(value).or_default().push((r["id"].as_str().unwrap().to_string(), r["properties"].clone()));
            }
            after = page["paging"]["next"]["after"].as_str().map(str::to_string);
            if after.is_none() {
                return out;
            }
        }
    }

    /// The id of the live HubSpot record of `object` whose `property` is `value`.
    pub async fn hs_find(&self, sync: &Sync, object: &str, property: &str, value: &str) -> String {
        let token = self.token(&sync.hubspot).await;
        let body = json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": value}]}], "limit": 10});
        let url = format!("{}/crm/v3/objects/{object}/search", self.hubspot.url());
        let mut found: Value;
        loop {
            // Search allows five requests a second.
            let r = self.http.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
            let limited = r.status() == 429;
            found = r.json().await.unwrap();
            if !limited {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let results = found["results"].as_array().unwrap_or_else(|| panic!("{found}"));
        assert_eq!(results.len(), 1, "one {object} with {property} {value}: {found}");
        results[0]["id"].as_str().unwrap().to_string()
    }

    /// The ids a HubSpot record is associated with among `to`, in order.
    pub async fn hs_associated(&self, sync: &Sync, from: &str, id: &str, to: &str) -> Vec<String> {
        let token = self.token(&sync.hubspot).await;
        let url = format!("{}/crm/v4/objects/{from}/{id}/associations/{to}", self.hubspot.url());
        let page: Value = self.http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let mut ids: Vec<String> =
            page["results"].as_array().unwrap().iter().map(|r| r["toObjectId"].to_string().trim_matches('"').to_string()).collect();
        ids.sort();
        ids
    }

    pub async fn hs_associate(&self, sync: &Sync, from: &str, id: &str, to: &str, to_id: &str) {
        let token = self.token(&sync.hubspot).await;
        let url = format!("{}/crm/v4/associations/{from}/{to}/batch/associate/default", self.hubspot.url());
        let r = self
            .http
            .post(url)
            .bearer_auth(&token)
            .json(&json!({"inputs": [{"from": {"id": id}, "to": {"id": to_id}}]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}
