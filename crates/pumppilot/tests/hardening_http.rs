//! What anonymous and greedy callers meet before any handler (issue 12): a cap on live streams
//! per server, hyper's own refusals answered in JSON, slow and idle connections closed, and a
//! cap on connections.

mod common;

use std::time::Duration;

use common::{Events, spawn_app_configured};
use pumppilot_server::Settings;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// How long a test waits for something the server does on real time (a timeout, a closed stream).
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_server_holds_only_its_share_of_live_streams_and_says_when_to_come_back() {
    let app = spawn_app_configured(|settings| Settings { max_streams: 3, ..settings }).await;
    let t = app.tenant("rahim", 3, 10).await;
    // Two sessions hold three streams between them, within their own caps.
    let mut open =
        vec![Events::open(&t.users[0]).await, Events::open(&t.users[0]).await, Events::open(&t.users[1]).await];
    assert_eq!(app.running.app.streams.open(), 3);
    let one_more = |client: common::Client| async move {
        client
            .http
            .get(format!("{}/api/events", client.base))
            .bearer_auth(client.token.as_deref().unwrap())
            .send()
            .await
            .unwrap()
    };
    // A third session finds the server full: 503 BUSY with Retry-After, never a held connection.
    let refused = one_more(t.users[2].clone()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BUSY", "{body}");
    // Everything else still works.
    assert_eq!(t.users[2].get("/api/motor/status").await.0, StatusCode::OK);
    // A stream closed by its client frees its slot (once the server sees it gone).
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = one_more(t.users[2].clone()).await;
        if answer.status() == StatusCode::OK {
            break;
        }
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(tokio::time::Instant::now() < deadline, "the closed stream's slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
}

/// Sends `request` on a fresh connection and reads the answer until the server closes it.
async fn exchange(base: &str, request: &[u8]) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it read everything: a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("an answer in time");
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head in {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn assert_json_error(answer: &(u16, String, String), status: u16, code: &str) {
    let (got, head, body) = answer;
    assert_eq!(*got, status, "{head}\n\n{body}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// Found by hand: hyper's own refusals (past its limits, before any handler) had empty bodies.
#[tokio::test]
async fn heads_past_hypers_own_limits_get_the_json_error_too() {
    let app = spawn_app_configured(|settings| settings).await;
    // More than 100 header fields, each small.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    for i in 0..120 {
        many.push_str(&format!("x-field-{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    assert_json_error(&exchange(&app.base, many.as_bytes()).await, 431, "HEADERS_TOO_LARGE");
    // One header line past hyper's whole read buffer (about 400 KiB).
    let huge = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "b".repeat(500 * 1024));
    assert_json_error(&exchange(&app.base, huge.as_bytes()).await, 431, "HEADERS_TOO_LARGE");
    // A request line past hyper's 64 KiB target.
    let target = format!("GET /healthz?q={} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70 * 1024));
    assert_json_error(&exchange(&app.base, target.as_bytes()).await, 414, "URI_TOO_LONG");
    // Bytes that are no HTTP.
    assert_json_error(&exchange(&app.base, b"HELLO THERE\r\n\r\n").await, 400, "VALIDATION");
    // Within hyper's limits, the API's own check answers, as before.
    let mut big = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    big.push_str(&format!("x-big: {}\r\nconnection: close\r\n\r\n", "b".repeat(40 * 1024)));
    assert_json_error(&exchange(&app.base, big.as_bytes()).await, 431, "HEADERS_TOO_LARGE");
    // And an ordinary request is untouched.
    let ok = exchange(&app.base, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    assert_eq!(ok.0, 200, "{}", ok.1);
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
async fn slow_heads_and_idle_connections_are_closed() {
    let timeout = Duration::from_millis(400);
    let app = spawn_app_configured(|settings| Settings { header_timeout: timeout, ..settings }).await;
    let addr = app.base.trim_start_matches("http://").to_string();

    // A slow-loris client: a head trickling in, a byte at a time, never finished.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
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

    // A whole head and a body that never comes whole: answered, and closed, in the same time.
    let mut slow_body = TcpStream::connect(&addr).await.unwrap();
    let head =
        "POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    slow_body.write_all(format!("{head}{{\"username\": ").as_bytes()).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, slow_body.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a body that never came kept its connection");
    assert!(started.elapsed() >= timeout, "answered before its time: {:?}", started.elapsed());
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains(r#""code":"VALIDATION""#), "{answer}");

    // A long body coming slowly but steadily, faster than a kilobyte a second (a firmware image
    // over a 2G link), is read whole, though it takes longer than the timeout.
    let padded = format!("{{\"username\": \"nobody\", \"password\": \"wrong\"{}}}", " ".repeat(3000));
    let mut steady = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        padded.len()
    );
    steady.write_all(head.as_bytes()).await.unwrap();
    let started = tokio::time::Instant::now();
    for chunk in padded.as_bytes().chunks(512) {
        steady.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(started.elapsed() > timeout * 3, "the body came too fast to tell: {:?}", started.elapsed());
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, steady.read_to_end(&mut answer)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "the body was read whole and the sign-in refused: {answer}");

    // An idle kept-alive connection after an answer is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, PATIENCE).await, "an idle connection stayed open");
}

#[tokio::test]
async fn connections_past_the_cap_wait_to_be_accepted_and_are_served_once_one_closes() {
    let app = spawn_app_configured(|settings| Settings {
        header_timeout: Duration::from_secs(600),
        max_connections: 2,
        ..settings
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Two requests at work take both slots (accepted in the order they came): their heads are in,
    // their bodies still to come, so neither is idle and closed to make room.
    let mut at_work = Vec::new();
    for _ in 0..2 {
        let mut request = TcpStream::connect(&addr).await.unwrap();
        let head =
            "POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
        request.write_all(head.as_bytes()).await.unwrap();
        at_work.push(request);
    }
    let third = common::healthz_on_its_own_connection(&addr);
    tokio::pin!(third);
    // While both are held, the third is not served (without the cap it was, at once)...
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut third).await.is_err(), "served past the cap");
    // ...and it is, once one of them goes: waiting, never refused or dropped.
    drop(at_work.remove(0));
    let answer = tokio::time::timeout(PATIENCE, &mut third).await.expect("served once a slot was free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
