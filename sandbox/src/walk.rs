//! Walks a sandbox's authorization pages as a browser would (log in, then **Allow** or **Deny**;
//! Zoho's **Accept** or **Reject**),
//! for tests of OAuth clients that run without a browser. Answers the redirect back to the app.

use reqwest::redirect::Policy;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the authorization URL is not valid: {0}")]
    Url(String),
    #[error("the sandbox answered {status} on {page}: {body}")]
    Page { page: &'static str, status: u16, body: String },
}

/// The sandbox user's decision on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Opens `authorize_url`, logs in as `email`/`password`, answers the consent page, and returns
/// the `Location` the sandbox redirects to (the app's redirect URI with `code` or `error`, and
/// `state`).
pub async fn consent(authorize_url: &str, email: &str, password: &str, decision: Decision) -> Result<String, WalkError> {
    consent_for(authorize_url, email, password, decision, None).await
}

/// As `consent`, choosing the account `account` (its id) on the consent page of a sandbox that
/// serves several; the first one otherwise.
pub async fn consent_for(
    authorize_url: &str,
    email: &str,
    password: &str,
    decision: Decision,
    account: Option<&str>,
) -> Result<String, WalkError> {
    let http = reqwest::Client::builder().redirect(Policy::none()).build()?;
    let url = reqwest::Url::parse(authorize_url).map_err(|e| WalkError::Url(e.to_string()))?;
    let origin = url.origin().ascii_serialization();
    let page = http.get(url.clone()).send().await?;
    let status = page.status().as_u16();
    let sign_in = page.text().await?;
    check("the sign-in page", status, &sign_in)?;
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("email".into(), email.into()));
    form.push(("password".into(), password.into()));
    let login = form_action(&sign_in).unwrap_or_else(|| "/oauth/authorize/login".into());
    let consent = http.post(format!("{origin}{login}")).form(&form).send().await?;
    let status = consent.status().as_u16();
    let html = consent.text().await?;
    check("the log-in form", status, &html)?;
    let pending = hidden_value(&html, "pending").ok_or(WalkError::Page { page: "the consent page", status, body: html.clone() })?;
    // The buttons' words are the provider's (Allow and Deny; Zoho's Accept and Reject).
    let answer = match decision {
        Decision::Allow => button_value(&html, "primary").unwrap_or_else(|| "allow".into()),
        Decision::Deny => button_value(&html, "secondary").unwrap_or_else(|| "deny".into()),
    };
    let decide = form_action(&html).unwrap_or_else(|| "/oauth/authorize/decision".into());
    let mut fields = vec![("pending", pending.as_str()), ("decision", answer.as_str())];
    if let Some(account) = account {
        fields.push(("account", account));
    }
    let redirect = http.post(format!("{origin}{decide}")).form(&fields).send().await?;
    let location = redirect.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
    match location {
        Some(location) => Ok(location),
        None => Err(WalkError::Page { page: "the consent decision", status: redirect.status().as_u16(), body: redirect.text().await? }),
    }
}

fn check(page: &'static str, status: u16, body: &str) -> Result<(), WalkError> {
    if status == 200 {
        Ok(())
    } else {
        Err(WalkError::Page { page, status, body: body.chars().take(500).collect() })
    }
}

/// Where the page's form posts.
fn form_action(html: &str) -> Option<String> {
    let marker = "<form method=\"post\" action=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// The value of the submit button with `class`.
fn button_value(html: &str, class: &str) -> Option<String> {
    let marker = format!("<button class=\"{class}\" type=\"submit\" name=\"decision\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// The value of a hidden form field.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// A token for a registered app without the browser flow (`POST /_sandbox/tokens` on the
/// sandbox at `sandbox_url`), for tests that read a sandbox as the app would.
pub async fn mint_token(sandbox_url: &str, client_id: &str, scopes: &[&str]) -> Result<String, WalkError> {
    let url = format!("{}/_sandbox/tokens", sandbox_url.trim_end_matches('/'));
    let body = serde_json::json!({"client_id": client_id, "scopes": scopes});
    let answer: serde_json::Value = reqwest::Client::new().post(url).json(&body).send().await?.error_for_status()?.json().await?;
    answer["access_token"].as_str().map(str::to_string).ok_or(WalkError::Page { page: "tokens", status: 200, body: answer.to_string() })
}
