//! The chaos test: the real `tandem` binary syncing deals between both sandboxes while rounds of
//! random edits land on both sides, faults are injected (429, 500, 503, dropped connections) and
//! the process is killed with SIGKILL and restarted at random moments. At the end, with faults
//! off, the two sides must agree: every deal exists exactly once on each side and every edit
//! arrived. Each field has one owner side (amounts are edited in HubSpot, close dates in
//! Pipedrive), so the expected end state is known without modelling the conflict rule, which the
//! planner's property tests cover.
//!
//! CI runs a short version; `CHAOS_ROUNDS=50 cargo test -p tandem --test chaos -- --nocapture`
//! runs a long one. `CHAOS_SEED` replays a run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[path = "support/install.rs"]
mod support;

use sandbox::{demo_client, HubSpotConfig, PipedriveConfig, RunningSandbox, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use serde_json::{json, Value};

/// A small deterministic generator (xorshift64*), so a failing run can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct World {
    http: reqwest::Client,
    hubspot: RunningSandbox,
    pipedrive: RunningSandbox,
    /// What each deal must end with: name → (amount, close date).
    expected: HashMap<String, (String, Option<String>)>,
    meeting_stage: u64,
}

impl World {
    /// A read of the provider's API as a user makes it: retried through the injected faults.
    async fn read(&self, url: String, query: &[(&str, String)], token: &str) -> Value {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(&url).query(query).bearer_auth(token).send().await {
                if r.status().is_success() {
                    if let Ok(v) = r.json::<Value>().await {
                        return v;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{url} kept failing");
    }

    async fn token(&self, sandbox: &RunningSandbox, scopes: &[&str]) -> String {
        sandbox::walk::mint_token(&sandbox.url(), DEMO_CLIENT_ID, scopes).await.unwrap()
    }

    /// HubSpot deals by name: (id, amount, close date). Fails on a duplicate name.
    async fn hs_deals(&self) -> HashMap<String, (String, String, Option<String>)> {
        let token = self.token(&self.hubspot, &["crm.objects.deals.read"]).await;
        let mut out = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("limit", "100".to_string()), ("properties", "dealname,amount,closedate".to_string())];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page = self.read(format!("{}/crm/v3/objects/deals", self.hubspot.url()), &q, &token).await;
            for d in page["results"].as_array().unwrap() {
                let p = &d["properties"];
                let name = p["dealname"].as_str().unwrap_or_default().to_string();
                let close = p["closedate"].as_str().and_then(model::translate::canonical_date);
                let amount = model::translate::canonical_number(p["amount"].as_str().unwrap_or_default()).unwrap_or_default();
                assert!(
                    out.insert(name.clone(), (d["id"].as_str().unwrap().to_string(), amount, close)).is_none(),
                    "HubSpot holds {name} twice"
                );
            }
            after = page["paging"]["next"]["after"].as_str().map(str::to_string);
            if after.is_none() {
                return out;
            }
        }
    }

    /// Pipedrive deals by title: (id, value, close date). Fails on a duplicate title.
    async fn pd_deals(&self) -> HashMap<String, (String, String, Option<String>)> {
        let token = self.token(&self.pipedrive, &["deals:read"]).await;
        let mut out = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", "500".to_string())];
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.read(format!("{}/api/v2/deals", self.pipedrive.url()), &q, &token).await;
            for d in page["data"].as_array().unwrap() {
                let title = d["title"].as_str().unwrap().to_string();
                let value = model::translate::canonical_number(&d["value"].to_string()).unwrap_or_default();
                let close = d["expected_close_date"].as_str().map(str::to_string);
                assert!(out.insert(title.clone(), (d["id"].to_string(), value, close)).is_none(), "Pipedrive holds {title} twice");
            }
            cursor = page["additional_data"]["next_cursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                return out;
            }
        }
    }

    async fn faults(&self, config: Value) {
        for sandbox in [&self.hubspot, &self.pipedrive] {
            let r = self.http.put(format!("{}/_sandbox/faults", sandbox.url())).json(&config).send().await.unwrap();
            assert!(r.status().is_success());
        }
    }

    /// One round of edits, as users of both apps make them.
    async fn edit(&mut self, rng: &mut Rng, round: usize) {
        for i in 0..1 + rng.below(3) {
            let name = format!("HS r{round} d{i}");
            let amount = (100 + rng.below(10_000)).to_string();
            let props = json!({"dealname": name, "amount": amount, "pipeline": "default", "dealstage": "appointmentscheduled"});
            let r = self
                .http
                .post(format!("{}/_sandbox/objects/deals", self.hubspot.url()))
                .json(&json!({"properties": props}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            self.expected.insert(name, (amount, None));
        }
        for i in 0..1 + rng.below(3) {
            let name = format!("PD r{round} d{i}");
            let value = 100 + rng.below(10_000);
            let close = format!("2027-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
            let fields =
                json!({"title": name, "value": value, "pipeline_id": 1, "stage_id": self.meeting_stage, "expected_close_date": close});
            let r =
                self.http.post(format!("{}/_sandbox/deals", self.pipedrive.url())).json(&json!({"fields": fields})).send().await.unwrap();
            assert_eq!(r.status(), 201);
            self.expected.insert(name, (value.to_string(), Some(close)));
        }
        // Amounts change in HubSpot, close dates in Pipedrive, on deals that exist there now.
        let hs = self.hs_deals().await;
        let mut names: Vec<&String> = hs.keys().collect();
        names.sort();
        for _ in 0..rng.below(4) {
            let Some(name) = names.get(rng.below(names.len() as u64) as usize) else { break };
            let amount = (100 + rng.below(10_000)).to_string();
            let r = self
                .http
                .patch(format!("{}/_sandbox/objects/deals/{}", self.hubspot.url(), hs[*name].0))
                .json(&json!({"properties": {"amount": amount}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            self.expected.get_mut(*name).expect("a deal Tandem created").0 = amount;
        }
        let pd = self.pd_deals().await;
        let mut titles: Vec<&String> = pd.keys().collect();
        titles.sort();
        for _ in 0..rng.below(4) {
            let Some(title) = titles.get(rng.below(titles.len() as u64) as usize) else { break };
            let close = format!("2028-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
            let r = self
                .http
                .patch(format!("{}/_sandbox/deals/{}", self.pipedrive.url(), pd[*title].0))
                .json(&json!({"fields": {"expected_close_date": close}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            self.expected.get_mut(*title).expect("a deal Tandem created").1 = Some(close);
        }
    }

    /// What still differs from the expected end state (empty when converged).
    async fn differences(&self) -> Vec<String> {
        let (hs, pd) = (self.hs_deals().await, self.pd_deals().await);
        let mut problems = Vec::new();
        for (name, (amount, close)) in &self.expected {
            match (hs.get(name), pd.get(name)) {
                (Some(h), Some(p)) => {
                    if &h.1 != amount || &p.1 != amount {
                        problems.push(format!("{name}: amount HubSpot {} / Pipedrive {} (expected {amount})", h.1, p.1));
                    }
                    if &h.2 != close || &p.2 != close {
                        problems.push(format!("{name}: close date HubSpot {:?} / Pipedrive {:?} (expected {close:?})", h.2, p.2));
                    }
                }
                (h, p) => problems.push(format!("{name}: in HubSpot {}, in Pipedrive {}", h.is_some(), p.is_some())),
            }
        }
        if hs.len() != self.expected.len() || pd.len() != self.expected.len() {
            problems.push(format!("{} expected deals; HubSpot has {}, Pipedrive {}", self.expected.len(), hs.len(), pd.len()));
        }
        problems
    }
}

/// The running binary; killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
struct Tandem(std::process::Child);

impl Tandem {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Tandem {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(data_dir: &Path, key: &str, port: u16, hubspot: &RunningSandbox, pipedrive: &RunningSandbox) -> Tandem {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("tandem.log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TANDEM_ADDR", format!("127.0.0.1:{port}"))
        .env("TANDEM_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("TANDEM_DATA_DIR", data_dir)
        .env("TANDEM_SECRET_KEY", key)
        .env("TANDEM_SYNC_INTERVAL_SECS", "1")
        .env("TANDEM_HUBSPOT_CLIENT_ID", DEMO_CLIENT_ID)
        .env("TANDEM_HUBSPOT_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("TANDEM_HUBSPOT_APP_URL", hubspot.url())
        .env("TANDEM_HUBSPOT_API_URL", hubspot.url())
        .env("TANDEM_PIPEDRIVE_CLIENT_ID", DEMO_CLIENT_ID)
        .env("TANDEM_PIPEDRIVE_CLIENT_SECRET", DEMO_CLIENT_SECRET)
        .env("TANDEM_PIPEDRIVE_OAUTH_URL", pipedrive.url())
        .env("RUST_LOG", "warn,engine=info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the tandem binary starts");
    Tandem(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_survive_faults_and_kills() {
    let rounds: usize = std::env::var("CHAOS_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(6);
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| engine::clock::now_ms() as u64 | 1);
    println!("chaos: seed {seed}, {rounds} rounds (CHAOS_SEED={seed} replays the choices)");
    let mut rng = Rng(seed);

    // Tandem's port, held until the binary starts: the sandboxes bind port 0 meanwhile and must
    // not be handed this one.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    let tandem_url = format!("http://127.0.0.1:{port}");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut hs_config = HubSpotConfig::new(vec![demo_client("hubspot", &tandem_url)]);
    hs_config.rate_limit = 0;
    let (_, hubspot) = sandbox::start_hubspot(hs_config, any, None).await.unwrap();
    let (_, pipedrive) =
        sandbox::start_pipedrive(PipedriveConfig::new(vec![demo_client("pipedrive", &tandem_url)]), any, None).await.unwrap();
    let data_dir = std::env::temp_dir().join(format!("tandem-chaos-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = engine::crypto::generate_key_text();
    support::install_and_sync_deals(&data_dir, None, &key, &tandem_url, &hubspot.url(), &pipedrive.url(), |_, _| {}).await;

    let mut world = World { http: reqwest::Client::new(), hubspot, pipedrive, expected: HashMap::new(), meeting_stage: 0 };
    let token = world.token(&world.pipedrive, &["deals:read"]).await;
    let stages: Value = world
        .http
        .get(format!("{}/api/v2/stages?pipeline_id=1", world.pipedrive.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    world.meeting_stage =
        stages["data"].as_array().unwrap().iter().find(|s| s["name"] == "Meeting Scheduled").unwrap()["id"].as_u64().unwrap();

    let (mut kills, mut faulty_rounds) = (0, 0);
    drop(reserved);
    let mut child = spawn(&data_dir, &key, port, &world.hubspot, &world.pipedrive);
    for round in 0..rounds {
        world.edit(&mut rng, round).await;
        if rng.chance(70) {
            faulty_rounds += 1;
            let share = |rng: &mut Rng| rng.below(12) as f64 / 100.0;
            let config = json!({"rate_429": share(&mut rng), "rate_500": share(&mut rng), "rate_503": share(&mut rng), "rate_drop": share(&mut rng)});
            world.faults(config).await;
        } else {
            world.faults(json!({})).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + rng.below(2_500))).await;
        if rng.chance(75) {
            child.kill();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            child = spawn(&data_dir, &key, port, &world.hubspot, &world.pipedrive);
        }
    }

    // Faults off: the running instance must bring both sides to the expected state.
    world.faults(json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut problems = world.differences().await;
    while !problems.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        problems = world.differences().await;
    }
    child.kill();
    let log = std::fs::read_to_string(data_dir.join("tandem.log")).unwrap_or_default();
    assert!(
        problems.is_empty(),
        "not converged after the chaos (seed {seed}):\n{}\n--- log tail ---\n{}",
        problems.join("\n"),
        tail(&log, 60)
    );
    assert!(!log.contains("v1u:") && !log.contains("Bearer "), "no token in the logs");
    println!(
        "chaos: survived {rounds} rounds, {faulty_rounds} with faults injected, {kills} SIGKILLs; {} deals agree on both sides",
        world.expected.len()
    );
    world.hubspot.stop().await;
    world.pipedrive.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
