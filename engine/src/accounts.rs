//! Users, roles, sessions, invitations and login throttling.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use model::{DisplayName, Email, FieldError, Password, Role, SessionUser, UserStatus, UserSummary};

use crate::clock::{now_ms, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::secret::{new_id, Token};
use crate::store::{NewUser, Store, StoreError, UserRow};

/// A session ends after this long without a request…
pub const SESSION_IDLE_MS: i64 = 12 * HOUR_MS;
/// …and in any case this long after login.
pub const SESSION_MAX_MS: i64 = 7 * DAY_MS;
/// How long an invitation link works.
pub const INVITE_TTL_MS: i64 = 7 * DAY_MS;
/// Consecutive failures allowed before logins for that email pause.
pub const FREE_LOGIN_FAILURES: i64 = 5;
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
}

/// A pending invitation as its recipient sees it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: Arc<Argon2<'static>>,
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        Accounts { store, hasher: Arc::new(Argon2::default()) }
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
        self.start_session(&id, now).await
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

    /// Login with throttling: after [`FREE_LOGIN_FAILURES`] consecutive failures for an email,
    /// further attempts wait, doubling each time. Unknown emails are throttled the same way and take
    /// as long to refuse, so neither timing nor messages tell which emails have accounts.
    pub async fn login_at(&self, email: &str, password: &str, now: i64) -> Result<LoggedIn> {
        let email = Email::parse("email", email).map_err(|e| AccountError::Invalid(vec![e]))?;
        if password.is_empty() {
            return Err(AccountError::field("password", "Enter your password."));
        }
        if let Some(until) = self.store.login_locked_until(email.as_str(), now).await? {
            return Err(throttled(until - now));
        }
        let user = self.store.user_by_email(email.as_str()).await?;
        let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.verify(password, stored_hash).await?;
        match (user, verified) {
            (Some(user), true) => {
                self.store.clear_login_failures(email.as_str()).await?;
                self.store.record_login(&user.id, now).await?;
                self.start_session(&user.id, now).await
            }
            _ => {
                let failures = self.store.record_login_failure(email.as_str(), now).await?;
                if failures >= FREE_LOGIN_FAILURES {
                    let lock = lock_duration(failures);
                    self.store.lock_login(email.as_str(), now + lock).await?;
                    tracing::warn!(failures, lock_secs = lock / SECOND_MS, "login throttled after repeated failures");
                    return Err(throttled(lock));
                }
                Err(AccountError::WrongCredentials)
            }
        }
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
        self.start_session(&row.user.id, now).await
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
        Ok(LoggedIn { user: session_user(&user)?, token })
    }

    async fn hash(&self, password: Password) -> Result<String> {
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            hasher.hash_password(password.expose().as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| AccountError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }

    /// Checks `password` against `stored`, or against a throwaway hash when there is none, so a
    /// missing account costs the same time as a wrong password.
    async fn verify(&self, password: &str, stored: Option<String>) -> Result<bool> {
        let hasher = self.hasher.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
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
