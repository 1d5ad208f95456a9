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
    let alerts = alert_settings(pairs);
    spawn_app_configured(move |settings| pumppilot_server::Settings { alerts, ..settings }).await
}

fn alert_settings(pairs: &[(&str, String)]) -> AlertSettings {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    AlertSettings::from_lookup(&|name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("alert settings")
}

/// Sets `profile` for `client` and confirms its phone in the store, as its holder's text would
/// (the tests of confirming by SMS below send the text itself; here no answer by SMS is wanted).
async fn with_confirmed_phone(app: &TestApp, client: &common::Client, profile: Value) {
    let (status, body) = client.request(Method::PUT, "/api/alerts/profile", Some(profile)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = &app.running.app.store;
    let waiting = store.alert_profiles_pending_phone(body["pendingPhone"].as_str().unwrap()).await.unwrap();
    let pending = waiting
        .into_iter()
        .filter_map(|p| p.pending_phone.map(|pending| (p.user_id, pending)))
        .find(|(_, pending)| body["phoneCode"].as_str() == Some(pending.code.as_str()))
        .unwrap();
    store.confirm_phone(pending.0, &pending.1).await.unwrap();
}

/// A server that takes signed texts from the SMS gateway, and answers them through a stand-in
/// gateway (whose bodies received it returns).
async fn app_taking_texts() -> (TestApp, Arc<Mutex<Vec<String>>>) {
    let (sent, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}"}"#.into()),
        ("PUMPPILOT_SMS_INBOUND_SECRET", INBOUND_SECRET.into()),
    ])
    .await;
    (app, sent)
}

/// Confirms each one's phone, its messages in the language given (`en` or `bn`).
async fn with_confirmed_phones(app: &TestApp, phones: &[(&common::Client, &str, &str)]) {
    for (client, phone, language) in phones {
        let profile = json!({"phone": phone, "pushTokens": [], "language": language, "muted": [], "quietHours": null});
        with_confirmed_phone(app, client, profile).await;
    }
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
    let t = app.tenant("rahim", 2, 30).await;
    let farmer = &t.users[0];
    t.device.poll(false, true).await;
    // The farmer waits behind another: their turn comes when the other stops.
    t.users[1].ok("/api/motor/start", json!({})).await;
    farmer.ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/stop", json!({})).await;
    app.clock.advance(Duration::from_secs(1));
    t.device.poll(true, true).await;

    let body = bell(farmer).await;
    assert_eq!(kinds(&body), ["RUN_HELD", "RUN_STARTED"]);
    assert_eq!(body["unread"], 2);
    let held = &body["notifications"][0];
    assert_eq!(held["title"], "Run on hold");
    assert_eq!(held["text"], "Your run is on hold: load shedding. No minutes are used while it is on hold.");
    assert_eq!(held["read"], false);
    assert!(held["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bell(&t.admin).await["notifications"], json!([]), "the owner's bell is their own");

    // In Bangla once the farmer says so.
    let profile = json!({"phone": null, "pushTokens": [], "language": "bn", "muted": [], "quietHours": null});
    assert_eq!(farmer.request(Method::PUT, "/api/alerts/profile", Some(profile)).await.0, StatusCode::OK);
    assert_eq!(bell(farmer).await["notifications"][0]["text"], "আপনার সেচ থেমে আছে: লোডশেডিং। মিনিট কাটা হচ্ছে না।");

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
    assert_eq!(
        empty,
        json!({"phone": null, "pendingPhone": null, "phoneCode": null, "pendingSince": null, "droppedPhone": null,
            "smsNumber": null, "pushTokens": [], "language": "en", "muted": [], "quietHours": null})
    );

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
    assert_eq!(status, StatusCode::OK, "{stored}");
    // The number waits to be confirmed from its phone (see the tests of confirming below).
    let mut expected = good.clone();
    expected["phone"] = Value::Null;
    // A save never adds a push token (a phone registers its own, with its session).
    expected["pushTokens"] = json!([]);
    for field in ["pendingPhone", "phoneCode", "pendingSince", "droppedPhone", "smsNumber"] {
        expected[field] = stored[field].clone();
    }
    assert_eq!((&stored, &stored["pendingPhone"]), (&expected, &json!("+8801711000001")));
    assert_eq!(karim.get("/api/alerts/profile").await.1, stored);
    assert_eq!(put(jamal, good.clone()).await.0, StatusCode::OK, "a number waiting is no one's yet");
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
    with_confirmed_phone(&app, farmer, profile).await;
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
            r#"{{"to":"+8801711000001","text":"আপনার সেচ শেষ (আপনি বন্ধ করেছেন): ২ মিনিট খরচ, ২৮ মিনিট বাকি।","ref":"{id}","coding":"ucs2"}}"#
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
    with_confirmed_phone(&app, farmer, profile).await;
    t.device.poll(false, true).await;
    farmer.ok("/api/motor/start", json!({})).await;
    farmer.ok("/api/motor/stop", json!({})).await;
    let id = bell(farmer).await["notifications"][0]["id"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
    }
    until("the HTTPS gateway hears of the run's end", || !sms.lock().unwrap().is_empty()).await;
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
    assert_eq!(body["notifications"][0]["text"], "Your request for 45 min was approved. Balance 45 min.");

    let second = farmer.ok("/api/minute-requests", json!({"minutes": 5})).await;
    let id = second["id"].as_str().unwrap();
    t.admin.ok(&format!("/api/admin/minute-requests/{id}/reject"), json!({})).await;
    assert_eq!(bell(farmer).await["notifications"][0]["text"], "Your request for 5 min was rejected.");
}

/// A rejection's reason reaches the farmer's phone by SMS in their language, in one part: the
/// longest request a pump may allow with the longest reason in Bangla (Unicode), and in English.
#[tokio::test]
async fn a_rejections_reason_reaches_the_farmers_phone_in_one_sms_in_their_language() {
    let (sms, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}","coding":"{encoding}","parts":"{parts}"}"#.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
    ])
    .await;
    let t = app.tenant("rahim", 2, 0).await;
    let (salma, karim) = (&t.users[0], &t.users[1]);
    let profile = |phone: &str, language: &str| json!({"phone": phone, "pushTokens": [], "language": language, "muted": [], "quietHours": null});
    with_confirmed_phone(&app, salma, profile("+8801711000031", "bn")).await;
    with_confirmed_phone(&app, karim, profile("+8801711000032", "en")).await;
    let terms = json!({"maxRequestMinutes": 10080});
    assert_eq!(t.admin.request(Method::PUT, "/api/admin/terms", Some(terms)).await.0, StatusCode::OK);
    for (farmer, minutes, reason) in [(salma, 10_080, "WRONG_AMOUNT"), (karim, 30, "NOT_PAID")] {
        let asked = farmer.ok("/api/minute-requests", json!({"minutes": minutes})).await;
        let path = format!("/api/admin/minute-requests/{}/reject", asked["id"].as_str().unwrap());
        t.admin.ok(&path, json!({"reason": reason})).await;
    }
    assert_eq!(bell(salma).await["notifications"][0]["text"], "আপনার ১০০৮০ মিনিটের অনুরোধ নামঞ্জুর: টাকা ও চাওয়া মিনিট মেলেনি।");
    until_sent(&app, || sms.lock().unwrap().len() >= 2).await;
    let mut seen = sms.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            r#"{"to":"+8801711000031","text":"আপনার ১০০৮০ মিনিটের অনুরোধ নামঞ্জুর: টাকা ও চাওয়া মিনিট মেলেনি।","coding":"ucs2","parts":"1"}"#,
            r#"{"to":"+8801711000032","text":"Your request for 30 min was rejected: payment not received.","coding":"gsm7","parts":"1"}"#,
        ],
        "each once, in one part"
    );
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
    assert_eq!(body["notifications"][0]["text"], "The device \"rahim pump\" has not been heard from for 1 min.");

    // Heard again, then silent again: a new silence, told again.
    t.device.poll(false, true).await;
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(30));
    }
    until_bell(&app, &t.admin, 2).await;
}

/// Waits until the bell has `count` notifications. On MongoDB the watch skips a round while the
/// store's change feed is behind (a busy machine), and a skipped round is made up at the next
/// one: so every second of waiting the server's clock moves on by one round (30 s).
async fn until_bell(app: &TestApp, client: &common::Client, count: usize) {
    for i in 1..=2000 {
        if bell(client).await["notifications"].as_array().unwrap().len() >= count {
            return;
        }
        let round = if i % 100 == 0 { Duration::from_secs(30) } else { Duration::ZERO };
        app.clock.advance(round);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the bell never had {count} notifications");
}

const INBOUND_SECRET: &str = "inbound-secret-of-the-gateway";

/// A text as the SMS gateway posts it, kept to be sent again byte for byte (as someone who saw it
/// in the gateway's logs could).
#[derive(Clone)]
struct GatewayPost {
    body: String,
    timestamp: Option<String>,
    signature: Option<String>,
}

impl GatewayPost {
    /// `body` signed as a gateway must sign it: `X-PumpPilot-Timestamp` = `timestamp` (Unix
    /// seconds) and `X-PumpPilot-Signature` = hex HMAC-SHA-256 of `"{timestamp}.{body}"`.
    fn signed(body: Value, secret: &str, timestamp: i64) -> GatewayPost {
        let body = body.to_string();
        let signature = hmac_hex(secret, &format!("{timestamp}.{body}"));
        GatewayPost { body, timestamp: Some(timestamp.to_string()), signature: Some(signature) }
    }

    async fn send(&self, app: &TestApp) -> (StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/api/sms/inbound", app.site.base))
            .header("content-type", "application/json")
            .body(self.body.clone());
        if let Some(timestamp) = &self.timestamp {
            request = request.header("x-pumppilot-timestamp", timestamp);
        }
        if let Some(signature) = &self.signature {
            request = request.header("x-pumppilot-signature", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

/// Moves the server's clock on until the outbox worker has sent what `sent` waits for (at most
/// 400 s), then three rounds of the worker more: anything sent twice would be sent by then.
async fn until_sent(app: &TestApp, mut sent: impl FnMut() -> bool) {
    for _ in 0..200 {
        if sent() {
            break;
        }
        app.clock.advance(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
        app.until_waiting_for(2_000).await;
    }
}

fn hmac_hex(secret: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The server's clock in Unix seconds.
fn unix_now(app: &TestApp) -> i64 {
    pumppilot_server::clock::Clock::now(app.clock.as_ref()).millis() / 1000
}

/// Posts a text as the SMS gateway does, signed with `secret` at the server's time (unsigned
/// when `None`).
async fn text_in(app: &TestApp, from: &str, text: &str, secret: Option<&str>) -> (StatusCode, Value) {
    let body = json!({"from": from, "text": text});
    let post = match secret {
        Some(secret) => GatewayPost::signed(body, secret, unix_now(app)),
        None => GatewayPost { body: body.to_string(), timestamp: None, signature: None },
    };
    post.send(app).await
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
        with_confirmed_phone(&app, client, profile).await;
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
    assert_eq!(answer, json!({"command": "START", "reply": "Your pump is running. Balance 30 min."}));
    assert_eq!(karim.status().await["me"]["entry"]["status"], "RUNNING");
    let (_, answer) = text_in(&app, "+8801711000002", "চালু", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "START", "reply": "আপনি সারিতে ১ নম্বরে। ব্যালেন্স ৩০ মিনিট।"}));
    assert_eq!(jamal.status().await["me"]["entry"]["position"], 1);

    let (_, answer) = text_in(&app, "+8801711000001", "BAL", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "Balance 30 min. Your pump is running: 30 min left.");
    let (_, answer) = text_in(&app, "+8801711000001", "STOP", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["command"], "STOP");
    assert_eq!(karim.status().await["me"]["entry"], Value::Null);
    // Other words: the same words in the same second would be the same signed text, refused as
    // sent again.
    let (_, answer) = text_in(&app, "+8801711000001", "stop", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "Nothing to stop.");
    let (_, answer) = text_in(&app, "+8801711000001", "hello", Some(INBOUND_SECRET)).await;
    assert_eq!(
        answer,
        json!({"command": "HELP", "reply": "Send START (or START 30 for 30 min), STOP, BAL, or REQ 60 to ask for 60 min."})
    );
    // The help once in ten minutes per phone: a phone that answers every text by itself would
    // trade SMS with the server without end.
    let (_, answer) = text_in(&app, "+8801711000001", "hello again", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "HELP", "reply": ""}));
    // Words as feature phones send them: punctuation after, a joiner inside, another spelling,
    // and a sender written without its `+`. Karim joins the line behind Jamal (his turn came
    // when Karim stopped): his STOP then leaves the line, and says so.
    let (_, answer) = text_in(&app, "+8801711000001", "ব্যা\u{200c}লান্স।", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "Balance 30 min.");
    let (_, answer) = text_in(&app, "+8801711000001", "Start", Some(INBOUND_SECRET)).await;
    assert_eq!(answer["reply"], "You are number 1 in line. Balance 30 min.");
    let (_, answer) = text_in(&app, "+8801711000001", "stop.", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "STOP", "reply": "You left the line. Balance 30 min."}));
    let (_, answer) = text_in(&app, "8801711000002", "bondho!", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "STOP", "reply": "বন্ধ হয়েছে: কোনো মিনিট খরচ হয়নি, ৩০ মিনিট বাকি।"}));
    assert_eq!(jamal.status().await["me"]["entry"], Value::Null);

    // The answers wait in the outbox (and the farmer's bell) until the worker sends them: nothing
    // has gone out while the server's clock stood still.
    let mut expected = Vec::new();
    for (client, phone) in [(karim, "+8801711000001"), (jamal, "+8801711000002")] {
        for n in bell(client).await["notifications"].as_array().unwrap().iter().filter(|n| n["kind"] == "SMS_REPLY") {
            expected.push(format!(r#"{{"to":"{phone}","text":"{}"}}"#, n["text"].as_str().unwrap()));
        }
    }
    expected.sort();
    assert_eq!(expected.len(), 10, "{expected:?}");
    let jamals = bell(jamal).await;
    let answer = jamals["notifications"].as_array().unwrap().iter().find(|n| n["kind"] == "SMS_REPLY").unwrap();
    assert_eq!(answer["title"], "এসএমএস উত্তর", "in the farmer's language");
    let answers = |sms: &Arc<Mutex<Vec<String>>>| {
        let mut sent: Vec<String> = sms.lock().unwrap().iter().filter(|b| expected.contains(b)).cloned().collect();
        sent.sort();
        sent
    };
    assert_eq!(answers(&sms), Vec::<String>::new(), "sent by the outbox worker, not by the request");
    until_sent(&app, || answers(&sms).len() >= expected.len()).await;
    assert_eq!(answers(&sms), expected, "each answer once");
    assert!(expected.iter().any(|b| b == r#"{"to":"+8801711000002","text":"আপনি সারিতে ১ নম্বরে। ব্যালেন্স ৩০ মিনিট।"}"#));
    assert!(
        expected
            .iter()
            .any(|b| b == r#"{"to":"+8801711000001","text":"Send START (or START 30 for 30 min), STOP, BAL, or REQ 60 to ask for 60 min."}"#)
    );
}

#[tokio::test]
async fn a_feature_phone_asks_for_its_minutes_and_its_place_by_sms() {
    let (app, _sent) = app_taking_texts().await;
    let t = app.tenant("rahim", 3, 30).await;
    let (karim, jamal, salma) = (&t.users[0], &t.users[1], &t.users[2]);
    let phones = [(karim, "+8801711000001", "en"), (jamal, "+8801711000002", "bn"), (salma, "+8801711000003", "en")];
    with_confirmed_phones(&app, &phones).await;
    t.device.poll(false, true).await;
    let text = async |from: &str, words: &str| text_in(&app, from, words, Some(INBOUND_SECRET)).await.1;

    // Minutes a run cannot ask for start nothing, and the answer says what it can.
    let answer = text("+8801711000003", "START 2000").await;
    assert_eq!(
        answer,
        json!({"command": "START", "reply": "Minutes: from 1 to 1440, like START 30. Nothing was started."})
    );
    assert_eq!(salma.status().await["me"]["entry"], Value::Null);

    // Karim asks for 20 minutes, and his run ends by itself when they are used.
    let answer = text("+8801711000001", "START 20").await;
    assert_eq!(answer["reply"], "Your pump is running for 20 min. Balance 30 min.");
    let status = karim.status().await;
    assert_eq!(
        (&status["me"]["entry"]["status"], &status["me"]["entry"]["requestedMinutes"]),
        (&json!("RUNNING"), &json!(20))
    );
    // Jamal, in Bangla digits and words, for 45 minutes: in line behind Karim.
    let answer = text("+8801711000002", "চালু ৪৫ মিনিট").await;
    assert_eq!(answer["reply"], "আপনি সারিতে ১ নম্বরে, ৪৫ মিনিটের জন্য। ব্যালেন্স ৩০ মিনিট।");
    assert_eq!(jamal.status().await["me"]["entry"]["requestedMinutes"], 45);

    // BAL says where each one is: the screen a feature phone does not have.
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(5 * 60), &t.device, false, true).await;
    assert_eq!(text("+8801711000001", "BAL").await["reply"], "Balance 25 min. Your pump is running: 15 min left.");
    assert_eq!(text("+8801711000002", "BAL").await["reply"], "ব্যালেন্স ৩০ মিনিট। আপনি সারিতে ১ নম্বরে।");
    assert_eq!(text("+8801711000003", "BAL").await["reply"], "Balance 30 min.");

    // The 20 minutes are used: Karim's run ends and Jamal's starts.
    app.pass_polling(Duration::from_secs(15 * 60), &t.device, false, true).await;
    assert_eq!(karim.status().await["me"]["entry"], Value::Null);
    assert_eq!(karim.status().await["me"]["availableSeconds"], 10 * 60);
    assert_eq!(jamal.status().await["me"]["entry"]["status"], "RUNNING");
}

/// A farmer without the app who paid by mobile money asks the owner for minutes by SMS: the owner
/// hears of it as of one asked in the app, and the farmer hears the decision.
#[tokio::test]
async fn a_feature_phone_asks_the_owner_for_minutes_by_sms() {
    let (app, _sent) = app_taking_texts().await;
    let t = app.tenant("rahim", 1, 0).await;
    let salma = &t.users[0];
    with_confirmed_phones(&app, &[(salma, "+8801711000003", "bn")]).await;
    let text = async |words: &str| text_in(&app, "+8801711000003", words, Some(INBOUND_SECRET)).await.1;

    // More than the owner allows (600 until they set another), or no number: nothing is asked.
    let answer = text("REQ 5000").await;
    assert_eq!(answer, json!({"command": "REQ", "reply": "মিনিট: ১ থেকে ৬০০, যেমন চাই ৬০। কিছু চাওয়া হয়নি।"}));
    assert_eq!(text("চাই").await["reply"], "মিনিট: ১ থেকে ৬০০, যেমন চাই ৬০। কিছু চাওয়া হয়নি।");
    assert_eq!(salma.get("/api/minute-requests").await.1, json!([]));

    let answer = text("চাই ৬০").await;
    assert_eq!(answer["reply"], "মালিকের কাছে ৬০ মিনিট চাওয়া হয়েছে। সিদ্ধান্ত হলে জানানো হবে।");
    let (_, asked) = salma.get("/api/minute-requests").await;
    assert_eq!((&asked[0]["minutes"], &asked[0]["status"]), (&json!(60), &json!("PENDING")));
    let owner = bell(&t.admin).await;
    assert_eq!(kinds(&owner), ["REQUEST_NEW"]);
    assert_eq!(owner["notifications"][0]["text"], "Farmer 0 asks for 60 min.");
    // One request waits at a time, as in the app.
    let answer = text("REQ 30").await;
    assert_eq!(answer["reply"], "আপনার একটি অনুরোধ অপেক্ষায় আছে: মালিক আগে সেটির সিদ্ধান্ত নেবেন।");
    assert_eq!(salma.get("/api/minute-requests").await.1.as_array().unwrap().len(), 1);

    let id = asked[0]["id"].as_str().unwrap();
    t.admin.ok(&format!("/api/admin/minute-requests/{id}/approve"), json!({})).await;
    let decided = bell(salma).await["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "REQUEST_DECIDED")
        .cloned()
        .unwrap();
    assert_eq!(decided["text"], "আপনার ৬০ মিনিটের অনুরোধ মঞ্জুর হয়েছে। ব্যালেন্স ৬০ মিনিট।");
    assert_eq!(text("BAL").await["reply"], "ব্যালেন্স ৬০ মিনিট।");
}

/// A pump owner's phone asks how the pump is (who runs, the line, the requests, the device) and
/// stops the run STATUS named, and no other (a STOP sent again once the next run began finds it
/// ended); it is told no farmer's commands, and a farmer's STATUS is their BAL.
#[tokio::test]
async fn an_owners_phone_asks_for_the_pump_at_a_glance() {
    let (app, _sent) = app_taking_texts().await;
    let t = app.tenant("rahim", 3, 30).await;
    let owner = "+8801711000010";
    with_confirmed_phones(&app, &[(&t.admin, owner, "en"), (&t.users[0], "+8801711000001", "en")]).await;
    let text = async |from: &str, words: &str| text_in(&app, from, words, Some(INBOUND_SECRET)).await.1;

    assert_eq!(text(owner, "STATUS").await, json!({"command": "STATUS", "reply": "The pump is free. No device yet."}));
    // Not the owner's to send: answered with the owner's help, and nothing is started.
    assert_eq!(
        text(owner, "START").await,
        json!({
            "command": "HELP",
            "reply": "Send STATUS for the pump at a glance, then STOP and a run's number, or OK or NO and a request's."
        })
    );
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({"minutes": 20})).await;
    t.device.poll(false, true).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    t.users[2].ok("/api/minute-requests", json!({"minutes": 60})).await;
    app.pass_polling(Duration::from_secs(5 * 60), &t.device, false, true).await;
    let status = text(owner, "status").await["reply"].as_str().unwrap().to_owned();
    let said = "Farmer 0 is pumping: 15 min left. To stop it: STOP ";
    assert!(status.starts_with(said), "{status}");
    let number = &status[said.len()..said.len() + 4];
    assert!(number.bytes().all(|b| b.is_ascii_digit()), "{status}");
    let rest = &status[said.len() + 4..];
    let asks = ". 1 in line. Farmer 2 asks for 60 min: OK ";
    assert!(rest.starts_with(asks), "{status}");
    let request = &rest[asks.len()..asks.len() + 4];
    assert_eq!(&rest[asks.len() + 4..], format!(" or NO {request}. Device connected."));
    assert_eq!(text("+8801711000001", "STATUS").await["reply"], "Balance 25 min. Your pump is running: 15 min left.");

    // The device falls silent: the run holds, and the owner reads for how long.
    app.clock.advance(Duration::from_secs(12 * 60));
    assert_eq!(
        text(owner, "অবস্থা").await["reply"],
        format!(
            "Farmer 0's run is on hold: the device is offline. To stop it: STOP {number}. 1 in line. Farmer 2 asks \
             for 60 min: OK {request} or NO {request}. Device not heard for 12 min."
        )
    );

    // The owner stops the run STATUS named; another number, or none, stops nothing.
    let other = format!("{:04}", (number.parse::<u32>().unwrap() + 1) % 10_000);
    assert_eq!(
        text(owner, &format!("STOP {other}")).await["reply"],
        "That run had ended already: nothing was stopped."
    );
    assert_eq!(text(owner, "STOP").await["reply"], "Send STOP and the run's number that STATUS says, like STOP 4821.");
    assert_eq!(t.users[0].status().await["me"]["entry"]["status"], "HOLD");
    t.device.poll(false, true).await;
    let answer = text(owner, &format!("stop {number}")).await;
    assert_eq!(answer, json!({"command": "STOP", "reply": "Stopped Farmer 0's run: 5 min used."}));
    assert_eq!(t.users[0].status().await["me"]["entry"], Value::Null);
    let (_, log) = t.admin.get("/api/admin/audit").await;
    assert!(log.to_string().contains("motor.stop"), "{log}");
    // The next in line started: the same STOP sent again (another second) does not end their run.
    assert_eq!(t.users[1].status().await["me"]["entry"]["status"], "RUNNING");
    app.clock.advance(Duration::from_secs(1));
    let again = text(owner, &format!("STOP {number}")).await;
    assert_eq!(again["reply"], "That run had ended already: nothing was stopped.");
    assert_eq!(t.users[1].status().await["me"]["entry"]["status"], "RUNNING");
}

/// A pump owner's phone decides a farmer's request by the number STATUS gives it: approved, the
/// minutes recharged and the farmer told, or rejected with why in a word; another number, a
/// request decided already, or a farmer's phone sending OK, decides nothing.
#[tokio::test]
async fn an_owners_phone_decides_a_request_by_its_number() {
    let (app, _sent) = app_taking_texts().await;
    let t = app.tenant("rahim", 2, 0).await;
    let owner = "+8801711000010";
    with_confirmed_phones(&app, &[(&t.admin, owner, "bn"), (&t.users[0], "+8801711000001", "en")]).await;
    let text = async |from: &str, words: &str| text_in(&app, from, words, Some(INBOUND_SECRET)).await.1;
    t.users[0].ok("/api/minute-requests", json!({"minutes": 45})).await;
    t.users[1].ok("/api/minute-requests", json!({"minutes": 20})).await;
    // The numbers STATUS gives, read as the owner reads them.
    let status = text(owner, "অবস্থা").await["reply"].as_str().unwrap().to_owned();
    let number = |name: &str, minutes: &str| {
        let said = format!("{name} {minutes} মিনিট চান: হ্যাঁ ");
        let at = status.find(&said).unwrap_or_else(|| panic!("{said}: {status}")) + said.len();
        status[at..].chars().take(4).collect::<String>()
    };
    // A Bangla answer writes its numbers in Bangla digits, and the names as the owner typed them.
    let (karim, salma) = (number("Farmer 0", "৪৫"), number("Farmer 1", "২০"));

    let none = "ওই নম্বরে কোনো অনুরোধ অপেক্ষায় নেই: নম্বর জানতে অবস্থা লিখুন।";
    let other: String =
        if karim == "০০০০" || salma == "০০০০" { "১১১১".into() } else { "০০০০".into() };
    assert_eq!(text(owner, &format!("হ্যাঁ {other}")).await["reply"], none);
    assert_eq!(text(owner, "OK").await["reply"], "অবস্থা যে নম্বর বলে তা দিয়ে লিখুন, যেমন হ্যাঁ ৩৮১৭।");
    // A farmer's phone decides nothing.
    assert_eq!(text("+8801711000001", &format!("OK {karim}")).await["command"], "HELP");
    assert_eq!(t.users[0].get("/api/minute-requests").await.1[0]["status"], "PENDING");

    let answer = text(owner, &format!("হ্যাঁ {karim}")).await;
    assert_eq!(answer, json!({"command": "OK", "reply": "Farmer 0-এর ৪৫ মিনিট মঞ্জুর হয়েছে।"}));
    assert_eq!(t.users[0].status().await["me"]["availableSeconds"], 45 * 60);
    let karims_bell = bell(&t.users[0]).await;
    assert_eq!(karims_bell["notifications"][0]["text"], "Your request for 45 min was approved. Balance 45 min.");
    // A NO may say why, in a word: the farmer reads the reason the app would give.
    let answer = text(owner, &format!("না {salma} পাইনি")).await;
    let rejected = "Farmer 1-এর ২০ মিনিটের অনুরোধ বাতিল হয়েছে: টাকা পাওয়া যায়নি।";
    assert_eq!(answer, json!({"command": "NO", "reply": rejected}));
    let (_, salmas) = t.users[1].get("/api/minute-requests").await;
    assert_eq!((&salmas[0]["status"], &salmas[0]["rejectReason"]), (&json!("REJECTED"), &json!("NOT_PAID")));
    let told = bell(&t.users[1]).await["notifications"][0]["text"].clone();
    assert_eq!(told, "Your request for 20 min was rejected: payment not received.");
    // Decided once: the same OK a second later finds no request waiting, and gives nothing more.
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(text(owner, &format!("OK {karim}")).await["reply"], none);
    assert_eq!(t.users[0].status().await["me"]["availableSeconds"], 45 * 60);
    let (_, log) = t.admin.get("/api/admin/audit").await;
    assert!(log.to_string().contains("request.approve") && log.to_string().contains("request.reject"), "{log}");
}

/// A farmer's request reaches the owner's phone by SMS with the number that answers it, and the
/// owner's answer by text decides it: a REQ and an OK, two texts and no app.
#[tokio::test]
async fn a_request_reaches_the_owners_phone_with_the_number_that_answers_it() {
    let (app, sent) = app_taking_texts().await;
    let t = app.tenant("rahim", 1, 0).await;
    let owner = "+8801711000010";
    with_confirmed_phones(&app, &[(&t.admin, owner, "en"), (&t.users[0], "+8801711000001", "en")]).await;
    let text = async |from: &str, words: &str| text_in(&app, from, words, Some(INBOUND_SECRET)).await.1;
    assert_eq!(text("+8801711000001", "REQ 45").await["command"], "REQ");

    let asks = format!(r#"{{"to":"{owner}","text":"Farmer 0 asks for 45 min. Reply OK "#);
    let told = || sent.lock().unwrap().iter().find(|b| b.starts_with(&asks)).cloned();
    until_sent(&app, || told().is_some()).await;
    let body = told().unwrap();
    let number = &body[asks.len()..asks.len() + 4];
    let whole = format!(r#"{{"to":"{owner}","text":"Farmer 0 asks for 45 min. Reply OK {number} or NO {number}."}}"#);
    assert_eq!(body, whole);
    // The bell says the sentence alone: the app answers with its buttons.
    assert_eq!(bell(&t.admin).await["notifications"][0]["text"], "Farmer 0 asks for 45 min.");

    assert_eq!(text(owner, &format!("OK {number}")).await["reply"], "Approved Farmer 0's 45 min.");
    assert_eq!(t.users[0].status().await["me"]["availableSeconds"], 45 * 60);
}

/// Where the server takes no texts back, a request's SMS to its owner says no number to answer
/// by: an answer would go nowhere.
#[tokio::test]
async fn without_texts_taken_a_requests_sms_names_no_answer() {
    let (sent, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}"}"#.into()),
    ])
    .await;
    let t = app.tenant("rahim", 1, 0).await;
    with_confirmed_phones(&app, &[(&t.admin, "+8801711000010", "en")]).await;
    t.users[0].ok("/api/minute-requests", json!({"minutes": 45})).await;
    let whole = r#"{"to":"+8801711000010","text":"Farmer 0 asks for 45 min."}"#;
    until_sent(&app, || !sent.lock().unwrap().is_empty()).await;
    assert_eq!(*sent.lock().unwrap(), [whole]);
}

#[tokio::test]
async fn without_an_inbound_secret_control_by_sms_is_off() {
    let app = spawn_app().await;
    assert_error(&text_in(&app, "+8801711000001", "START", Some("anything")).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

const SALMA: &str = "+8801711000007";

fn taking_texts() -> [(&'static str, String); 2] {
    [("PUMPPILOT_SMS_INBOUND_SECRET", INBOUND_SECRET.into()), ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into())]
}

/// Rahim's pump with its device polling, and Salma (30 minutes) with her phone registered for SMS.
async fn salma_at(app: &TestApp) -> common::Tenant {
    let t = app.tenant("rahim", 1, 30).await;
    register_phone(app, &t.users[0], SALMA).await;
    t.device.poll(false, true).await;
    t
}

async fn register_phone(app: &TestApp, client: &common::Client, phone: &str) {
    let profile = json!({"phone": phone, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    with_confirmed_phone(app, client, profile).await;
}

/// Salma's `text`, signed by the gateway at `timestamp` (Unix seconds).
fn salmas(text: &str, timestamp: i64) -> GatewayPost {
    GatewayPost::signed(json!({"from": SALMA, "text": text}), INBOUND_SECRET, timestamp)
}

/// How many answers by SMS a farmer's bell holds.
async fn sms_replies(client: &common::Client) -> usize {
    kinds(&bell(client).await).iter().filter(|k| *k == "SMS_REPLY").count()
}

/// Asserts a 401 whose message says `why`.
fn assert_refused(answer: &(StatusCode, Value), why: &str) {
    assert_error(answer, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
}

/// A signed text seen once (in the gateway's logs, at a proxy) and sent again minutes later, byte
/// for byte or with its signature in capitals: refused, and Salma's run and minutes are as they
/// were, with no answer by SMS.
#[tokio::test]
async fn a_signed_text_sent_again_is_refused_and_changes_nothing() {
    let app = app_with_alerts(&taking_texts()).await;
    let t = salma_at(&app).await;
    let salma = &t.users[0];
    let start = salmas("START", unix_now(&app));
    assert_eq!(start.send(&app).await.1["reply"], "Your pump is running. Balance 30 min.");
    let stop = salmas("STOP", unix_now(&app));
    assert_eq!(stop.send(&app).await.1["reply"], "Stopped: no minutes used, 30 min left.");

    // Two minutes later she starts again from the app; the STOP is sent again.
    app.pass_polling(Duration::from_secs(120), &t.device, false, true).await;
    salma.ok("/api/motor/start", json!({})).await;
    assert_refused(&stop.send(&app).await, "taken already");
    let capitals = GatewayPost { signature: stop.signature.as_ref().map(|s| s.to_uppercase()), ..stop.clone() };
    assert_refused(&capitals.send(&app).await, "taken already");
    assert_eq!(salma.status().await["me"]["entry"]["status"], "RUNNING", "her new run goes on");

    // Once she stopped, the START is sent again: no run, no minutes spent.
    salma.ok("/api/motor/stop", json!({})).await;
    let minutes = salma.status().await["me"]["availableSeconds"].clone();
    assert_refused(&start.send(&app).await, "taken already");
    let me = &salma.status().await["me"];
    assert_eq!((&me["entry"], &me["availableSeconds"]), (&Value::Null, &minutes));

    // A text signed 5 minutes ahead of the server's clock is in time for 10 minutes: refused as
    // sent again all that while.
    let ahead = salmas("BAL", unix_now(&app) + 300);
    assert_eq!(ahead.send(&app).await.1["reply"], balance_reply(&minutes));
    app.clock.advance(Duration::from_secs(599));
    assert_refused(&ahead.send(&app).await, "taken already");
    assert_eq!(sms_replies(salma).await, 3, "answered the three texts taken, and no other");
}

/// The balance as an SMS answer says it, from a wallet's `availableSeconds`.
fn balance_reply(available_seconds: &Value) -> String {
    format!("Balance {} min.", available_seconds.as_i64().unwrap() / 60)
}

/// The signature covers its time, and a time more than 5 minutes from the server's clock, either
/// way, is refused; so are a signature of the body alone (the scheme before times) and an old
/// text with its time moved forward. None of them stops Salma's run or is answered by SMS; a text
/// within the 5 minutes is taken.
#[tokio::test]
async fn a_text_signed_out_of_time_or_without_its_time_is_refused() {
    let app = app_with_alerts(&taking_texts()).await;
    let t = salma_at(&app).await;
    let salma = &t.users[0];
    salma.ok("/api/motor/start", json!({})).await;
    let now = unix_now(&app);

    assert_refused(&salmas("STOP", now - 301).send(&app).await, "the signature's time is too old");
    assert_refused(&salmas("STOP", now + 301).send(&app).await, "the signature's time is too far ahead");
    let body = json!({"from": SALMA, "text": "STOP"}).to_string();
    let body_alone =
        GatewayPost { body: body.clone(), timestamp: None, signature: Some(hmac_hex(INBOUND_SECRET, &body)) };
    assert_refused(&body_alone.send(&app).await, "not signed");
    let with_a_time = GatewayPost { timestamp: Some(now.to_string()), ..body_alone };
    assert_refused(&with_a_time.send(&app).await, "the signature does not match");
    let moved_forward = GatewayPost { timestamp: Some(now.to_string()), ..salmas("STOP", now - 301) };
    assert_refused(&moved_forward.send(&app).await, "the signature does not match");
    assert_eq!(salma.status().await["me"]["entry"]["status"], "RUNNING");
    assert_eq!(sms_replies(salma).await, 0);

    // Five minutes either way, to the second, is in time.
    assert_eq!(salmas("BAL", now + 300).send(&app).await.1["command"], "BAL");
    let (status, answer) = salmas("STOP", now - 300).send(&app).await;
    assert_eq!(
        (status, &answer["reply"]),
        (StatusCode::OK, &json!("Stopped: no minutes used, 30 min left.")),
        "{answer}"
    );
    assert_eq!(salma.status().await["me"]["entry"], Value::Null);
    assert_eq!(sms_replies(salma).await, 2);
}

/// A gateway that sends its message id has each message carried out once, also when it signs it
/// again to retry it; another message with the same words is carried out.
#[tokio::test]
async fn a_gateway_message_is_carried_out_once_however_often_it_is_signed() {
    let app = app_with_alerts(&taking_texts()).await;
    let t = salma_at(&app).await;
    let salma = &t.users[0];
    let stop = |id: &str, timestamp: i64| {
        GatewayPost::signed(json!({"from": SALMA, "text": "STOP", "id": id}), INBOUND_SECRET, timestamp)
    };
    let now = unix_now(&app);
    salma.ok("/api/motor/start", json!({})).await;
    assert_eq!(stop("sms-4711", now).send(&app).await.1["command"], "STOP");
    salma.ok("/api/motor/start", json!({})).await;
    assert_refused(&stop("sms-4711", now + 1).send(&app).await, "taken already");
    assert_eq!(salma.status().await["me"]["entry"]["status"], "RUNNING");
    assert_eq!(stop("sms-4712", now + 1).send(&app).await.1["reply"], "Stopped: no minutes used, 30 min left.");
    assert_eq!(salma.status().await["me"]["entry"], Value::Null);
    for id in ["", "sms 4713"] {
        assert_error(&stop(id, now).send(&app).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
}

/// A text refused (from a phone no farmer registered yet) is not taken: nothing was done, so the
/// gateway's retry of it is decided afresh.
#[tokio::test]
async fn a_text_refused_is_decided_afresh_when_sent_again() {
    let app = app_with_alerts(&taking_texts()).await;
    let t = app.tenant("rahim", 1, 30).await;
    t.device.poll(false, true).await;
    let start = salmas("START", unix_now(&app));
    assert_error(&start.send(&app).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    register_phone(&app, &t.users[0], SALMA).await;
    assert_eq!(start.send(&app).await.1["reply"], "Your pump is running. Balance 30 min.");
}

/// Two servers of one fleet on one MongoDB (SecantusDB), in this process: a text one of them took,
/// sent again to the other, is refused there too (the store's claim: the first server's memory is
/// not the other's).
#[tokio::test]
async fn a_signed_text_sent_again_to_another_server_of_the_fleet_is_refused() {
    use pumppilot_server::{clock::ManualClock, config::Secret};
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let clock = ManualClock::starting_now();
    let server = || {
        let secret = Some(Secret("a-test-secret-of-at-least-32-characters".into()));
        let alerts = alert_settings(&taking_texts());
        common::spawn_app_at_configured(&url, secret, clock.clone(), move |settings| pumppilot_server::Settings {
            alerts,
            ..settings
        })
    };
    let (a, b) = (server().await, server().await);
    let t = salma_at(&a).await;
    let salma = &t.users[0];
    salma.ok("/api/motor/start", json!({})).await;
    let stop = salmas("STOP", unix_now(&a));
    assert_eq!(stop.send(&a).await.1["reply"], "Stopped: no minutes used, 30 min left.");
    salma.ok("/api/motor/start", json!({})).await;
    assert_refused(&stop.send(&b).await, "taken already");
    assert_eq!(salma.status().await["me"]["entry"]["status"], "RUNNING");

    // A text signed 5 minutes ahead is in time for 10 minutes: the claim lasts that long.
    let ahead = salmas("BAL", unix_now(&a) + 300);
    assert_eq!(ahead.send(&a).await.1["command"], "BAL");
    a.clock.advance(Duration::from_secs(599));
    assert_refused(&ahead.send(&b).await, "taken already");
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
    assert_eq!(body["notifications"][0]["text"], "Load shedding at the device \"rahim pump\" has lasted 1 min.");
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

/// A board whose commands do not reach it during a run (a firewall eating the answers, a broken
/// MQTT path) says at every poll that its relay is open for want of a command, and the farmer
/// waits at a motor that does not run. Its owner hears once it has lasted the set time: by SMS in
/// their language, in one part, and in the bell, by the device's name; while it goes on, not again.
#[tokio::test]
async fn a_board_that_gets_no_commands_during_a_run_is_told_to_its_owner_by_sms_and_in_the_bell() {
    let (sms, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}","coding":"{encoding}","parts":"{parts}"}"#.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
        ("PUMPPILOT_ALERT_NO_COMMAND_MINUTES", "1".into()),
    ])
    .await;
    let t = app.tenant("rahim", 1, 30).await;
    const RAHIM: &str = "+8801711000009";
    let profile = json!({"phone": RAHIM, "pushTokens": [], "language": "bn", "muted": [], "quietHours": null});
    with_confirmed_phone(&app, &t.admin, profile).await;
    let poll = |query: &'static str| t.device.poll_with(query);
    poll("relay=0").await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    // The answers never reach the board: at every poll (half a lease apart) it holds no command.
    let no_command = "relay=0&relayOff=NO_COMMAND";
    assert_eq!(poll(no_command).await["motor"], "ON");
    let half_lease = Duration::from_millis(u64::from(common::LEASE_MS) / 2);
    for _ in 0..2000 {
        if !sent_to(&sms, RAHIM).is_empty() {
            break;
        }
        app.clock.advance(half_lease);
        poll(no_command).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        sent_to(&sms, RAHIM),
        [
            r#"{"to":"+8801711000009","text":"\"rahim pump\" ১ মিনিট ধরে নির্দেশ পায়নি, মোটর বন্ধ।","coding":"ucs2","parts":"1"}"#
        ]
    );
    assert_eq!(t.users[0].status().await["me"]["entry"]["status"], "RUNNING", "the farmer's run waits, RUNNING");
    let (status, body) = t.admin.get("/api/notifications?language=en").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(kinds(&body), ["NO_COMMAND_LONG"]);
    assert_eq!(body["notifications"][0]["title"], "Device not getting commands");
    assert_eq!(
        body["notifications"][0]["text"],
        "The device \"rahim pump\" has not received the server's commands for 1 min, so the motor is off during a \
         run. Check its network."
    );

    // Two more minutes of it, the watch looking every 30 s: told once.
    for _ in 0..160 {
        app.clock.advance(half_lease);
        poll(no_command).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(kinds(&bell(&t.admin).await), ["NO_COMMAND_LONG"], "told once while it goes on");
    assert_eq!(sent_to(&sms, RAHIM).len(), 1);
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
    assert_eq!(
        (started["motor"]["state"].as_str(), &started["unread"]),
        (Some("RUNNING"), &json!(0)),
        "their own Start tells them nothing"
    );
    farmer.ok("/api/motor/stop", json!({})).await;
    assert_eq!(events.next(patience).await.expect("an event within 20 s")["unread"], 1, "the run's end, unread");
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

/// The number farmers text, as the tests' servers are told it.
const PUMP_NUMBER: &str = "+8809610000000";

/// A server that sends SMS to a stand-in gateway, takes texts signed with [`INBOUND_SECRET`], and
/// knows the number farmers text.
async fn app_taking_codes() -> (TestApp, Arc<Mutex<Vec<String>>>) {
    let (sms, url) = sms_gateway().await;
    let alerts = alert_settings(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}"}"#.into()),
        ("PUMPPILOT_SMS_INBOUND_SECRET", INBOUND_SECRET.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
    ]);
    let app = spawn_app_configured(move |settings| pumppilot_server::Settings {
        alerts,
        sms_number: Some(PUMP_NUMBER.into()),
        ..settings
    })
    .await;
    (app, sms)
}

/// A pump owner's number, confirmed by its code, is told what the owner's phone may text.
#[tokio::test]
async fn an_owners_number_confirmed_is_told_what_it_may_text() {
    let (app, _sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 1, 0).await;
    let number = "+8801711000010";
    let code = ask_for_phone(&t.admin, number).await["phoneCode"].as_str().unwrap().to_owned();
    let (status, answer) = text_in(&app, number, &code, Some(INBOUND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let confirmed = "Number confirmed: PumpPilot messages now come to this phone. Send STATUS for the pump at a \
                     glance, then STOP and a run's number, or OK or NO and a request's.";
    assert_eq!(answer, json!({"command": "CONFIRM", "reply": confirmed}));
}

/// Asks for `phone` as `client`'s number; returns the answer (the profile, the number waiting).
async fn ask_for_phone(client: &common::Client, phone: &str) -> Value {
    let profile = json!({"phone": phone, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    let (status, body) = client.request(Method::PUT, "/api/alerts/profile", Some(profile)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Lets the outbox worker run a while on the server's clock.
async fn let_the_outbox_run(app: &TestApp) {
    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(2));
        app.until_waiting_for(2_000).await;
    }
}

/// The texts the stand-in gateway sent to `phone`.
fn sent_to(sms: &Arc<Mutex<Vec<String>>>, phone: &str) -> Vec<String> {
    let to = format!(r#""to":"{phone}""#);
    sms.lock().unwrap().iter().filter(|body| body.contains(&to)).cloned().collect()
}

/// A number set in the alert profile waits: Karim's alerts do not go to it and its texts do not
/// start his pump, until its holder texts his code from it (however written: spaced, Bangla
/// digits, with words). A wrong code, or the right code from another number, confirms nothing.
/// Setting a number another account waits for is no conflict: no one learns from that whether it
/// is anyone's.
#[tokio::test]
async fn a_phone_number_counts_only_once_its_holder_texts_the_code_from_it() {
    let (app, sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 2, 30).await;
    let (karim, jamal) = (&t.users[0], &t.users[1]);
    let number = "+8801711000021";
    let asked = ask_for_phone(karim, number).await;
    assert_eq!((&asked["phone"], &asked["pendingPhone"]), (&Value::Null, &json!(number)));
    assert_eq!(asked["smsNumber"], PUMP_NUMBER);
    assert!(asked["pendingSince"].as_str().unwrap().ends_with('Z'));
    let code = asked["phoneCode"].as_str().unwrap().to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    assert_eq!(ask_for_phone(karim, number).await["phoneCode"], code.as_str(), "the same code while it waits");
    let jamals = ask_for_phone(jamal, number).await;
    assert_eq!(jamals["pendingPhone"], number, "no PHONE_TAKEN: a number waiting is no one's");

    // Not used until confirmed: no alert goes to it, and its START is refused.
    t.device.poll(false, true).await;
    karim.ok("/api/motor/start", json!({})).await;
    karim.ok("/api/motor/stop", json!({})).await;
    let_the_outbox_run(&app).await;
    assert_eq!(sent_to(&sms, number), Vec::<String>::new(), "alerts go to a confirmed phone only");
    assert_error(&text_in(&app, number, "START", Some(INBOUND_SECRET)).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(karim.status().await["me"]["entry"], Value::Null);

    // A wrong code (counted: five drop the number, below), and the right code from another
    // phone: nothing.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, answer) = text_in(&app, number, wrong, Some(INBOUND_SECRET)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"command": "WRONG_CODE", "reply": ""})));
    assert_error(
        &text_in(&app, "+8801711000099", &code, Some(INBOUND_SECRET)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_eq!(karim.get("/api/alerts/profile").await.1["phone"], Value::Null);

    // The right code from the number, spaced and in Bangla digits: confirmed, and answered there.
    let bangla: String = code.chars().map(|d| char::from_u32(0x09E6 + d.to_digit(10).unwrap()).unwrap()).collect();
    let written = format!("কোড {} {}", &bangla[..4 * 3], &bangla[4 * 3..]);
    let (status, answer) = text_in(&app, number, &written, Some(INBOUND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let confirmed = "Number confirmed: PumpPilot messages now come to this phone. Send START (or START 30 for 30 min), STOP, BAL, or REQ 60 to ask for 60 min.";
    assert_eq!(answer, json!({"command": "CONFIRM", "reply": confirmed}));
    let profile = karim.get("/api/alerts/profile").await.1;
    assert_eq!((&profile["phone"], &profile["pendingPhone"]), (&json!(number), &Value::Null));
    // (No board has polled: the turn is this farmer's, the pump holds, and the reply says so.)
    assert_eq!(
        text_in(&app, number, "START", Some(INBOUND_SECRET)).await.1["reply"],
        "Your turn, but the pump is on hold: the device is offline. No minutes are used until it runs."
    );
    let_the_outbox_run(&app).await;
    until("the confirmation reaches the phone", || {
        sent_to(&sms, number).iter().any(|body| body.contains("Number confirmed"))
    })
    .await;

    // Jamal's code from the same phone: Karim has the number, so nothing changes, and the answer
    // goes to that phone (Karim's bell), not to Jamal.
    let (status, answer) = text_in(&app, number, jamals["phoneCode"].as_str().unwrap(), Some(INBOUND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let in_use = "This number is in use by another account: it was not added to a new one.";
    assert_eq!(answer["reply"], in_use);
    let jamals_now = jamal.get("/api/alerts/profile").await.1;
    assert_eq!((&jamals_now["phone"], &jamals_now["pendingPhone"]), (&Value::Null, &json!(number)));
    assert_eq!(karim.get("/api/alerts/profile").await.1["phone"], number);
    let replies = |bell: Value| -> Vec<String> {
        bell["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "SMS_REPLY")
            .map(|n| n["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(replies(bell(karim).await).contains(&in_use.to_owned()));
    assert_eq!(replies(bell(jamal).await), Vec::<String>::new(), "Jamal learns nothing");
    let_the_outbox_run(&app).await;
    until("the phone hears it is in use", || sent_to(&sms, number).iter().any(|b| b.contains("in use"))).await;
}

/// A code works for 24 hours: after that it confirms nothing, the profile no longer shows it, and
/// setting the number again gives a new one that works. Clearing the phone takes effect at once.
#[tokio::test]
async fn a_code_expires_after_a_day_and_the_number_set_again_gets_a_new_one() {
    let (app, _sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 1, 30).await;
    let number = "+8801711000022";
    let code = ask_for_phone(&t.users[0], number).await["phoneCode"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::from_secs(24 * 60 * 60));
    assert_error(&text_in(&app, number, &code, Some(INBOUND_SECRET)).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    // A day on, Karim signs in again.
    let karim = &app.login("rahim-farmer-0", common::PASSWORD).await;
    let profile = karim.get("/api/alerts/profile").await.1;
    assert_eq!((&profile["pendingPhone"], &profile["phoneCode"]), (&json!(number), &Value::Null));

    let again = ask_for_phone(karim, number).await;
    assert_ne!(again["pendingSince"], profile["pendingSince"], "a new code");
    let fresh = again["phoneCode"].as_str().unwrap();
    assert_eq!(text_in(&app, number, fresh, Some(INBOUND_SECRET)).await.1["command"], "CONFIRM");
    assert_eq!(karim.get("/api/alerts/profile").await.1["phone"], number);

    let cleared = json!({"phone": null, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    let (_, cleared) = karim.request(Method::PUT, "/api/alerts/profile", Some(cleared)).await;
    assert_eq!((&cleared["phone"], &cleared["pendingPhone"]), (&Value::Null, &Value::Null));
    assert_error(&text_in(&app, number, "BAL", Some(INBOUND_SECRET)).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

/// An owner enrols a farmer of their pump who has no app: the number and language of messages;
/// the number waits with a code the farmer texts from that phone, answered in Bangla. Another
/// pump's owner cannot (404), nor can the owner name another tenant (403), nor a farmer (403).
#[tokio::test]
async fn an_owner_enrols_a_farmer_of_their_own_pump_and_the_farmer_confirms_from_the_phone() {
    let (app, _sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 1, 30).await;
    let other = app.tenant("jamila", 1, 0).await;
    let karim = &t.user_ids[0];
    let number = "+8801711000023";
    let path = format!("/api/admin/users/{karim}/phone");
    let enrol = json!({"phone": number, "language": "bn"});
    assert_error(
        &other.admin.request(Method::PUT, &path, Some(enrol.clone())).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(&other.admin.get(&path).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let elsewhere = format!("{path}?adminId={}", other.admin_id);
    assert_error(
        &t.admin.request(Method::PUT, &elsewhere, Some(enrol.clone())).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_error(
        &t.users[0].request(Method::PUT, &path, Some(enrol.clone())).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    for bad in [json!({"phone": "01711000023", "language": "bn"}), json!({"phone": number, "language": "fr"})] {
        assert_error(&t.admin.request(Method::PUT, &path, Some(bad)).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    assert_eq!(t.users[0].get("/api/alerts/profile").await.1["pendingPhone"], Value::Null, "nothing enrolled yet");

    let (status, enrolled) = t.admin.request(Method::PUT, &path, Some(enrol)).await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert_eq!(
        (&enrolled["phone"], &enrolled["pendingPhone"], &enrolled["language"], &enrolled["smsNumber"]),
        (&Value::Null, &json!(number), &json!("bn"), &json!(PUMP_NUMBER))
    );
    assert_eq!(t.admin.get(&path).await.1, enrolled);
    // Who may start this farmer's pump by SMS, once confirmed: the enrolment is in the audit log
    // (only the one that was made: the refused ones above left no line).
    let (_, audit) = t.admin.get("/api/admin/audit?action=farmer.phone").await;
    let lines = audit.as_array().unwrap();
    assert_eq!(lines.len(), 1, "{audit}");
    assert_eq!((&lines[0]["detail"], &lines[0]["targetId"]), (&json!(number), &json!(t.user_ids[0])), "{audit}");
    let farmers = t.users[0].get("/api/alerts/profile").await.1;
    assert_eq!((&farmers["pendingPhone"], &farmers["phoneCode"]), (&json!(number), &enrolled["phoneCode"]));

    let (status, answer) = text_in(&app, number, enrolled["phoneCode"].as_str().unwrap(), Some(INBOUND_SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["reply"].as_str().unwrap().starts_with("নম্বর নিশ্চিত হয়েছে"), "{answer}");
    assert_eq!(t.admin.get(&path).await.1["phone"], number);
}

/// A code other than the one shown, texted from the number waiting, is counted: after five the
/// number is dropped (no code confirms it any more, not even the right one, and no more wrong
/// codes are answered), the phone hears it once by SMS, and the screens that showed the code say
/// why it is gone: the farmer's profile and the owner's view of the farmer. Set again, the number
/// waits with a new code that works.
#[tokio::test]
async fn five_wrong_codes_drop_the_number_waiting_and_its_phone_hears_it_once() {
    let (app, sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 1, 30).await;
    let karim = &t.users[0];
    let number = "+8801711000024";
    let code = ask_for_phone(karim, number).await["phoneCode"].as_str().unwrap().to_owned();
    let wrong = |n: u32| format!("{:06}", (code.parse::<u32>().unwrap() + n) % 1_000_000);
    for n in 1..=4 {
        let (status, answer) = text_in(&app, number, &wrong(n), Some(INBOUND_SECRET)).await;
        assert_eq!((status, answer), (StatusCode::OK, json!({"command": "WRONG_CODE", "reply": ""})), "{n}");
    }
    assert_eq!(karim.get("/api/alerts/profile").await.1["phoneCode"], code.as_str(), "after four it still waits");
    let dropped = "Too many wrong codes: this number was not added. Set it again for a new code.";
    let (status, answer) = text_in(&app, number, &wrong(5), Some(INBOUND_SECRET)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"command": "WRONG_CODE", "reply": dropped})));
    let profile = karim.get("/api/alerts/profile").await.1;
    assert_eq!(
        [&profile["phone"], &profile["pendingPhone"], &profile["phoneCode"], &profile["pendingSince"]],
        [&Value::Null; 4]
    );
    assert_eq!(profile["droppedPhone"], number);
    let owners_view = t.admin.get(&format!("/api/admin/users/{}/phone", t.user_ids[0])).await.1;
    assert_eq!(
        (&owners_view["pendingPhone"], &owners_view["phoneCode"], &owners_view["droppedPhone"]),
        (&Value::Null, &Value::Null, &json!(number))
    );

    // Dropped: the right code confirms nothing now, and a wrong one is answered no more.
    for text in [code.clone(), wrong(6)] {
        assert_error(&text_in(&app, number, &text, Some(INBOUND_SECRET)).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    assert_eq!(karim.get("/api/alerts/profile").await.1["phone"], Value::Null);
    until_sent(&app, || !sent_to(&sms, number).is_empty()).await;
    let answer = format!(r#"{{"to":"{number}","text":"{dropped}"}}"#);
    assert_eq!(sent_to(&sms, number), [answer], "one answer, to the phone that texted, once");
    let bell = bell(karim).await;
    let kept = bell["notifications"].as_array().unwrap().iter().find(|n| n["kind"] == "SMS_REPLY").unwrap();
    assert_eq!(kept["text"], dropped, "the account's bell keeps it");

    // Set again: a new code, which confirms it.
    let again = ask_for_phone(karim, number).await;
    assert_eq!((&again["pendingPhone"], &again["droppedPhone"]), (&json!(number), &Value::Null));
    let fresh = format!("code {}", again["phoneCode"].as_str().unwrap());
    assert_eq!(text_in(&app, number, &fresh, Some(INBOUND_SECRET)).await.1["command"], "CONFIRM");
    assert_eq!(karim.get("/api/alerts/profile").await.1["phone"], number);
}

/// A phone's push token is one account's at a time: turned on by another farmer (the phone passed
/// on, at another pump too), it leaves the first; a phone signing out takes its token out of its
/// own account (`DELETE /api/alerts/push-tokens/{token}`), never out of another's; a token that is
/// not one is refused with a sentence, and no one signed in may take any.
#[tokio::test]
async fn a_phones_push_token_is_one_accounts_and_signing_out_takes_it_away() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    let other = app.tenant("jamila", 1, 0).await;
    let (karim, jamal, salma) = (&t.users[0], &t.users[1], &other.users[0]);
    let phone = "ExponentPushToken[phone-one]";
    let karims_other = "ExponentPushToken[karims-other]";
    let tokens = |client: &common::Client| {
        let client = client.clone();
        async move { client.get("/api/alerts/profile").await.1["pushTokens"].clone() }
    };
    // Karim's two phones register their tokens; the first again (each token once, the newest last).
    let (karims_phone, karims_second) = (
        in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await,
        in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await,
    );
    turn_on_push(&karims_phone, phone).await;
    turn_on_push(&karims_second, karims_other).await;
    turn_on_push(&karims_phone, phone).await;
    assert_eq!(tokens(karim).await, json!([karims_other, phone]), "each token once");
    // The phone passes to Salma, at another pump, who turns notifications on.
    turn_on_push(&in_the_app(&app, "jamila-farmer-0", common::PASSWORD).await, phone).await;
    assert_eq!(tokens(karim).await, json!([karims_other]));
    assert_eq!(tokens(salma).await, json!([phone]));

    let path = |token: &str| format!("/api/alerts/push-tokens/{}", token.replace('[', "%5B").replace(']', "%5D"));
    let (status, after) = jamal.request(Method::DELETE, &path(phone), None).await;
    assert_eq!((status, &after["pushTokens"]), (StatusCode::OK, &json!([])), "{after}");
    assert_eq!(tokens(salma).await, json!([phone]), "not Jamal's to take");
    // Karim signs out on his other phone; Salma on hers.
    let (status, after) = karim.request(Method::DELETE, &path(karims_other), None).await;
    assert_eq!((status, &after["pushTokens"]), (StatusCode::OK, &json!([])), "{after}");
    let (status, after) = salma.request(Method::DELETE, &path(phone), None).await;
    assert_eq!((status, &after["pushTokens"]), (StatusCode::OK, &json!([])), "{after}");
    assert_eq!(salma.request(Method::DELETE, &path(phone), None).await.0, StatusCode::OK, "gone already: the same");
    assert_error(
        &salma.request(Method::DELETE, &path("not-a-token"), None).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    assert_error(
        &app.site.anonymous().request(Method::DELETE, &path(phone), None).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
}

/// A stand-in Expo push service: the tokens of each push request it gets, in order; every
/// message is accepted (receipts are read later and found empty).
async fn expo_push() -> (Arc<Mutex<Vec<Vec<String>>>>, String) {
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    async fn send(State(seen): State<Arc<Mutex<Vec<Vec<String>>>>>, body: Bytes) -> String {
        let messages: Value = serde_json::from_slice(&body).unwrap();
        let messages = messages.as_array().unwrap();
        let mut seen = seen.lock().unwrap();
        seen.push(messages.iter().map(|m| m["to"].as_str().unwrap().to_owned()).collect());
        let request = seen.len();
        let tickets: Vec<Value> =
            (0..messages.len()).map(|i| json!({"status": "ok", "id": format!("ticket-{request}-{i}")})).collect();
        json!({ "data": tickets }).to_string()
    }
    async fn receipts() -> &'static str {
        r#"{"data":{}}"#
    }
    let app = Router::new()
        .route("/push/send", post(send))
        .route("/push/getReceipts", post(receipts))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, url)
}

/// A server that pushes through the stand-in Expo, and what it pushed.
async fn app_pushing() -> (TestApp, Arc<Mutex<Vec<Vec<String>>>>) {
    let (pushes, url) = expo_push().await;
    let app = app_with_alerts(&[("PUMPPILOT_EXPO_PUSH", "on".into()), ("PUMPPILOT_EXPO_PUSH_URL", url)]).await;
    (app, pushes)
}

/// A sign-in in the app: a client with the mobile session's bearer token.
async fn in_the_app(app: &TestApp, username: &str, password: &str) -> common::Client {
    let body = json!({"username": username, "password": password, "deviceName": "phone"});
    let pair = app.anonymous().ok("/api/mobile/login", body).await;
    common::Client { token: Some(pair["accessToken"].as_str().unwrap().to_owned()), ..app.anonymous() }
}

/// Registers `token` as the phone's own, as the app does after every sign-in.
async fn turn_on_push(phone: &common::Client, token: &str) {
    let (status, body) = this_phones_token(phone, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A request of `farmer`'s for minutes that the owner rejects: a notice for the farmer.
async fn rejected_request(owner: &common::Client, farmer: &common::Client) {
    let request = farmer.ok("/api/minute-requests", json!({"minutes": 5})).await;
    owner.ok(&format!("/api/admin/minute-requests/{}/reject", request["id"].as_str().unwrap()), json!({})).await;
}

/// The stolen phone: a farmer signed in on the app turned push on there and on a second phone; the
/// owner gives the farmer a new password, which signs every session out, and each phone's token
/// goes with its session: the profile no longer lists them, the farmer's next notice is pushed to
/// no phone, and a profile saved from a screen read before (which lists both tokens) brings
/// neither back, from the app or from a browser.
#[tokio::test]
async fn a_new_password_from_the_owner_stops_pushes_to_the_phones_signed_out() {
    let (app, pushes) = app_pushing().await;
    let t = app.tenant("rahim", 1, 0).await;
    let (phone_token, second_token) = ("ExponentPushToken[stolen-phone]", "ExponentPushToken[second-phone]");
    let phone = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    let second = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    turn_on_push(&phone, phone_token).await;
    turn_on_push(&second, second_token).await;
    let read_before = phone.get("/api/alerts/profile").await.1;
    assert_eq!(read_before["pushTokens"], json!([phone_token, second_token]));
    rejected_request(&t.admin, &t.users[0]).await;
    until_sent(&app, || !pushes.lock().unwrap().is_empty()).await;
    assert_eq!(*pushes.lock().unwrap(), [vec![phone_token.to_owned(), second_token.to_owned()]], "both phones hear it");

    let (status, reset) = t.admin.post(&format!("/api/admin/users/{}/password", t.user_ids[0]), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_error(&phone.get("/api/alerts/profile").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let password = reset["password"].as_str().unwrap();
    let farmer = app.login("rahim-farmer-0", password).await;
    assert_eq!(
        farmer.get("/api/alerts/profile").await.1["pushTokens"],
        json!([]),
        "the signed-out phones' tokens are gone"
    );
    // The list read before, saved from the farmer's new app session and from a browser: no token
    // comes back (a save never adds one).
    let stale = json!({"phone": null, "pushTokens": read_before["pushTokens"], "language": "bn", "muted": [],
        "quietHours": null});
    let again = in_the_app(&app, "rahim-farmer-0", password).await;
    for client in [&again, &farmer] {
        let (status, saved) = client.request(Method::PUT, "/api/alerts/profile", Some(stale.clone())).await;
        assert_eq!((status, &saved["pushTokens"], &saved["language"]), (StatusCode::OK, &json!([]), &json!("bn")));
    }
    rejected_request(&t.admin, &farmer).await;
    until_sent(&app, || true).await;
    assert_eq!(pushes.lock().unwrap().len(), 1, "the next notice is pushed to no phone");
    // The farmer's own phone, signed in again, registers and hears the one after.
    let new_token = "ExponentPushToken[the-farmers-new-phone]";
    turn_on_push(&again, new_token).await;
    rejected_request(&t.admin, &farmer).await;
    until_sent(&app, || pushes.lock().unwrap().len() == 2).await;
    assert_eq!(pushes.lock().unwrap()[1], [new_token]);
}

/// One's own password change, from the app on one phone, signs the account's other sessions
/// out: the other phone's push token goes with its session, this phone's stays.
#[tokio::test]
async fn ones_own_password_change_keeps_this_phones_push_token_and_takes_the_others() {
    let app = spawn_app().await;
    app.tenant("rahim", 1, 0).await;
    let (this_token, other_token) = ("ExponentPushToken[this-phone]", "ExponentPushToken[other-phone]");
    let this_phone = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    let other_phone = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    turn_on_push(&this_phone, this_token).await;
    turn_on_push(&other_phone, other_token).await;
    assert_eq!(this_phone.get("/api/alerts/profile").await.1["pushTokens"], json!([this_token, other_token]));

    let change = json!({"currentPassword": common::PASSWORD, "newPassword": "a new password"});
    assert_eq!(this_phone.post("/api/auth/password", change).await.0, StatusCode::NO_CONTENT);
    assert_error(&other_phone.get("/api/alerts/profile").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(this_phone.get("/api/alerts/profile").await.1["pushTokens"], json!([this_token]));
}

/// The path of `PUT` and `DELETE /api/alerts/push-tokens/{token}` for `token`, percent-encoded.
fn push_token_path(token: &str) -> String {
    format!("/api/alerts/push-tokens/{}", token.replace('[', "%5B").replace(']', "%5D"))
}

/// Registers `token` as the phone's own, as the app does after every sign-in: answers the status
/// and the caller's profile after.
async fn this_phones_token(client: &common::Client, token: &str) -> (StatusCode, Value) {
    client.request(Method::PUT, &push_token_path(token), None).await
}

/// The phone whose app session lapsed without signing out (the app reinstalled, its storage
/// cleared) signs in again while its token is still listed under the old session, and registers
/// the token as its own: the token takes the new session, so when the old one is purged, a month
/// after its sign-in, the token stays and the next notice is pushed to it. A phone left in a drawer,
/// whose session lapsed too and that never signed in again, loses its token in the same purge.
#[tokio::test]
async fn a_phone_signed_in_again_keeps_its_pushes_when_its_lapsed_session_is_purged() {
    const DAY: u64 = 24 * 60 * 60;
    let (app, pushes) = app_pushing().await;
    app.tenant("rahim", 1, 0).await;
    let (token, drawer_token) = ("ExponentPushToken[reinstalled]", "ExponentPushToken[in-a-drawer]");
    let lapsed = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    let drawer = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    assert_eq!(this_phones_token(&lapsed, token).await.0, StatusCode::OK);
    assert_eq!(this_phones_token(&drawer, drawer_token).await.0, StatusCode::OK);

    // Twenty days on, the app, reinstalled, signs in afresh: the old session was never ended, and
    // the profile lists the token under it.
    app.clock.advance(Duration::from_secs(20 * DAY));
    let again = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    let (status, view) = this_phones_token(&again, token).await;
    assert_eq!((status, &view["pushTokens"]), (StatusCode::OK, &json!([drawer_token, token])), "{view}");

    // Eleven days more: both old sessions' refresh tokens expired, and the hourly sweep purges them.
    app.clock.advance(Duration::from_secs(11 * DAY));
    until("the hourly purge ran", || app.waits_for(3_600_000) >= 2).await;
    let (owner, farmer) =
        (app.login("rahim", common::PASSWORD).await, app.login("rahim-farmer-0", common::PASSWORD).await);
    let listed = farmer.get("/api/alerts/profile").await.1["pushTokens"].clone();
    assert_eq!(listed, json!([token]), "the drawer's token went with its session; this phone's stays");
    rejected_request(&owner, &farmer).await;
    until_sent(&app, || !pushes.lock().unwrap().is_empty()).await;
    assert_eq!(*pushes.lock().unwrap(), [vec![token.to_owned()]], "the next notice is pushed to the phone");
}

/// Only the app registers a phone's own token: a browser session is refused with a sentence, and a
/// token that is not one is refused as the profile refuses it, both changing nothing. The same
/// call again changes nothing; the newest ten tokens are kept. A token another account had (the
/// phone passed on, at another pump too) leaves it, and lives with the new account's session: the
/// new account's owner signing every session out (a new password) takes it.
#[tokio::test]
async fn a_phones_own_token_is_registered_from_the_app_alone_and_moves_from_another_account() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let other = app.tenant("jamila", 1, 0).await;
    let token = "ExponentPushToken[passed-on]";
    let karim = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    let (status, view) = this_phones_token(&karim, token).await;
    assert_eq!((status, &view["pushTokens"]), (StatusCode::OK, &json!([token])), "{view}");
    assert_eq!(view["language"], "en", "the profile made as the profile route makes it");
    assert_eq!(this_phones_token(&karim, token).await, (StatusCode::OK, view.clone()), "again: the same");

    let (status, refused) = this_phones_token(&t.users[0], "ExponentPushToken[a-browser]").await;
    assert_error(&(status, refused.clone()), StatusCode::FORBIDDEN, "FORBIDDEN");
    assert!(refused["error"]["message"].as_str().unwrap().contains("only the app"), "{refused}");
    assert_error(&this_phones_token(&karim, "not-a-token").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&this_phones_token(&app.anonymous(), token).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(karim.get("/api/alerts/profile").await.1, view, "nothing changed");

    // A profile saved from a screen read before the phone registered does not take its token off;
    // from another session of Karim's (the dashboard) it does, as before.
    let stale = json!({"phone": null, "pushTokens": [], "language": "bn", "muted": [], "quietHours": null});
    let (status, saved) = karim.request(Method::PUT, "/api/alerts/profile", Some(stale.clone())).await;
    assert_eq!((status, &saved["pushTokens"], &saved["language"]), (StatusCode::OK, &json!([token]), &json!("bn")));
    let on_the_web = app.login("rahim-farmer-0", common::PASSWORD).await;
    let (status, saved) = on_the_web.request(Method::PUT, "/api/alerts/profile", Some(stale)).await;
    assert_eq!((status, &saved["pushTokens"]), (StatusCode::OK, &json!([])), "{saved}");
    let english = json!({"phone": null, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    assert_eq!(karim.request(Method::PUT, "/api/alerts/profile", Some(english)).await.0, StatusCode::OK);
    assert_eq!(this_phones_token(&karim, token).await, (StatusCode::OK, view.clone()), "registered again");

    // Ten more phones of Karim's: the oldest token leaves.
    let more: Vec<String> = (0..10).map(|i| format!("ExponentPushToken[phone-{i}]")).collect();
    for phone in &more {
        assert_eq!(this_phones_token(&karim, phone).await.0, StatusCode::OK);
    }
    assert_eq!(karim.get("/api/alerts/profile").await.1["pushTokens"], json!(more), "the newest ten");
    assert_eq!(this_phones_token(&karim, token).await.0, StatusCode::OK);
    let kept: Vec<&str> = more[1..].iter().map(String::as_str).chain([token]).collect();
    assert_eq!(karim.get("/api/alerts/profile").await.1["pushTokens"], json!(kept));

    // The phone passes to Salma, at another pump.
    let salma = in_the_app(&app, "jamila-farmer-0", common::PASSWORD).await;
    let (status, view) = this_phones_token(&salma, token).await;
    assert_eq!((status, &view["pushTokens"]), (StatusCode::OK, &json!([token])), "{view}");
    let kept: Vec<&str> = more[1..].iter().map(String::as_str).collect();
    assert_eq!(karim.get("/api/alerts/profile").await.1["pushTokens"], json!(kept), "it left Karim");
    let (status, reset) =
        other.admin.post(&format!("/api/admin/users/{}/password", other.user_ids[0]), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let salma = app.login("jamila-farmer-0", reset["password"].as_str().unwrap()).await;
    assert_eq!(salma.get("/api/alerts/profile").await.1["pushTokens"], json!([]), "it went with her session");
}

/// A phone whose session ends while it registers its token (signed out by a new password on
/// another server of the fleet, before this one heard of it) gets no token: 401
/// `UNAUTHENTICATED`, as its next call would, and its profile is as it was.
#[tokio::test]
async fn a_phone_whose_session_ended_meanwhile_registers_no_token() {
    use pumppilot_server::clock::Clock;
    use pumppilot_store::{SessionScope, Store};
    let behind = Arc::new(std::sync::OnceLock::<Arc<dyn Store>>::new());
    let app = common::spawn_app_with({
        let behind = behind.clone();
        move |store| {
            let _ = behind.set(store.clone());
            store
        }
    })
    .await;
    let t = app.tenant("rahim", 1, 0).await;
    let karim = in_the_app(&app, "rahim-farmer-0", common::PASSWORD).await;
    turn_on_push(&karim, "ExponentPushToken[first]").await;
    let store = behind.get().unwrap();
    let user = t.user_ids[0].parse().unwrap();
    // The session ends behind this server's back: it still holds it in memory.
    store.revoke_sessions(SessionScope::User(user), app.clock.now()).await.unwrap();
    let ended = store.alert_profile(user).await.unwrap();
    assert_eq!(ended.as_ref().map(|p| p.push_tokens.len()), Some(0), "the first token went with it");
    let refused = this_phones_token(&karim, "ExponentPushToken[second]").await;
    assert_error(&refused, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_eq!(store.alert_profile(user).await.unwrap(), ended, "nothing written");
}

/// On SQLite, where one server runs, each text taken is claimed in the store: sent again to the
/// server restarted on the same file, it is refused and Salma's run goes on; and a phone answered
/// with the help is not answered again within ten minutes, across the restart too.
#[tokio::test]
async fn a_text_taken_is_refused_after_the_server_restarts_on_its_sqlite_file() {
    use pumppilot_server::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let clock = ManualClock::starting_now();
    let server = || {
        let alerts = alert_settings(&taking_texts());
        common::spawn_app_at_configured(&url, None, clock.clone(), move |settings| pumppilot_server::Settings {
            alerts,
            ..settings
        })
    };
    let a = server().await;
    let t = salma_at(&a).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let stop = salmas("STOP", unix_now(&a));
    assert_eq!(stop.send(&a).await.1["command"], "STOP");
    assert_eq!(t.users[0].status().await["me"]["entry"], Value::Null);
    let hello = salmas("hello", unix_now(&a));
    assert_eq!(
        hello.send(&a).await.1["reply"],
        "Send START (or START 30 for 30 min), STOP, BAL, or REQ 60 to ask for 60 min."
    );
    a.shutdown().await;

    let b = server().await;
    let salma = b.login("rahim-farmer-0", common::PASSWORD).await;
    salma.ok("/api/motor/start", json!({})).await;
    assert_refused(&stop.send(&b).await, "taken already");
    assert_ne!(salma.status().await["me"]["entry"], Value::Null, "her new run goes on");
    let (status, answer) = salmas("hello again", unix_now(&b)).send(&b).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"command": "HELP", "reply": ""})));
}

/// Found by the audit: a farmer who pressed Start with the pump free (in the app or by text) paid
/// for an SMS saying their turn came. Only a farmer whose turn came after a wait in line hears it.
#[tokio::test]
async fn only_a_farmer_whose_turn_came_after_a_wait_gets_the_sms_that_it_came() {
    let (sms, url) = sms_gateway().await;
    let app = app_with_alerts(&[
        ("PUMPPILOT_SMS_URL", url),
        ("PUMPPILOT_SMS_TEMPLATE", r#"{"to":"{to}","text":"{text}"}"#.into()),
        ("PUMPPILOT_ALERT_OFFLINE_MINUTES", "0".into()),
    ])
    .await;
    let t = app.tenant("rahim", 2, 30).await;
    let (karim, jamal) = (&t.users[0], &t.users[1]);
    for (client, phone) in [(karim, "+8801711000001"), (jamal, "+8801711000002")] {
        let profile = json!({"phone": phone, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
        with_confirmed_phone(&app, client, profile).await;
    }
    t.device.poll(false, true).await;
    karim.ok("/api/motor/start", json!({})).await;
    jamal.ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(60), &t.device, false, true).await;
    karim.ok("/api/motor/stop", json!({})).await;
    until_sent(&app, || sms.lock().unwrap().len() >= 2).await;
    let mut seen = sms.lock().unwrap().clone();
    seen.sort();
    assert_eq!(
        seen,
        [
            r#"{"to":"+8801711000001","text":"Your run ended (you stopped it): 1 min used, 29 min left."}"#,
            r#"{"to":"+8801711000002","text":"Your turn came: the pump is starting for you."}"#,
        ]
    );
    assert_eq!(kinds(&bell(karim).await), ["RUN_ENDED"], "Karim pressed Start: nothing to tell him");
}

/// Found by the audit: the firmware says `reset` until an answer reaches it, so an answer lost
/// told the owner of one restart twice, and no alert said which device. A restart is told once
/// per boot (the uptime says which boot it is), by the name the owner gave the device.
#[tokio::test]
async fn a_device_restart_is_told_to_its_owner_once_per_boot_by_the_devices_name() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 0, 0).await;
    let poll = |query: &'static str| {
        let device = t.device.client.clone();
        async move {
            let path = format!("/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw=test&{query}");
            let (status, body) = device.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    poll("uptimeMs=600000").await;
    app.clock.advance(Duration::from_secs(30));
    // It hangs and its watchdog restarts it; its first poll, 4 s after boot, says why.
    poll("reset=WATCHDOG&uptimeMs=4000").await;
    // The answer is lost on the way: 2 s later it says it again.
    app.clock.advance(Duration::from_secs(2));
    poll("reset=WATCHDOG&uptimeMs=6000").await;
    let owner = bell(&t.admin).await;
    assert_eq!(kinds(&owner), ["DEVICE_RESET"], "one boot, told once");
    let text = owner["notifications"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(r#"The device "rahim pump" restarted: "#), "{text}");

    // A sag restarts it later: a new boot, told again.
    app.clock.advance(Duration::from_secs(60));
    poll("uptimeMs=66000").await;
    app.clock.advance(Duration::from_secs(100));
    poll("reset=BROWN_OUT&uptimeMs=3000").await;
    assert_eq!(kinds(&bell(&t.admin).await), ["DEVICE_RESET", "DEVICE_RESET"]);
}

/// The words of the texts the stand-in gateway sent to `phone`, in order.
fn texts_to(sms: &Arc<Mutex<Vec<String>>>, phone: &str) -> Vec<String> {
    let text = |body: &String| serde_json::from_str::<Value>(body).unwrap()["text"].as_str().unwrap().to_owned();
    sent_to(sms, phone).iter().map(text).collect()
}

/// Found by the alerts audit: a farmer who texted STOP paid for two SMS, the answer and the run's
/// end. The answer says what the run's end says (the minutes used, rounded up, and the balance,
/// rounded down) and is the one SMS they get; the run's end stays in their bell. A run stopped
/// from the app still ends by SMS.
#[tokio::test]
async fn a_stop_texted_from_a_feature_phone_is_answered_by_one_sms_that_says_what_the_run_used() {
    let (app, sms) = app_taking_codes().await;
    let t = salma_at(&app).await;
    let salma = &t.users[0];
    assert_eq!(salmas("START", unix_now(&app)).send(&app).await.1["reply"], "Your pump is running. Balance 30 min.");
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(125), &t.device, false, true).await;
    let (status, answer) = salmas("STOP", unix_now(&app)).send(&app).await;
    assert_eq!((status, &answer["command"]), (StatusCode::OK, &json!("STOP")), "{answer}");
    let reply = answer["reply"].as_str().unwrap().to_owned();
    let available = salma.status().await["me"]["availableSeconds"].as_i64().unwrap();
    assert!((1800 - 130..=1800 - 125).contains(&available), "{available}");
    let used = (1800 - available + 59) / 60;
    assert_eq!(reply, format!("Stopped: {used} min used, {} min left.", available / 60));
    let bell = bell(salma).await;
    let ended = bell["notifications"].as_array().unwrap().iter().find(|n| n["kind"] == "RUN_ENDED").unwrap();
    let ended = ended["text"].as_str().unwrap();
    assert!(ended.ends_with(reply.trim_start_matches("Stopped: ")), "the same words: {ended} / {reply}");

    until_sent(&app, || texts_to(&sms, SALMA).len() >= 2).await;
    assert_eq!(
        texts_to(&sms, SALMA),
        ["Your pump is running. Balance 30 min.", reply.as_str()],
        "the answers, and no run's end"
    );

    // Started and stopped from the app, the run's end goes by SMS.
    salma.ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(61), &t.device, false, true).await;
    salma.ok("/api/motor/stop", json!({})).await;
    until_sent(&app, || texts_to(&sms, SALMA).len() >= 3).await;
    let sent = texts_to(&sms, SALMA);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].starts_with("Your run ended (you stopped it): 2 min used, "), "{sent:?}");
}

/// A farmer who texted START when the pump was on hold paid for two SMS: the answer ("your turn,
/// but the pump is on hold: …") and, once the hold had lasted a minute, the hold. The answer is the
/// one SMS they get; the hold stays in their bell. A later hold of the same run (it ran, then load
/// shedding came again) is news, by SMS as ever.
#[tokio::test]
async fn a_start_texted_onto_a_held_pump_is_answered_by_one_sms_and_its_hold_stays_in_the_bell() {
    let (app, sms) = app_taking_codes().await;
    let t = salma_at(&app).await;
    let salma = &t.users[0];
    t.device.poll(true, true).await;
    let (status, answer) = salmas("START", unix_now(&app)).send(&app).await;
    assert_eq!((status, &answer["command"]), (StatusCode::OK, &json!("START")), "{answer}");
    let on_hold = "Your turn, but the pump is on hold: load shedding. No minutes are used until it runs.";
    assert_eq!(answer["reply"], on_hold);
    // Load shedding lasts well past the minute after which a hold is told.
    app.pass_polling(Duration::from_secs(90), &t.device, true, true).await;
    until_sent(&app, || !texts_to(&sms, SALMA).is_empty()).await;
    assert_eq!(texts_to(&sms, SALMA), [on_hold], "the answer, and no hold");
    let held = "Your run is on hold: load shedding. No minutes are used while it is on hold.";
    let bell_texts = |bell: Value, kind: &str| -> Vec<String> {
        let notices = bell["notifications"].as_array().unwrap().clone();
        notices.iter().filter(|n| n["kind"] == kind).map(|n| n["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(bell_texts(bell(salma).await, "RUN_HELD"), [held], "the bell still has the hold");

    // The grid comes back and the run runs; load shedding comes again and lasts: news by SMS.
    app.pass_polling(Duration::from_secs(30), &t.device, false, true).await;
    app.pass_polling(Duration::from_secs(90), &t.device, true, true).await;
    until_sent(&app, || texts_to(&sms, SALMA).len() >= 3).await;
    assert_eq!(texts_to(&sms, SALMA), [on_hold, "Your run is running again.", held]);
    assert_eq!(bell_texts(bell(salma).await, "RUN_HELD"), [held, held]);
}

/// The answer to a START texted onto a held pump said the hold, so the pump running again is news
/// even when it comes before the hold would have been sent: a farmer on a feature phone, told "on
/// hold", would otherwise never hear that the pump runs (the worker dropped a resume with a hold
/// no one had heard of).
#[tokio::test]
async fn a_start_texted_onto_a_held_pump_that_soon_runs_is_told_it_runs() {
    let (app, sms) = app_taking_codes().await;
    let t = salma_at(&app).await;
    t.device.poll(true, true).await;
    let (_, answer) = salmas("START", unix_now(&app)).send(&app).await;
    let on_hold = "Your turn, but the pump is on hold: load shedding. No minutes are used until it runs.";
    assert_eq!(answer["reply"], on_hold);
    // The grid comes back within the minute after which a hold is told.
    app.pass_polling(Duration::from_secs(20), &t.device, true, true).await;
    app.pass_polling(Duration::from_secs(90), &t.device, false, true).await;
    until_sent(&app, || texts_to(&sms, SALMA).len() >= 2).await;
    assert_eq!(texts_to(&sms, SALMA), [on_hold, "Your run is running again."]);
}

/// Found by the alerts audit: a farmer whose account is suspended got no answer at all, and
/// texted again and again. They are told, in their language, once in ten minutes per phone (as the
/// help), and nothing else happens; once let back in, their texts are obeyed.
#[tokio::test]
async fn a_suspended_farmer_who_texts_is_told_the_account_is_paused_once_in_ten_minutes() {
    let (app, sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 2, 30).await;
    const JAMAL: &str = "+8801711000002";
    register_phone(&app, &t.users[0], SALMA).await;
    let profile = json!({"phone": JAMAL, "pushTokens": [], "language": "bn", "muted": [], "quietHours": null});
    with_confirmed_phone(&app, &t.users[1], profile).await;
    t.device.poll(false, true).await;
    for id in &t.user_ids {
        t.admin.ok(&format!("/api/admin/users/{id}/suspend"), json!({})).await;
    }

    let paused = json!({"command": "PAUSED", "reply": "Your account is paused. Ask the pump owner."});
    let (status, answer) = salmas("START", unix_now(&app)).send(&app).await;
    assert_eq!((status, &answer), (StatusCode::OK, &paused));
    let (_, answer) = text_in(&app, JAMAL, "চালু", Some(INBOUND_SECRET)).await;
    assert_eq!(answer, json!({"command": "PAUSED", "reply": "আপনার অ্যাকাউন্ট স্থগিত। পাম্প মালিককে বলুন।"}));
    // Texted again within ten minutes: not answered again (an auto-reply would trade SMS without
    // end); after them, answered.
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(salmas("BAL", unix_now(&app)).send(&app).await.1, json!({"command": "PAUSED", "reply": ""}));
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(salmas("STOP", unix_now(&app)).send(&app).await.1, paused);
    let owner = t.admin.get("/api/admin/users").await.1;
    let wallets: Vec<i64> =
        owner.as_array().unwrap().iter().map(|u| u["availableSeconds"].as_i64().unwrap_or_default()).collect();
    assert!(wallets.iter().all(|seconds| *seconds == 1800), "nothing else happened: {owner}");
    assert_eq!(app.running.app.store.tenants_with_runs().await.unwrap(), [], "no run was started");

    until_sent(&app, || texts_to(&sms, SALMA).len() >= 2 && !texts_to(&sms, JAMAL).is_empty()).await;
    assert_eq!(texts_to(&sms, SALMA), ["Your account is paused. Ask the pump owner."; 2]);
    assert_eq!(texts_to(&sms, JAMAL), ["আপনার অ্যাকাউন্ট স্থগিত। পাম্প মালিককে বলুন।"]);

    let salma_id = &t.user_ids[0];
    t.admin.ok(&format!("/api/admin/users/{salma_id}/unsuspend"), json!({})).await;
    app.clock.advance(Duration::from_secs(1));
    t.device.poll(false, true).await;
    let (_, answer) = salmas("START", unix_now(&app)).send(&app).await;
    assert_eq!(answer, json!({"command": "START", "reply": "Your pump is running. Balance 30 min."}));
}

/// Found by the alerts audit: the owner's "new request" stayed unread in the bell after the
/// request was decided, and one not sent yet still went out by SMS. A decision (the owner's, or the
/// master's for the pump) marks it read and leaves it unsent; a request still waiting is told.
#[tokio::test]
async fn an_owners_new_request_alert_is_settled_once_the_request_is_decided() {
    let (app, sms) = app_taking_codes().await;
    let t = app.tenant("rahim", 3, 0).await;
    const RAHIM: &str = "+8801711000009";
    let profile = json!({"phone": RAHIM, "pushTokens": [], "language": "en", "muted": [], "quietHours": null});
    with_confirmed_phone(&app, &t.admin, profile).await;
    let asked: Vec<String> = {
        let mut ids = Vec::new();
        for (farmer, minutes) in t.users.iter().zip([45, 20, 10]) {
            let request = farmer.ok("/api/minute-requests", json!({"minutes": minutes})).await;
            ids.push(request["id"].as_str().unwrap().to_owned());
        }
        ids
    };
    assert_eq!(bell(&t.admin).await["unread"], 3);
    t.admin.ok(&format!("/api/admin/minute-requests/{}/approve", asked[0]), json!({})).await;
    let master = app.site.master().await;
    master.ok(&format!("/api/admin/minute-requests/{}/reject?adminId={}", asked[1], t.admin_id), json!({})).await;

    let owner = bell(&t.admin).await;
    assert_eq!(owner["unread"], 1, "{owner}");
    let unread: Vec<&str> = owner["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["read"] == false)
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(unread, ["Farmer 2 asks for 10 min."], "the request still waiting");
    assert_eq!(
        bell(&t.users[0]).await["notifications"][0]["text"],
        "Your request for 45 min was approved. Balance 45 min."
    );

    until_sent(&app, || !texts_to(&sms, RAHIM).is_empty()).await;
    // Only the request still waiting, with the number to answer it by (the server takes texts).
    let texts = texts_to(&sms, RAHIM);
    let said = "Farmer 2 asks for 10 min. Reply OK ";
    assert!(texts.len() == 1 && texts[0].starts_with(said), "{texts:?}");
    let number = &texts[0][said.len()..said.len() + 4];
    assert_eq!(texts[0], format!("{said}{number} or NO {number}."));
}

/// Found by the alerts audit: "the motor did not start" did not say which device, as the other
/// owner alerts do.
#[tokio::test]
async fn a_motor_that_did_not_start_is_told_to_its_owner_by_the_devices_name() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let poll = |query: &'static str| t.device.poll_with(query);
    poll("relay=0").await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(poll("relay=0&feedback=0&relayOff=NO_COMMAND").await["motor"], "ON");
    // Its relay closes, but the feedback input never says the motor runs: the board gives up
    // (each poll within the test's lease of 1.5 s).
    app.clock.advance(Duration::from_secs(1));
    poll("relay=1&feedback=0").await;
    app.clock.advance(Duration::from_secs(1));
    poll("relay=0&feedback=0&relayOff=NO_FEEDBACK").await;
    assert_eq!(t.users[0].status().await["me"]["entry"]["holdReason"], "NO_FEEDBACK");
    let owner = bell(&t.admin).await;
    assert_eq!(kinds(&owner), ["RELAY_NO_FEEDBACK"]);
    let named = "The device \"rahim pump\" switched its relay on, but the motor did not confirm it runs. Please \
                 check the pump.";
    assert_eq!(owner["notifications"][0]["text"], named);

    // An older board does not say why its relay is open: one opened with the feedback input off,
    // the grid up and the pump ready is the same, and named the same.
    t.users[0].ok("/api/motor/stop", json!({})).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(poll("relay=0&feedback=0").await["motor"], "ON");
    app.clock.advance(Duration::from_secs(1));
    poll("relay=1&feedback=0").await;
    app.clock.advance(Duration::from_secs(1));
    poll("relay=0&feedback=0").await;
    let owner = bell(&t.admin).await;
    assert_eq!(kinds(&owner), ["RELAY_NO_FEEDBACK", "RELAY_NO_FEEDBACK"]);
    assert_eq!(owner["notifications"][0]["text"], named);
}
