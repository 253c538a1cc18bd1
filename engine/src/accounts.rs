//! Users, roles, sessions, invitations and login throttling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use model::{DisplayName, Email, FieldError, Password, Role, SessionUser, UserStatus, UserSummary};

use crate::clock::{now_ms, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::secret::{new_id, Token};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{LoginClaim, NewUser, Store, StoreError, UserRow};

/// A session ends after this long without a request…
pub const SESSION_IDLE_MS: i64 = 12 * HOUR_MS;
/// …and in any case this long after login.
pub const SESSION_MAX_MS: i64 = 7 * DAY_MS;
/// How long an invitation link works.
pub const INVITE_TTL_MS: i64 = 7 * DAY_MS;
/// Consecutive failures allowed from one client before its logins for that email pause.
pub const FREE_LOGIN_FAILURES: i64 = 5;
/// Failures from all clients Tandem does not know, together, before logins for that email pause
/// for every one of them (browsers that signed in as that email before still pass).
pub const EMAIL_WIDE_FREE_FAILURES: i64 = 50;
/// The throttle row that adds up the failures of every unknown client of an email.
const EVERY_UNKNOWN_CLIENT: &str = "*";
/// Password hashes allowed to wait for a core before further requests are refused.
const HASH_QUEUE: usize = 16;
/// Password hashes one client may have waiting or running at once.
const HASHES_PER_CLIENT: usize = 2;
/// The first pause; each further failure doubles it, up to [`MAX_LOCK_MS`].
pub const FIRST_LOCK_MS: i64 = 30 * SECOND_MS;
pub const MAX_LOCK_MS: i64 = 15 * MINUTE_MS;
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY_MS: i64 = MINUTE_MS;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("some values were not accepted")]
    Invalid(Vec<FieldError>),
    #[error("Tandem already has a Super Admin. Log in instead.")]
    SetupDone,
    #[error("That email and password don't match an account.")]
    WrongCredentials,
    #[error("Too many failed attempts. Try again in {} seconds.", retry_after_secs)]
    Throttled { retry_after_secs: u64 },
    #[error("A user with this email already exists.")]
    EmailTaken,
    #[error("This invitation link is invalid, expired or already used. Ask a Super Admin for a new one.")]
    InviteInvalid,
    #[error("That user no longer exists.")]
    UserNotFound,
    #[error("Tandem needs at least one Super Admin. Make someone else a Super Admin first.")]
    LastSuperAdmin,
    #[error("You can't remove yourself. Ask another Super Admin.")]
    RemoveSelf,
    #[error("Tandem is busy checking other sign-ins. Try again in a few seconds.")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccountError {
    fn field(field: &str, message: &str) -> AccountError {
        AccountError::Invalid(vec![FieldError::new(field, message)])
    }
}

type Result<T, E = AccountError> = std::result::Result<T, E>;

/// A signed-in user and the token of their session (the cookie's value).
#[derive(Debug)]
pub struct LoggedIn {
    pub user: SessionUser,
    pub token: Token,
    /// A new `tandem_device` cookie value, when this browser was not known for this user yet.
    pub device: Option<Token>,
}

/// A pending invitation as its recipient sees it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

/// Who asks to sign in, as far as throttling goes.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The address the request came from.
    pub address: Option<IpAddr>,
    /// The `tandem_device` cookie the browser presented, if any.
    pub device: Option<Token>,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Arc<Argon2<'static>>,
    hashing: Arc<Hashing>,
}

/// Password hashing is bounded: one hash at a time per core, at most [`HASH_QUEUE`] waiting
/// and [`HASHES_PER_CLIENT`] from one client at once; beyond that a request is refused at once
/// rather than queued (each hash takes 19 MiB and tens of milliseconds of a core). Every place
/// is held by a permit that is given back when it is dropped, also by a request cancelled while
/// it waits.
struct Hashing {
    cores: Arc<Semaphore>,
    /// A place at a core or in the line for one.
    places: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    started: AtomicU64,
}

/// The right to hash one password, held until the hash ends.
struct HashPermit {
    _core: OwnedSemaphorePermit,
    _place: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

/// One of a client's [`HASHES_PER_CLIENT`].
struct ClientSlot {
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

impl Hashing {
    fn new(cores: usize, queue: usize) -> Hashing {
        Hashing {
            cores: Arc::new(Semaphore::new(cores)),
            places: Arc::new(Semaphore::new(cores + queue)),
            per_client: Arc::default(),
            started: AtomicU64::new(0),
        }
    }

    /// A core for one hash for `client`, or [`AccountError::Busy`] when the line is full or the
    /// client has its share in it already.
    async fn permit(&self, client: Option<IpAddr>) -> Result<HashPermit> {
        let slot = match client {
            Some(client) => {
                let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
                let n = per_client.entry(client).or_insert(0);
                if *n >= HASHES_PER_CLIENT {
                    tracing::warn!("a password hash refused: that client has its share waiting");
                    return Err(AccountError::Busy);
                }
                *n += 1;
                Some(ClientSlot { per_client: self.per_client.clone(), client })
            }
            None => None,
        };
        let Ok(place) = self.places.clone().try_acquire_owned() else {
            tracing::warn!("a password hash refused: too many waiting");
            return Err(AccountError::Busy);
        };
        let core = self.cores.clone().acquire_owned().await.map_err(|e| AccountError::Hash(e.to_string()))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        Ok(HashPermit { _core: core, _place: place, _client: slot })
    }
}

/// The client a throttle counts: an IPv4 address, or an IPv6 address's /64 (one host usually
/// has a whole /64 to pick addresses from).
fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Accounts { store, hasher: Arc::new(Argon2::default()), hashing: Arc::new(Hashing::new(cores, HASH_QUEUE)) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// True until the first Super Admin exists.
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(self.store.count_users().await? == 0)
    }

    /// The first-run page: creates the Super Admin and signs them in.
    pub async fn create_first_admin(&self, name: &str, email: &str, password: &str) -> Result<LoggedIn> {
        let (name, email, password) =
            parse_all(DisplayName::parse("name", name), Email::parse("email", email), Password::parse("password", password))?;
        let now = now_ms();
        // After setup, refused before any hashing (each hash costs 19 MiB and a core's time).
        if !self.needs_setup().await? {
            return Err(AccountError::SetupDone);
        }
        let hash = self.hash(password).await?;
        let id = new_id();
        let created = self
            .store
            .create_first_user(&NewUser {
                id: &id,
                email: email.as_str(),
                name: name.as_str(),
                role: Role::SuperAdmin.as_str(),
                password_hash: Some(&hash),
                invited_by: None,
                created_at: now,
            })
            .await?;
        if !created {
            return Err(AccountError::SetupDone);
        }
        tracing::info!(user_id = %id, "first Super Admin created");
        let device = self.remember_device(&id, now).await?;
        Ok(LoggedIn { device: Some(device), ..self.start_session(&id, now).await? })
    }

    /// `TANDEM_ADMIN_EMAIL` + `TANDEM_ADMIN_PASSWORD`: creates the Super Admin at start-up when
    /// no user exists. Returns whether it did.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<bool> {
        if !self.needs_setup().await? {
            return Ok(false);
        }
        let name = email.split('@').next().unwrap_or("Admin");
        match self.create_first_admin(name, email, password).await {
            Ok(logged_in) => {
                self.logout(&logged_in.token).await?;
                Ok(true)
            }
            Err(AccountError::SetupDone) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<LoggedIn> {
        self.login_at(email, password, now_ms()).await
    }

    /// [`Accounts::sign_in`] from a client Tandem knows nothing about.
    pub async fn login_at(&self, email: &str, password: &str, now: i64) -> Result<LoggedIn> {
        self.sign_in(email, password, &Client::default(), now).await
    }

    /// Login with throttling. Failures count per email and client: after
    /// [`FREE_LOGIN_FAILURES`] in a row from one client, that client waits, doubling each time,
    /// while other clients (the real user's browser) are not held back. The failures of every
    /// client Tandem does not know add up too, and from [`EMAIL_WIDE_FREE_FAILURES`] on they lock
    /// the email for all of them (guessing from many addresses), but not for a browser that has
    /// signed in as this email before ([`Client::device`]). An attempt counts before its password
    /// is checked, so parallel guesses cannot pass the limit. Unknown emails are throttled the
    /// same way and take as long to refuse, so neither timing nor messages tell which emails have
    /// accounts.
    pub async fn sign_in(&self, email: &str, password: &str, client: &Client, now: i64) -> Result<LoggedIn> {
        let email = Email::parse("email", email).map_err(|e| AccountError::Invalid(vec![e]))?;
        if password.is_empty() {
            return Err(AccountError::field("password", "Enter your password."));
        }
        let email = email.as_str();
        let user = self.store.user_by_email(email).await?;
        let device = match (&client.device, &user) {
            (Some(device), Some(user)) => {
                let digest = device.digest();
                (self.store.known_device_user(&digest).await?.as_deref() == Some(user.id.as_str())).then_some(digest)
            }
            _ => None,
        };
        let address = client.address.map(client_of);
        let client_key = match (&device, address) {
            (Some(digest), _) => format!("device:{}", &digest[..digest.len().min(32)]),
            (None, Some(address)) => format!("ip:{address}"),
            (None, None) => "ip:unknown".to_string(),
        };
        // A place in the hashing line first: refused there, nothing is counted against anyone.
        let permit = self.hashing.permit(address).await?;
        // While an attempt past the limit checks its password, others wait (the hold is replaced
        // by the lock it earns, or cleared).
        let hold = now + FIRST_LOCK_MS;
        let failures = match self.store.claim_login_attempt(email, &client_key, now, FREE_LOGIN_FAILURES, hold).await? {
            LoginClaim::Locked { until } => return Err(throttled(until - now)),
            LoginClaim::Counted { failures } => failures,
        };
        // Only attempts this client may make count towards the email's lock for strangers.
        if device.is_none() {
            match self.store.claim_login_attempt(email, EVERY_UNKNOWN_CLIENT, now, EMAIL_WIDE_FREE_FAILURES, hold).await? {
                LoginClaim::Locked { until } => return Err(throttled(until - now)),
                LoginClaim::Counted { failures } if failures >= EMAIL_WIDE_FREE_FAILURES => {
                    // Decided at once: the lock must not wait for this attempt's hash.
                    let lock = lock_duration(failures - EMAIL_WIDE_FREE_FAILURES + FREE_LOGIN_FAILURES);
                    self.store.lock_login(email, EVERY_UNKNOWN_CLIENT, now + lock).await?;
                    tracing::warn!(failures, lock_secs = lock / SECOND_MS, "logins for an email throttled for unknown clients");
                }
                LoginClaim::Counted { .. } => {}
            }
        }
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.verify_with(permit, password, stored_hash).await;
        match (user, verified) {
            (Some(user), Ok(true)) => {
                self.store.clear_login_failures(email, &client_key).await?;
                if device.is_none() {
                    self.store.clear_login_failures(email, EVERY_UNKNOWN_CLIENT).await?;
                }
                self.store.record_login(&user.id, now).await?;
                let device = match device {
                    Some(digest) => {
                        self.store.touch_known_device(&digest, now).await?;
                        None
                    }
                    None => Some(self.remember_device(&user.id, now).await?),
                };
                Ok(LoggedIn { device, ..self.start_session(&user.id, now).await? })
            }
            (_, Err(e)) => {
                // Not an answer about the password; a hold this attempt set becomes its lock.
                if failures >= FREE_LOGIN_FAILURES {
                    self.store.lock_login(email, &client_key, now + lock_duration(failures)).await?;
                }
                Err(e)
            }
            _ if failures >= FREE_LOGIN_FAILURES => {
                let lock = lock_duration(failures);
                self.store.lock_login(email, &client_key, now + lock).await?;
                tracing::warn!(failures, lock_secs = lock / SECOND_MS, "login throttled after repeated failures");
                Err(throttled(lock))
            }
            _ => Err(AccountError::WrongCredentials),
        }
    }

    /// `tandem users unlock EMAIL`: forgets every failed login of `email`, from every client.
    /// Returns how many clients had failures counted.
    pub async fn unlock(&self, email: &str) -> Result<u64> {
        let email = Email::parse("email", email).map_err(|e| AccountError::Invalid(vec![e]))?;
        let cleared = self.store.unlock_logins(email.as_str()).await?;
        tracing::info!(clients = cleared, "logins unlocked by an operator");
        Ok(cleared)
    }

    /// How many passwords this process has hashed or checked (each costs 19 MiB and tens of
    /// milliseconds of a core).
    pub fn passwords_hashed(&self) -> u64 {
        self.hashing.started.load(Ordering::Relaxed)
    }

    /// A token that marks this browser as one that signed in as `user_id` (the
    /// `tandem_device` cookie).
    async fn remember_device(&self, user_id: &str, now: i64) -> Result<Token> {
        let token = Token::generate();
        self.store.insert_known_device(&token.digest(), user_id, now).await?;
        Ok(token)
    }

    /// The user behind a session cookie, when the session is live. Slides the idle expiry.
    pub async fn session_user(&self, token: &Token) -> Result<Option<SessionUser>> {
        self.session_user_at(token, now_ms()).await
    }

    pub async fn session_user_at(&self, token: &Token, now: i64) -> Result<Option<SessionUser>> {
        let digest = token.digest();
        let Some((user, session)) = self.store.session_user(&digest, now).await? else {
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_EVERY_MS {
            let expires = (now + SESSION_IDLE_MS).min(session.started_at + SESSION_MAX_MS);
            self.store.touch_session(&digest, now, expires).await?;
        }
        Ok(Some(session_user(&user)?))
    }

    pub async fn logout(&self, token: &Token) -> Result<()> {
        self.store.delete_session(&token.digest()).await?;
        Ok(())
    }

    pub async fn list_users(&self) -> Result<Vec<UserSummary>> {
        self.store
            .list_users()
            .await?
            .iter()
            .map(|u| {
                Ok(UserSummary {
                    id: u.id.clone(),
                    email: u.email.clone(),
                    name: u.name.clone(),
                    role: parse_role(&u.role)?,
                    status: if u.password_hash.is_some() { UserStatus::Active } else { UserStatus::Invited },
                    created_at: u.created_at,
                    last_login_at: u.last_login_at,
                })
            })
            .collect()
    }

    /// Creates an invited user (or renews the link of one who has not accepted yet) and returns
    /// the link's token.
    pub async fn invite(&self, by: &SessionUser, email: &str, role: &str) -> Result<Token> {
        let email = Email::parse("email", email).map_err(|e| AccountError::Invalid(vec![e]))?;
        let role = Role::parse(role).map_err(|_| AccountError::field("role", "Choose a permission."))?;
        let now = now_ms();
        let user_id = match self.store.user_by_email(email.as_str()).await? {
            Some(existing) if existing.password_hash.is_some() => return Err(AccountError::EmailTaken),
            Some(pending) => {
                self.store.set_role(&pending.id, role.as_str()).await?;
                pending.id
            }
            None => {
                let id = new_id();
                let name = email.as_str().split('@').next().unwrap_or_default();
                let inserted = self
                    .store
                    .insert_user(&NewUser {
                        id: &id,
                        email: email.as_str(),
                        name,
                        role: role.as_str(),
                        password_hash: None,
                        invited_by: Some(&by.id),
                        created_at: now,
                    })
                    .await;
                match inserted {
                    Err(StoreError::Duplicate) => return Err(AccountError::EmailTaken),
                    other => other?,
                }
                id
            }
        };
        let token = Token::generate();
        self.store.replace_invite(&token.digest(), &user_id, &by.id, now, now + INVITE_TTL_MS).await?;
        tracing::info!(invited_by = %by.id, user_id = %user_id, role = role.as_str(), "user invited");
        Ok(token)
    }

    pub async fn invitation(&self, token: &Token) -> Result<Invitation> {
        let row = self.store.invite(&token.digest(), now_ms()).await?.ok_or(AccountError::InviteInvalid)?;
        Ok(Invitation { email: row.user.email.clone(), role: parse_role(&row.user.role)?, expires_at: row.expires_at })
    }

    /// The invited person chooses their name and password; the link is used up and they are signed in.
    pub async fn accept_invite(&self, token: &Token, name: &str, password: &str) -> Result<LoggedIn> {
        let now = now_ms();
        let digest = token.digest();
        let row = self.store.invite(&digest, now).await?.ok_or(AccountError::InviteInvalid)?;
        let (name, password) = parse_all2(DisplayName::parse("name", name), Password::parse("password", password))?;
        let hash = self.hash(password).await?;
        if !self.store.take_invite(&digest).await? {
            return Err(AccountError::InviteInvalid);
        }
        self.store.activate_user(&row.user.id, name.as_str(), &hash, now).await?;
        tracing::info!(user_id = %row.user.id, "invitation accepted");
        let device = self.remember_device(&row.user.id, now).await?;
        Ok(LoggedIn { device: Some(device), ..self.start_session(&row.user.id, now).await? })
    }

    /// Changes a user's role; their open sessions end so the new role applies at once.
    pub async fn change_role(&self, by: &SessionUser, user_id: &str, role: &str) -> Result<()> {
        let role = Role::parse(role).map_err(|_| AccountError::field("role", "Choose a permission."))?;
        match self.store.set_role(user_id, role.as_str()).await? {
            None => Err(AccountError::UserNotFound),
            Some(false) => Err(AccountError::LastSuperAdmin),
            Some(true) => {
                if user_id != by.id {
                    self.store.delete_sessions_of(user_id).await?;
                }
                tracing::info!(changed_by = %by.id, user_id, role = role.as_str(), "role changed");
                Ok(())
            }
        }
    }

    pub async fn remove_user(&self, by: &SessionUser, user_id: &str) -> Result<()> {
        if user_id == by.id {
            return Err(AccountError::RemoveSelf);
        }
        match self.store.delete_user(user_id).await? {
            None => Err(AccountError::UserNotFound),
            Some(false) => Err(AccountError::LastSuperAdmin),
            Some(true) => {
                tracing::info!(removed_by = %by.id, user_id, "user removed");
                Ok(())
            }
        }
    }

    /// Housekeeping for the background task.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = now_ms();
        Ok(self.store.purge_expired(now, now - DAY_MS).await?)
    }

    async fn start_session(&self, user_id: &str, now: i64) -> Result<LoggedIn> {
        let token = Token::generate();
        self.store.insert_session(&token.digest(), user_id, now, now + SESSION_IDLE_MS).await?;
        let user = self.store.user_by_id(user_id).await?.ok_or(AccountError::UserNotFound)?;
        Ok(LoggedIn { user: session_user(&user)?, token, device: None })
    }

    async fn hashing_permit(&self) -> Result<HashPermit> {
        self.hashing.permit(None).await
    }

    async fn hash(&self, password: Password) -> Result<String> {
        let permit = self.hashing_permit().await?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            hasher.hash_password(password.expose().as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccountError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }

    /// Checks `password` against `stored`, or against a throwaway hash when there is none, so a
    /// missing account costs the same time as a wrong password.
    async fn verify_with(&self, permit: HashPermit, password: &str, stored: Option<String>) -> Result<bool> {
        let hasher = self.hasher.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let exists = stored.is_some();
            let stored = stored.unwrap_or_else(|| decoy_hash(&hasher).to_string());
            let parsed = PasswordHash::new(&stored).map_err(|e| AccountError::Hash(e.to_string()))?;
            Ok(hasher.verify_password(password.as_bytes(), &parsed).is_ok() && exists)
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }
}

fn decoy_hash(hasher: &Argon2<'static>) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher.hash_password(Token::generate().expose().as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// 30 s at the limit, doubling with each further failure, at most 15 minutes.
pub fn lock_duration(failures: i64) -> i64 {
    let doublings = (failures - FREE_LOGIN_FAILURES).clamp(0, 10) as u32;
    (FIRST_LOCK_MS << doublings).min(MAX_LOCK_MS)
}

fn throttled(remaining_ms: i64) -> AccountError {
    AccountError::Throttled { retry_after_secs: (remaining_ms.max(0) as u64).div_ceil(1000).max(1) }
}

fn parse_role(stored: &str) -> Result<Role> {
    Role::parse(stored).map_err(|e| AccountError::Store(StoreError::Query(sqlx::Error::Decode(Box::new(e)))))
}

fn session_user(user: &UserRow) -> Result<SessionUser> {
    Ok(SessionUser { id: user.id.clone(), email: user.email.clone(), name: user.name.clone(), role: parse_role(&user.role)? })
}

/// All three values, or every problem with them at once.
fn parse_all<A, B, C>(a: Result<A, FieldError>, b: Result<B, FieldError>, c: Result<C, FieldError>) -> Result<(A, B, C)> {
    match (a, b, c) {
        (Ok(a), Ok(b), Ok(c)) => Ok((a, b, c)),
        (a, b, c) => Err(AccountError::Invalid([a.err(), b.err(), c.err()].into_iter().flatten().collect())),
    }
}

fn parse_all2<A, B>(a: Result<A, FieldError>, b: Result<B, FieldError>) -> Result<(A, B)> {
    parse_all(a, b, Ok(())).map(|(a, b, ())| (a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_waits_for_a_core_and_refuses_past_its_line() {
        let hashing = Arc::new(Hashing::new(1, 3));
        let wait = |client: Option<IpAddr>| {
            let hashing = hashing.clone();
            tokio::spawn(async move { hashing.permit(client).await.map(drop) })
        };
        let busy = hashing.permit(None).await.expect("the one core");
        let mut waiting: Vec<_> = (0..3).map(|_| wait(None)).collect();
        while hashing.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hashing.permit(None).await, Err(AccountError::Busy)), "a fourth waiter is refused at once");
        // A request dropped while it waits gives its place back (a counter did not: sixteen
        // abandoned requests refused every sign-in until a restart).
        waiting.pop().unwrap().abort();
        while hashing.places.available_permits() == 0 {
            tokio::task::yield_now().await;
        }
        waiting.push(wait(None));
        drop(busy);
        for waiter in waiting {
            waiter.await.unwrap().expect("the queued hashes run once the core is free");
        }
        assert_eq!(hashing.started.load(Ordering::SeqCst), 4);

        // One client has two places at most, whatever room the line has.
        let address: IpAddr = "203.0.113.9".parse().unwrap();
        let first = hashing.permit(Some(address)).await.expect("a core");
        let second = wait(Some(address));
        while hashing.per_client.lock().unwrap().get(&address).copied() != Some(2) {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hashing.permit(Some(address)).await, Err(AccountError::Busy)), "a third from one client");
        drop(first);
        second.await.unwrap().expect("the second runs");
        assert!(hashing.per_client.lock().unwrap().is_empty(), "every slot given back");
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = client_of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_of("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, client_of("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_of("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn lock_doubles_and_caps() {
        assert_eq!(lock_duration(5), 30 * SECOND_MS);
        assert_eq!(lock_duration(6), 60 * SECOND_MS);
        assert_eq!(lock_duration(7), 120 * SECOND_MS);
        assert_eq!(lock_duration(50), MAX_LOCK_MS);
    }

    #[test]
    fn throttle_message_rounds_up() {
        let e = throttled(29_001);
        assert_eq!(e.to_string(), "Too many failed attempts. Try again in 30 seconds.");
    }
}
