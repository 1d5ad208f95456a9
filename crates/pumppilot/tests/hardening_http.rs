//! What anonymous and greedy callers meet before any handler (issue 12): a cap on live streams
//! per server, hyper's own refusals answered in JSON, slow and idle connections closed, a cap on
//! connections, on requests on their way from one address and on stalled bodies once the slots
//! are taken, and a firmware upload answered before its body unless a master sends it.
//!
//! Some callers connect from other loopback addresses (127.0.0.2, …), as Linux routes all of
//! 127.0.0.0/8 to the loopback device: one address floods, another is served.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{Events, spawn_app_configured};
use pumppilot_server::{Settings, serve::SENDING_PER_ADDRESS};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    task::JoinHandle,
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

/// A connection to `addr` (`host:port`) from the loopback address `from`.
async fn connect_from(addr: &str, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The head of a sign-in whose body is `length` bytes.
fn sign_in_head(length: usize) -> String {
    format!(
        "POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// What the audit sent, from `from`: a sign-in with a body of 65,536 bytes, 65,000 of them sent at
/// once, then nothing.
async fn stalled_sign_in(addr: &str, from: [u8; 4]) -> TcpStream {
    let mut stream = connect_from(addr, from).await;
    let body = format!("{{{}", " ".repeat(64_999));
    stream.write_all(format!("{}{body}", sign_in_head(65_536)).as_bytes()).await.unwrap();
    stream
}

/// A sign-in of `length` bytes (a wrong password, padded) sent on `stream` as a device on a slow
/// link sends it: the head, then the body at 2.5 KB a second (512 bytes every 200 ms). The task
/// ends with what the server answered (nothing, when it closed the connection before the body was
/// sent); aborted, it drops the connection.
fn steady_sign_in(mut stream: TcpStream, length: usize) -> JoinHandle<String> {
    let start = r#"{"username": "nobody", "password": "wrong""#;
    let body = format!("{start}{}}}", " ".repeat(length - start.len() - 1));
    tokio::spawn(async move {
        stream.write_all(sign_in_head(length).as_bytes()).await.unwrap();
        for chunk in body.as_bytes().chunks(512) {
            if stream.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("answered or closed");
        String::from_utf8_lossy(&answer).to_string()
    })
}

/// True when the server closes `stream` at once (within five seconds) without a byte of answer.
async fn closed_unanswered(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await;
    matches!(read, Ok(Ok(0) | Err(_)))
}

/// An answer read whole (its head, and the body its `content-length` names) from a connection the
/// server keeps open.
async fn kept_alive_answer(connection: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, connection.read(&mut chunk)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned));
            if body.len() >= length.map_or(0, |length| length.parse().unwrap()) {
                return text;
            }
        }
    }
}

/// `GET /healthz` from the loopback address `from` on a connection of its own: the whole answer,
/// empty when the server closed the connection without one.
async fn healthz_from(addr: &str, from: [u8; 4]) -> String {
    let mut connection = connect_from(addr, from).await;
    let _ = connection.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, connection.read_to_end(&mut answer)).await.expect("an answer in time");
    String::from_utf8_lossy(&answer).to_string()
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
    // Two requests at work take both slots (accepted in the order they came): their bodies keep
    // coming, slowly but faster than a kilobyte a second, so neither is idle or behind and closed
    // to make room.
    let mut at_work = Vec::new();
    for _ in 0..2 {
        at_work.push(steady_sign_in(TcpStream::connect(&addr).await.unwrap(), 60_000));
    }
    let third = common::healthz_on_its_own_connection(&addr);
    tokio::pin!(third);
    // While both are held, the third is not served (without the cap it was, at once), not even
    // once they have been asked for room for longer than the idle ones' second of grace...
    assert!(tokio::time::timeout(Duration::from_millis(2000), &mut third).await.is_err(), "served past the cap");
    // ...and it is, once one of them goes: waiting, never refused or dropped.
    at_work.remove(0).abort();
    let answer = tokio::time::timeout(PATIENCE, &mut third).await.expect("served once a slot was free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for request in at_work {
        request.abort();
    }
}

/// Found by the audit: 60 connections, each sending 65,000 bytes of a 65,536-byte body and then
/// nothing, held a server's 50 slots for 84 s each (the body's deadline) and `GET /healthz` timed
/// out. Now one address has at most `SENDING_PER_ADDRESS` requests on their way at once.
#[tokio::test]
async fn one_address_has_only_so_many_requests_on_their_way_and_others_are_served() {
    // Slots to spare, and bodies that may take ten minutes: only the bound closes anything.
    let app = spawn_app_configured(|settings| Settings { header_timeout: Duration::from_secs(600), ..settings }).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let flooding = [127, 0, 0, 2];
    // Two connections from that address served before the flood and kept alive: a page's, through
    // hyper, and a poll's (refused without a key) on the devices' own path.
    let mut kept = Vec::new();
    for request in ["GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", "GET /api/esp32/poll HTTP/1.1\r\nhost: x\r\n\r\n"] {
        let mut connection = connect_from(&addr, flooding).await;
        connection.write_all(request.as_bytes()).await.unwrap();
        let answer = kept_alive_answer(&mut connection).await;
        assert!(!answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
        kept.push((request, connection));
    }
    let mut flood = Vec::new();
    for _ in 0..SENDING_PER_ADDRESS {
        flood.push(stalled_sign_in(&addr, flooding).await);
    }
    // One more from that address is closed at once, unanswered.
    let mut one_more = stalled_sign_in(&addr, flooding).await;
    assert!(closed_unanswered(&mut one_more).await, "one address had more on their way");
    // A connection that has sent nothing yet is not counted (boards reconnecting all at once are
    // not refused before they send), and is closed at its first byte.
    let mut quiet = connect_from(&addr, flooding).await;
    assert!(!closed_within(&mut quiet, Duration::from_millis(200)).await, "closed before it sent");
    quiet.write_all(b"GET /api/esp32/poll HTTP/1.1\r\n").await.unwrap();
    assert!(closed_unanswered(&mut quiet).await, "a request was let in past the bound");
    // A connection kept alive from before is closed at its next request's first byte, unanswered;
    // but a device poll that arrives whole in one read was never on its way, and is answered (a
    // board's poll behind the same address as a flood still gets through).
    let [page, poll] = &mut kept[..] else { unreachable!("two kept") };
    page.1.write_all(page.0.as_bytes()).await.unwrap();
    assert!(closed_unanswered(&mut page.1).await, "{:?} was let in past the bound", page.0);
    poll.1.write_all(poll.0.as_bytes()).await.unwrap();
    let answer = kept_alive_answer(&mut poll.1).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "a whole poll past the bound: {answer}");
    // Those within the bound are held, as their bodies' deadline allows.
    assert!(!closed_within(flood.last_mut().unwrap(), Duration::from_millis(200)).await, "closed within the bound");
    // Another address is served at once.
    let answer = tokio::time::timeout(Duration::from_secs(5), healthz_from(&addr, [127, 0, 0, 1])).await;
    assert!(answer.expect("served at once").starts_with("HTTP/1.1 200"));
    // Once the flood goes, its address is served again: its count went with its connections.
    drop(flood);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let answer = healthz_from(&addr, flooding).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.is_empty(), "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "the flood's address was never let in again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audit's flood from many addresses (or a NAT's worth of them below the bound) on a server
/// whose slots it fills: once a caller waits for a slot, the bodies that stopped coming are closed
/// to make room, as idle connections are, while one coming slowly but steadily stays.
#[tokio::test]
async fn once_every_slot_is_taken_stalled_bodies_make_room_and_a_steady_one_stays() {
    // Ten slots, and bodies that may take ten minutes: without the room made, the caller below
    // would wait that long.
    let app = spawn_app_configured(|settings| Settings {
        header_timeout: Duration::from_secs(600),
        max_connections: 10,
        ..settings
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // A device on a slow link takes a slot first (its connection is accepted first), its body
    // coming for about three seconds.
    let steady = steady_sign_in(connect_from(&addr, [127, 0, 0, 3]).await, 8_000);
    // Fourteen stalled bodies take the other nine slots, and five more wait to be accepted.
    let mut flood = Vec::new();
    for _ in 0..14 {
        flood.push(stalled_sign_in(&addr, [127, 0, 0, 2]).await);
    }
    // Another caller is served within about a second (without the room made, not for ten minutes).
    let answer = tokio::time::timeout(Duration::from_secs(5), healthz_from(&addr, [127, 0, 0, 1])).await;
    assert!(answer.expect("served once the stalled bodies made room").starts_with("HTTP/1.1 200"));
    // The first stalled ones were closed, unanswered, to make that room.
    assert!(closed_within(&mut flood[0], PATIENCE).await, "a stalled body kept its slot");
    // The steady one was read whole and answered (a wrong password: 401), never cut.
    let answer = tokio::time::timeout(PATIENCE, steady).await.expect("answered").unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "the steady body was cut: {answer:?}");
}

/// Found by the audit: `POST /master/firmware` read the whole form (up to 2 MB) before it asked
/// who was posting, so anyone could hold 2 MB of memory and a connection per request. Now a
/// stranger or another role is answered from the head, before the body is sent, and the
/// connection closed; a master's form is read as before.
#[tokio::test]
async fn an_upload_from_anyone_but_a_master_is_answered_before_its_body_is_sent() {
    let app = spawn_app_configured(|settings| settings).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let owner = app.tenant("rahim", 0, 0).await.admin.token.unwrap();
    let master = app.master().await.token.unwrap();
    let head = |session: &str, length: usize| {
        let cookie = if session.is_empty() { String::new() } else { format!("cookie: pp_session={session}\r\n") };
        format!(
            "POST /master/firmware HTTP/1.1\r\nhost: x\r\n{cookie}content-type: multipart/form-data; boundary=b\r\ncontent-length: {length}\r\n\r\n"
        )
    };
    // The audit's form: a part named `image` announced, its 1.9 MB never sent.
    let part = "--b\r\ncontent-disposition: form-data; name=\"image\"; filename=\"pump.bin\"\r\n\r\n";
    for (who, session, status, location) in
        [("a stranger", "", "303", Some("/login")), ("a pump owner", owner.as_str(), "403", None)]
    {
        let mut upload = TcpStream::connect(&addr).await.unwrap();
        upload.write_all(format!("{}{part}", head(session, 1_900_200)).as_bytes()).await.unwrap();
        // Answered and closed from the head (reading the body, the server would wait for it).
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), upload.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "{who}: the server waited for the body");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{who}: {answer}");
        if let Some(location) = location {
            assert!(answer.contains(&format!("\r\nlocation: {location}\r\n")), "{who}: {answer}");
        }
    }

    // A master's form is read: nothing is answered before it comes, and then the upload is
    // refused in words (this server has no firmware key).
    let page = reqwest::Client::new()
        .get(format!("{}/master/firmware", app.base))
        .header("cookie", format!("pp_session={master}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find(r#"name="_csrf" value=""#).expect("the upload form's token") + 20;
    let token = page[at..].split('"').next().unwrap();
    let form = format!(
        "--b\r\ncontent-disposition: form-data; name=\"_csrf\"\r\n\r\n{token}\r\n{part}image\r\n--b\r\ncontent-disposition: form-data; name=\"version\"\r\n\r\n2.0.0\r\n--b--\r\n"
    );
    let mut upload = TcpStream::connect(&addr).await.unwrap();
    upload.write_all(head(&master, form.len()).as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), upload.read(&mut byte)).await;
    assert!(early.is_err(), "the master's upload was answered before its body came");
    upload.write_all(form.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, upload.read(&mut answer)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 303 ") && answer.contains("\r\nlocation: /master/firmware\r\n"), "{answer}");
}
