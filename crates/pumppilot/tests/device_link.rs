//! The authenticated device link against the real server on a real port: signed requests are
//! answered signed, a counter is accepted once (also after a restart), a tampered request or a
//! wrong secret is refused and changes nothing, a device that signs cannot fall back to its key
//! alone, and a device from before the link still polls with its key. The device's half (forged,
//! tampered and replayed answers are OFF) is `crates/controller/tests/link.rs`.

mod common;

use common::{PASSWORD, Site, spawn_app, start_server};
use pumppilot_protocol::link::{self, LinkSecret};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};

const REPORT: &[u8] = br#"{"loadShedding":false,"ready":true,"relay":false}"#;
const SHEDDING: &[u8] = br#"{"loadShedding":true,"ready":true,"relay":false}"#;

/// A device as the firmware is provisioned: its key and link secret.
struct Board {
    base: String,
    key: String,
    secret: LinkSecret,
    http: reqwest::Client,
}

/// A request sent with headers that do not fit it: path, body, counter and MAC headers.
type Tampered<'a> = (&'a str, &'a [u8], Option<String>, Option<String>);

/// An answer with its status, the link's two headers and the body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// The counter the answer names, when its MAC checks against the request sent with `tag`.
    fn verified(&self, secret: &LinkSecret, tag: &link::Tag) -> Option<u64> {
        let counter = link::parse_counter(self.headers.get(link::COUNTER_HEADER)?.as_bytes())?;
        let mac = link::from_hex(self.headers.get(link::MAC_HEADER)?.as_bytes())?;
        secret.check_answer(tag, self.status.as_u16(), counter, &self.body, &mac).then_some(counter)
    }
}

impl Board {
    async fn register(site: &Site, admin: &common::Client, name: &str) -> Board {
        let created = admin.ok("/api/admin/devices", json!({"name": name})).await;
        Board::from_created(site, &created)
    }

    fn from_created(site: &Site, created: &Value) -> Board {
        let secret = created["linkSecret"].as_str().expect("a link secret, shown with the key");
        assert!(secret.starts_with("pp_link_") && secret.len() == 51, "{secret}");
        Board {
            base: site.base.clone(),
            key: created["deviceKey"].as_str().unwrap().to_owned(),
            secret: LinkSecret::parse(secret).expect("the device can use it"),
            http: reqwest::Client::new(),
        }
    }

    /// Sends `body` to `path`, with the counter and MAC headers given (raw), returns the answer.
    async fn raw(&self, path: &str, body: &[u8], counter: Option<String>, mac: Option<String>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(counter) = counter {
            request = request.header(link::COUNTER_HEADER, counter);
        }
        if let Some(mac) = mac {
            request = request.header(link::MAC_HEADER, mac);
        }
        let answer = request.send().await.expect("the server answers");
        let (status, headers) = (answer.status(), answer.headers().clone());
        Answer { status, headers, body: answer.bytes().await.unwrap().to_vec() }
    }

    /// A request signed with `counter` as the firmware signs it; returns the answer and the MAC sent.
    async fn signed(&self, path: &str, counter: u64, body: &[u8]) -> (Answer, link::Tag) {
        let tag = self.secret.request_tag("POST", path, counter, body);
        let mac = String::from_utf8(link::to_hex(&tag).to_vec()).unwrap();
        (self.raw(path, body, Some(counter.to_string()), Some(mac)).await, tag)
    }

    /// A signed poll that must be accepted: its answer is signed with the same counter.
    async fn poll_ok(&self, counter: u64, body: &[u8]) -> Value {
        let (answer, tag) = self.signed("/api/esp32/poll", counter, body).await;
        assert_eq!(answer.status, StatusCode::OK, "counter {counter}: {}", answer.json());
        assert_eq!(answer.verified(&self.secret, &tag), Some(counter), "the answer is signed for this request");
        answer.json()
    }
}

async fn device_view(admin: &common::Client) -> Value {
    let (status, devices) = admin.get("/api/admin/devices").await;
    assert_eq!(status, StatusCode::OK, "{devices}");
    devices[0].clone()
}

#[tokio::test]
async fn a_counter_is_accepted_once_and_every_answer_is_signed() {
    let app = spawn_app().await;
    let master = app.master().await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    let admin = app.login("rahim", PASSWORD).await;
    let board = Board::register(&app, &admin, "well").await;
    assert_eq!(device_view(&admin).await["signedLink"], false);

    let answer = board.poll_ok(1, REPORT).await;
    assert_eq!(answer["motor"], "OFF");
    assert_eq!(device_view(&admin).await["signedLink"], true, "the owner sees that it signs");

    // The captured request, sent again byte for byte: refused, and the refusal is signed with the
    // highest counter so far (a device that rebooted continues above it).
    let (replayed, tag) = board.signed("/api/esp32/poll", 1, REPORT).await;
    assert_eq!((replayed.status, replayed.code().as_str()), (StatusCode::CONFLICT, "STALE_COUNTER"));
    assert_eq!(replayed.verified(&board.secret, &tag), Some(1));
    // Out of order within the window is fine, each once.
    board.poll_ok(5, REPORT).await;
    board.poll_ok(3, REPORT).await;
    let (again, tag) = board.signed("/api/esp32/poll", 3, REPORT).await;
    assert_eq!(again.code(), "STALE_COUNTER");
    assert_eq!(again.verified(&board.secret, &tag), Some(5));

    // A card tap is signed the same way.
    let (tap, tag) = board.signed("/api/esp32/rfid", 6, br#"{"uid":"04A1B2C3"}"#).await;
    assert_eq!(tap.status, StatusCode::OK, "{}", tap.json());
    assert_eq!((tap.json()["action"].as_str(), tap.verified(&board.secret, &tag)), (Some("DENIED"), Some(6)));
    // A signed request the handler refuses gets a signed refusal too.
    let (bad, tag) = board.signed("/api/esp32/poll", 7, b"{not json").await;
    assert_eq!((bad.status, bad.verified(&board.secret, &tag)), (StatusCode::BAD_REQUEST, Some(7)));
}

#[tokio::test]
async fn a_tampered_or_unsigned_request_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let master = app.master().await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    let admin = app.login("rahim", PASSWORD).await;
    let board = Board::register(&app, &admin, "well").await;
    board.poll_ok(1, REPORT).await;
    let seen = device_view(&admin).await;
    assert_eq!(seen["loadShedding"], false);

    // Signed for one body, sent with another ("grid down" put in by someone on the network).
    let tag = board.secret.request_tag("POST", "/api/esp32/poll", 2, REPORT);
    let mac = || Some(String::from_utf8(link::to_hex(&tag).to_vec()).unwrap());
    let counter = || Some("2".to_owned());
    let cases: [Tampered; 5] = [
        ("/api/esp32/poll", SHEDDING, counter(), mac()),
        ("/api/esp32/poll?wait=1000&seq=0", REPORT, counter(), mac()),
        ("/api/esp32/poll", REPORT, Some("3".into()), mac()),
        ("/api/esp32/poll", REPORT, counter(), None),
        ("/api/esp32/poll", REPORT, Some("02".into()), mac()),
    ];
    for (path, body, counter, mac) in cases {
        let answer = board.raw(path, body, counter.clone(), mac).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE"),
            "{path} {counter:?}"
        );
        assert!(answer.headers.get(link::MAC_HEADER).is_none(), "nothing to sign for a request that does not check");
    }
    // Another device's secret (the other tenant's board) does not sign for this one.
    let other = Board::register(&app, &admin, "spare").await;
    let impostor = Board { key: board.key.clone(), ..other };
    let (answer, _) = impostor.signed("/api/esp32/poll", 9, SHEDDING).await;
    assert_eq!(answer.code(), "BAD_SIGNATURE");
    // Nothing changed: the device still reads as it last truly reported, and counter 2 is unused.
    let now = device_view(&admin).await;
    assert_eq!(
        (now["loadShedding"].clone(), now["lastSeenAt"].clone()),
        (seen["loadShedding"].clone(), seen["lastSeenAt"].clone())
    );
    board.poll_ok(2, REPORT).await;

    // The key alone no longer works for a device that signs.
    let (status, body) = common::Client { token: Some(board.key.clone()), ..app.anonymous() }
        .get("/api/esp32/poll?loadShedding=1&ready=1")
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("SIGNATURE_REQUIRED")));
    let unsigned = board.raw("/api/esp32/poll", SHEDDING, None, None).await;
    assert_eq!(unsigned.code(), "SIGNATURE_REQUIRED");
    assert_eq!(device_view(&admin).await["loadShedding"], false);
}

#[tokio::test]
async fn a_device_from_before_the_link_polls_with_its_key_until_it_signs() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 0, 0).await;
    // Never signed: its key alone works, as before.
    rahim.device.poll(false, true).await;
    assert_eq!(device_view(&rahim.admin).await["signedLink"], false);
    // A new key brings a new secret; the old secret no longer checks.
    let id = device_view(&rahim.admin).await["id"].as_str().unwrap().to_owned();
    let first = rahim.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let second = rahim.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    assert_ne!(first["linkSecret"], second["linkSecret"]);
    let old = Board { key: second["deviceKey"].as_str().unwrap().to_owned(), ..Board::from_created(&app, &first) };
    let (answer, _) = old.signed("/api/esp32/poll", 1, REPORT).await;
    assert_eq!(answer.code(), "BAD_SIGNATURE");
    Board::from_created(&app, &second).poll_ok(1, REPORT).await;
}

#[tokio::test]
async fn a_replay_stays_refused_after_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(dir.path());
    let site = Site { base };
    let master = site.master().await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    let admin = site.login("rahim", PASSWORD).await;
    let board = Board::register(&site, &admin, "well").await;
    board.poll_ok(41, REPORT).await;
    server.terminate();

    let (_server, base) = start_server(dir.path());
    let site = Site { base };
    let board = Board { base: site.base.clone(), ..board };
    // The server before the restart had reserved counters up to 41 and a block beyond
    // (`CounterWindows::BLOCK`); the restarted one reserves above them, and names that floor.
    let floor = 40 + pumppilot_server::link::CounterWindows::BLOCK;
    let (replayed, tag) = board.signed("/api/esp32/poll", 41, REPORT).await;
    assert_eq!((replayed.status, replayed.code().as_str()), (StatusCode::CONFLICT, "STALE_COUNTER"));
    assert_eq!(replayed.verified(&board.secret, &tag), Some(floor));
    for counter in [42, floor] {
        let (unused, tag) = board.signed("/api/esp32/poll", counter, REPORT).await;
        assert_eq!(unused.code(), "STALE_COUNTER", "counter {counter}, in the old server's window, is refused too");
        assert_eq!(unused.verified(&board.secret, &tag), Some(floor));
    }
    // Still a device that signs: its key alone is refused after the restart too.
    assert_eq!(board.raw("/api/esp32/poll", REPORT, None, None).await.code(), "SIGNATURE_REQUIRED");
    board.poll_ok(floor + 1, REPORT).await;
}

const READY: &[u8] = br#"{"loadShedding":false,"ready":true,"relay":false}"#;
const RUNNING: &[u8] = br#"{"loadShedding":false,"ready":true,"relay":true}"#;
const SHED: &[u8] = br#"{"loadShedding":true,"ready":true,"relay":false,"relayOff":"LOAD_SHEDDING"}"#;

/// A tenant with one farmer (30 minutes, card 04A1B2C3) and its board, signing.
async fn signing_tenant(app: &common::TestApp) -> (common::Tenant, Board) {
    let t = app.tenant("karim", 1, 30).await;
    let id = device_view(&t.admin).await["id"].as_str().unwrap().to_owned();
    let rotated = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    (t, Board::from_created(app, &rotated))
}

impl Board {
    /// A signed card tap that must be answered 200: its action and reason.
    async fn tap(&self, counter: u64, body: &[u8]) -> Value {
        let (answer, tag) = self.signed("/api/esp32/rfid", counter, body).await;
        assert_eq!(answer.status, StatusCode::OK, "tap {counter}: {}", answer.json());
        assert_eq!(answer.verified(&self.secret, &tag), Some(counter));
        answer.json()
    }
}

/// The reviewer's finding f2: someone on the network cuts a tap's first attempt and keeps it; the
/// retry starts the run, the farmer stops it, and the copy delivered seconds later must not start
/// it again (for a board that names its taps, and for older firmware that does not).
#[tokio::test]
async fn a_withheld_card_tap_delivered_after_its_retry_and_a_stop_changes_nothing() {
    for body in [&br#"{"uid":"04A1B2C3","tap":7}"#[..], br#"{"uid":"04A1B2C3"}"#] {
        let app = spawn_app().await;
        let (t, board) = signing_tenant(&app).await;
        board.poll_ok(5000, READY).await;
        // 5001 is the first attempt, held back; 5002 the board's retry of the same tap.
        assert_eq!(board.tap(5002, body).await["action"], "STARTED");
        assert_eq!(board.poll_ok(5003, READY).await["motor"], "ON");
        t.users[0].ok("/api/motor/stop", json!({})).await;
        assert_eq!(board.poll_ok(5004, RUNNING).await["motor"], "OFF");
        app.clock.advance(std::time::Duration::from_secs(3));

        let late = board.tap(5001, body).await;
        if body.ends_with(b"7}") {
            assert_eq!(late["action"], "STARTED", "the tap's first answer again, acted on once");
        } else {
            assert_eq!((late["action"].as_str(), late["reason"].as_str()), (Some("DENIED"), Some("STALE_TAP")));
        }
        let polled = board.poll_ok(5005, READY).await;
        assert_eq!((polled["motor"].as_str(), polled["state"].as_str()), (Some("OFF"), Some("IDLE")), "{polled}");
        assert_eq!(t.users[0].status().await["me"]["state"], "IDLE", "the farmer stays stopped");
    }
}

/// A tap retried with its id long after the 2 s of a tap without one gets its first answer; a
/// new tap (another id) is acted on; a tap without an id keeps the rule of older firmware.
#[tokio::test]
async fn a_tap_is_acted_on_once_per_id_however_late_its_retry_comes() {
    let app = spawn_app().await;
    let (t, board) = signing_tenant(&app).await;
    board.poll_ok(100, READY).await;
    let started = board.tap(101, br#"{"uid":"04A1B2C3","tap":41}"#).await;
    assert_eq!(started["action"], "STARTED");
    app.clock.advance(std::time::Duration::from_secs(5));
    let retried = board.tap(102, br#"{"uid":"04A1B2C3","tap":41}"#).await;
    assert_eq!(retried, started, "the first answer, 5 s later");
    assert_eq!(t.users[0].status().await["me"]["entry"]["id"], started["entry"]["id"], "the run goes on");
    // The next tap of the same card (another id) stops the run, and is repeated as such in turn.
    assert_eq!(board.tap(103, br#"{"uid":"04A1B2C3","tap":42}"#).await["action"], "STOPPED");
    assert_eq!(board.tap(104, br#"{"uid":"04A1B2C3","tap":42}"#).await["action"], "STOPPED");
    assert_eq!(t.users[0].status().await["me"]["state"], "IDLE");

    // Older firmware: the same card within 2 s gets the first answer, later it is a new tap.
    let again = board.tap(105, br#"{"uid":"04A1B2C3"}"#).await;
    assert_eq!(again["action"], "STARTED");
    app.clock.advance(std::time::Duration::from_millis(1_999));
    assert_eq!(board.tap(106, br#"{"uid":"04A1B2C3"}"#).await, again);
    app.clock.advance(std::time::Duration::from_millis(1));
    assert_eq!(board.tap(107, br#"{"uid":"04A1B2C3"}"#).await["action"], "STOPPED");
}

/// The reviewer's finding f2b: a poll saying "grid up", held back while the pump ran and
/// delivered during load shedding, must not turn the hold back into a charged run.
#[tokio::test]
async fn a_withheld_grid_up_poll_delivered_during_load_shedding_changes_nothing() {
    let app = spawn_app().await;
    let (t, board) = signing_tenant(&app).await;
    board.poll_ok(7000, READY).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(board.poll_ok(7001, RUNNING).await["state"], "RUNNING");
    // 7002 ("grid up, relay closed") is held back; the grid goes down.
    let mut shed = Value::Null;
    for counter in 7003..7020 {
        shed = board.poll_ok(counter, SHED).await;
    }
    assert_eq!((shed["state"].as_str(), shed["holdReason"].as_str()), (Some("HOLD"), Some("LOAD_SHEDDING")));
    let before = device_view(&t.admin).await;

    let late = board.poll_ok(7002, RUNNING).await;
    assert_eq!((late["motor"].as_str(), late["state"].as_str()), (Some("OFF"), Some("HOLD")), "{late}");
    let status = t.users[0].status().await;
    assert_eq!(status["me"]["state"], "HOLD", "no charged run: {status}");
    let after = device_view(&t.admin).await;
    assert_eq!(
        (after["loadShedding"].clone(), after["lastSeenAt"].clone()),
        (before["loadShedding"].clone(), before["lastSeenAt"].clone()),
        "its inputs are not applied"
    );
    app.clock.advance(std::time::Duration::from_secs(4));
    assert_eq!(t.users[0].status().await["me"]["state"], "HOLD");
    assert_eq!(board.poll_ok(7020, SHED).await["holdReason"], "LOAD_SHEDDING");
}
