//! Accounts, sessions, invitations and throttling, each test run against SQLite and Postgres.

use std::future::Future;

use engine::accounts::{AccountError, Accounts, Client, EMAIL_WIDE_FREE_FAILURES, FIRST_LOCK_MS, FREE_LOGIN_FAILURES, SESSION_IDLE_MS};
use engine::clock::{now_ms, MINUTE_MS, SECOND_MS};
use engine::secret::Token;
use engine::store::scratch::ScratchDatabase;
use engine::store::Backend;
use model::{Role, SessionUser, UserStatus};

const PASSWORD: &str = "correct horse battery";

async fn with_accounts<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Accounts) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = ScratchDatabase::create(backend).await.expect("scratch database");
    test(Accounts::new(db.store.clone())).await;
    db.destroy().await;
}

/// Declares a test that runs once on SQLite and once on Postgres.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::with_accounts(engine::store::Backend::Sqlite, super::$name).await
            }
            #[tokio::test]
            async fn postgres() {
                super::with_accounts(engine::store::Backend::Postgres, super::$name).await
            }
        }
    };
}

async fn admin(accounts: &Accounts) -> SessionUser {
    accounts.create_first_admin("Ada Admin", "ada@example.com", PASSWORD).await.expect("first admin").user
}

async fn invited(accounts: &Accounts, by: &SessionUser, email: &str, role: Role) -> SessionUser {
    let token = accounts.invite(by, email, role.as_str()).await.expect("invite");
    accounts.accept_invite(&token, "Invited Person", PASSWORD).await.expect("accept").user
}

on_both_backends!(first_admin_is_created_exactly_once);
async fn first_admin_is_created_exactly_once(accounts: Accounts) {
    assert!(accounts.needs_setup().await.unwrap());
    let (a, b) = tokio::join!(
        accounts.create_first_admin("Ada", "ada@example.com", PASSWORD),
        accounts.create_first_admin("Bob", "bob@example.com", PASSWORD),
    );
    let created: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(created.len(), 1, "two first admins were created");
    assert_eq!(created[0].user.role, Role::SuperAdmin);
    assert!(!accounts.needs_setup().await.unwrap());
    let again = accounts.create_first_admin("Cy", "cy@example.com", PASSWORD).await;
    assert!(matches!(again, Err(AccountError::SetupDone)), "{again:?}");
    assert_eq!(accounts.list_users().await.unwrap().len(), 1);
}

on_both_backends!(setup_reports_every_invalid_field);
async fn setup_reports_every_invalid_field(accounts: Accounts) {
    let Err(AccountError::Invalid(errors)) = accounts.create_first_admin(" ", "not-an-email", "short").await else {
        panic!("invalid input was accepted");
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "email", "password"]);
    assert!(accounts.needs_setup().await.unwrap(), "a failed setup must store nothing");
}

on_both_backends!(login_checks_the_password_and_stores_only_a_hash);
async fn login_checks_the_password_and_stores_only_a_hash(accounts: Accounts) {
    admin(&accounts).await;
    let ok = accounts.login("  ADA@example.com ", PASSWORD).await.expect("login");
    assert_eq!(ok.user.email, "ada@example.com");
    let wrong = accounts.login("ada@example.com", "wrong password!").await;
    assert!(matches!(wrong, Err(AccountError::WrongCredentials)), "{wrong:?}");
    let unknown = accounts.login("nobody@example.com", PASSWORD).await;
    assert!(matches!(unknown, Err(AccountError::WrongCredentials)), "{unknown:?}");

    let row = accounts.store().user_by_email("ada@example.com").await.unwrap().unwrap();
    let hash = row.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

on_both_backends!(repeated_failures_are_throttled);
async fn repeated_failures_are_throttled(accounts: Accounts) {
    admin(&accounts).await;
    let t0 = now_ms();
    for i in 0..4 {
        let r = accounts.login_at("ada@example.com", "wrong password!", t0 + i).await;
        assert!(matches!(r, Err(AccountError::WrongCredentials)), "attempt {i}: {r:?}");
    }
    let fifth = accounts.login_at("ada@example.com", "wrong password!", t0 + 5).await;
    assert!(matches!(fifth, Err(AccountError::Throttled { retry_after_secs: 30 })), "{fifth:?}");
    // While locked even the right password is refused, and says how long to wait.
    let locked = accounts.login_at("ada@example.com", PASSWORD, t0 + 5 + 10 * SECOND_MS).await;
    let Err(AccountError::Throttled { retry_after_secs }) = locked else { panic!("{locked:?}") };
    assert_eq!(retry_after_secs, 20);
    assert_eq!(AccountError::Throttled { retry_after_secs }.to_string(), "Too many failed attempts. Try again in 20 seconds.");
    // Another failure after the lock doubles the next one.
    let after = t0 + 5 + FIRST_LOCK_MS + 1;
    let sixth = accounts.login_at("ada@example.com", "wrong password!", after).await;
    assert!(matches!(sixth, Err(AccountError::Throttled { retry_after_secs: 60 })), "{sixth:?}");
    // Once the lock has passed the right password works and the count starts again.
    let later = after + 61 * SECOND_MS;
    accounts.login_at("ada@example.com", PASSWORD, later).await.expect("login after lock");
    let fresh = accounts.login_at("ada@example.com", "wrong password!", later + 1).await;
    assert!(matches!(fresh, Err(AccountError::WrongCredentials)), "{fresh:?}");
    // Unknown emails are throttled the same way.
    for i in 0..4 {
        let _ = accounts.login_at("ghost@example.com", "whatever", t0 + i).await;
    }
    let ghost = accounts.login_at("ghost@example.com", "whatever", t0 + 5).await;
    assert!(matches!(ghost, Err(AccountError::Throttled { .. })), "{ghost:?}");
}

fn from(address: &str) -> Client {
    Client { address: Some(address.parse().unwrap()), device: None }
}

on_both_backends!(a_stranger_cannot_lock_the_admin_out);
/// Before login throttling counted per email and client, five wrong passwords from anywhere
/// locked the Super Admin out, renewable forever.
async fn a_stranger_cannot_lock_the_admin_out(accounts: Accounts) {
    admin(&accounts).await;
    let t0 = now_ms();
    let office = from("10.0.0.1");
    let first = accounts.sign_in("ada@example.com", PASSWORD, &office, t0).await.expect("Ada signs in");
    let device = first.device.expect("a new browser gets a device cookie");
    let known = Client { address: Some("10.0.0.1".parse().unwrap()), device: Some(Token::from_presented(device.expose())) };
    let again = accounts.sign_in("ada@example.com", PASSWORD, &known, t0 + 1).await.expect("and again");
    assert!(again.device.is_none(), "a known browser keeps its cookie");

    // Mallory, from elsewhere, locks only herself.
    let mallory = from("203.0.113.9");
    for i in 0..FREE_LOGIN_FAILURES {
        let _ = accounts.sign_in("ada@example.com", "guess", &mallory, t0 + 10 + i).await;
    }
    let locked = accounts.sign_in("ada@example.com", PASSWORD, &mallory, t0 + 20).await;
    assert!(matches!(locked, Err(AccountError::Throttled { .. })), "{locked:?}");
    accounts.sign_in("ada@example.com", PASSWORD, &office, t0 + 21).await.expect("Ada's address is not Mallory's");

    // Guessing from many addresses locks the email for every stranger, not for Ada's browser.
    for i in 0..EMAIL_WIDE_FREE_FAILURES {
        let bot = from(&format!("198.51.100.{}", i % 250));
        let r = accounts.sign_in("ada@example.com", "guess", &bot, t0 + 100 + i).await;
        assert!(matches!(r, Err(AccountError::WrongCredentials | AccountError::Throttled { .. })), "{r:?}");
    }
    let stranger = accounts.sign_in("ada@example.com", PASSWORD, &from("192.0.2.1"), t0 + 200).await;
    assert!(matches!(stranger, Err(AccountError::Throttled { .. })), "{stranger:?}");
    accounts.sign_in("ada@example.com", PASSWORD, &known, t0 + 201).await.expect("the browser Ada signed in with passes");

    // The operator's way out: `tandem users unlock`.
    assert!(accounts.unlock("ADA@example.com").await.unwrap() >= 2);
    accounts.sign_in("ada@example.com", PASSWORD, &from("192.0.2.1"), t0 + 202).await.expect("unlocked for everyone");
    accounts.sign_in("ada@example.com", PASSWORD, &mallory, t0 + 203).await.expect("Mallory's lock is gone too");
}

on_both_backends!(parallel_guesses_count_before_any_hash);
/// Before attempts counted ahead of the hash, twenty guesses sent together were all checked.
async fn parallel_guesses_count_before_any_hash(accounts: Accounts) {
    admin(&accounts).await;
    let t0 = now_ms();
    let before = accounts.passwords_hashed();
    let client = from("203.0.113.9");
    let guesses = (0..20).map(|i| {
        let accounts = accounts.clone();
        let client = client.clone();
        async move { accounts.sign_in("ada@example.com", &format!("guess {i}"), &client, t0).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let hashed = accounts.passwords_hashed() - before;
    assert!(hashed <= FREE_LOGIN_FAILURES as u64, "{hashed} passwords checked of 20 guesses");
    assert!(
        answers.iter().all(|r| matches!(r, Err(AccountError::WrongCredentials | AccountError::Throttled { .. } | AccountError::Busy))),
        "{answers:?}"
    );
    // Guesses one after another from that client: the fifth failure locks it.
    for i in 0..FREE_LOGIN_FAILURES {
        let r = accounts.sign_in("ada@example.com", "guess", &from("203.0.113.10"), t0 + 1 + i).await;
        let expected_lock = i == FREE_LOGIN_FAILURES - 1;
        assert!(
            matches!((&r, expected_lock), (Err(AccountError::WrongCredentials), false) | (Err(AccountError::Throttled { .. }), true)),
            "{i}: {r:?}"
        );
    }
    // An attempt refused for want of a core counts against nobody.
    let before = accounts.passwords_hashed();
    let busy_client = from("203.0.113.11");
    let (a, b, c) = tokio::join!(
        accounts.sign_in("ada@example.com", "guess", &busy_client, t0),
        accounts.sign_in("ada@example.com", "guess", &busy_client, t0),
        accounts.sign_in("ada@example.com", "guess", &busy_client, t0)
    );
    // (Two at once per client: the third is refused unless the first two were done before it
    // asked, which a loaded machine may make happen.)
    let busy = [&a, &b, &c].iter().filter(|r| matches!(r, Err(AccountError::Busy))).count() as i64;
    assert!(busy <= 1, "{a:?} {b:?} {c:?}");
    assert_eq!(accounts.passwords_hashed() - before, 3 - busy as u64);
    let counted = 3 - busy;
    for i in counted..FREE_LOGIN_FAILURES {
        let r = accounts.sign_in("ada@example.com", "guess", &busy_client, t0 + 10 + i).await;
        let expected_lock = i == FREE_LOGIN_FAILURES - 1;
        assert!(
            matches!((&r, expected_lock), (Err(AccountError::WrongCredentials), false) | (Err(AccountError::Throttled { .. }), true)),
            "failure {} of {FREE_LOGIN_FAILURES} ({busy} refused as busy, not counted): {r:?}",
            i + 1
        );
    }

    // Setup, once done, is refused before any hashing.
    let before = accounts.passwords_hashed();
    let again = accounts.create_first_admin("Eve", "eve@example.com", PASSWORD).await;
    assert!(matches!(again, Err(AccountError::SetupDone)), "{again:?}");
    assert_eq!(accounts.passwords_hashed(), before);
}

on_both_backends!(sessions_slide_expire_and_end_at_logout);
async fn sessions_slide_expire_and_end_at_logout(accounts: Accounts) {
    admin(&accounts).await;
    let t0 = now_ms();
    let login = accounts.login_at("ada@example.com", PASSWORD, t0).await.unwrap();
    let user = accounts.session_user_at(&login.token, t0 + MINUTE_MS).await.unwrap();
    assert_eq!(user.map(|u| u.email), Some("ada@example.com".to_string()));
    // Activity 11 hours in keeps the session alive past the first 12 hours.
    let busy = t0 + 11 * 60 * MINUTE_MS;
    assert!(accounts.session_user_at(&login.token, busy).await.unwrap().is_some());
    let last_seen = t0 + SESSION_IDLE_MS + MINUTE_MS;
    assert!(accounts.session_user_at(&login.token, last_seen).await.unwrap().is_some());
    // Idle for longer than 12 hours: gone.
    assert!(accounts.session_user_at(&login.token, last_seen + SESSION_IDLE_MS + MINUTE_MS).await.unwrap().is_none());

    let second = accounts.login("ada@example.com", PASSWORD).await.unwrap();
    assert!(accounts.session_user(&second.token).await.unwrap().is_some());
    accounts.logout(&second.token).await.unwrap();
    assert!(accounts.session_user(&second.token).await.unwrap().is_none());
    assert!(accounts.session_user(&Token::generate()).await.unwrap().is_none());
}

on_both_backends!(invitations_work_once);
async fn invitations_work_once(accounts: Accounts) {
    let ada = admin(&accounts).await;
    let token = accounts.invite(&ada, "Vic@Example.com", "viewer").await.unwrap();
    let invitation = accounts.invitation(&token).await.unwrap();
    assert_eq!((invitation.email.as_str(), invitation.role), ("vic@example.com", Role::Viewer));
    let listed = accounts.list_users().await.unwrap();
    let vic = listed.iter().find(|u| u.email == "vic@example.com").unwrap();
    assert_eq!(vic.status, UserStatus::Invited);
    // An invited user cannot log in before accepting.
    assert!(accounts.login("vic@example.com", PASSWORD).await.is_err());

    let Err(AccountError::Invalid(errors)) = accounts.accept_invite(&token, "Vic", "short").await else {
        panic!("weak password accepted");
    };
    assert_eq!(errors[0].field, "password");
    let joined = accounts.accept_invite(&token, "Vic Viewer", PASSWORD).await.unwrap();
    assert_eq!((joined.user.name.as_str(), joined.user.role), ("Vic Viewer", Role::Viewer));
    assert!(matches!(accounts.accept_invite(&token, "Again", PASSWORD).await, Err(AccountError::InviteInvalid)));
    assert!(matches!(accounts.invitation(&token).await, Err(AccountError::InviteInvalid)));
    accounts.login("vic@example.com", PASSWORD).await.expect("invited user logs in");
    assert!(matches!(accounts.invite(&ada, "vic@example.com", "viewer").await, Err(AccountError::EmailTaken)));
}

on_both_backends!(a_new_invitation_replaces_the_old_link);
async fn a_new_invitation_replaces_the_old_link(accounts: Accounts) {
    let ada = admin(&accounts).await;
    let first = accounts.invite(&ada, "max@example.com", "viewer").await.unwrap();
    let second = accounts.invite(&ada, "max@example.com", "app_marketplace_access").await.unwrap();
    assert!(matches!(accounts.invitation(&first).await, Err(AccountError::InviteInvalid)));
    assert_eq!(accounts.invitation(&second).await.unwrap().role, Role::AppMarketplaceAccess);
    assert_eq!(accounts.list_users().await.unwrap().len(), 2);
}

on_both_backends!(roles_change_but_one_super_admin_always_remains);
async fn roles_change_but_one_super_admin_always_remains(accounts: Accounts) {
    let ada = admin(&accounts).await;
    let last = accounts.change_role(&ada, &ada.id, "viewer").await;
    assert!(matches!(last, Err(AccountError::LastSuperAdmin)), "{last:?}");
    assert!(matches!(accounts.remove_user(&ada, &ada.id).await, Err(AccountError::RemoveSelf)));

    let bob = invited(&accounts, &ada, "bob@example.com", Role::Viewer).await;
    let bob_session = accounts.login("bob@example.com", PASSWORD).await.unwrap();
    accounts.change_role(&ada, &bob.id, "super_admin").await.unwrap();
    // Bob's sessions end so that the new role applies at once.
    assert!(accounts.session_user(&bob_session.token).await.unwrap().is_none());
    let bob = accounts.login("bob@example.com", PASSWORD).await.unwrap().user;
    assert_eq!(bob.role, Role::SuperAdmin);

    // With two Super Admins, Ada may step down; then Bob is the last one.
    accounts.change_role(&ada, &ada.id, "app_marketplace_access").await.unwrap();
    assert!(matches!(accounts.change_role(&bob, &bob.id, "viewer").await, Err(AccountError::LastSuperAdmin)));
    let bad = accounts.change_role(&bob, &ada.id, "owner").await;
    assert!(matches!(bad, Err(AccountError::Invalid(ref e)) if e[0].field == "role"), "{bad:?}");
    accounts.remove_user(&bob, &ada.id).await.unwrap();
    assert!(matches!(accounts.remove_user(&bob, &ada.id).await, Err(AccountError::UserNotFound)));
    let emails: Vec<_> = accounts.list_users().await.unwrap().into_iter().map(|u| u.email).collect();
    assert_eq!(emails, ["bob@example.com"]);
}

on_both_backends!(start_up_admin_from_environment);
async fn start_up_admin_from_environment(accounts: Accounts) {
    assert!(accounts.ensure_admin("ops@example.com", PASSWORD).await.unwrap());
    assert!(!accounts.ensure_admin("other@example.com", PASSWORD).await.unwrap());
    let users = accounts.list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!((users[0].email.as_str(), users[0].role), ("ops@example.com", Role::SuperAdmin));
    accounts.login("ops@example.com", PASSWORD).await.expect("env admin logs in");
}

on_both_backends!(migrations_are_idempotent);
async fn migrations_are_idempotent(accounts: Accounts) {
    accounts.store().migrate().await.expect("second migration run");
    accounts.store().ping().await.unwrap();
}
