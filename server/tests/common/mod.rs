//! Starts Tandem on a free port with a fresh database of the chosen kind, and talks to it over
//! real HTTP like a browser would (cookies, Origin header).

#![allow(dead_code)]

use engine::store::scratch::ScratchDatabase;
use engine::store::Backend;
use tandem::{Application, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub url: String,
    pub database_url: String,
    /// The first-run setup code the log shows.
    pub setup_code: String,
    db: Option<ScratchDatabase>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Declares a test that runs once on SQLite and once on Postgres.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::common::TestApp::spawn(engine::store::Backend::Sqlite).await;
                super::$name(&app).await;
                app.stop().await;
            }
            #[tokio::test]
            async fn postgres() {
                let app = $crate::common::TestApp::spawn(engine::store::Backend::Postgres).await;
                super::$name(&app).await;
                app.stop().await;
            }
        }
    };
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        Self::spawn_on(listener, backend, adjust).await
    }

    /// Tandem on a listener the test bound already (when something must know its URL first).
    pub async fn spawn_on(listener: tokio::net::TcpListener, backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = ScratchDatabase::create(backend).await.expect("scratch database");
        let mut config = Config::for_tests(std::env::temp_dir(), Some(db.url.clone()));
        adjust(&mut config);
        let app = Application::build_on(config, listener).await.expect("application starts");
        let url = app.public_url().to_string();
        let setup_code = app.setup_code().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        TestApp { url, database_url: db.url.clone(), setup_code, db: Some(db), stop: Some(stop), task: Some(task) }
    }

    /// A browser: its own cookie jar, and redirects left for the test to see.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            // A response that never completes fails the test instead of stalling the run.
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub async fn get(&self, browser: &reqwest::Client, path: &str) -> reqwest::Response {
        browser.get(format!("{}{path}", self.url)).send().await.expect("GET")
    }

    /// Calls a server function the way Tandem's own pages do (form-encoded, same origin).
    pub async fn call(&self, browser: &reqwest::Client, endpoint: &str, form: &[(&str, &str)]) -> reqwest::Response {
        browser.post(format!("{}/api/{endpoint}", self.url)).header("origin", &self.url).form(form).send().await.expect("POST")
    }

    /// A browser signed in as the first Super Admin (created here).
    pub async fn admin(&self) -> reqwest::Client {
        let browser = self.browser();
        let r = self.call(&browser, "setup", &[("name", "Ada Admin"), ("email", "ada@example.com"), ("password", PASSWORD)]).await;
        assert!(r.status().is_success() || r.status().is_redirection(), "setup: {}", r.status());
        browser
    }

    /// Invites `email` with `role` as `admin` and returns a browser signed in as that new user.
    pub async fn invited(&self, admin: &reqwest::Client, email: &str, role: &str) -> reqwest::Client {
        let r = self.call(admin, "invite_user", &[("email", email), ("role", role)]).await;
        assert_eq!(r.status(), 200, "invite");
        let link: String = r.json().await.expect("invite link");
        let token = link.rsplit('/').next().unwrap().to_string();
        let browser = self.browser();
        let r = self.call(&browser, "accept_invite", &[("token", &token), ("name", "Vic Viewer"), ("password", PASSWORD)]).await;
        assert!(r.status().is_success() || r.status().is_redirection(), "accept: {}", r.status());
        browser
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
        if let Some(db) = self.db.take() {
            db.destroy().await;
        }
    }
}
