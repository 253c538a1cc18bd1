//! Several accounts behind one sandbox, as the providers serve them: one host for every HubSpot
//! portal, Pipedrive company and Zoho CRM organization, each with its own tokens, data, limits,
//! snapshot and webhook deliveries. The user signing in on the consent page chooses the account
//! the app may reach; after that every request finds its account by what it carries (a bearer
//! token, or a code or refresh token in its form, query or path).
//!
//! The control API reaches the first account at `/_sandbox/...` as before and any account at
//! `/_sandbox/accounts/{id}/...`; `GET /_sandbox/accounts` lists them and `POST` adds one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::control::Controlled;
use crate::persist::Snapshots;
use crate::SandboxError;

/// Form bodies larger than this are not read for a code or token (token requests are tiny).
const FORM_LIMIT: usize = 64 * 1024;

/// One account of a provider's sandbox.
pub trait Account: Controlled + Snapshots {
    /// The provider's id of the account (portal id, company id, organization id).
    fn account_id(&self) -> String;
    /// Its name as the consent page shows it.
    fn account_name(&self) -> String;
    /// Requests that configure the app for every account at once (HubSpot's webhook settings
    /// belong to the app, not to a portal): sent to each account.
    fn shared(_method: &Method, _path: &str) -> bool {
        false
    }

    /// A new account takes what the first one has of those shared settings.
    fn share_from(&self, _first: &Self) {}
}

/// Makes the `index`th account (0 is the first), from its snapshot when one was kept.
pub type Make<A> = Box<dyn Fn(usize, Option<<A as Snapshots>::Data>) -> Arc<A> + Send + Sync>;

/// How to make, serve and run the accounts of a provider.
pub struct Blueprint<A: Account> {
    pub make: Make<A>,
    pub router: fn(Arc<A>) -> Router,
    /// Its background work (webhook deliveries), stopped with the sandbox.
    pub background: fn(Arc<A>, watch::Receiver<bool>) -> JoinHandle<()>,
}

struct Entry<A> {
    account: Arc<A>,
    router: Router,
    /// Made anew rather than from a snapshot.
    fresh: bool,
}

impl<A> Clone for Entry<A> {
    fn clone(&self) -> Self {
        Entry { account: self.account.clone(), router: self.router.clone(), fresh: self.fresh }
    }
}

pub struct Accounts<A: Account> {
    blueprint: Blueprint<A>,
    entries: RwLock<Vec<Entry<A>>>,
    state_file: Option<PathBuf>,
    stopped: watch::Receiver<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl<A: Account> Accounts<A> {
    /// The accounts of a sandbox: `at_least` of them, and every further one a snapshot was kept
    /// for (accounts added through the control API come back after a restart).
    pub(crate) fn open(
        blueprint: Blueprint<A>,
        at_least: usize,
        state_file: Option<PathBuf>,
        stopped: watch::Receiver<bool>,
        tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    ) -> Result<Arc<Accounts<A>>, SandboxError> {
        let accounts = Arc::new(Accounts { blueprint, entries: RwLock::new(Vec::new()), state_file, stopped, tasks });
        let mut index = 0;
        while index < at_least.max(1) || accounts.file_of(index).is_some_and(|f| f.exists()) {
            accounts.add()?;
            index += 1;
        }
        Ok(accounts)
    }

    /// Where the `index`th account keeps its snapshot: the state file for the first, the same
    /// name with `-2`, `-3`, … for the others.
    fn file_of(&self, index: usize) -> Option<PathBuf> {
        let file = self.state_file.as_ref()?;
        if index == 0 {
            return Some(file.clone());
        }
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = match file.extension() {
            Some(ext) => format!("{stem}-{}.{}", index + 1, ext.to_string_lossy()),
            None => format!("{stem}-{}", index + 1),
        };
        Some(file.with_file_name(name))
    }

    /// Adds the next account (from its snapshot when one was kept), serving at once.
    pub fn add(&self) -> Result<Arc<A>, SandboxError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let index = entries.len();
        let file = self.file_of(index);
        let saved = match &file {
            Some(path) => crate::persist::load(path)?,
            None => None,
        };
        let fresh = saved.is_none();
        let account = (self.blueprint.make)(index, saved);
        if fresh && index > 0 {
            account.share_from(&entries[0].account);
            // Written at once: it comes back after a restart even if nothing changes in it.
            if let Some(path) = &file {
                crate::persist::save(path, |out| account.write_snapshot(out))
                    .map_err(|source| SandboxError::Write { path: path.clone(), source })?;
            }
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.push((self.blueprint.background)(account.clone(), self.stopped.clone()));
        if let Some(path) = file {
            tasks.push(tokio::spawn(crate::persist::run_writer(account.clone(), path, self.stopped.clone())));
        }
        entries.push(Entry { router: (self.blueprint.router)(account.clone()), account: account.clone(), fresh });
        let choices: Vec<(String, String)> = entries.iter().map(|e| (e.account.account_id(), e.account.account_name())).collect();
        entries[0].account.oauth().set_choices(choices);
        Ok(account)
    }

    /// The first account: the one `make run` and single-account tests use.
    pub fn first(&self) -> Arc<A> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())[0].account.clone()
    }

    pub fn all(&self) -> Vec<Arc<A>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).iter().map(|e| e.account.clone()).collect()
    }

    /// The accounts made anew at start (no snapshot was kept): the ones a demo seeds.
    pub fn fresh(&self) -> Vec<Arc<A>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).iter().filter(|e| e.fresh).map(|e| e.account.clone()).collect()
    }

    /// The router of the only account, when there is one: most sandboxes serve one, and every
    /// request goes straight to it.
    fn only(&self) -> Option<Router> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        (entries.len() == 1).then(|| entries[0].router.clone())
    }

    fn entries(&self) -> Vec<Entry<A>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The router of every request: finds its account and lets that account answer.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(dispatch::<A>).with_state(self.clone())
    }
}

async fn dispatch<A: Account>(State(accounts): State<Arc<Accounts<A>>>, request: Request) -> Response {
    let accounts_control = request.uri().path().starts_with("/_sandbox/accounts");
    if let Some(only) = accounts.only().filter(|_| !accounts_control) {
        return answer(&only, request).await;
    }
    let entries = accounts.entries();
    let path = request.uri().path().to_string();
    if path == "/_sandbox/accounts" {
        return control(&accounts, request.method()).await;
    }
    if let Some(rest) = path.strip_prefix("/_sandbox/accounts/") {
        let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(entry) = entries.iter().find(|e| e.account.account_id() == id) else {
            return (StatusCode::NOT_FOUND, Json(json!({"message": format!("no account {id} in this sandbox")}))).into_response();
        };
        let (mut parts, body) = request.into_parts();
        let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        parts.uri = match format!("/_sandbox/{rest}{query}").parse::<Uri>() {
            Ok(uri) => uri,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        };
        return answer(&entry.router, Request::from_parts(parts, body)).await;
    }
    if A::shared(request.method(), &path) {
        return broadcast(&entries, request).await;
    }
    // A bearer token (or Zoho's `Zoho-oauthtoken`) names its account.
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().last())
        .map(str::to_string);
    if let Some(entry) = token.and_then(|t| entries.iter().find(|e| e.account.oauth().knows(&t))) {
        return answer(&entry.router, request).await;
    }
    // Otherwise a code, a refresh token or a pending authorization in the path, query or form.
    let mut candidates: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if let Some(query) = request.uri().query() {
        candidates.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default().into_iter().map(|(_, v)| v));
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = request.into_parts();
    let body = if is_form {
        match to_bytes(body, FORM_LIMIT).await {
            Ok(bytes) => bytes,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        }
    } else {
        return answer(&owner(&entries, &candidates).router, Request::from_parts(parts, body)).await;
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let chosen = form.iter().find(|(k, _)| k == "account").and_then(|(_, id)| entries.iter().find(|e| &e.account.account_id() == id));
    let pending = form.iter().find(|(k, _)| k == "pending").map(|(_, v)| v.clone());
    candidates.extend(form.into_iter().map(|(_, v)| v));
    let known = owner(&entries, &candidates);
    let target = match (chosen, pending) {
        // The decision on the consent page: the authorization moves to the chosen account.
        (Some(chosen), Some(pending)) => {
            known.account.oauth().hand_pending(&pending, chosen.account.oauth());
            chosen
        }
        _ => known,
    };
    answer(&target.router, Request::from_parts(parts, Body::from(body))).await
}

/// The account that issued one of `candidates`, or the first.
fn owner<'a, A: Account>(entries: &'a [Entry<A>], candidates: &[String]) -> &'a Entry<A> {
    entries.iter().find(|e| candidates.iter().any(|c| e.account.oauth().knows(c))).unwrap_or(&entries[0])
}

async fn answer(router: &Router, request: Request) -> Response {
    match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Sends a request configuring the app to every account; the first one's answer is returned.
async fn broadcast<A: Account>(entries: &[Entry<A>], request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let mut first = None;
    for entry in entries {
        let copy = Request::from_parts(parts.clone(), Body::from(body.clone()));
        let response = answer(&entry.router, copy).await;
        first.get_or_insert(response);
    }
    first.unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// `GET /_sandbox/accounts` lists the accounts; `POST` adds one (fresh, with no records).
async fn control<A: Account>(accounts: &Arc<Accounts<A>>, method: &Method) -> Response {
    let list = |all: Vec<Arc<A>>| -> Vec<serde_json::Value> {
        all.iter().map(|a| json!({"id": a.account_id(), "name": a.account_name()})).collect()
    };
    match *method {
        Method::GET => Json(json!({"accounts": list(accounts.all())})).into_response(),
        Method::POST => match accounts.add() {
            Ok(account) => (StatusCode::CREATED, Json(json!({"id": account.account_id(), "name": account.account_name()}))).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": e.to_string()}))).into_response(),
        },
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}
