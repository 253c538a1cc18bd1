//! Several accounts behind one sandbox: the user signing in chooses the HubSpot portal, Pipedrive
//! company or Zoho CRM organization on the consent page, and every later request reaches that
//! account's data, limits and tokens only.

use std::net::SocketAddr;

use reqwest::redirect::Policy;
use sandbox::{
    start_hubspot_accounts, start_pipedrive_accounts, start_zoho_accounts, HubSpotConfig, OAuthClient, PipedriveConfig, ZohoConfig,
};
use serde_json::{json, Value};

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback/app";

fn client() -> OAuthClient {
    OAuthClient { client_id: "app-1".into(), client_secret: "secret-1".into(), redirect_uris: vec![REDIRECT.into()] }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// The paths and the sandbox user of a provider's authorization pages.
struct Pages {
    authorize: &'static str,
    login: &'static str,
    decision: &'static str,
    email: &'static str,
    allow: &'static str,
    scope: &'static str,
}

/// Signs in, checks the consent page offers `offered` accounts, chooses `account` (when given) and
/// allows: the code of the redirect.
async fn consent(url: &str, pages: &Pages, offered: &[&str], account: Option<&str>) -> String {
    let http = http();
    let params = [("client_id", "app-1"), ("redirect_uri", REDIRECT), ("scope", pages.scope), ("state", "s1"), ("response_type", "code")];
    let page = http.get(format!("{url}{}", pages.authorize)).query(&params).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form = params.to_vec();
    form.extend([("email", pages.email), ("password", "sandbox")]);
    let html = http.post(format!("{url}{}", pages.login)).form(&form).send().await.unwrap().text().await.unwrap();
    for id in offered {
        assert!(html.contains(&format!(r#"<option value="{id}">"#)), "{id} offered on {html}");
    }
    assert_eq!(html.contains(r#"<select id="account" name="account">"#), offered.len() > 1, "{html}");
    let pending = hidden(&html, "pending");
    let mut decision = vec![("pending", pending.as_str()), ("decision", pages.allow)];
    if let Some(account) = account {
        decision.push(("account", account));
    }
    let r = http.post(format!("{url}{}", pages.decision)).form(&decision).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}: {}", r.status(), r.text().await.unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    location.split("code=").nth(1).unwrap_or_else(|| panic!("no code in {location}")).split('&').next().unwrap().to_string()
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_hubspot_user_chooses_the_portal_and_its_token_reaches_that_portal_only() {
    let dir = std::env::temp_dir().join(format!("sandbox-accounts-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("hubspot.json");
    let (portals, running) = start_hubspot_accounts(HubSpotConfig::new(vec![client()]), 2, any_port(), Some(state.clone())).await.unwrap();
    let url = running.url();
    let http = http();
    let ids: Vec<String> = portals.all().iter().map(|p| p.read().portal_id.to_string()).collect();
    assert_eq!(ids, ["24681357", "24681358"]);
    let (_, listed) = json_of(http.get(format!("{url}/_sandbox/accounts")).send().await.unwrap()).await;
    assert_eq!(
        listed["accounts"],
        json!([{"id": "24681357", "name": "sandbox-portal.example"}, {"id": "24681358", "name": "sandbox-portal-2.example"}])
    );

    let pages = Pages {
        authorize: "/oauth/authorize",
        login: "/oauth/authorize/login",
        decision: "/oauth/authorize/decision",
        email: "admin@hubspot-sandbox.example",
        allow: "allow",
        scope: "crm.objects.deals.read crm.objects.deals.write",
    };
    let token = |code: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("client_id", "app-1"),
                ("client_secret", "secret-1"),
                ("redirect_uri", REDIRECT),
                ("code", code.as_str()),
            ];
            let (status, body) = json_of(http.post(format!("{url}/oauth/v1/token")).form(&form).send().await.unwrap()).await;
            assert_eq!(status, 200, "{body}");
            (body["access_token"].as_str().unwrap().to_string(), body["refresh_token"].as_str().unwrap().to_string())
        }
    };
    let (second, second_refresh) =
        token(consent(&url, &pages, &ids.iter().map(String::as_str).collect::<Vec<_>>(), Some(&ids[1])).await).await;
    // Allowing without choosing reaches the first portal.
    let (first, _) = token(consent(&url, &pages, &ids.iter().map(String::as_str).collect::<Vec<_>>(), None).await).await;

    // Token information names the chosen portal.
    let (_, info) = json_of(http.get(format!("{url}/oauth/v1/access-tokens/{second}")).send().await.unwrap()).await;
    assert_eq!((info["hub_id"].clone(), info["hub_domain"].clone()), (json!(24681358), json!("sandbox-portal-2.example")));
    let (_, info) = json_of(http.get(format!("{url}/oauth/v1/access-tokens/{first}")).send().await.unwrap()).await;
    assert_eq!(info["hub_id"], json!(24681357));
    let (_, details) = json_of(http.get(format!("{url}/account-info/v3/details")).bearer_auth(&second).send().await.unwrap()).await;
    assert_eq!(details["portalId"], json!(24681358));

    // A deal made with the second portal's token is in that portal only.
    let (status, deal) = json_of(
        http.post(format!("{url}/crm/v3/objects/deals"))
            .bearer_auth(&second)
            .json(&json!({"properties": {"dealname": "Second portal deal", "pipeline": "default", "dealstage": "appointmentscheduled"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{deal}");
    let id = deal["id"].as_str().unwrap();
    let read = |token: String| http.get(format!("{url}/crm/v3/objects/deals/{id}")).bearer_auth(token).send();
    assert_eq!(read(second.clone()).await.unwrap().status(), 200);
    assert_eq!(read(first.clone()).await.unwrap().status(), 404, "the first portal has no such deal");
    let summary = |path: String| {
        let http = http.clone();
        async move { json_of(http.get(path).send().await.unwrap()).await.1["records"]["deals"]["live"].clone() }
    };
    assert_eq!(summary(format!("{url}/_sandbox/accounts/{}/summary", ids[1])).await, json!(1));
    assert_eq!(summary(format!("{url}/_sandbox/summary")).await, json!(0), "the control API's default is the first portal");

    // The refresh token renews access to the same portal.
    let form = [("grant_type", "refresh_token"), ("client_id", "app-1"), ("client_secret", "secret-1"), ("refresh_token", &second_refresh)];
    let (status, renewed) = json_of(http.post(format!("{url}/oauth/v1/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(read(renewed["access_token"].as_str().unwrap().to_string()).await.unwrap().status(), 200);

    // Each portal counts its own requests: the second's limit spent leaves the first's alone.
    portals.all()[1].set_rate_limit(3);
    let mut refused = 0;
    for _ in 0..4 {
        refused += u32::from(read(second.clone()).await.unwrap().status() == 429);
    }
    assert!(refused >= 1, "the second portal's window is spent");
    assert_eq!(read(first.clone()).await.unwrap().status(), 404, "the first portal still answers");

    // The app's webhook settings reach every portal that installed it.
    let settings =
        json!({"targetUrl": "http://127.0.0.1:9/webhooks/hubspot", "throttling": {"maxConcurrentRequests": 10, "period": "SECONDLY"}});
    let put = http
        .put(format!("{url}/webhooks/v3/1234567/settings?hapikey={}", sandbox::hubspot::webhooks::DEVELOPER_API_KEY))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    for portal in portals.all() {
        let target = portal.read().webhooks.settings.as_ref().map(|s| s.target_url.clone());
        assert_eq!(target.as_deref(), Some("http://127.0.0.1:9/webhooks/hubspot"));
    }

    // A portal added through the control API comes back after a restart, with its records.
    let (status, added) = json_of(http.post(format!("{url}/_sandbox/accounts")).send().await.unwrap()).await;
    assert_eq!((status, added["id"].clone()), (201, json!("24681359")));
    let target = portals.all()[2].read().webhooks.settings.as_ref().map(|s| s.target_url.clone());
    assert_eq!(target.as_deref(), Some("http://127.0.0.1:9/webhooks/hubspot"), "a portal added later has the app's webhook settings");
    running.stop().await;
    let (portals, running) = start_hubspot_accounts(HubSpotConfig::new(vec![client()]), 1, any_port(), Some(state)).await.unwrap();
    let ids: Vec<String> = portals.all().iter().map(|p| p.read().portal_id.to_string()).collect();
    assert_eq!(ids, ["24681357", "24681358", "24681359"]);
    assert_eq!(summary(format!("{}/_sandbox/accounts/24681358/summary", running.url())).await, json!(1));
    let r = http.get(format!("{}/crm/v3/objects/deals/{id}", running.url())).bearer_auth(&second).send().await.unwrap();
    assert_eq!(r.status(), 200, "the second portal's token still reaches its deal");
    running.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_pipedrive_user_chooses_the_company() {
    let (companies, running) = start_pipedrive_accounts(PipedriveConfig::new(vec![client()]), 2, any_port(), None).await.unwrap();
    let url = running.url();
    let ids: Vec<String> = companies.all().iter().map(|c| c.read().company_id.to_string()).collect();
    let pages = Pages {
        authorize: "/oauth/authorize",
        login: "/oauth/authorize/login",
        decision: "/oauth/authorize/decision",
        email: "dana@pipedrive-sandbox.example",
        allow: "allow",
        scope: "crm.objects.deals.read crm.objects.deals.write",
    };
    let code = consent(&url, &pages, &[&ids[0], &ids[1]], Some(&ids[1])).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let r = http().post(format!("{url}/oauth/token")).basic_auth("app-1", Some("secret-1")).form(&form).send().await.unwrap();
    let (status, tokens) = json_of(r).await;
    assert_eq!(status, 200, "{tokens}");
    let me = http().get(format!("{url}/api/v1/users/me")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
    let (_, me) = json_of(me).await;
    assert_eq!(
        (me["data"]["company_id"].clone(), me["data"]["company_name"].clone()),
        (json!(ids[1].parse::<u64>().unwrap()), json!("Sandbox Sales Co 2"))
    );
    running.stop().await;
}

#[tokio::test]
async fn a_zoho_user_chooses_the_organization() {
    let (organizations, running) = start_zoho_accounts(ZohoConfig::new(vec![client()]), 2, any_port(), None).await.unwrap();
    let url = running.url();
    let ids: Vec<String> = organizations.all().iter().map(|o| o.read().org_id.to_string()).collect();
    let pages = Pages {
        authorize: "/oauth/v2/auth",
        login: "/oauth/v2/auth/login",
        decision: "/oauth/v2/auth/decision",
        email: "priya@zoho-sandbox.example",
        allow: "accept",
        scope: "ZohoCRM.org.READ",
    };
    let code = consent(&url, &pages, &[&ids[0], &ids[1]], Some(&ids[1])).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "app-1"),
        ("client_secret", "secret-1"),
        ("redirect_uri", REDIRECT),
        ("code", code.as_str()),
    ];
    let (status, tokens) = json_of(http().post(format!("{url}/oauth/v2/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let org = http()
        .get(format!("{url}/crm/v8/org"))
        .header("authorization", format!("Zoho-oauthtoken {}", tokens["access_token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    let (status, org) = json_of(org).await;
    assert_eq!(status, 200, "{org}");
    assert_eq!((org["org"][0]["id"].clone(), org["org"][0]["company_name"].clone()), (json!(ids[1]), json!("Sandbox Sales Co 2")));
    running.stop().await;
}
