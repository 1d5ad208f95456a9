//! Three `pumppilot serve` processes (the real binary) on one MongoDB (SecantusDB, started by the
//! test) act as one server. Clients and a simulated device reach them at random. Shown: a device
//! key made or rotated on one server works on the others within 1 s; a long-poll and an event
//! stream on one server answer within 1 s of a Start on another; a Stop on any server turns the device OFF on its next
//! poll at another; concurrent Starts on different servers make one active run; a suspension on
//! one server locks the farmer out on the others within 1 s, and so does a sign-out; failed sign-ins count on every server; a server killed with SIGKILL in the
//! middle of a run: the run still ends on time, the next farmer starts, no DEVICE_OFFLINE hold while
//! the device polls within its lease, and every balance equals its ledger; a device that signed its
//! link at one server is refused unsigned at the others within 1 s; a device moving to another
//! server with an unchanged report joins there without its report written again.
//!
//! Real processes run on real time: the test waits for conditions with generous limits and checks
//! their causes (what the answers say), never a fixed sleep followed by an assertion.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Client, PASSWORD, Server, Site, start_server_with};
use pumppilot_store_mongodb::testing;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a-test-secret-of-at-least-32-characters";
/// Long enough that a long-poll may wait 3 s (a third of it), so its early answer has a cause.
const LEASE_MS: u64 = 9_000;
const POLL_MS: u64 = 1_000;
const ONE_SECOND: Duration = Duration::from_secs(1);

fn start(dir: &std::path::Path, url: &str) -> (Server, Site) {
    let lease = LEASE_MS.to_string();
    let poll = POLL_MS.to_string();
    let settings = [
        ("PUMPPILOT_DATABASE_URL", url),
        ("PUMPPILOT_SECRET", SECRET),
        ("PUMPPILOT_DEVICE_LEASE_MS", lease.as_str()),
        ("PUMPPILOT_POLL_INTERVAL_MS", poll.as_str()),
    ];
    let (server, base) = start_server_with(dir, &settings);
    (server, Site { base })
}

fn on(client: &Client, site: &Site) -> Client {
    Client { base: site.base.clone(), ..client.clone() }
}

/// Waits (checking every 20 ms of real time) until `check` gives a value, for at most `limit`;
/// returns it and how long it took.
async fn within<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, started.elapsed());
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn poll_path(wait: Option<(u64, u64)>) -> String {
    let mut path = "/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw=test".to_owned();
    if let Some((wait, seq)) = wait {
        path.push_str(&format!("&wait={wait}&seq={seq}"));
    }
    path
}

/// Two servers on a fresh database of the test's MongoDB, and an owner "rahim" with a farmer of
/// 10 minutes and a pump, made on A. The servers stop, and their folder goes, when `_servers` and
/// `_dir` are dropped: a test keeps them bound to the end.
struct TwoServers {
    a: Site,
    b: Site,
    url: String,
    tenant: common::Tenant,
    _servers: [Server; 2],
    _dir: tempfile::TempDir,
}

impl TwoServers {
    async fn start() -> TwoServers {
        let dir = tempfile::tempdir().unwrap();
        let url = testing::server().fresh_url();
        let (first, a) = start(dir.path(), &url);
        let (second, b) = start(dir.path(), &url);
        let tenant = a.tenant("rahim", 1, 10).await;
        TwoServers { a, b, url, tenant, _servers: [first, second], _dir: dir }
    }
}

/// A board registered by an owner: its key and link secret, to poll a server with its key alone
/// or signed.
struct Board {
    key: String,
    secret: pumppilot_protocol::link::LinkSecret,
    http: reqwest::Client,
}

impl Board {
    async fn registered(owner: &Client, name: &str) -> Board {
        let created = owner.ok("/api/admin/devices", json!({ "name": name })).await;
        Board {
            key: created["deviceKey"].as_str().unwrap().to_owned(),
            secret: pumppilot_protocol::link::LinkSecret::parse(created["linkSecret"].as_str().unwrap()).unwrap(),
            http: reqwest::Client::new(),
        }
    }

    /// A poll with the key alone, as from a board of before the link.
    async fn unsigned(&self, site: &Site) -> reqwest::Result<reqwest::Response> {
        self.http.get(format!("{}{}", site.base, poll_path(None))).bearer_auth(&self.key).send().await
    }

    /// A poll signed with `counter`.
    async fn signed(&self, site: &Site, counter: u64) -> reqwest::Response {
        use pumppilot_protocol::link;
        let path = poll_path(None);
        let tag = self.secret.request_tag("GET", &path, counter, b"");
        self.http
            .get(format!("{}{path}", site.base))
            .bearer_auth(&self.key)
            .header(link::COUNTER_HEADER, counter.to_string())
            .header(link::MAC_HEADER, std::str::from_utf8(&link::to_hex(&tag)).unwrap())
            .send()
            .await
            .unwrap()
    }
}

/// One answer the device got, from which server, when.
#[derive(Debug, Clone)]
struct Heard {
    at: Instant,
    server: usize,
    answer: Value,
}

#[tokio::test]
async fn three_servers_on_one_mongodb_act_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::server().fresh_url();
    // One after another: the first creates the master, the others find it.
    let mut servers = Vec::new();
    let mut sites = Vec::new();
    for _ in 0..3 {
        let (server, site) = start(dir.path(), &url);
        servers.push(Some(server));
        sites.push(site);
    }
    let sites = Arc::new(sites);
    let (a, b, c) = (&sites[0], &sites[1], &sites[2]);

    // The pump owner's setup on A: four farmers with ten minutes each, a device.
    let tenant = a.tenant("rahim", 4, 10).await;
    let owner = &tenant.admin;

    // A device key made on A works on B and C within 1 s.
    let device = &tenant.device.client;
    for site in [b, c] {
        let (_, took) = within("the new key on another server", 5 * ONE_SECOND, || {
            let device = on(device, site);
            async move { (device.get(&poll_path(None)).await.0 == StatusCode::OK).then_some(()) }
        })
        .await;
        eprintln!("a new device key reached {} in {took:?}", site.base);
        assert!(took < ONE_SECOND, "a new device key took {took:?} to reach {}", site.base);
    }
    // Rotated on B: the new key works on A and C within 1 s, the old one no longer does.
    let (_, devices) = on(owner, b).get("/api/admin/devices").await;
    let device_id = devices[0]["id"].as_str().unwrap().to_owned();
    let rotated = on(owner, b).ok(&format!("/api/admin/devices/{device_id}/rotate-key"), json!({})).await;
    let device = Client { token: Some(rotated["deviceKey"].as_str().unwrap().to_owned()), ..device.clone() };
    let old = tenant.device.client.clone();
    for site in [a, c] {
        let (_, took) = within("the rotated key on another server", 5 * ONE_SECOND, || {
            let (device, old) = (on(&device, site), on(&old, site));
            async move {
                let new_works = device.get(&poll_path(None)).await.0 == StatusCode::OK;
                let old_refused = old.get(&poll_path(None)).await.0 == StatusCode::UNAUTHORIZED;
                (new_works && old_refused).then_some(())
            }
        })
        .await;
        eprintln!("a rotated device key reached {} in {took:?}", site.base);
        assert!(took < ONE_SECOND, "a rotated key took {took:?} to reach {}", site.base);
    }

    // Farmers signed in on every server.
    let mut farmers: Vec<Vec<Client>> = Vec::new();
    for i in 0..4 {
        let mut clients = Vec::new();
        for site in sites.iter() {
            clients.push(site.login(&format!("rahim-farmer-{i}"), PASSWORD).await);
        }
        farmers.push(clients);
    }

    // Failed sign-ins count on every server: ten wrong passwords spread over the three, then
    // the eleventh is refused on each (one server alone saw only a few of them).
    for _ in 0..10 {
        let site = &sites[rand::rng().random_range(0..3)];
        let (status, body) =
            site.anonymous().post("/api/auth/login", json!({"username": "guessed", "password": "wrong"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    for site in sites.iter() {
        let refused =
            site.anonymous().post("/api/auth/login", json!({"username": "guessed", "password": "wrong"})).await;
        common::assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    }

    // Farmer 2 watches the pump's live state on B (server-sent events); every event is kept with
    // the moment it arrived.
    let events = Arc::new(Mutex::new(Vec::<(Instant, Value)>::new()));
    let watcher = {
        let (events, client) = (Arc::clone(&events), farmers[2][1].clone());
        tokio::spawn(async move {
            let mut response = client
                .http
                .get(format!("{}/api/events", client.base))
                .bearer_auth(client.token.as_deref().unwrap())
                .send()
                .await
                .unwrap();
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if block.lines().any(|l| l == "event: state") {
                        let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                        events.lock().unwrap().push((Instant::now(), serde_json::from_str(&data).unwrap()));
                    }
                }
            }
        })
    };
    within("the first event on B", 5 * ONE_SECOND, || {
        let events = Arc::clone(&events);
        async move { (!events.lock().unwrap().is_empty()).then_some(()) }
    })
    .await;

    // A long-poll held on A answers within 1 s of a Start on C (farmer 1), with the motor ON.
    let first = on(&device, a).get(&poll_path(None)).await.1;
    let seq = first["seq"].as_u64().expect("a seq");
    let long_poll = {
        let device = on(&device, a);
        tokio::spawn(async move {
            let answer = device.get(&poll_path(Some((3_000, seq)))).await;
            (answer, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // the long-poll is held by now
    let started = farmers[1][2].ok("/api/motor/start", json!({})).await;
    let start_answered = Instant::now();
    assert!(started["status"] == "RUNNING" || started["status"] == "HOLD", "{started}");
    let ((status, answer), woke) = long_poll.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["motor"], "ON", "the long-poll woke for the Start made on C: {answer}");
    eprintln!("the long-poll on A answered {:?} after the Start on C", woke.saturating_duration_since(start_answered));
    assert!(
        woke.saturating_duration_since(start_answered) < ONE_SECOND,
        "the long-poll answered {:?} after the Start",
        woke - start_answered
    );

    // The event stream on B showed the run started on C within 1 s.
    let (arrived, _) = within("an event on B for the Start on C", 5 * ONE_SECOND, || {
        let events = Arc::clone(&events);
        async move {
            let events = events.lock().unwrap();
            events.iter().find(|(_, e)| e["motor"]["state"] == "RUNNING").map(|(at, _)| *at)
        }
    })
    .await;
    eprintln!(
        "the event stream on B showed the Start on C {:?} after it",
        arrived.saturating_duration_since(start_answered)
    );
    assert!(arrived.saturating_duration_since(start_answered) < ONE_SECOND, "the event stream on B was late");
    watcher.abort();

    // A Stop on B: the device polling C is OFF on its next poll.
    let (status, stopped) = farmers[1][1].post("/api/motor/stop", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    tokio::time::sleep(Duration::from_millis(POLL_MS)).await; // the device's poll interval
    let next = on(&device, c).get(&poll_path(None)).await.1;
    assert_eq!(next["motor"], "OFF", "the device's next poll on C after a Stop on B: {next}");

    // From now the device polls a random server every poll interval and keeps every answer.
    let heard = Arc::new(Mutex::new(Vec::<Heard>::new()));
    let alive = Arc::new(Mutex::new(vec![true, true, true]));
    let poller = {
        let (heard, alive, sites, device) =
            (Arc::clone(&heard), Arc::clone(&alive), Arc::clone(&sites), device.clone());
        tokio::spawn(async move {
            loop {
                let server = {
                    let alive = alive.lock().unwrap().clone();
                    let live: Vec<usize> = (0..3).filter(|i| alive[*i]).collect();
                    live[rand::rng().random_range(0..live.len())]
                };
                let request = device
                    .http
                    .get(format!("{}{}", sites[server].base, poll_path(None)))
                    .bearer_auth(device.token.as_deref().unwrap())
                    .timeout(Duration::from_millis(LEASE_MS / 2))
                    .send();
                // A server killed under a poll in flight: the device tries again at once elsewhere.
                let Ok(response) = request.await else { continue };
                assert_eq!(response.status(), StatusCode::OK, "poll on server {server}");
                let answer: Value = response.json().await.unwrap();
                heard.lock().unwrap().push(Heard { at: Instant::now(), server, answer });
                tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            }
        })
    };

    // Farmer 0 starts on a random server; farmers 1 and 2 press Start at once on two others: one
    // active run, two in line.
    let order: Vec<usize> = {
        let mut rng = rand::rng();
        let mut order = vec![0, 1, 2];
        for i in (1..3).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        order
    };
    // Farmer 0 runs one minute.
    let run = farmers[0][order[0]].ok("/api/motor/start", json!({"minutes": 1})).await;
    assert_eq!(run["status"], "RUNNING", "{run}");
    let (one, two) = tokio::join!(
        farmers[1][order[1]].post("/api/motor/start", json!({})),
        farmers[2][order[2]].post("/api/motor/start", json!({}))
    );
    let mut positions = Vec::new();
    for (status, entry) in [one, two] {
        assert_eq!(status, StatusCode::OK, "{entry}");
        assert_eq!(entry["status"], "WAITING", "never two active runs: {entry}");
        positions.push(entry["position"].as_u64().unwrap());
    }
    positions.sort_unstable();
    assert_eq!(positions, [1, 2]);
    // The device is told ON for farmer 0's run (charging starts there).
    let (_, _) = within("the device told ON for farmer 0", 10 * ONE_SECOND, || {
        let heard = Arc::clone(&heard);
        async move { heard.lock().unwrap().iter().any(|h| h.answer["motor"] == "ON").then_some(()) }
    })
    .await;
    let run_started = Instant::now();

    // Farmer 3 is suspended on A: locked out on B and C within 1 s.
    for clients in [&farmers[3][1], &farmers[3][2]] {
        assert_eq!(clients.get("/api/motor/status").await.0, StatusCode::OK);
    }
    let three = &tenant.user_ids[3];
    on(owner, a).ok(&format!("/api/admin/users/{three}/suspend"), json!({})).await;
    for client in [&farmers[3][1], &farmers[3][2]] {
        let (_, took) = within("the suspension on another server", 5 * ONE_SECOND, || {
            let client = client.clone();
            async move {
                let (status, body) = client.get("/api/motor/status").await;
                (status == StatusCode::FORBIDDEN && body["error"]["code"] == "ACCOUNT_SUSPENDED").then_some(())
            }
        })
        .await;
        eprintln!("a suspension reached {} in {took:?}", client.base);
        assert!(took < ONE_SECOND, "a suspension took {took:?} to reach {}", client.base);
    }

    // The owner signs out of a second session on A: its token is refused on B and C within 1 s.
    let second = a.login("rahim", PASSWORD).await;
    for site in [b, c] {
        assert_eq!(on(&second, site).get("/api/auth/me").await.0, StatusCode::OK);
    }
    assert_eq!(second.post("/api/auth/logout", json!({})).await.0, StatusCode::NO_CONTENT);
    for site in [b, c] {
        let client = on(&second, site);
        let (_, took) = within("the sign-out on another server", 5 * ONE_SECOND, || {
            let client = client.clone();
            async move { (client.get("/api/auth/me").await.0 == StatusCode::UNAUTHORIZED).then_some(()) }
        })
        .await;
        eprintln!("a sign-out reached {} in {took:?}", site.base);
        assert!(took < ONE_SECOND, "a sign-out took {took:?} to reach {}", site.base);
    }

    // The device has reached every server, and farmer 0's run is under way on all of them.
    within("the device polled every server", 20 * ONE_SECOND, || {
        let heard = Arc::clone(&heard);
        async move { (0..3).all(|s| heard.lock().unwrap().iter().any(|h| h.server == s)).then_some(()) }
    })
    .await;

    // Kill the server farmer 0 started on, in the middle of the run, with SIGKILL.
    let victim = order[0];
    alive.lock().unwrap()[victim] = false;
    servers[victim].take().unwrap().kill();
    let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();

    // The run ends on time (one minute of charge) and the next farmer starts, without anyone
    // asking the surviving servers anything but the device's polls and the farmers' status.
    let next_farmer = |status: &Value| status["me"]["state"] == "RUNNING";
    let (who, took) = within("the next farmer's run", 90 * ONE_SECOND, || {
        let farmers = &farmers;
        let others = others.clone();
        async move {
            for i in [1, 2] {
                let (status, body) = farmers[i][others[i % 2]].get("/api/motor/status").await;
                if status == StatusCode::OK && next_farmer(&body) {
                    return Some(i);
                }
            }
            None
        }
    })
    .await;
    let ran = run_started.elapsed(); // from the first ON to the next start seen
    eprintln!("farmer 0's one-minute run ended and farmer {who} ran {ran:?} after the first ON");
    assert!(
        ran > Duration::from_secs(55) && ran < Duration::from_secs(60 + 8),
        "farmer 0's minute ended and farmer {who} started {ran:?} after the first ON (looked for {took:?})"
    );
    poller.abort();

    // Farmer 0 was charged exactly the minute; every balance equals its ledger.
    let (_, wallet) = farmers[0][others[0]].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 540, "farmer 0 was charged the one minute it ran: {wallet}");
    for (i, clients) in farmers.iter().enumerate().take(3) {
        let (status, wallet) = clients[others[1]].get("/api/wallet").await;
        assert_eq!(status, StatusCode::OK, "{wallet}");
        let sum: i64 = wallet["ledger"].as_array().unwrap().iter().map(|l| l["deltaSeconds"].as_i64().unwrap()).sum();
        assert_eq!(wallet["availableSeconds"].as_i64().unwrap(), sum, "farmer {i}: balance = ledger");
    }

    // No DEVICE_OFFLINE hold while the device polled (some server) within its lease.
    let heard = heard.lock().unwrap().clone();
    assert!(heard.len() > 30, "the device polled all along ({} answers)", heard.len());
    for pair in heard.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) < Duration::from_millis(LEASE_MS / 2), "the device kept polling");
    }
    let offline: Vec<&Heard> = heard.iter().filter(|h| h.answer["holdReason"] == "DEVICE_OFFLINE").collect();
    assert!(offline.is_empty(), "DEVICE_OFFLINE while the device polled within its lease: {offline:?}");
}

/// A device poll on `site` that gives up after `timeout`: its answer, or `None`.
async fn poll_once(device: &Client, site: &Site, timeout: Duration) -> Option<(StatusCode, Value)> {
    let response = device
        .http
        .get(format!("{}{}", site.base, poll_path(None)))
        .bearer_auth(device.token.as_deref().unwrap())
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    let status = response.status();
    Some((status, response.json().await.ok()?))
}

#[tokio::test]
async fn mongodb_lost_while_running_turns_devices_off_and_everything_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let db = testing::start_on_disk(data.path(), None);
    let port = db.port();
    // A lost MongoDB is noticed within a second (the driver's server selection), not ten.
    let url = format!("mongodb://127.0.0.1:{port}/lost?directConnection=true&serverSelectionTimeoutMS=1000");
    let (_a, a) = start(dir.path(), &url);
    let (_b, b) = start(dir.path(), &url);
    let tenant = a.tenant("rahim", 1, 10).await;
    let device = &tenant.device.client;
    within("the device known on B", 5 * ONE_SECOND, || {
        let device = on(device, &b);
        async move { (device.get(&poll_path(None)).await.0 == StatusCode::OK).then_some(()) }
    })
    .await;
    tenant.users[0].ok("/api/motor/start", json!({})).await;
    for site in [&a, &b] {
        within("the device told ON", 5 * ONE_SECOND, || {
            let device = on(device, site);
            async move { (device.get(&poll_path(None)).await.1["motor"] == "ON").then_some(()) }
        })
        .await;
    }

    // MongoDB goes away.
    db.stop();
    let lost = Instant::now();
    let heard = Arc::new(Mutex::new(Vec::new()));
    for site in [&a, &b] {
        let ((), _) = within("the device told OFF for the store", 20 * ONE_SECOND, || {
            let (device, heard) = (device.clone(), Arc::clone(&heard));
            async move {
                let (status, answer) = poll_once(&device, site, Duration::from_secs(3)).await?;
                heard.lock().unwrap().push((Instant::now(), answer.clone()));
                (status == StatusCode::OK && answer["motor"] == "OFF" && answer["holdReason"] == "STORE_UNAVAILABLE")
                    .then_some(())
            }
        })
        .await;
        let (status, _) = site.anonymous().get("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "/readyz on {}", site.base);
        let stop = on(&tenant.users[0], site).post("/api/motor/stop", json!({})).await;
        common::assert_error(&stop, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    }
    // Nothing the device heard after the freshness window (plus the time to notice) said ON.
    let window = Duration::from_secs(3);
    let heard = heard.lock().unwrap().clone();
    let late_on: Vec<_> = heard.iter().filter(|(at, a)| *at > lost + window && a["motor"] == "ON").collect();
    assert!(late_on.is_empty(), "ON from state the server could not confirm: {late_on:?}");
    for _ in 0..3 {
        for site in [&a, &b] {
            if let Some((_, answer)) = poll_once(device, site, Duration::from_secs(3)).await {
                assert_ne!(answer["motor"], "ON", "ON while MongoDB is gone: {answer}");
            }
        }
    }

    // MongoDB is back on the same port with the same data: both servers recover by themselves.
    let _db = testing::start_on_disk(data.path(), Some(port));
    for site in [&a, &b] {
        within("ON again after the store came back", 30 * ONE_SECOND, || {
            let device = device.clone();
            async move {
                let (_, answer) = poll_once(&device, site, Duration::from_secs(3)).await?;
                (answer["motor"] == "ON").then_some(())
            }
        })
        .await;
        within("/readyz 200 again", 30 * ONE_SECOND, || async move {
            (site.anonymous().get("/readyz").await.0 == StatusCode::OK).then_some(())
        })
        .await;
    }
    let ended = on(&tenant.users[0], &b).ok("/api/motor/stop", json!({})).await;
    assert_eq!(ended["status"], "COMPLETED", "{ended}");
    // Server A hears of B's Stop through the change feed (its balance may lag the ledger, which is
    // read from the store, for as long as the feed takes): then the two agree.
    let farmer = on(&tenant.users[0], &a);
    within("balance = ledger on the other server", 5 * ONE_SECOND, || async {
        let (_, wallet) = farmer.get("/api/wallet").await;
        let sum: i64 = wallet["ledger"].as_array().unwrap().iter().map(|l| l["deltaSeconds"].as_i64().unwrap()).sum();
        (wallet["availableSeconds"].as_i64().unwrap() == sum).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_card_tap_retried_at_another_server_is_answered_once() {
    let TwoServers { a, b, tenant, _servers, _dir, .. } = TwoServers::start().await;
    let farmer = &tenant.user_ids[0];
    tenant.admin.ok(&format!("/api/admin/users/{farmer}/rfid"), json!({"uid": "04A1B2C3"})).await;
    let device = &tenant.device.client;
    within("the device known on B", 5 * ONE_SECOND, || {
        let device = on(device, &b);
        async move { (device.get(&poll_path(None)).await.0 == StatusCode::OK).then_some(()) }
    })
    .await;
    device.get(&poll_path(None)).await;

    // The board's tap reaches A; its retry (the answer was lost) reaches B: one start, the same
    // answer twice, not a start and a stop.
    let tap = json!({"uid": "04A1B2C3"});
    let tapped = Instant::now();
    let on_a = on(device, &a).post("/api/esp32/rfid", tap.clone()).await;
    let on_b = on(device, &b).post("/api/esp32/rfid", tap.clone()).await;
    for (status, answer) in [&on_a, &on_b] {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        assert_eq!(answer["action"], "STARTED", "both answers are the one start: {answer}");
    }
    assert_eq!(on_a.1["entry"]["id"], on_b.1["entry"]["id"], "one entry");
    // Two at once, at both servers, a moment later: still the same start.
    let (device_a, device_b) = (on(device, &a), on(device, &b));
    let (again_a, again_b) =
        tokio::join!(device_a.post("/api/esp32/rfid", tap.clone()), device_b.post("/api/esp32/rfid", tap.clone()));
    for (_, answer) in [&again_a, &again_b] {
        assert_eq!(answer["action"], "STARTED", "{answer}");
    }
    // Once the 2 s window has passed, a tap at either server is a new tap: it stops the run.
    let (stopped, _) = within("a later tap stops the run", 10 * ONE_SECOND, || {
        let device = on(device, &b);
        let tap = tap.clone();
        async move {
            let (_, answer) = device.post("/api/esp32/rfid", tap).await;
            (answer["action"] != "STARTED").then_some(answer)
        }
    })
    .await;
    assert_eq!(stopped["action"], "STOPPED", "{stopped}");
    assert!(tapped.elapsed() >= Duration::from_millis(1_900), "the same answer was repeated for the whole window");

    // A tap that names its id is acted on once however late its retry comes, at either server:
    // claimed in the store by the device and its id, not by the card for 2 s.
    let named = json!({"uid": "04A1B2C3", "tap": 9});
    let (status, first) = on(device, &a).post("/api/esp32/rfid", named.clone()).await;
    assert_eq!((status, first["action"].as_str()), (StatusCode::OK, Some("STARTED")), "{first}");
    let named_at = Instant::now();
    let (late, _) = within("a retry of the named tap past 2 s", 10 * ONE_SECOND, || {
        let device = on(device, &b);
        let named = named.clone();
        async move {
            let (_, answer) = device.post("/api/esp32/rfid", named).await;
            (answer["action"] != "STARTED" || named_at.elapsed() >= Duration::from_millis(2_500)).then_some(answer)
        }
    })
    .await;
    assert_eq!((late["action"].clone(), late["entry"]["id"].clone()), (json!("STARTED"), first["entry"]["id"].clone()));
}

#[tokio::test]
async fn a_device_that_signed_at_one_server_must_sign_at_every_server() {
    let TwoServers { a, b, tenant, _servers, _dir, .. } = TwoServers::start().await;
    let board = Board::registered(&tenant.admin, "spare").await;

    // B knows the new device and takes its key alone, as from a board of before the link.
    within("the spare known on B", 5 * ONE_SECOND, || async {
        (board.unsigned(&b).await.ok()?.status() == StatusCode::OK).then_some(())
    })
    .await;
    // The board signs once, at A.
    let signed = board.signed(&a, 1).await;
    assert_eq!(signed.status(), StatusCode::OK, "{}", signed.text().await.unwrap());
    // From then on B refuses its key alone too: a captured unsigned poll is no way around the link.
    let (code, took) = within("B refuses the unsigned poll", 5 * ONE_SECOND, || async {
        let answer = board.unsigned(&b).await.ok()?;
        let refused = answer.status() == StatusCode::UNAUTHORIZED;
        let body: Value = answer.json().await.ok()?;
        refused.then(|| body["error"]["code"].as_str().unwrap_or_default().to_owned())
    })
    .await;
    assert_eq!(code, "SIGNATURE_REQUIRED");
    eprintln!("a device that signs at A is refused unsigned at B after {took:?}");
    assert!(took < ONE_SECOND, "B took {took:?} to learn that the device signs");
}

/// A device moving to another server with the report its first server stored: the other server
/// reads that report with the device's counter reservation (its first signed request there,
/// `link::accept_counter`), so the device joins there without its document being written again
/// (its last-seen time stays the first server's; the join stands for it).
#[tokio::test]
async fn a_device_moving_to_another_server_joins_there_without_its_report_written_again() {
    use pumppilot_engine::AdminId;
    use pumppilot_store::Store;
    let TwoServers { a, b, url, tenant, _servers, _dir } = TwoServers::start().await;
    let store = pumppilot_store_mongodb::MongoStore::connect(&url).await.unwrap();
    let admin: AdminId = tenant.admin_id.parse().unwrap();
    let board = Board::registered(&tenant.admin, "well").await;
    let well = || async {
        let devices = store.devices(admin).await.ok()?;
        devices.into_iter().find(|d| d.name == "well")
    };
    let presence = || async { store.presences().await.ok()?.into_iter().find(|p| p.admin == admin) };

    // The device polls A: A stores its report and it joins A.
    assert_eq!(board.signed(&a, 1).await.status(), StatusCode::OK);
    let ((stored, at_a), _) = within("the report stored and the device present at A", 5 * ONE_SECOND, || async {
        let telemetry = well().await?.telemetry?;
        Some((telemetry, presence().await?))
    })
    .await;
    // It moves to B, above A's window of its counters, with the same report.
    let counter = pumppilot_server::link::CounterWindows::BLOCK + 1;
    assert_eq!(board.signed(&b, counter).await.status(), StatusCode::OK);
    let (at_b, _) = within("the device present at B", 5 * ONE_SECOND, || async {
        presence().await.filter(|p| p.server != at_a.server)
    })
    .await;
    assert_eq!(at_b.device, at_a.device);
    let after = well().await.unwrap().telemetry.unwrap();
    assert_eq!(after.last_seen_at, stored.last_seen_at, "B wrote the join alone, not the report again");
}
