//! The devices' own HTTP/1.1 path (`pumppilot_server::serve::poll`), through the real port: a
//! device's poll is answered byte for byte as hyper answered it (a connection that began with
//! another request stays hyper's, so the same poll on it is the reference), a long-poll whose
//! device goes away stops waiting, slow or idle device connections are closed, and a shutdown
//! answers the long-poll in flight before it closes its connection.

mod common;

use std::time::Duration;

use common::{LEASE_MS, TestApp, spawn_app, spawn_app_configured};
use pumppilot_server::Settings;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// How long a test waits for something the server does on real time (a closed connection).
const PATIENCE: Duration = Duration::from_secs(20);

/// Which path serves a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    /// A fresh connection whose first request is a poll: the device path.
    Device,
    /// A connection that began with `GET /healthz`: hyper's for good.
    Hyper,
}

async fn open(app: &TestApp, path: Path) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let mut read = Vec::new();
    if path == Path::Hyper {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let first = answer(&mut stream, &mut read).await.expect("an answer to /healthz");
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    }
    (stream, read)
}

/// The next whole answer on `stream` (`read` keeps what came after it), with its `date` value
/// replaced; `None` once the server closed the connection.
async fn answer(stream: &mut TcpStream, read: &mut Vec<u8>) -> Option<String> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut fields);
        if let httparse::Status::Complete(length) = head.parse(read).unwrap() {
            let body = head.headers.iter().find(|f| f.name.eq_ignore_ascii_case("content-length"));
            let body: usize = body.map_or(0, |f| std::str::from_utf8(f.value).unwrap().parse().unwrap());
            if read.len() >= length + body {
                let whole: Vec<u8> = read.drain(..length + body).collect();
                let text = String::from_utf8(whole).unwrap();
                let lines = text.split("\r\n").map(|l| if l.starts_with("date: ") { "date: (now)" } else { l });
                return Some(lines.collect::<Vec<_>>().join("\r\n"));
            }
        }
        match tokio::time::timeout(PATIENCE, stream.read_buf(read)).await.expect("an answer in time") {
            Ok(0) | Err(_) => {
                assert!(read.is_empty(), "closed within an answer: {:?}", String::from_utf8_lossy(read));
                return None;
            }
            Ok(_) => {}
        }
    }
}

/// Sends `requests` on one connection of `path`, each written whole once the answer before it
/// came (`pipelined`: all in one write), and returns the answers, then whether the server closed.
async fn conversation(app: &TestApp, path: Path, requests: &[String], pipelined: bool) -> (Vec<String>, bool) {
    let (mut stream, mut read) = open(app, path).await;
    let mut answers = Vec::new();
    if pipelined {
        stream.write_all(requests.concat().as_bytes()).await.unwrap();
    }
    for request in requests {
        if !pipelined {
            stream.write_all(request.as_bytes()).await.unwrap();
        }
        answers.push(answer(&mut stream, &mut read).await.unwrap_or_else(|| panic!("{path:?}: no answer")));
    }
    let closed = tokio::time::timeout(Duration::from_millis(300), answer(&mut stream, &mut read)).await;
    (answers, matches!(closed, Ok(None)))
}

fn get(key: &str, query: &str, more: &str) -> String {
    format!(
        "GET /api/esp32/poll?{query} HTTP/1.1\r\nhost: pumppilot\r\nauthorization: Bearer {key}\r\nx-request-id: t-1\r\n{more}\r\n"
    )
}

fn post(key: &str, body: &str) -> String {
    format!(
        "POST /api/esp32/poll HTTP/1.1\r\nhost: pumppilot\r\nauthorization: Bearer {key}\r\nx-request-id: t-2\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn device_polls_are_answered_byte_for_byte_as_hyper_answered_them() {
    let app = spawn_app().await;
    let tenant = app.tenant("lean", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();
    // The device is online and its command settled: polls from here on answer alike.
    tenant.device.poll(false, true).await;
    let seq = tenant.device.poll(false, true).await["seq"].as_u64().unwrap();

    let report = "loadShedding=0&ready=1&relay=0&fw=pump%2F1.2";
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("a poll", vec![get(&key, report, "")], false),
        (
            "a poll, the long-poll's seq already old",
            vec![get(&key, &format!("{report}&wait=1000&seq={}", seq + 9), "")],
            false,
        ),
        ("an unknown key", vec![get("pp_dev_nobody", report, "")], false),
        ("a value that does not read", vec![get(&key, "loadShedding=0&ready=1&wait=-5", "")], false),
        ("a wait too long", vec![get(&key, "loadShedding=0&ready=1&wait=30001", "")], false),
        ("another tenant", vec![get(&key, "loadShedding=0&ready=1&adminId=nobody", "")], false),
        ("the JSON form", vec![post(&key, r#"{"loadShedding":false,"ready":true,"relay":false}"#)], false),
        ("the JSON form, a field missing", vec![post(&key, r#"{"ready":true}"#)], false),
        ("the JSON form, no JSON", vec![post(&key, "ready")], false),
        (
            "kept alive",
            vec![get(&key, report, ""), post(&key, r#"{"loadShedding":false,"ready":true}"#), get(&key, report, "")],
            false,
        ),
        ("pipelined", vec![get(&key, report, ""), get("pp_dev_nobody", report, ""), get(&key, report, "")], true),
        ("closing", vec![get(&key, report, "connection: close\r\n")], false),
        (
            "closing, pipelined",
            vec![get(&key, report, ""), get(&key, report, "Connection: keep-alive, close\r\n")],
            true,
        ),
        // Heads this path does not take whole go to hyper on the same connection.
        (
            "a field over the device path's 8 KiB",
            vec![get(&key, report, &format!("x-big: {}\r\n", "b".repeat(10 * 1024)))],
            false,
        ),
        (
            "headers over the API's 32 KiB",
            vec![get(&key, report, &format!("x-big: {}\r\n", "b".repeat(40 * 1024)))],
            false,
        ),
        ("over hyper's 100 fields", vec![get(&key, report, &"x-f: 1\r\n".repeat(120))], false),
        (
            "a poll, then another request",
            vec![
                get(&key, report, ""),
                "GET /healthz HTTP/1.1\r\nhost: x\r\nx-request-id: t-3\r\n\r\n".into(),
                get(&key, report, ""),
            ],
            false,
        ),
        ("HTTP/1.0", vec![get(&key, report, "").replace("HTTP/1.1", "HTTP/1.0")], false),
    ];
    for (name, requests, pipelined) in cases {
        let hyper = conversation(&app, Path::Hyper, &requests, pipelined).await;
        let device = conversation(&app, Path::Device, &requests, pipelined).await;
        assert_eq!(device, hyper, "{name}");
        let status = |i: usize| hyper.0[i].split(' ').nth(1).unwrap().to_owned();
        match name {
            "a poll" | "kept alive" | "the JSON form" => assert_eq!(status(0), "200", "{name}: {}", hyper.0[0]),
            "an unknown key" => assert!(hyper.0[0].starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{}", hyper.0[0]),
            "a value that does not read" => assert!(hyper.0[0].contains(r#""code":"VALIDATION""#), "{}", hyper.0[0]),
            "headers over the API's 32 KiB" | "over hyper's 100 fields" => {
                assert!(hyper.0[0].contains(r#""code":"HEADERS_TOO_LARGE""#), "{}", hyper.0[0])
            }
            "closing" => {
                assert!(hyper.0[0].contains("\r\nconnection: close\r\n"), "{}", hyper.0[0]);
                assert!(hyper.1, "{name}: closed after the answer");
            }
            _ => {}
        }
        // hyper closes after its own refusals, and after an HTTP/1.0 answer.
        if !name.starts_with("closing") && !matches!(name, "HTTP/1.0" | "over hyper's 100 fields") {
            assert!(!hyper.1, "{name}: kept open");
        }
    }

    // A long-poll held on each path, answered when the server's clock passes its wait (a third
    // of the lease): the same answer, its lease shortened by the wait.
    let wait = i64::from(LEASE_MS / 3);
    let long_poll = get(&key, &format!("{report}&wait=30000&seq={seq}"), "");
    let mut held = Vec::new();
    for path in [Path::Hyper, Path::Device] {
        let before = app.waits_for(wait);
        let (mut stream, mut read) = open(&app, path).await;
        stream.write_all(long_poll.as_bytes()).await.unwrap();
        app.until_one_more_waits(wait, before).await;
        held.push(tokio::spawn(async move { answer(&mut stream, &mut read).await }));
    }
    app.clock.advance(Duration::from_millis(wait as u64));
    let hyper = held.remove(0).await.unwrap().unwrap();
    let device = held.remove(0).await.unwrap().unwrap();
    assert_eq!(device, hyper);
    assert!(hyper.contains(&format!(r#""leaseMs":{}"#, i64::from(LEASE_MS) - wait)), "{hyper}");
}

#[tokio::test]
async fn a_long_poll_stops_waiting_when_its_device_goes_away() {
    let app = spawn_app().await;
    let tenant = app.tenant("gone", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();
    let seq = tenant.device.poll(false, true).await["seq"].as_u64().unwrap();
    let wait = i64::from(LEASE_MS / 3);
    let (mut stream, _) = open(&app, Path::Device).await;
    stream.write_all(get(&key, &format!("loadShedding=0&ready=1&wait=30000&seq={seq}"), "").as_bytes()).await.unwrap();
    app.until_one_more_waits(wait, 0).await;
    drop(stream);
    common::until("the long-poll dropped with its connection", || app.waits_for(wait) == 0).await;

    // A request sent behind a held long-poll (pipelined) does not end it: it is answered after.
    let (mut stream, mut read) = open(&app, Path::Device).await;
    let requests = [
        get(&key, &format!("loadShedding=0&ready=1&wait=30000&seq={seq}"), ""),
        get(&key, "loadShedding=0&ready=1", ""),
    ];
    stream.write_all(requests.concat().as_bytes()).await.unwrap();
    app.until_one_more_waits(wait, 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.waits_for(wait), 1, "still held with a request behind it");
    app.clock.advance(Duration::from_millis(wait as u64));
    for _ in &requests {
        let answer = answer(&mut stream, &mut read).await.expect("both answered, in order");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
}

/// A long-poll held with a key that is rotated meanwhile, or of a device retired meanwhile, is not
/// answered with what it held or what came since (an ON): 401, as a new request with that key is.
#[tokio::test]
async fn a_long_poll_held_while_its_key_is_rotated_or_its_device_retired_is_answered_401() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let device = format!("/api/admin/devices/{}", devices[0]["id"].as_str().unwrap());
    let wait = i64::from(LEASE_MS / 3);
    let hold = |client: &common::Client, relay: u8, seq: &serde_json::Value| {
        let (client, path) =
            (client.clone(), format!("/api/esp32/poll?loadShedding=0&ready=1&relay={relay}&wait={wait}&seq={seq}"));
        async move { client.get(&path).await }
    };
    let refused = |(status, body): (reqwest::StatusCode, serde_json::Value)| {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (reqwest::StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")),
            "{body}"
        );
    };

    // Running: an ON held; the owner rotates the key.
    let board = t.device.client.clone();
    board.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await;
    t.users[0].ok("/api/motor/start", serde_json::json!({})).await;
    let (_, on) = board.get("/api/esp32/poll?loadShedding=0&ready=1&relay=1").await;
    assert_eq!(on["motor"], "ON", "{on}");
    let held = app.held(wait, hold(&board, 1, &on["seq"])).await;
    let rotated = t.admin.ok(&format!("{device}/rotate-key"), serde_json::json!({})).await;
    app.clock.advance(Duration::from_millis(wait as u64));
    refused(held.await.unwrap());

    // Idle, with the new key: an OFF held; the owner retires the device, which leaves the pump
    // without a controller, and a farmer's Start would tell the held poll ON.
    let board = common::Client { token: rotated["deviceKey"].as_str().map(str::to_owned), ..board };
    t.users[0].ok("/api/motor/stop", serde_json::json!({})).await;
    let (_, idle) = board.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await;
    assert_eq!(idle["motor"], "OFF", "{idle}");
    let held = app.held(wait, hold(&board, 0, &idle["seq"])).await;
    let (status, _) = t.admin.request(reqwest::Method::DELETE, &device, None).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    t.users[0].ok("/api/motor/start", serde_json::json!({})).await;
    app.clock.advance(Duration::from_millis(wait as u64));
    refused(held.await.unwrap());
}

/// True once the server closed `stream` (a read sees the end), within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(limit, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the server answered a head it never got whole"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn slow_poll_heads_and_idle_device_connections_are_closed() {
    let timeout = Duration::from_millis(400);
    let app = spawn_app_configured(|settings| Settings { header_timeout: timeout, ..settings }).await;
    let tenant = app.tenant("slow", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();

    // A poll's head trickling in, a byte at a time, never finished.
    let (mut slow, _) = open(&app, Path::Device).await;
    slow.write_all(b"GET /api/esp32/poll?ready=1 HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
    let started = tokio::time::Instant::now();
    let trickle = async {
        loop {
            if slow.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(PATIENCE, trickle).await;
    assert!(started.elapsed() < PATIENCE, "a trickling head kept its connection");
    assert!(started.elapsed() >= timeout, "closed before its time: {:?}", started.elapsed());

    // The head's time counts from the end of the last answer, not from the connection's start: a
    // device polling every three quarters of the timeout keeps its connection.
    let (mut steady, mut read) = open(&app, Path::Device).await;
    for _ in 0..3 {
        steady.write_all(get(&key, "loadShedding=0&ready=1", "").as_bytes()).await.unwrap();
        let answer = answer(&mut steady, &mut read).await.expect("answered on the same connection");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        read.clear();
        tokio::time::sleep(timeout * 3 / 4).await;
    }

    // A device connection idle after an answer is closed too.
    let (mut idle, mut read) = open(&app, Path::Device).await;
    idle.write_all(get(&key, "loadShedding=0&ready=1", "").as_bytes()).await.unwrap();
    let answer = answer(&mut idle, &mut read).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(closed_within(&mut idle, PATIENCE).await, "an idle connection stayed open");
}

#[tokio::test]
async fn a_shutdown_answers_the_long_poll_in_flight_then_closes_its_connection() {
    let app = spawn_app().await;
    let tenant = app.tenant("closing", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();
    let seq = tenant.device.poll(false, true).await["seq"].as_u64().unwrap();
    let wait = i64::from(LEASE_MS / 3);
    // One device connection idle after its answer, one with a long-poll held.
    let (mut idle, mut idle_read) = open(&app, Path::Device).await;
    idle.write_all(get(&key, "loadShedding=0&ready=1", "").as_bytes()).await.unwrap();
    assert!(answer(&mut idle, &mut idle_read).await.unwrap().starts_with("HTTP/1.1 200 OK\r\n"));
    let (mut held, mut read) = open(&app, Path::Device).await;
    held.write_all(get(&key, &format!("loadShedding=0&ready=1&wait=30000&seq={seq}"), "").as_bytes()).await.unwrap();
    app.until_one_more_waits(wait, 0).await;

    let clock = app.clock.clone();
    let shutdown = tokio::spawn(app.shutdown());
    assert!(closed_within(&mut idle, PATIENCE).await, "the idle connection closed at the shutdown");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shutdown.is_finished(), "the shutdown waits for the long-poll in flight");
    clock.advance(Duration::from_millis(wait as u64));
    let last = answer(&mut held, &mut read).await.expect("the long-poll answered");
    assert!(last.starts_with("HTTP/1.1 200 OK\r\n") && last.contains("\r\nconnection: close\r\n"), "{last}");
    assert_eq!(answer(&mut held, &mut read).await, None, "closed after its answer");
    tokio::time::timeout(PATIENCE, shutdown).await.expect("the shutdown ends").unwrap();
}

#[tokio::test]
async fn once_every_slot_is_taken_idle_connections_make_room_and_those_at_work_stay() {
    // Four slots, one of them the listener's for its next connection (the test's own clients
    // keep idle connections too); a head may take ten minutes.
    let app = spawn_app_configured(|settings| Settings {
        max_connections: 4,
        header_timeout: Duration::from_secs(600),
        ..settings
    })
    .await;
    let tenant = app.tenant("crowd", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();
    let seq = tenant.device.poll(false, true).await["seq"].as_u64().unwrap();
    let wait = i64::from(LEASE_MS / 3);
    // At work: a device's long-poll.
    let (mut held, mut held_read) = open(&app, Path::Device).await;
    held.write_all(get(&key, &format!("loadShedding=0&ready=1&wait=30000&seq={seq}"), "").as_bytes()).await.unwrap();
    app.until_one_more_waits(wait, 0).await;
    // Idle: a connection that says nothing, a page's head trickling in (hyper's), and a page's
    // connection kept alive after its answer.
    let (mut silent, _) = open(&app, Path::Device).await;
    let (mut trickling, _) = open(&app, Path::Device).await;
    trickling.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let (mut kept_alive, _) = open(&app, Path::Hyper).await;

    // Every slot is taken: a new caller waits until the idle ones, past their second's grace,
    // are closed to make room (with the header timeout alone it would wait ten minutes).
    let page =
        tokio::time::timeout(PATIENCE, common::healthz_on_its_own_connection(app.base.trim_start_matches("http://")));
    let page = page.await.expect("served once the idle connections made room");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    for (name, connection) in [("silent", &mut silent), ("trickling", &mut trickling), ("kept alive", &mut kept_alive)]
    {
        assert!(closed_within(connection, PATIENCE).await, "the {name} connection stayed open");
    }
    // The long-poll still waits, and is answered.
    assert_eq!(app.waits_for(wait), 1, "the long-poll was cut");
    app.clock.advance(Duration::from_millis(wait as u64));
    let answer = answer(&mut held, &mut held_read).await.expect("the long-poll answered");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}
