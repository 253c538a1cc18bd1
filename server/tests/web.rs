//! The console over HTTP: first run, login, roles, sessions and the same-origin rule, against
//! SQLite and Postgres.

mod common;

use common::{TestApp, PASSWORD};

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

on_both_backends!(health_answers_when_ready);
async fn health_answers_when_ready(app: &TestApp) {
    let r = app.get(&app.browser(), "/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
}

on_both_backends!(first_run_leads_to_setup_then_never_again);
async fn first_run_leads_to_setup_then_never_again(app: &TestApp) {
    let visitor = app.browser();
    for path in ["/", "/login", "/settings/users"] {
        let r = app.get(&visitor, path).await;
        assert!(r.status().is_redirection(), "{path}: {}", r.status());
        let to = location(&r);
        assert!(to == "/setup" || to == "/login", "{path} -> {to}");
    }
    let page = app.get(&visitor, "/setup").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Create Super Admin"), "setup page renders on the server");

    let admin = app.browser();
    let r = app.call(&admin, "setup", &[("name", "Ada Admin"), ("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    let cookies: Vec<&str> = r.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).collect();
    let cookie = cookies.iter().find(|c| c.starts_with("tandem_session=")).unwrap_or_else(|| panic!("{cookies:?}")).to_string();
    assert!(cookie.starts_with("tandem_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // Setup is over: the page sends people to log in and the endpoint refuses.
    assert_eq!(location(&app.get(&visitor, "/setup").await), "/login");
    let again = app.call(&visitor, "setup", &[("name", "Eve"), ("email", "eve@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("already has a Super Admin"));

    // The admin's session renders the console.
    let users = app.get(&admin, "/settings/users").await;
    assert_eq!(users.status(), 200);
    let html = users.text().await.unwrap();
    assert!(html.contains("Users &amp; permissions") || html.contains("Users & permissions"));
    assert!(html.contains("ada@example.com"));
    assert!(html.contains("Invite user"));
}

on_both_backends!(signed_out_visitors_are_sent_to_login_and_back);
async fn signed_out_visitors_are_sent_to_login_and_back(app: &TestApp) {
    app.admin().await;
    let visitor = app.browser();
    let r = app.get(&visitor, "/settings/users").await;
    assert_eq!(location(&r), "/login?next=/settings/users");
    let r = app.call(&visitor, "users", &[]).await;
    assert_eq!(r.status(), 401);

    let login = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/settings/users")]).await;
    assert!(login.status().is_success() || login.status().is_redirection(), "{}", login.status());
    assert_eq!(location(&login), "/settings/users");
    assert_eq!(app.get(&visitor, "/settings/users").await.status(), 200);
    // Signed in, the login page is pointless: straight to the console.
    assert_eq!(location(&app.get(&visitor, "/login").await), app::HOME_PATH);

    // `next` never leads off-site.
    let other = app.browser();
    let r = app.call(&other, "login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "//evil.example")]).await;
    assert_eq!(location(&r), app::HOME_PATH);
    // Browsers drop a tab from a Location, so `/\t/evil.example` would be `//evil.example`.
    let r = app.call(&other, "login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/\t/evil.example")]).await;
    assert_eq!(location(&r), app::HOME_PATH);
    // A line break cannot go into a header: the login still succeeds, to the console.
    let r =
        app.call(&other, "login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/settings\r\nSet-Cookie: x=y")]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    assert_eq!(location(&r), app::HOME_PATH);

    let out = app.call(&visitor, "logout", &[]).await;
    assert!(out.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert!(app.get(&visitor, "/settings/users").await.status().is_redirection());
}

on_both_backends!(wrong_passwords_get_a_clear_error_then_throttled);
async fn wrong_passwords_get_a_clear_error_then_throttled(app: &TestApp) {
    let ada = app.admin().await;
    let visitor = app.browser();
    for _ in 0..4 {
        let r = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", "not the password")]).await;
        assert_eq!(r.status(), 401);
        assert!(r.text().await.unwrap().contains("That email and password don't match an account."));
    }
    let r = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", "not the password")]).await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Too many failed attempts. Try again in 30 seconds."));
    let r = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.status(), 429, "the right password waits out the lock too");
    // The browser Ada set Tandem up with is known: from the same address, it is not held back
    // by someone else's guesses.
    let r = app.call(&ada, "login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
}

#[tokio::test]
async fn first_run_from_another_machine_needs_the_setup_code() {
    // Behind a reverse proxy that says who the client is.
    let app = TestApp::spawn_with(engine::store::Backend::Sqlite, |config| config.trust_forwarded_for = true).await;
    let setup = |code: &str, from: &str| {
        let mut form = vec![("name", "Ada Admin"), ("email", "ada@example.com"), ("password", PASSWORD)];
        if !code.is_empty() {
            form.push(("setup_code", code));
        }
        app.browser()
            .post(format!("{}/api/setup", app.url))
            .header("origin", &app.url)
            // The client's own claim first (it says it is local), the proxy's entry last.
            .header("x-forwarded-for", format!("127.0.0.1, {from}"))
            .form(&form)
            .send()
    };
    let r = setup("", "203.0.113.9").await.unwrap();
    assert_eq!(r.status(), 422, "before, whoever reached a fresh install first became its Super Admin");
    assert!(r.text().await.unwrap().contains("Enter the setup code from Tandem's log"));
    assert_eq!(setup("wrong-code", "203.0.113.9").await.unwrap().status(), 422);
    assert_eq!(app.setup_code.len(), 10);
    let r = setup(&app.setup_code, "203.0.113.9").await.unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    // Once done, the code sets nothing up again.
    let again = setup(&app.setup_code, "203.0.113.9").await.unwrap();
    assert_eq!(again.status(), 409);
    app.stop().await;
}

#[tokio::test]
async fn a_locked_out_admin_is_unlocked_from_the_command_line() {
    let app = TestApp::spawn(engine::store::Backend::Sqlite).await;
    app.admin().await;
    let visitor = app.browser();
    for _ in 0..5 {
        app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", "not the password")]).await;
    }
    let r = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.status(), 429);

    let data_dir = std::env::temp_dir().join(format!("tandem-unlock-{}", std::process::id()));
    let unlock = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["users", "unlock", "ada@example.com"])
        .env("DATABASE_URL", &app.database_url)
        .env("TANDEM_DATA_DIR", &data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&unlock.stdout);
    assert!(unlock.status.success(), "{stdout} {}", String::from_utf8_lossy(&unlock.stderr));
    assert!(stdout.contains("ada@example.com can sign in again"), "{stdout}");
    let r = app.call(&visitor, "login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["users", "unlock", "not an email"])
        .env("DATABASE_URL", &app.database_url)
        .env("TANDEM_DATA_DIR", &data_dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("email"), "{}", String::from_utf8_lossy(&bad.stderr));
    app.stop().await;
}

on_both_backends!(viewers_see_but_cannot_change);
async fn viewers_see_but_cannot_change(app: &TestApp) {
    let admin = app.admin().await;
    let viewer = app.invited(&admin, "vic@example.com", "viewer").await;

    let page = app.get(&viewer, "/settings/users").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Only a Super Admin can invite users or change permissions."));
    assert!(html.contains("ada@example.com"), "viewers can look");

    let r = app.call(&viewer, "invite_user", &[("email", "x@example.com"), ("role", "super_admin")]).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Only a Super Admin can invite users or change permissions."));
    let users: serde_json::Value = app.call(&admin, "users", &[]).await.json().await.unwrap();
    let vic_id = users.as_array().unwrap().iter().find(|u| u["email"] == "vic@example.com").unwrap()["id"].as_str().unwrap().to_string();
    let r = app.call(&viewer, "change_role", &[("user_id", &vic_id), ("role", "super_admin")]).await;
    assert_eq!(r.status(), 403, "a viewer cannot promote themselves");
    let r = app.call(&viewer, "remove_user", &[("user_id", &vic_id)]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.call(&admin, "users", &[]).await.json::<serde_json::Value>().await.unwrap().as_array().unwrap().len(), 2);

    // The Super Admin promotes Vic; Vic's old session ends so the new role applies at once.
    let r = app.call(&admin, "change_role", &[("user_id", &vic_id), ("role", "app_marketplace_access")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.call(&viewer, "users", &[]).await.status(), 401);
}

on_both_backends!(invalid_input_names_the_field);
async fn invalid_input_names_the_field(app: &TestApp) {
    let admin = app.admin().await;
    let r = app.call(&admin, "invite_user", &[("email", "not an email"), ("role", "viewer")]).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["Invalid"][0]["field"], "email", "{body}");
    let r = app.call(&admin, "invite_user", &[("email", "ok@example.com"), ("role", "owner")]).await;
    assert_eq!(r.status(), 422);
    // A malformed request (missing argument) is refused without storing anything.
    let r = app.call(&admin, "invite_user", &[("email", "ok@example.com")]).await;
    assert!(r.status().is_client_error() || r.status().is_server_error(), "{}", r.status());
    let users: serde_json::Value = app.call(&admin, "users", &[]).await.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
}

on_both_backends!(cross_site_requests_are_refused);
async fn cross_site_requests_are_refused(app: &TestApp) {
    let admin = app.admin().await;
    let forged = admin
        .post(format!("{}/api/invite_user", app.url))
        .header("origin", "http://evil.example")
        .form(&[("email", "mallory@example.com"), ("role", "super_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let no_origin = admin
        .post(format!("{}/api/invite_user", app.url))
        .form(&[("email", "mallory@example.com"), ("role", "super_admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    let users: serde_json::Value = app.call(&admin, "users", &[]).await.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "nothing was invited");
}

on_both_backends!(first_run_cannot_be_taken_through_another_host_name);
/// DNS rebinding: a page of evil.test whose name now points at Tandem sends `Host: evil.test`
/// and an Origin that matches it. Before the fix it created the Super Admin.
async fn first_run_cannot_be_taken_through_another_host_name(app: &TestApp) {
    let port = app.url.rsplit(':').next().unwrap().to_string();
    let evil = format!("evil.test:{port}");
    let attacker = app.browser();
    let r = attacker
        .post(format!("{}/api/setup", app.url))
        .header("host", &evil)
        .header("origin", format!("http://{evil}"))
        .form(&[("name", "Eve"), ("email", "eve@evil.test"), ("password", "0123456789abcdef")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    assert!(r.headers().get("set-cookie").is_none(), "no session");
    assert!(r.text().await.unwrap().contains("Request refused: Tandem answers at"));
    let page = attacker.get(format!("{}/setup", app.url)).header("host", &evil).send().await.unwrap();
    assert_eq!(page.status(), 421, "nor are its pages read under another name");

    // Nobody was created: the first-run page is still there for the operator, who may reach it
    // as localhost too.
    let operator = app.browser();
    let localhost = format!("localhost:{port}");
    let page = operator.get(format!("{}/setup", app.url)).header("host", &localhost).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Create Super Admin"));
    let r = operator
        .post(format!("{}/api/setup", app.url))
        .header("host", &localhost)
        .header("origin", format!("http://{localhost}"))
        .form(&[("name", "Ada Admin"), ("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    let users: serde_json::Value = app.call(&operator, "users", &[]).await.json().await.unwrap();
    let emails: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["ada@example.com"]);
}

on_both_backends!(pages_say_where_scripts_may_come_from);
/// Before this, pages had no Content-Security-Policy and `/api/*` answered GET too.
async fn pages_say_where_scripts_may_come_from(app: &TestApp) {
    let page = app.get(&app.browser(), "/setup").await;
    assert_eq!(page.status(), 200);
    let policy = page.headers().get("content-security-policy").expect("a policy").to_str().unwrap().to_string();
    assert!(policy.contains("object-src 'none'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let nonce = policy.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce").to_string();
    assert!(nonce.len() >= 16, "{nonce}");
    assert!(policy.contains("script-src 'self' 'nonce-") && policy.contains("'wasm-unsafe-eval'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the response's nonce");
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(tag.contains(&format!("nonce=\"{nonce}\"")) || tag.contains("src="), "an inline script without the nonce: <script{tag}>");
    }
    let again = app.get(&app.browser(), "/setup").await;
    let other = again.headers().get("content-security-policy").unwrap().to_str().unwrap();
    assert!(!other.contains(&nonce), "each response has its own nonce");
    assert!(page_headers_without_https(&again));

    // Server functions are called with POST only.
    let r = app.get(&app.browser(), "/api/users").await;
    assert_eq!(r.status(), 405);
}

fn page_headers_without_https(r: &reqwest::Response) -> bool {
    r.headers().get("strict-transport-security").is_none()
}

#[tokio::test]
async fn over_https_cookies_are_host_only_and_browsers_stay_on_https() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::spawn_on(listener, engine::store::Backend::Sqlite, |config| {
        config.public_url = Some("https://tandem.example".into());
    })
    .await;
    let browser = app.browser();
    let r = browser
        .post(format!("{local}/api/setup"))
        .header("origin", "https://tandem.example")
        .form(&[("name", "Ada Admin"), ("email", "ada@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    assert_eq!(r.headers().get("strict-transport-security").unwrap(), "max-age=31536000");
    let cookies: Vec<String> = r.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Host-tandem_session=")).unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(session.contains("; Path=/;") && session.contains("Secure") && !session.contains("Domain"), "{session}");
    let device = cookies.iter().find(|c| c.starts_with("__Secure-tandem_device=")).unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(device.contains("Path=/api/login") && device.contains("Secure"), "{device}");

    // The prefixed cookie is the session: a request presenting it is signed in.
    let token = session.split(';').next().unwrap();
    let users = reqwest::Client::new()
        .post(format!("{local}/api/users"))
        .header("origin", "https://tandem.example")
        .header("cookie", token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let health = reqwest::get(format!("{local}/healthz")).await.unwrap();
    assert_eq!(health.headers().get("strict-transport-security").unwrap(), "max-age=31536000");
    app.stop().await;
}

#[tokio::test]
async fn start_up_admin_comes_from_the_environment() {
    let app = TestApp::spawn_with(engine::store::Backend::Sqlite, |config| {
        config.admin_email = Some("ops@example.com".into());
        config.admin_password = Some(PASSWORD.into());
    })
    .await;
    let visitor = app.browser();
    assert_eq!(location(&app.get(&visitor, "/settings/users").await), "/login?next=/settings/users");
    let r = app.call(&visitor, "login", &[("email", "ops@example.com"), ("password", PASSWORD)]).await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    app.stop().await;
}

#[tokio::test]
async fn a_failed_migration_stops_start_up() {
    use engine::store::scratch::ScratchDatabase;
    use sqlx::Connection;
    let db = ScratchDatabase::create(engine::store::Backend::Sqlite).await.unwrap();
    // A database migrated by some other (newer or foreign) schema: Tandem must refuse it.
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let config = tandem::Config::for_tests(std::env::temp_dir(), Some(db.url.clone()));
    let err = tandem::Application::build(config).await.err().expect("start-up must fail");
    assert!(err.to_string().contains("migrations failed"), "{err}");
    db.destroy().await;
}

/// The signed-in pages a test asks for, with a text each must hold once rendered in full.
const PAGES: [(&str, &str); 6] = [
    ("/settings/integrations/connected-apps", "No apps connected yet"),
    ("/marketplace", "Pipedrive"),
    ("/marketplace/pipedrive", "Install app"),
    ("/settings/users", "ada@example.com"),
    ("/settings/audit-log", "Nothing recorded yet"),
    ("/settings/integrations/syncs", "No syncs yet"),
];

/// Asks for `path` and answers what was wrong with the answer, if anything: no full answer within
/// ten seconds (a stalled render), a body that broke off, another status, or a page without
/// `expected` or its closing tag.
async fn page_fault(app: &TestApp, browser: &reqwest::Client, i: usize, path: &str, expected: &str) -> Option<String> {
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let r = app.get(browser, path).await;
        (r.status(), r.text().await)
    })
    .await;
    match answer {
        Err(_) => Some(format!("#{i} {path}: no full answer within 10 s")),
        Ok((status, Err(e))) => Some(format!("#{i} {path}: {status}, the body broke off: {e}")),
        Ok((status, Ok(body))) if status != 200 || !body.contains(expected) || !body.contains("</html>") => {
            let tail: String = body.chars().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect();
            Some(format!("#{i} {path}: {status}, {} bytes, ending {tail:?}", body.len()))
        }
        Ok(_) => None,
    }
}

fn assert_no_faults(answers: &[Option<String>], at_least: usize) {
    let failures: Vec<_> = answers.iter().flatten().collect();
    assert!(answers.len() >= at_least, "only {} requests made", answers.len());
    assert!(failures.is_empty(), "{} of {} pages failed: {:?}", failures.len(), answers.len(), &failures[..failures.len().min(5)]);
}

/// Every signed-in page answers in full while other Tandem servers start in the same process (as
/// the tests do). Finding the routes holds back every resource through a process-wide switch:
/// a page rendered by another server meanwhile never got its data, and its response hung.
async fn pages_answer_while_other_servers_start(backend: engine::store::Backend) {
    use futures_util::stream::{self, StreamExt};
    use std::sync::atomic::{AtomicBool, Ordering};
    const STARTS: usize = 12;
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let starting = AtomicBool::new(true);
    let others = async {
        for _ in 0..STARTS {
            TestApp::spawn(backend).await.stop().await;
        }
        starting.store(false, Ordering::SeqCst);
    };
    let requests = stream::iter(0..)
        .take_while(|_| std::future::ready(starting.load(Ordering::SeqCst)))
        .map(|i| {
            let (path, expected) = PAGES[i % PAGES.len()];
            let (app, admin) = (&app, admin.clone());
            async move { page_fault(app, &admin, i, path, expected).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>();
    let ((), answers) = tokio::join!(others, requests);
    assert_no_faults(&answers, 51);
    app.stop().await;
}

/// Many pages at once, as a team's browsers ask for them: each answers in full. A page built
/// inside the signed-in frame's `<Suspense>` created its resources inside that boundary's
/// children, which the boundary re-runs while it settles (leptos-rs/leptos#4866): now and then a
/// response never completed (seen in 1 of 20 runs of this suite).
async fn pages_answer_in_full_under_load(backend: engine::store::Backend) {
    use futures_util::stream::{self, StreamExt};
    const REQUESTS: usize = 600;
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let viewer = app.invited(&admin, "vic@example.com", "viewer").await;
    let answers = stream::iter(0..REQUESTS)
        .map(|i| {
            let (path, expected) = PAGES[i % PAGES.len()];
            // Viewers see every page but the audit log (Super Admins only).
            let browser = if i % 3 == 0 && path != "/settings/audit-log" { viewer.clone() } else { admin.clone() };
            let app = &app;
            async move { page_fault(app, &browser, i, path, expected).await }
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    assert_no_faults(&answers, REQUESTS);
    app.stop().await;
}

mod pages_answer_while_other_servers_start {
    use engine::store::Backend;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::pages_answer_while_other_servers_start(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::pages_answer_while_other_servers_start(Backend::Postgres).await;
    }
}

mod pages_answer_in_full_under_load {
    use engine::store::Backend;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::pages_answer_in_full_under_load(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::pages_answer_in_full_under_load(Backend::Postgres).await;
    }
}

/// Webhooks left behind by an earlier install keep being delivered and refused: each refusal
/// was a warning in the log. They are counted, and logged at most once a minute.
#[tokio::test]
async fn refused_webhooks_are_counted_not_logged_one_by_one() {
    let log = captured_log();
    let app = TestApp::spawn(engine::store::Backend::Sqlite).await;
    let provider = reqwest::Client::new();
    for _ in 0..20 {
        let r = provider
            .post(format!("{}/webhooks/pipedrive/0190c0de-0000-7000-8000-000000000000", app.url))
            .basic_auth("tandem", Some("an old install's secret"))
            .body(r#"{"meta":{"action":"change","entity":"deal"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let metrics = app.get(&app.browser(), "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tandem_webhooks_refused_total{provider=\"pipedrive\"} 20"), "{metrics}");
    let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("webhook deliveries refused") && l.contains("pipedrive")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!text.contains("an old install's secret"));
    app.stop().await;
}

/// What the server logs at warning level and above, kept for the tests that assert a log line.
fn captured_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        log
    })
    .clone()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A page whose data cannot load (here its table is locked by another connection, as a long
/// migration or a stuck transaction would) answers "took too long" once the page deadline
/// passes, instead of keeping the browser waiting for good; the log names the page; once the data
/// is back the page renders as before.
#[tokio::test]
async fn a_page_that_cannot_load_answers_within_its_deadline() {
    use sqlx::{Connection, Executor};
    let log = captured_log();
    let app = TestApp::spawn_with(engine::store::Backend::Postgres, |config| config.page_timeout_secs = 2).await;
    let admin = app.admin().await;
    assert_eq!(app.get(&admin, "/settings/audit-log").await.status(), 200);

    let mut locker = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    locker.execute("BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let started = std::time::Instant::now();
    let r = app.get(&admin, "/settings/audit-log?stalled=1").await;
    let waited = started.elapsed();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("This page took too long to load"));
    assert!(waited < std::time::Duration::from_secs(20), "answered after {waited:?}");
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(
        logged.lines().any(|l| l.contains("page render stalled") && l.contains("route=/settings/audit-log")),
        "the log names the page: {logged}"
    );
    // Other pages answer meanwhile.
    assert_eq!(app.get(&admin, "/settings/users").await.status(), 200);

    locker.execute("ROLLBACK").await.unwrap();
    let r = app.get(&admin, "/settings/audit-log").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Nothing recorded yet"));
    locker.close().await.unwrap();
    app.stop().await;
}

/// Pages and files are sent compressed as the browser accepts; the build's hashed files are kept
/// a year, files named as they are an hour, pages never.
#[tokio::test]
async fn pages_and_files_are_sent_compressed_and_kept_as_long_as_their_names_allow() {
    let site = std::env::temp_dir().join(format!("tandem-site-{}", std::process::id()));
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let hashed = "tandem.kGM1RwrYpFj3Ksi0KJFWlA.wasm";
    let bundle = vec![0u8; 64 * 1024];
    std::fs::write(site.join("pkg").join(hashed), &bundle).unwrap();
    // As `cargo leptos build --precompress` leaves it beside the file.
    std::fs::write(site.join("pkg").join(format!("{hashed}.br")), b"brotli bytes").unwrap();
    std::fs::write(site.join("pkg/tandem.wasm"), &bundle).unwrap();
    let root = site.clone();
    let app = TestApp::spawn_with(engine::store::Backend::Sqlite, move |config| config.site_root = root).await;
    let browser = app.browser();
    let fetch = |path: &str, encodings: Option<&str>| {
        let mut request = browser.get(format!("{}{path}", app.url));
        if let Some(encodings) = encodings {
            request = request.header("accept-encoding", encodings);
        }
        request.send()
    };
    let header = |r: &reqwest::Response, name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());

    for (accepts, encoding, starts) in [
        (Some("gzip, deflate, br"), Some("br"), None),
        (Some("gzip"), Some("gzip"), Some(&[0x1f, 0x8b][..])),
        (None, None, Some(&b"<!DOCTYPE html>"[..])),
    ] {
        let page = fetch("/setup", accepts).await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(header(&page, "content-encoding").as_deref(), encoding, "{accepts:?}");
        assert_eq!(header(&page, "cache-control").as_deref(), Some("no-store"));
        let body = page.bytes().await.unwrap();
        if let Some(starts) = starts {
            assert!(body.starts_with(starts), "{accepts:?}: {:?}", &body[..16.min(body.len())]);
        }
    }

    let file = fetch(&format!("/pkg/{hashed}"), Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(header(&file, "content-encoding").as_deref(), Some("br"));
    assert_eq!(header(&file, "cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(header(&file, "vary").as_deref(), Some("accept-encoding"));
    assert_eq!(&file.bytes().await.unwrap()[..], b"brotli bytes", "the file compressed when built");
    let plain = fetch(&format!("/pkg/{hashed}"), None).await.unwrap();
    assert_eq!(plain.bytes().await.unwrap().len(), bundle.len());
    // A development build's names stay the same from one build to the next.
    let unhashed = fetch("/pkg/tandem.wasm", Some("gzip")).await.unwrap();
    assert_eq!(header(&unhashed, "cache-control").as_deref(), Some("public, max-age=3600"));
    assert_eq!(header(&unhashed, "content-encoding").as_deref(), Some("gzip"), "compressed as it is sent");
    assert!(unhashed.bytes().await.unwrap().len() < bundle.len() / 10);
    let missing = fetch("/pkg/tandem.AAAAAAAAAAAAAAAAAAAAAA.wasm", None).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "cache-control"), None, "a missing file is not kept");
    let _ = std::fs::remove_dir_all(&site);
}
