//! A real server on a random port with a fresh SQLite file, and a small JSON client.
#![allow(dead_code)]

pub mod mqtt;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use pumppilot_server::{
    Running, Settings, app,
    clock::{ManualClock, SharedClock},
    config::Secret,
};
use pumppilot_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const MASTER: (&str, &str) = ("master", "master-password");
pub const PASSWORD: &str = "farmer-password";
/// Short so that silence is noticed within a test.
pub const LEASE_MS: u32 = 1500;

pub struct TestApp {
    pub site: Site,
    pub running: Running,
    /// The server's clock: it stands still until the test moves it.
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A server on a manual clock.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|store| store).await
}

/// A server whose store is wrapped by `wrap` (for fault injection), on a manual clock.
pub async fn spawn_app_with(wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> TestApp {
    let clock = ManualClock::starting_now();
    spawn_app_on(clock.clone(), clock, wrap).await
}

/// A server on a manual clock with some settings changed by `configure`.
pub async fn spawn_app_configured(configure: impl FnOnce(Settings) -> Settings) -> TestApp {
    let clock = ManualClock::starting_now();
    spawn_app_full(clock.clone(), clock, |store| store, configure).await
}

/// A server on the store at `database_url` (with the `secret` it needs), on `clock`: several of
/// them on one MongoDB database are servers of one fleet, in one process, on one manual clock.
pub async fn spawn_app_at(database_url: &str, secret: Option<Secret>, clock: Arc<ManualClock>) -> TestApp {
    spawn_app_at_configured(database_url, secret, clock, |settings| settings).await
}

/// [`spawn_app_at`] with its store wrapped by `wrap` (for fault injection).
pub async fn spawn_app_at_with(
    database_url: &str,
    secret: Option<Secret>,
    clock: Arc<ManualClock>,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    let database_url = database_url.to_owned();
    spawn_app_full(clock.clone(), clock, wrap, move |settings| Settings { database_url, secret, ..settings }).await
}

/// [`spawn_app_at`] with some settings changed by `configure` as well.
pub async fn spawn_app_at_configured(
    database_url: &str,
    secret: Option<Secret>,
    clock: Arc<ManualClock>,
    configure: impl FnOnce(Settings) -> Settings,
) -> TestApp {
    let database_url = database_url.to_owned();
    spawn_app_full(
        clock.clone(),
        clock,
        |store| store,
        move |settings| configure(Settings { database_url, secret, ..settings }),
    )
    .await
}

/// A server on the wall clock (for devices that run on real time, as the simulator does).
pub async fn spawn_app_on_the_wall_clock() -> TestApp {
    let unused = ManualClock::starting_now();
    spawn_app_on(pumppilot_server::clock::system(), unused, |store| store).await
}

async fn spawn_app_on(
    server_clock: SharedClock,
    clock: Arc<ManualClock>,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    spawn_app_full(server_clock, clock, wrap, |settings| settings).await
}

async fn spawn_app_full(
    server_clock: SharedClock,
    clock: Arc<ManualClock>,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    configure: impl FnOnce(Settings) -> Settings,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, secret) = test_store(dir.path());
    let settings = Settings {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url,
        device_lease_ms: LEASE_MS,
        poll_interval_ms: 300,
        // Restart protection would make every stop-then-start wait a minute; its own tests set it.
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
        master_username: Some(MASTER.0.into()),
        master_password: Some(Secret(MASTER.1.into())),
        clock: server_clock,
        ..Settings::default()
    };
    let settings = configure(Settings { secret, ..settings });
    let secret = pumppilot::store::load_secret(&settings).unwrap();
    let store = wrap(pumppilot::store::open_store(&settings).await.unwrap());
    let running = app::spawn(settings, store, secret).await.unwrap();
    app::bootstrap_master(&running.app).await.unwrap();
    TestApp { site: Site { base: format!("http://{}", running.addr) }, running, clock, _dir: dir }
}

/// The store of an in-process test server: a fresh SQLite file in `dir`, or, when
/// `PUMPPILOT_TEST_STORE=mongodb`, a fresh database on the SecantusDB this test binary starts
/// (`pumppilot_store_mongodb::testing`), with the secret MongoDB needs.
pub fn test_store(dir: &std::path::Path) -> (String, Option<Secret>) {
    match std::env::var("PUMPPILOT_TEST_STORE").as_deref() {
        Ok("mongodb") => (
            pumppilot_store_mongodb::testing::server().fresh_url(),
            Some(Secret("a-test-secret-of-at-least-32-characters".into())),
        ),
        Ok("sqlite") | Err(_) => (format!("sqlite://{}", dir.join("pumppilot.db").display()), None),
        Ok(other) => panic!("PUMPPILOT_TEST_STORE={other}: use sqlite or mongodb"),
    }
}

impl TestApp {
    /// A sign-in through a reverse proxy at 127.0.0.1 (a trusted one when the test sets it), for
    /// the client at `client` (its `X-Forwarded-For`).
    pub async fn login_forwarded_for(&self, client: &str, username: &str, password: &str) -> (StatusCode, Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/api/auth/login", self.base))
            .header("x-forwarded-for", client)
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        (answer.status(), answer.json().await.unwrap_or(Value::Null))
    }

    /// Shuts the server down as a signal does: what it serves is finished first.
    pub async fn shutdown(self) {
        self.running.shutdown().await.unwrap();
    }

    /// The SQLite file behind the server (to stage what only time could do otherwise).
    pub fn database(&self) -> std::path::PathBuf {
        self._dir.path().join("pumppilot.db")
    }

    /// Moves the server's clock on by `by` while `device` reports these inputs at every half
    /// lease, so its lease never runs out on the way.
    pub async fn pass_polling(&self, by: Duration, device: &Device, load_shedding: bool, ready: bool) {
        let step = Duration::from_millis(u64::from(LEASE_MS) / 2);
        let mut left = by;
        while !left.is_zero() {
            let now = left.min(step);
            self.clock.advance(now);
            device.poll(load_shedding, ready).await;
            left -= now;
        }
    }

    /// Waits until someone on the server waits for the moment `from_now_ms` from now on the
    /// server's clock (a stream's refresh, a timer), when nothing else waits for that moment.
    pub async fn until_waiting_for(&self, from_now_ms: i64) {
        self.until_one_more_waits(from_now_ms, 0).await;
    }

    /// How many waits on the server end `from_now_ms` from now (before starting one more).
    pub fn waits_for(&self, from_now_ms: i64) -> usize {
        let at = pumppilot_server::clock::Clock::now(self.clock.as_ref()) + from_now_ms;
        self.clock.waits().iter().filter(|w| **w == at).count()
    }

    /// Waits until more than `before` waits end `from_now_ms` from now: a request was held.
    pub async fn until_one_more_waits(&self, from_now_ms: i64, before: usize) {
        until(&format!("a wait until +{from_now_ms} ms"), || self.waits_for(from_now_ms) > before).await;
    }

    /// Starts `request` and returns once the server holds it until `from_now_ms` from now.
    pub async fn held<T: Send + 'static>(
        &self,
        from_now_ms: i64,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let before = self.waits_for(from_now_ms);
        let task = tokio::spawn(request);
        self.until_one_more_waits(from_now_ms, before).await;
        task
    }
}

/// Waits for `done` to hold, checking every 10 ms of real time for up to 20 s: for what another
/// task does while the server's clock stands still.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 20 s");
}

/// `GET /healthz` on a connection of its own to `addr` (`host:port`), closed after the answer:
/// the whole answer as text, once it comes (for tests of when connections are accepted).
pub async fn healthz_on_its_own_connection(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
    connection.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    connection.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).to_string()
}

/// A JSON client with an optional bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl std::ops::Deref for TestApp {
    type Target = Site;

    fn deref(&self) -> &Site {
        &self.site
    }
}

/// A server reached over HTTP, in-process or not.
pub struct Site {
    pub base: String,
}

impl Site {
    pub fn anonymous(&self) -> Client {
        Client { http: reqwest::Client::new(), base: self.base.clone(), token: None }
    }

    pub async fn login(&self, username: &str, password: &str) -> Client {
        let anon = self.anonymous();
        let (status, body) = anon.post("/api/auth/login", json!({"username": username, "password": password})).await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        Client { token: Some(body["token"].as_str().unwrap().to_string()), ..anon }
    }

    pub async fn master(&self) -> Client {
        self.login(MASTER.0, MASTER.1).await
    }

    /// An admin with `users` users (each recharged with `minutes`) and one device.
    pub async fn tenant(&self, name: &str, users: usize, minutes: i64) -> Tenant {
        let master = self.master().await;
        let (status, admin) =
            master.post("/api/master/admins", json!({"name": name, "username": name, "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::CREATED, "{admin}");
        let admin_client = self.login(name, PASSWORD).await;
        let mut user_clients = Vec::new();
        let mut user_ids = Vec::new();
        for i in 0..users {
            let username = format!("{name}-farmer-{i}");
            let (status, user) = admin_client
                .post(
                    "/api/admin/users",
                    json!({"name": format!("Farmer {i}"), "username": username, "password": PASSWORD}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{user}");
            let id = user["id"].as_str().unwrap().to_string();
            if minutes > 0 {
                let (status, body) =
                    admin_client.post("/api/admin/recharge", json!({"userId": id, "minutes": minutes})).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
            user_clients.push(self.login(&username, PASSWORD).await);
            user_ids.push(id);
        }
        let (status, device) = admin_client.post("/api/admin/devices", json!({"name": format!("{name} pump")})).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        Tenant {
            admin_id: admin["id"].as_str().unwrap().to_string(),
            admin: admin_client,
            users: user_clients,
            user_ids,
            device: Device {
                client: Client { token: Some(device["deviceKey"].as_str().unwrap().to_string()), ..self.anonymous() },
            },
        }
    }
}

pub struct Tenant {
    pub admin_id: String,
    pub admin: Client,
    pub users: Vec<Client>,
    pub user_ids: Vec<String>,
    pub device: Device,
}

#[derive(Clone)]
pub struct Device {
    pub client: Client,
}

impl Device {
    /// One poll with the given inputs; returns the answer.
    pub async fn poll(&self, load_shedding: bool, ready: bool) -> Value {
        let path =
            format!("/api/esp32/poll?loadShedding={}&ready={}&relay=0&fw=test", load_shedding as u8, ready as u8);
        let (status, body) = self.client.get(&path).await;
        assert_eq!(status, StatusCode::OK, "poll: {body}");
        body
    }

    /// One poll of a board on a live grid with its pump ready, saying `query` besides (its relay,
    /// why it is open, …); returns the answer.
    pub async fn poll_with(&self, query: &str) -> Value {
        let path = format!("/api/esp32/poll?loadShedding=0&ready=1&fw=test&{query}");
        let (status, body) = self.client.get(&path).await;
        assert_eq!(status, StatusCode::OK, "poll: {body}");
        body
    }

    /// Keeps polling as a healthy device until the returned handle is dropped or aborted.
    pub fn keep_polling(&self) -> PollingGuard {
        let device = self.clone();
        PollingGuard(tokio::spawn(async move {
            loop {
                device.poll(false, true).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

/// Stops the background polling when dropped.
pub struct PollingGuard(tokio::task::JoinHandle<()>);

impl Drop for PollingGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Client {
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request_with(method, path, body, &[]).await
    }

    /// [`Client::request`] with these headers besides.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    /// A POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert!(status.is_success(), "POST {path}: {status} {value}");
        value
    }

    pub async fn status(&self) -> Value {
        let (status, body) = self.get("/api/motor/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Leaves an installation alerts a copy of it must keep: `farmer` (signed in as `username`) sets a
/// phone for SMS (in Bangla), and their phone, signed in on the app, registers its push token with
/// its session; they ask the owner for minutes twice, the first rejected. The owner's bell then
/// holds the first request read and the second unread; the farmer's holds the rejection.
pub async fn leave_alerts(owner: &Client, farmer: &Client, username: &str, phone: &str) {
    let body = json!({"username": username, "password": PASSWORD, "deviceName": "farmer's phone"});
    let pair = Client { token: None, ..farmer.clone() }.ok("/api/mobile/login", body).await;
    let app = Client { token: Some(pair["accessToken"].as_str().unwrap().to_owned()), ..farmer.clone() };
    let (status, body) =
        app.request(Method::PUT, "/api/alerts/push-tokens/ExponentPushToken%5Bfarmer-phone%5D", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profile = json!({
        "phone": phone,
        "pushTokens": ["ExponentPushToken[farmer-phone]"],
        "language": "bn",
        "muted": [{"kind": "RUN_STARTED", "channel": "SMS"}],
        "quietHours": null,
    });
    let (status, body) = farmer.request(Method::PUT, "/api/alerts/profile", Some(profile)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pushTokens"], json!(["ExponentPushToken[farmer-phone]"]), "{body}");
    let first = farmer.ok("/api/minute-requests", json!({"minutes": 5})).await;
    let told = owner.get("/api/notifications").await.1["notifications"][0].clone();
    assert_eq!(told["kind"], "REQUEST_NEW", "{told}");
    let first = first["id"].as_str().unwrap();
    owner.ok(&format!("/api/admin/minute-requests/{first}/reject"), json!({})).await;
    farmer.ok("/api/minute-requests", json!({"minutes": 10})).await;
    let bell = owner.ok("/api/notifications/read", json!({"ids": [told["id"]]})).await;
    let newest = &bell["notifications"][0];
    assert_eq!((&newest["kind"], &newest["read"]), (&json!("REQUEST_NEW"), &json!(false)), "{bell}");
    let first_told = bell["notifications"].as_array().unwrap().iter().find(|n| n["id"] == told["id"]).unwrap();
    assert_eq!(first_told["read"], true, "{bell}");
}

/// What each of `people` set and what their bell holds, as the API answers it (their alert
/// profile, their notifications with the read state): a copy of the installation answers the same.
pub async fn alerts_of(people: &[&Client]) -> Vec<Value> {
    let mut answers = Vec::new();
    for person in people {
        for path in ["/api/alerts/profile", "/api/notifications"] {
            let (status, body) = person.get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            answers.push(body);
        }
    }
    answers
}

/// Asserts an error answer's status and code.
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The server process, killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
pub struct Server(Child);

impl Server {
    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.0.wait().unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real binary on a free port; returns the process and its base URL.
pub fn start_server(dir: &std::path::Path) -> (Server, String) {
    start_server_with(dir, &[])
}

/// The real binary on a free port with more (or other) settings.
pub fn start_server_with(dir: &std::path::Path, settings: &[(&str, &str)]) -> (Server, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pumppilot"));
    command
        .arg("serve")
        .env("PUMPPILOT_BIND", "127.0.0.1:0")
        .env("PUMPPILOT_DATABASE_URL", format!("sqlite://{}", dir.join("pumppilot.db").display()))
        .env("PUMPPILOT_MASTER_USERNAME", "master")
        .env("PUMPPILOT_MASTER_PASSWORD", "master-password")
        .env("PUMPPILOT_DEVICE_LEASE_MS", "3000")
        .env("PUMPPILOT_POLL_INTERVAL_MS", "500")
        // As in `spawn_app`: no restart protection unless a test sets it.
        .env("PUMPPILOT_MIN_OFF_MS", "0")
        .env("PUMPPILOT_GRID_SETTLE_MS", "0")
        .env("PUMPPILOT_MAX_STARTS_PER_HOUR", "0")
        .env("PUMPPILOT_LOG", "warn")
        .envs(settings.iter().copied());
    let (server, said) = start_binary(&mut command, |line| line.contains("serving on "));
    (server, base_said(&said))
}

/// The base URL a server printed ("… serving on http://…").
pub fn base_said(lines: &[String]) -> String {
    let said = lines.iter().find_map(|line| line.split("serving on ").nth(1)).expect("the server printed its address");
    said.split_whitespace().next().unwrap().to_string()
}

/// Runs `command` (the binary, its output read here, its errors shown) until it prints a line
/// that is `ready`: the process, killed when dropped (also when a test fails while it starts),
/// and the lines it printed until then. Printing ends the test when the process ends first.
pub fn start_binary(command: &mut Command, ready: impl Fn(&str) -> bool) -> (Server, Vec<String>) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start pumppilot");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let mut said = Vec::new();
    loop {
        let line = lines.next().unwrap_or_else(|| panic!("pumppilot ended before it was ready: {said:?}")).unwrap();
        let done = ready(&line);
        said.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (server, said)
}

impl Server {
    /// The process id (for reading its CPU time and memory in /proc).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Reads server-sent events from a response, one `state` event's JSON at a time.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    pub async fn open(client: &Client) -> Events {
        let response = client
            .http
            .get(format!("{}/api/events", client.base))
            .bearer_auth(client.token.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { response, buffer: String::new() }
    }

    /// The next `state` event within `limit`, or `None` when none came in time.
    pub async fn next(&mut self, limit: Duration) -> Option<Value> {
        match self.read(limit).await {
            Next::Event(state) => Some(state),
            Next::Quiet => None,
            Next::Ended => panic!("the stream ended"),
        }
    }

    pub async fn read(&mut self, limit: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: state") {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    return Next::Event(serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return Next::Ended,
                Err(_) => return Next::Quiet,
            }
        }
    }
}

pub enum Next {
    Event(Value),
    Ended,
    Quiet,
}
