//! Installing apps over OAuth against the sandboxes (real HTTP), each test on SQLite and Postgres:
//! state tampering, replay and session binding, PKCE, token refresh (ahead of expiry, once for
//! many callers), `invalid_grant`, reconnect, uninstall, and what the store keeps.

mod common;

use common::*;
use engine::clock::{now_ms, MINUTE_MS};
use engine::connections::{CallbackParams, Connections, STATE_TTL_MS};
use engine::connectors::pipedrive;
use engine::crypto::SecretBox;
use engine::secret::Token;
use engine::store::scratch::ScratchDatabase;
use engine::store::{Backend, NewOAuthState};
use engine::{Accounts, ConnectionError};
use model::apps::{ConnectionStatus, InstallResult};
use sandbox::walk::Decision;

on_both_backends!(installs_pipedrive_and_keeps_tokens_sealed);
async fn installs_pipedrive_and_keeps_tokens_sealed(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let list = env.connections.list().await.unwrap();
    assert_eq!(list.len(), 1);
    let c = &list[0];
    assert_eq!((c.id.as_str(), c.provider.as_str(), c.provider_name.as_str()), (id.as_str(), "pipedrive", "Pipedrive (Sandbox)"));
    assert_eq!(c.status, ConnectionStatus::Connected);
    assert_eq!(c.account_id, "7701234");
    assert_eq!(c.installed_by, "Ada Admin");
    assert!(c.scopes.iter().any(|s| s == "deals:full"), "{:?}", c.scopes);

    // The token works against the account's API, and the store never holds it in the clear.
    let token = env.connections.access_token(&id).await.unwrap();
    let me = env.http.get(format!("{}/api/v1/users/me", token.api_base)).bearer_auth(&token.token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let row = env.connections.store().connection(&id).await.unwrap().unwrap();
    let (stored_access, stored_refresh) = (row.access_token.unwrap(), row.refresh_token.unwrap());
    assert!(!stored_access.contains(&token.token) && !stored_refresh.contains(&token.token));
    assert!(stored_access.starts_with("v1:") && stored_refresh.starts_with("v1:"));
    assert!(!format!("{token:?}").contains(&token.token), "Debug must not show the token");

    let audit = env.connections.audit_page(None, 10).await.unwrap();
    assert_eq!(audit.entries.len(), 1);
    assert_eq!(audit.entries[0].action, "app.installed");
    assert!(audit.entries[0].summary.starts_with("Installed Pipedrive (Sandbox) for "), "{}", audit.entries[0].summary);
    assert!(audit.entries[0].actor.contains("Ada Admin"));
    env
}

on_both_backends!(pipedrive_authorization_names_no_scope);
/// Pipedrive's authorization request names no `scope` (its spec: `client_id`, `redirect_uri`,
/// `state`; an app's scopes are registered with it in the Developer Hub). The install still gets
/// every scope Tandem's app is registered with; HubSpot's request still names its scopes.
async fn pipedrive_authorization_names_no_scope(env: Env) -> Env {
    let query = |url: String| -> Vec<(String, String)> {
        reqwest::Url::parse(&url).expect("authorization URL").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    };
    let pd = query(env.connections.start(&env.admin, &env.session, "pipedrive", None, None).await.unwrap());
    assert!(!pd.iter().any(|(k, _)| k == "scope"), "{pd:?}");
    for name in ["client_id", "redirect_uri", "state"] {
        assert!(pd.iter().any(|(k, _)| k == name), "{name} missing from {pd:?}");
    }
    let hs = query(env.connections.start(&env.admin, &env.session, "hubspot", None, None).await.unwrap());
    assert!(hs.iter().any(|(k, v)| k == "scope" && v.contains("crm.objects.deals.read")), "{hs:?}");

    env.install("pipedrive").await;
    let c = &env.connections.list().await.unwrap()[0];
    for (scope, _) in pipedrive::SCOPES {
        assert!(c.scopes.iter().any(|s| s == scope), "{scope} missing from {:?}", c.scopes);
    }
    env
}

on_both_backends!(deny_stores_nothing);
async fn deny_stores_nothing(env: Env) -> Env {
    let params = env.authorize("pipedrive", None, Decision::Deny).await;
    assert_eq!(params.error.as_deref(), Some("access_denied"));
    assert_eq!(env.complete("pipedrive", &params).await, (InstallResult::Denied, None));
    assert!(env.connections.list().await.unwrap().is_empty());
    assert!(env.audit_actions().await.is_empty());
    env
}

on_both_backends!(tampered_and_replayed_states_are_refused);
async fn tampered_and_replayed_states_are_refused(env: Env) -> Env {
    let params = env.authorize("pipedrive", None, Decision::Allow).await;
    let mut tampered = params.clone();
    tampered.state = params.state.clone().map(|s| format!("{s}x"));
    assert_eq!(env.complete("pipedrive", &tampered).await, (InstallResult::StateInvalid, None));
    let mut missing = params.clone();
    missing.state = None;
    assert_eq!(env.complete("pipedrive", &missing).await, (InstallResult::StateInvalid, None));
    // A state issued for Pipedrive is not accepted at HubSpot's callback.
    let (result, _) = env.complete("pipedrive", &params).await;
    assert_eq!(result, InstallResult::Installed, "the genuine state still works once");
    // Replaying the same callback is refused and stores nothing more.
    assert_eq!(env.complete("pipedrive", &params).await, (InstallResult::StateInvalid, None));
    assert_eq!(env.connections.list().await.unwrap().len(), 1);
    assert_eq!(env.audit_actions().await, vec!["app.installed"]);

    let for_pipedrive = env.authorize("pipedrive", None, Decision::Allow).await;
    assert_eq!(env.complete("hubspot", &for_pipedrive).await, (InstallResult::StateInvalid, None));
    env
}

on_both_backends!(state_is_bound_to_the_session_and_expires);
async fn state_is_bound_to_the_session_and_expires(env: Env) -> Env {
    let params = env.authorize("pipedrive", None, Decision::Allow).await;
    let other = Token::generate();
    let done = env.connections.complete("pipedrive", Some((&env.admin, &other)), &params).await.unwrap();
    assert_eq!(done.result, InstallResult::OtherSession);
    let signed_out = env.connections.complete("pipedrive", None, &params).await.unwrap();
    assert_eq!(signed_out.result, InstallResult::StateInvalid, "the first attempt used the state up");

    // A state older than ten minutes is refused.
    let state = Token::generate();
    let now = now_ms();
    env.connections
        .store()
        .insert_oauth_state(
            &NewOAuthState {
                state_hash: &state.digest(),
                session_hash: &env.session.digest(),
                user_id: &env.admin.id,
                provider: "pipedrive",
                connection_id: None,
                pkce_verifier: "unused",
                expires_at: now - 1,
                hub_connection_id: None,
            },
            now - STATE_TTL_MS - 1,
        )
        .await
        .unwrap();
    let expired = CallbackParams { code: Some("c".into()), state: Some(state.expose().into()), ..Default::default() };
    assert_eq!(env.complete("pipedrive", &expired).await, (InstallResult::StateExpired, None));
    assert!(env.connections.list().await.unwrap().is_empty());
    env
}

on_both_backends!(pkce_verifier_must_match_the_challenge);
async fn pkce_verifier_must_match_the_challenge(env: Env) -> Env {
    // Two sign-ins; the code of the first is presented with the state (and so the verifier) of
    // the second. The provider refuses the exchange and nothing is stored.
    let first = env.authorize("pipedrive", None, Decision::Allow).await;
    let second = env.authorize("pipedrive", None, Decision::Allow).await;
    let swapped = CallbackParams { code: first.code.clone(), state: second.state.clone(), ..Default::default() };
    assert_eq!(env.complete("pipedrive", &swapped).await, (InstallResult::ExchangeFailed, None));
    assert!(env.connections.list().await.unwrap().is_empty());
    assert_eq!(env.control(&env.pipedrive, "/_sandbox/oauth-stats").await["authorization_code"], 0);
    env
}

on_both_backends!(refreshes_ahead_of_expiry);
async fn refreshes_ahead_of_expiry(env: Env) -> Env {
    let id = env.install("hubspot").await;
    let first = env.connections.access_token(&id).await.unwrap();
    assert!(first.expires_at > now_ms() + 25 * MINUTE_MS, "HubSpot tokens last 30 minutes");
    assert_eq!(env.connections.access_token(&id).await.unwrap().token, first.token, "no refresh while fresh");
    assert_eq!(env.refreshes(&env.hubspot).await, 0);

    // Four minutes before expiry, the token is refreshed first.
    let later = env.connections.access_token_at(&id, first.expires_at - 4 * MINUTE_MS).await.unwrap();
    assert_ne!(later.token, first.token);
    assert_eq!(env.refreshes(&env.hubspot).await, 1);
    let deals = env.http.get(format!("{}/crm/v3/objects/deals?limit=1", later.api_base)).bearer_auth(&later.token).send().await.unwrap();
    assert_eq!(deals.status(), 200);
    env
}

on_both_backends!(concurrent_callers_share_one_refresh);
async fn concurrent_callers_share_one_refresh(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let first = env.connections.access_token(&id).await.unwrap();
    let near_expiry = first.expires_at - MINUTE_MS;
    // A slow token endpoint: every caller asks while the one refresh is in flight. (The callers
    // start together, and the refresh takes seconds: a caller that began only after it landed
    // would see a token it must refresh again at this `now`.)
    let faults = env.http.put(format!("{}/_sandbox/faults", env.pipedrive.url())).json(&serde_json::json!({"latency_ms": 2000}));
    assert_eq!(faults.send().await.unwrap().status(), 200);
    // Callers on two instances: the in-process lock serialises each, the store's lease both.
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let instance = if i % 2 == 0 { &env.connections } else { &env.other_instance };
            let (connections, id, start) = (instance.clone(), id.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                connections.access_token_at(&id, near_expiry).await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for handle in handles {
        tokens.push(handle.await.expect("task").expect("token").token);
    }
    assert!(tokens.iter().all(|t| t == &tokens[0] && t != &first.token), "every caller gets the one new token");
    assert_eq!(env.refreshes(&env.pipedrive).await, 1, "one call to the provider");
    env.http.put(format!("{}/_sandbox/faults", env.pipedrive.url())).json(&serde_json::json!({})).send().await.unwrap();
    // Pipedrive rotated the refresh token; the stored one is the new one and works.
    let again = env.connections.access_token_at(&id, now_ms() + 60 * MINUTE_MS).await.unwrap();
    assert_ne!(again.token, tokens[0]);
    assert_eq!(env.refreshes(&env.pipedrive).await, 2);
    env
}

on_both_backends!(the_refresh_lease_outlives_the_refresh_it_guards);
/// A refresh may wait for its token endpoint as long as the HTTP client's timeout. The lease was
/// 30 s from when the caller began waiting: at 31 s another instance took it and refreshed the
/// same rotating Pipedrive token again.
async fn the_refresh_lease_outlives_the_refresh_it_guards(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let first = env.connections.access_token(&id).await.unwrap();
    let near_expiry = first.expires_at - MINUTE_MS;
    let slow = env.http.put(format!("{}/_sandbox/faults", env.pipedrive.url())).json(&serde_json::json!({"latency_ms": 5000}));
    assert_eq!(slow.send().await.unwrap().status(), 200);
    let refreshing = {
        let (connections, id) = (env.connections.clone(), id.clone());
        tokio::spawn(async move { connections.access_token_at(&id, near_expiry).await })
    };
    let store = env.connections.store();
    let taken = async {
        loop {
            if let Some(until) = store.refresh_claimed_until(&id).await.unwrap() {
                break until;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let until = tokio::time::timeout(std::time::Duration::from_secs(4), taken).await.expect("the refresh takes its lease at once");
    // The token endpoint has not answered yet; the HTTP client would wait for it this long.
    let longest = engine::connectors::HTTP_TIMEOUT.as_millis() as i64;
    assert!(until > near_expiry + longest, "the lease ends {} ms after it began", until - near_expiry);
    let current = store.connection(&id).await.unwrap().unwrap().access_token.unwrap();
    let later = near_expiry + longest + 1000;
    assert!(!store.claim_refresh(&id, later, later + 30_000, &current).await.unwrap(), "no second refresh while the first may still land");
    let token = refreshing.await.unwrap().expect("the slow refresh lands");
    assert_ne!(token.token, first.token);
    assert_eq!(store.refresh_claimed_until(&id).await.unwrap(), None, "and lets the lease go");
    env.http.put(format!("{}/_sandbox/faults", env.pipedrive.url())).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(env.refreshes(&env.pipedrive).await, 1);
    env
}

on_both_backends!(a_refresh_that_landed_meanwhile_is_not_made_again);
/// A caller reads the connection, then another instance refreshes its token (which frees the
/// refresh lease): the caller must not take the lease and refresh again with the refresh token it
/// read, which Pipedrive has rotated away (invalid_grant would mark the connection as needing
/// reconnection). Seen once under load in `concurrent_callers_share_one_refresh`.
async fn a_refresh_that_landed_meanwhile_is_not_made_again(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let store = env.connections.store();
    let read = store.connection(&id).await.unwrap().unwrap();
    let first = env.connections.access_token(&id).await.unwrap();
    let refreshed = env.other_instance.access_token_at(&id, first.expires_at - MINUTE_MS).await.unwrap();
    assert_ne!(refreshed.token, first.token);
    let now = now_ms();
    let stale = read.access_token.as_deref().unwrap();
    assert!(!store.claim_refresh(&id, now, now + 30_000, stale).await.unwrap(), "no lease for a caller that read the old token");
    // The caller reads again and finds the new token; the connection is still connected.
    assert_eq!(env.connections.access_token(&id).await.unwrap().token, refreshed.token);
    let current = store.connection(&id).await.unwrap().unwrap();
    assert_eq!(current.status, "connected");
    assert!(store.claim_refresh(&id, now, now + 30_000, current.access_token.as_deref().unwrap()).await.unwrap());
    env
}

on_both_backends!(invalid_grant_needs_reconnection_without_retrying);
async fn invalid_grant_needs_reconnection_without_retrying(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let first = env.connections.access_token(&id).await.unwrap();
    env.control(&env.pipedrive, "/_sandbox/revoke-tokens").await;

    let near_expiry = first.expires_at - MINUTE_MS;
    let err = env.connections.access_token_at(&id, near_expiry).await.unwrap_err();
    assert!(matches!(err, ConnectionError::NeedsReconnection(_)), "{err:?}");
    let c = env.connections.get(&id).await.unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReconnection);
    assert!(c.status_reason.unwrap().contains("no longer accepts Tandem's authorization"));
    let stats = env.control(&env.pipedrive, "/_sandbox/oauth-stats").await;
    assert_eq!(stats["refused"], 1);

    // Later calls fail at once: no retry storm against the provider.
    for _ in 0..5 {
        assert!(matches!(env.connections.access_token(&id).await, Err(ConnectionError::NeedsReconnection(_))));
    }
    assert_eq!(env.control(&env.pipedrive, "/_sandbox/oauth-stats").await["refused"], 1);
    assert_eq!(env.audit_actions().await, vec!["app.needs_reconnection", "app.installed"]);

    // Reconnect: the same connection, connected again.
    let params = env.authorize("pipedrive", Some(&id), Decision::Allow).await;
    assert_eq!(env.complete("pipedrive", &params).await, (InstallResult::Reconnected, Some(id.clone())));
    assert_eq!(env.connections.get(&id).await.unwrap().status, ConnectionStatus::Connected);
    assert!(env.connections.access_token(&id).await.is_ok());
    assert_eq!(env.audit_actions().await[0], "app.reconnected");
    env
}

on_both_backends!(uninstall_revokes_and_keeps_the_connection_for_reinstall);
async fn uninstall_revokes_and_keeps_the_connection_for_reinstall(env: Env) -> Env {
    let id = env.install("pipedrive").await;
    let done = env.connections.uninstall(&env.admin, &id).await.unwrap();
    assert_eq!(done.revoke_failed, None);
    assert_eq!(env.control(&env.pipedrive, "/_sandbox/oauth-stats").await["revoked"], 1);
    let row = env.connections.store().connection(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "uninstalled");
    assert!(row.access_token.is_none() && row.refresh_token.is_none(), "credentials deleted");
    assert!(matches!(env.connections.access_token(&id).await, Err(ConnectionError::Uninstalled)));
    // Uninstalling twice changes nothing.
    env.connections.uninstall(&env.admin, &id).await.unwrap();

    // Installing the same account again revives the same connection (its settings and history).
    assert_eq!(env.install("pipedrive").await, id);
    assert_eq!(env.audit_actions().await, vec!["app.installed", "app.uninstalled", "app.installed"]);
    env
}

#[tokio::test]
async fn unconfigured_provider_says_what_to_set() {
    let db = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let accounts = Accounts::new(db.store.clone());
    let admin = accounts.create_first_admin("Ada Admin", "ada@example.com", "correct horse battery").await.unwrap();
    let providers = vec![pipedrive::config(pipedrive::OAUTH_URL, None, None)];
    let connections = Connections::new(db.store.clone(), SecretBox::random(), providers, TANDEM_URL);
    let listing = connections.listing("pipedrive").unwrap();
    assert!(!listing.sandbox);
    assert!(listing.unavailable.as_deref().unwrap().contains("TANDEM_PIPEDRIVE_CLIENT_ID"));
    let err = connections.start(&admin.user, &admin.token, "pipedrive", None, None).await.unwrap_err();
    assert!(matches!(err, ConnectionError::Unavailable(_)));
    assert!(matches!(connections.start(&admin.user, &admin.token, "salesforce", None, None).await, Err(ConnectionError::UnknownApp(_))));
    db.destroy().await;
}

/// One HubSpot call through `instance`'s limiter for the connection, counted in `stats`.
async fn owners_call(instance: &Connections, id: &str, stats: std::sync::Arc<engine::runner::api::Stats>) {
    let api =
        engine::runner::api::Api::open(instance, id, engine::connectors::Provider::HUBSPOT, instance.limiter(id), stats).await.unwrap();
    api.get("/crm/v3/owners", &[]).await.unwrap();
}

on_both_backends!(instances_keep_together_to_tandems_share_of_an_accounts_window);
/// Two instances calling one HubSpot account draw from one budget: Tandem's share of HubSpot's
/// window (80 % by default). With 10 calls per window, one instance's 8 spend it, and the other
/// instance's next call waits for the window (each instance used to keep its own count and would
/// have sent it at once, leaving the account's other integrations nothing).
async fn instances_keep_together_to_tandems_share_of_an_accounts_window(env: Env) -> Env {
    use std::sync::Arc;
    use std::time::Duration;
    let hubspot = env.install("hubspot").await;
    let r =
        env.http.put(format!("{}/_sandbox/rate-limit", env.hubspot.url())).json(&serde_json::json!({"limit": 10})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let first = Arc::new(engine::runner::api::Stats::default());
    for _ in 0..8 {
        owners_call(&env.connections, &hubspot, first.clone()).await;
    }
    assert_eq!(first.waits.load(std::sync::atomic::Ordering::Relaxed), 0, "8 calls are within the share");
    let usage = env.connections.api_usage(&hubspot).await.unwrap();
    assert_eq!((usage.share, usage.window_max, usage.window_ms, usage.window_calls), (80, 10, 10_000, 8));
    assert!(usage.day_calls >= 8, "{usage:?}");

    let other = Arc::new(engine::runner::api::Stats::default());
    {
        let ninth = owners_call(&env.other_instance, &hubspot, other.clone());
        tokio::pin!(ninth);
        assert!(
            tokio::time::timeout(Duration::from_secs(3), &mut ninth).await.is_err(),
            "the other instance's call waits for room in the account's window"
        );
        ninth.await;
    }
    assert_eq!(other.waits.load(std::sync::atomic::Ordering::Relaxed), 1);

    // An admin gives Tandem the whole limit: the budget every instance reads says so.
    env.connections.set_api_share(&env.admin, &hubspot, 100).await.unwrap();
    let usage = env.other_instance.api_usage(&hubspot).await.unwrap();
    assert_eq!((usage.share, usage.allowed()), (100, 10));
    assert!(env.audit_actions().await.contains(&"app.api_share".to_string()));
    env
}

on_both_backends!(a_429_one_instance_meets_holds_the_accounts_calls_on_every_instance);
/// HubSpot refuses one instance's call with 429: every instance's calls for that account wait
/// out the pause, not only the refused one's.
async fn a_429_one_instance_meets_holds_the_accounts_calls_on_every_instance(env: Env) -> Env {
    use std::sync::Arc;
    use std::time::Duration;
    let hubspot = env.install("hubspot").await;
    let refuse = serde_json::json!({"rate_429": 1.0, "only_path": "/crm/v3/owners"});
    assert_eq!(env.http.put(format!("{}/_sandbox/faults", env.hubspot.url())).json(&refuse).send().await.unwrap().status(), 200);
    let refused = {
        let (instance, id) = (env.connections.clone(), hubspot.clone());
        tokio::spawn(async move { owners_call(&instance, &id, Default::default()).await })
    };
    let paused = async {
        loop {
            if env.connections.api_usage(&hubspot).await.unwrap().paused_until.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), paused).await.expect("the 429 pauses the account");
    // Another instance reads something the fault leaves alone: it waits for the pause too.
    let stats = Arc::new(engine::runner::api::Stats::default());
    let pipelines = {
        let (instance, id, stats) = (env.other_instance.clone(), hubspot.clone(), stats.clone());
        async move {
            let api = engine::runner::api::Api::open(&instance, &id, engine::connectors::Provider::HUBSPOT, instance.limiter(&id), stats)
                .await
                .unwrap();
            api.get("/crm/v3/pipelines/deals", &[]).await.unwrap();
        }
    };
    tokio::pin!(pipelines);
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut pipelines).await.is_err(), "the other instance waits out the pause");
    assert_eq!(
        env.http.put(format!("{}/_sandbox/faults", env.hubspot.url())).json(&serde_json::json!({})).send().await.unwrap().status(),
        200
    );
    pipelines.await;
    assert!(stats.waits.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    refused.await.unwrap();
    env
}
