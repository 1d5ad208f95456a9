//! Alerts over the real HTTP API: the bell, the alert profile, the outbox reaching a stand-in SMS
//! gateway (over HTTP, and over HTTPS with a self-signed certificate trusted through
//! `PUMPPILOT_ALERTS_CA_FILE`), minute requests and a silent device, on the manual clock.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use common::{TestApp, assert_error, spawn_app, spawn_app_configured, until};
use pumppilot_server::alerts::AlertSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A stand-in SMS gateway that records every body it gets.
async fn sms_gateway() -> (Arc<Mutex<Vec<String>>>, String) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    async fn record(State(seen): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> &'static str {
        seen.lock().unwrap().push(String::from_utf8(body.to_vec()).unwrap());
        r#"{"status":"queued"}"#
    }
    let app = Router::new().route("/sms", post(record)).with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, url)
}

/// A TLS listener for `axum::serve` (a failed handshake is skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else { continue };
            if let Ok(stream) = self.tls.accept(tcp).await {
                return (stream, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The stand-in SMS gateway over HTTPS with a fresh self-signed certificate for `localhost`:
/// the bodies it gets, its URL, and its certificate (PEM).
async fn https_sms_gateway() -> (Arc<Mutex<Vec<String>>>, String, String) {
    use tokio_rustls::rustls::{
        ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    };
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(certified.cert.der().to_vec())], key)
        .unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    async fn record(State(seen): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> &'static str {
        seen.lock().unwrap().push(String::from_utf8(body.to_vec()).unwrap());
        r#"{"status":"queued"}"#
    }
    let app = Router::new().route("/sms", post(record)).with_state(Arc::clone(&seen));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/sms", tcp.local_addr().unwrap().port());
    let listener = TlsListener { tcp, tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, url, certified.cert.pem())
}

async fn app_with_alerts(pairs: &[(&str, String)]) -> TestApp {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let alerts =
        AlertSettings::from_lookup(&|name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("alert settings");
    spawn_app_configured(move |settings| pumppilot_server::Settings { alerts, ..settings }).await
}

async fn bell(client: &common::Client) -> Value {
    let (status, body) = client.get("/api/notifications").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn kinds(bell: &Value) -> Vec<String> {
    bell["notifications"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_farmers_bell_lists_their_runs_newest_first_in_their_language_and_marks_them_read() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let farmer = &t.users[0];
    t.device.poll(false, true).await;
    farmer.ok("/api/motor/start", json!({})).await;
    app.clock.advance(Duration::from_secs(1));
    t.device.poll(true, true).await;

    let body = bell(farmer).await;
    assert_eq!(kinds(&body), ["RUN_HELD", "RUN_STARTED"]);
    assert_eq!(body["unread"], 2);
    let held = &body["notifications"][0];
    assert_eq!(held["title"], "Run on hold");
    assert_eq!(held["text"], "Your run is on hold: load shedding.");
    assert_eq!(held["read"], false);
    assert!(held["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bell(&t.admin).await["notifications"], json!([]), "the owner's bell is their own");

    // In Bangla once the farmer says so.
    let profile = json!({"phone": null, "pushTokens": [], "language": "bn", "muted": [], "quietHours": null});
    assert_eq!(farmer.request(Method::PUT, "/api/alerts/profile", Some(profile)).await.0, StatusCode::OK);
    assert_eq!(bell(farmer).await["notifications"][0]["text"], "আপনার রান থেমে আছে: লোডশেডিং।");

    let id = held["id"].as_str().unwrap();
    assert_error(
        &farmer.post("/api/notifications/read", json!({"ids": ["nope"]})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    assert_eq!(bell(farmer).await["unread"], 2, "a refused request marks nothing");
    assert_eq!(t.admin.ok("/api/notifications/read", json!({"ids": [id]})).await["unread"], 0);
    assert_eq!(bell(farmer).await["unread"], 2, "another's ids mark nothing");
    let after = farmer.ok("/api/notifications/read", json!({"ids": [id]})).await;
    assert_eq!(after["unread"], 1);
    assert_eq!(after["notifications"][0]["read"], true);
    assert_eq!(farmer.ok("/api/notifications/read", json!({})).await["unread"], 0);
    assert_error(&farmer.get("/api/notifications?limit=0").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&app.site.anonymous().get("/api/notifications").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_alert_profile_is_checked_and_a_phone_number_belongs_to_one_account() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let (karim, jamal) = (&t.users[0], &t.users[1]);
    let (status, empty) = karim.get("/api/alerts/profile").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!({"phone": null, "pushTokens": [], "language": "en", "muted": [], "quietHours": null}));

    let good = json!({
        "phone": "+8801711000001",
        "pushTokens": ["ExponentPushToken[abc]"],
        "language": "bn",
        "muted": [{"kind": "RUN_HELD", "channel": "SMS"}],
        "quietHours": {"from": "22:00", "to": "06:00", "utcOffsetMinutes": 360},
    });
    let put = |client: &common::Client, body: Value| {
        let client = client.clone();
        async move { client.request(Method::PUT, "/api/alerts/profile", Some(body)).await }
    };
    for (field, value) in [
        ("phone", json!("01711000001")),
        ("pushTokens", json!(["not-a-token"])),
        ("pushTokens", json!(["ExponentPushToken[\u{202e}\u{0}]"])),
        ("language", json!("fr")),
        ("muted", json!([{"kind": "RUN_HELD", "channel": "FAX"}])),
        ("muted", json!([{"kind": "NOPE", "channel": "SMS"}])),
        ("quietHours", json!({"from": "24:00", "to": "06:00", "utcOffsetMinutes": 360})),
        ("extra", json!(1)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        assert_error(&put(karim, body).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    assert_eq!(karim.get("/api/alerts/profile").await.1, empty, "a refused profile changes nothing");
    let (status, stored) = put(karim, good.clone()).await;
    assert_eq!((status, &stored), (StatusCode::OK, &good));
    assert_eq!(karim.get("/api/alerts/profile").await.1, good);
    assert_error(&put(jamal, good.clone()).await, StatusCode::CONFLICT, "PHONE_TAKEN");
}

#[tokio::test]
async fn a_run_reaches_the_farmers_phone_through_the_outbox_and_the_sms_gateway_once() {
    let (sms, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}","ref":"{id}","coding":"{encoding}"}"#.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
    ])
    .await;
    let t = app.tenant("rahim", 1, 30).await;
    let farmer = &t.users[0];
    let profile = json!({"phone": "+8801711000001", "pushTokens": [], "language": "bn", "muted": [
        {"kind": "RUN_STARTED", "channel": "SMS"}], "quietHours": null});
    assert_eq!(farmer.request(Method::PUT, "/api/alerts/profile", Some(profile)).await.0, StatusCode::OK);
    t.device.poll(false, true).await;
    farmer.ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(120), &t.device, false, true).await;
    farmer.ok("/api/motor/stop", json!({})).await;
    let id = bell(farmer).await["notifications"][0]["id"].as_str().unwrap().to_owned();

    // The worker looks every 2 s of the server's clock.
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
    }
    until("the SMS gateway hears of the run's end", || !sms.lock().unwrap().is_empty()).await;
    for _ in 0..5 {
        app.clock.advance(Duration::from_secs(2));
    }
    let seen = sms.lock().unwrap().clone();
    assert_eq!(
        seen,
        [format!(
            r#"{{"to":"+8801711000001","text":"আপনার রান শেষ (আপনি বন্ধ করেছেন): ২ মিনিট খরচ, ২৮ মিনিট বাকি।","ref":"{id}","coding":"ucs2"}}"#
        )],
        "one message: the start was muted for SMS, the end sent once"
    );
}

#[tokio::test]
async fn an_https_gateway_with_a_private_certificate_is_reached_once_its_ca_file_is_set() {
    let (sms, url, pem) = https_sms_gateway().await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), pem).unwrap();
    let lookup = |ca_file: String| {
        let url = url.clone();
        move |name: &str| match name {
            "PUMPPILOT_SMS_URL" => Some(url.clone()),
            "PUMPPILOT_ALERTS_CA_FILE" => Some(ca_file.clone()),
            _ => None,
        }
    };
    let error = AlertSettings::from_lookup(&lookup("/nonexistent/ca.pem".into())).unwrap_err();
    assert_eq!(error.variable, "PUMPPILOT_ALERTS_CA_FILE");
    assert!(error.problem.starts_with("cannot read /nonexistent/ca.pem"), "{}", error.problem);
    let alerts = AlertSettings::from_lookup(&lookup(ca.path().display().to_string())).unwrap();
    let app = spawn_app_configured(move |settings| pumppilot_server::Settings {
        alerts: AlertSettings { offline_after_ms: 0, ..alerts },
        ..settings
    })
    .await;
    let t = app.tenant("rahim", 1, 30).await;
    let farmer = &t.users[0];
    let profile =
        json!({"phone": "+8801711000001", "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    assert_eq!(farmer.request(Method::PUT, "/api/alerts/profile", Some(profile)).await.0, StatusCode::OK);
    t.device.poll(false, true).await;
    farmer.ok("/api/motor/start", json!({})).await;
    let id = bell(farmer).await["notifications"][0]["id"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
    }
    until("the HTTPS gateway hears of the run's start", || !sms.lock().unwrap().is_empty()).await;
    let seen = sms.lock().unwrap().clone();
    let sent: Value = serde_json::from_str(&seen[0]).unwrap();
    assert_eq!((sent["to"].as_str(), sent["reference"].as_str()), (Some("+8801711000001"), Some(id.as_str())));
}

#[tokio::test]
async fn a_minute_request_tells_the_owner_and_its_decision_tells_the_farmer() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let farmer = &t.users[0];
    let request = farmer.ok("/api/minute-requests", json!({"minutes": 45})).await;
    let owner = bell(&t.admin).await;
    assert_eq!(kinds(&owner), ["REQUEST_NEW"]);
    assert_eq!(owner["notifications"][0]["text"], "Farmer 0 asks for 45 min.");
    let id = request["id"].as_str().unwrap();
    t.admin.ok(&format!("/api/admin/minute-requests/{id}/approve"), json!({})).await;
    let body = bell(farmer).await;
    assert_eq!(kinds(&body), ["REQUEST_DECIDED"]);
    assert_eq!(body["notifications"][0]["text"], "Your request for 45 min was approved.");

    let second = farmer.ok("/api/minute-requests", json!({"minutes": 5})).await;
    let id = second["id"].as_str().unwrap();
    t.admin.ok(&format!("/api/admin/minute-requests/{id}/reject"), json!({})).await;
    assert_eq!(bell(farmer).await["notifications"][0]["text"], "Your request for 5 min was rejected.");
}

#[tokio::test]
async fn a_silent_device_tells_its_owner_once_per_silence() {
    let app = app_with_alerts(&[("PUMPPILOT_ALERT_OFFLINE_MINUTES", "1".into())]).await;
    let t = app.tenant("rahim", 0, 0).await;
    t.device.poll(false, true).await;
    // The watch looks every 30 s of the server's clock; a minute of silence is too long.
    for _ in 0..2 {
        app.clock.advance(Duration::from_secs(30));
    }
    until_bell(&app, &t.admin, 1).await;
    for _ in 0..6 {
        app.clock.advance(Duration::from_secs(30));
    }
    // Another round of the watch surely ran: it waits on the clock again.
    app.until_waiting_for(30_000).await;
    let body = bell(&t.admin).await;
    assert_eq!(kinds(&body), ["DEVICE_OFFLINE"], "told once, however long the silence");
    assert_eq!(body["notifications"][0]["text"], "The pump's device has not been heard from.");

    // Heard again, then silent again: a new silence, told again.
    t.device.poll(false, true).await;
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(30));
    }
    until_bell(&app, &t.admin, 2).await;
}

async fn until_bell(app: &TestApp, client: &common::Client, count: usize) {
    for _ in 0..2000 {
        if bell(client).await["notifications"].as_array().unwrap().len() >= count {
            return;
        }
        app.clock.advance(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the bell never had {count} notifications");
}

const INBOUND_SECRET: &str = "inbound-secret-of-the-gateway";

/// Posts a text as the SMS gateway does, signed with `secret` (unsigned when `None`).
async fn text_in(app: &TestApp, from: &str, text: &str, secret: Option<&str>) -> (StatusCode, Value) {
    use hmac::{Hmac, Mac};
    let body = json!({"from": from, "text": text}).to_string();
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/sms/inbound", app.site.base))
        .header("content-type", "application/json")
        .body(body.clone());
    if let Some(secret) = secret {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        request = request.header("x-pumppilot-signature", hex::encode(mac.finalize().into_bytes()));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_feature_phone_starts_stops_and_asks_its_balance_by_sms_under_the_apps_rules() {
    let (sms, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}"}"#.into()),
        ("PUMPPILOT_SMS_INBOUND_SECRET", INBOUND_SECRET.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
    ])
    .await;
    let t = app.tenant("rahim", 2, 30).await;
    let (karim, jamal) = (&t.users[0], &t.users[1]);
    for (client, phone, language) in [(karim, "+8801711000001", "en"), (jamal, "+8801711000002", "bn")] {
        let profile = json!({"phone": phone, "pushTokens": [], "language": language, "muted": [], "quietHours": null});
        assert_eq!(client.request(Method::PUT, "/api/alerts/profile", Some(profile)).await.0, StatusCode::OK);
    }
    t.device.poll(false, true).await;

    // Unsigned, wrongly signed, or from a number nobody registered: refused, nothing done.
    assert_error(&text_in(&app, "+8801711000001", "START", None).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(
        &text_in(&app, "+8801711000001", "START", Some("a-guess")).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    assert_error(
        &text_in(&app, "+8801799999999", "START", Some(INBOUND_SECRET)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_eq!(karim.status().await["me"]["entry"], Value::Null);

    let (status, answer) = text_in(&app, "+8801711000001", "start", Some(INBOUND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"command": "START", "reply": "Started. 30 min left."}));
    assert_eq!(karim.status().await["me"]["entry"]["status"], "RUNNING");
    let (_, answer) = text_in(&app, "+8801711000002", "চালু", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "START", "reply": "আপনি লাইনে ১ নম্বরে। ৩০ মিনিট বাকি।"}));
    assert_eq!(jamal.status().await["me"]["entry"]["position"], 1);

    let (_, answer) = text_in(&app, "+8801711000001", "BAL", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "30 min left.");
    let (_, answer) = text_in(&app, "+8801711000001", "STOP", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["command"], "STOP");
    assert_eq!(karim.status().await["me"]["entry"], Value::Null);
    let (_, answer) = text_in(&app, "+8801711000001", "STOP", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "Nothing to stop.");
    let (_, answer) = text_in(&app, "+8801711000001", "hello", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "HELP", "reply": "Send START, STOP or BAL."}));

    // The answers wait in the outbox (and the farmer's bell) until the worker sends them: nothing
    // has gone out while the server's clock stood still.
    let mut expected = Vec::new();
    for (client, phone) in [(karim, "+8801711000001"), (jamal, "+8801711000002")] {
        for n in bell(client).await["notifications"].as_array().unwrap().iter().filter(|n| n["kind"] == "SMS_REPLY") {
            expected.push(format!(r#"{{"to":"{phone}","text":"{}"}}"#, n["text"].as_str().unwrap()));
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 6, "{expected:?}");
    let jamals = bell(jamal).await;
    let answer = jamals["notifications"].as_array().unwrap().iter().find(|n| n["kind"] == "SMS_REPLY").unwrap();
    assert_eq!(answer["title"], "এসএমএস উত্তর", "in the farmer's language");
    let answers = |sms: &Arc<Mutex<Vec<String>>>| {
        let mut sent: Vec<String> = sms.lock().unwrap().iter().filter(|b| expected.contains(b)).cloned().collect();
        sent.sort();
        sent
    };
    assert_eq!(answers(&sms), Vec::<String>::new(), "sent by the outbox worker, not by the request");
    for _ in 0..200 {
        if answers(&sms).len() >= expected.len() {
            break;
        }
        app.clock.advance(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
        app.until_waiting_for(2_000).await;
    }
    assert_eq!(answers(&sms), expected, "each answer once");
    assert!(expected.iter().any(|b| b == r#"{"to":"+8801711000002","text":"আপনি লাইনে ১ নম্বরে। ৩০ মিনিট বাকি।"}"#));
    assert!(expected.iter().any(|b| b == r#"{"to":"+8801711000001","text":"Send START, STOP or BAL."}"#));
}

#[tokio::test]
async fn without_an_inbound_secret_control_by_sms_is_off() {
    let app = spawn_app().await;
    assert_error(&text_in(&app, "+8801711000001", "START", Some("anything")).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn long_load_shedding_tells_the_owner_once_per_spell() {
    let app = app_with_alerts(&[
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
        ("PUMPPILOT_ALERT_LOAD_SHEDDING_MINUTES", "1".into()),
    ])
    .await;
    let t = app.tenant("rahim", 0, 0).await;
    t.device.poll(false, true).await;
    t.device.poll(true, true).await;
    // The device keeps polling through the spell; the watch looks every 30 s.
    app.pass_polling(Duration::from_secs(95), &t.device, true, true).await;
    until_told_of_shedding(&app, &t, 1).await;
    let body = bell(&t.admin).await;
    assert_eq!(body["notifications"][0]["text"], "Load shedding has lasted a long time.");
    // Four more rounds of the watch while the spell goes on.
    app.pass_polling(Duration::from_secs(120), &t.device, true, true).await;
    assert_eq!(kinds(&bell(&t.admin).await), ["LOAD_SHEDDING_LONG"], "told once while the spell goes on");

    // The grid comes back, then goes again: a new spell, told again when it lasts.
    app.pass_polling(Duration::from_secs(5), &t.device, false, true).await;
    app.pass_polling(Duration::from_secs(125), &t.device, true, true).await;
    until_told_of_shedding(&app, &t, 2).await;
    assert_eq!(kinds(&bell(&t.admin).await), ["LOAD_SHEDDING_LONG", "LOAD_SHEDDING_LONG"], "once per spell");
}

/// Waits until the owner's bell has `count` notifications while the spell goes on: the device
/// keeps polling through load shedding and the clock moves a second at a time, so a watch that
/// fell behind the clock (a busy machine) still gets its round in.
async fn until_told_of_shedding(app: &TestApp, t: &common::Tenant, count: usize) {
    for _ in 0..2000 {
        if bell(&t.admin).await["notifications"].as_array().unwrap().len() >= count {
            return;
        }
        app.pass_polling(Duration::from_secs(1), &t.device, true, true).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the owner was never told of {count} spells of load shedding");
}

#[tokio::test]
async fn the_event_stream_carries_the_bells_unread_count() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let farmer = &t.users[0];
    t.device.poll(false, true).await;
    let mut events = common::Events::open(farmer).await;
    let patience = Duration::from_secs(20);
    assert_eq!(events.next(patience).await.expect("an event within 20 s")["unread"], 0);
    farmer.ok("/api/motor/start", json!({})).await;
    let started = events.next(patience).await.expect("an event within 20 s");
    assert_eq!((started["motor"]["state"].as_str(), &started["unread"]), (Some("RUNNING"), &json!(1)));
    farmer.ok("/api/notifications/read", json!({})).await;
    farmer.ok("/api/motor/stop", json!({})).await;
    assert_eq!(
        events.next(patience).await.expect("an event within 20 s")["unread"],
        1,
        "the run's end, unread; the start was read"
    );
}

#[tokio::test]
async fn read_notifications_are_purged_after_90_days_and_every_one_after_a_year() {
    use pumppilot_engine::{AdminId, Facts, Notice, NoticeKind, UserId};
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let store = std::sync::Arc::clone(&app.running.app.store);
    let (user, admin): (UserId, AdminId) = (t.user_ids[0].parse().unwrap(), t.admin_id.parse().unwrap());
    let now = app.running.app.now();
    let notice = |kind| Notice::new(user, admin, kind, now, Facts::default());
    let written = store.add_notices(&[notice(NoticeKind::RunStarted), notice(NoticeKind::RunHeld)]).await.unwrap();
    store.mark_notifications_read(user, Some(&[written[0].id])).await.unwrap();
    let left = || async { store.notifications(user, 10).await.unwrap() };

    // The purge runs hourly on the server's clock (so does the sessions' sweep: once both wait for
    // the next hour, this hour's purge is done). 89 days on, the read one is still kept.
    async fn swept(app: &TestApp) {
        until("the hourly purge ran", || app.waits_for(3_600_000) >= 2).await;
    }
    const DAY: u64 = 24 * 60 * 60;
    app.clock.advance(Duration::from_secs(89 * DAY));
    swept(&app).await;
    assert_eq!(left().await.len(), 2);
    app.clock.advance(Duration::from_secs(DAY + 3600));
    swept(&app).await;
    let kept = left().await;
    assert_eq!(
        kept.iter().map(|n| n.kind).collect::<Vec<_>>(),
        [NoticeKind::RunHeld],
        "the read one went, the unread one stays"
    );
    app.clock.advance(Duration::from_secs(274 * DAY));
    swept(&app).await;
    assert_eq!(left().await.len(), 1, "not yet a year");
    app.clock.advance(Duration::from_secs(DAY));
    swept(&app).await;
    assert_eq!(left().await, [], "every one is gone after a year");
}

/// What the store keeps for receipts and downloads is bounded by the server's hourly purge: a push
/// ticket goes a day after its push (Expo keeps receipts about that long), a device's download
/// record a week after its last range (`pumppilot_server::DOWNLOAD_KEPT`).
#[tokio::test]
async fn the_hourly_purge_drops_push_tickets_after_a_day_and_download_records_after_a_week() {
    use pumppilot_engine::{AdminId, DeviceId, UserId};
    use pumppilot_store::{FirmwareDownload, PushTicket};
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let store = std::sync::Arc::clone(&app.running.app.store);
    let (user, admin): (UserId, AdminId) = (t.user_ids[0].parse().unwrap(), t.admin_id.parse().unwrap());
    let now = app.running.app.now();
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let ticket = PushTicket {
        id: "ticket-1".into(),
        user,
        token: "ExponentPushToken[karim]".into(),
        sent_at: now,
        ask_at: now + 15 * 60_000,
        expires_at: now + DAY_MS,
    };
    store.add_push_tickets(&[ticket]).await.unwrap();
    let download =
        FirmwareDownload { device: DeviceId::new(), admin, version: "2.0.0".into(), received: 1, size: 9, at: now };
    store.record_firmware_download(&download).await.unwrap();
    async fn swept(app: &TestApp) {
        until("the hourly purge ran", || app.waits_for(3_600_000) >= 2).await;
    }

    app.clock.advance(Duration::from_secs(23 * 3600));
    swept(&app).await;
    let later = app.running.app.now();
    assert_eq!(store.claim_push_tickets(later, later + 1, 10).await.unwrap().len(), 1, "kept within the day");
    app.clock.advance(Duration::from_secs(3600));
    swept(&app).await;
    assert_eq!(store.purge_push_tickets(now + 100 * DAY_MS).await.unwrap(), 0, "the server's purge took it");
    assert_eq!(store.firmware_downloads(admin).await.unwrap(), [download], "kept within the week");

    let week = pumppilot_server::DOWNLOAD_KEPT;
    app.clock.advance(week - Duration::from_secs(24 * 3600) + Duration::from_secs(3600));
    swept(&app).await;
    assert_eq!(store.firmware_downloads(admin).await.unwrap(), [], "gone a week after its last range");
}
