//! Property-based fuzzing of every parser of outside bytes, over real HTTP: JSON bodies of every
//! endpoint that takes one, the device poll's query and body, card UIDs, path ids, and the
//! settings read from the environment. Whatever arrives, the server answers without a panic and
//! without a 5xx, and every refusal is this API's JSON error with a code.

mod common;

use common::{Client, TestApp, spawn_app};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

/// Field names the endpoints read, so generated objects reach past "unknown field".
const FIELDS: &[&str] = &[
    "username",
    "password",
    "name",
    "minutes",
    "userId",
    "uid",
    "note",
    "reason",
    "refreshToken",
    "loadShedding",
    "ready",
    "relay",
    "fw",
    "uptimeMs",
    "rssi",
    "reset",
    "feedback",
    "reader",
    "relayOff",
    "minOffMs",
    "gridSettleMs",
    "maxStartsPerHour",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0i64), any::<i64>()].prop_map(Value::from),
        prop_oneof![Just(u64::MAX), any::<u64>()].prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f\\u{202a}-\\u{202e}a-z0-9]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object of the endpoints' own field names with values of any type.
fn known_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..6)
        .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

/// Bytes as they may arrive: garbage, any JSON, or an object of known fields.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..160),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        known_object().prop_map(|v| v.to_string().into_bytes()),
        known_object().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// Any bytes, percent-encoded into a query string or path segment.
fn encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(
            &[
                "loadShedding",
                "ready",
                "relay",
                "fw",
                "uptimeMs",
                "rssi",
                "reset",
                "feedback",
                "reader",
                "relayOff",
                "wait",
                "seq",
                "adminId"
            ][..]
        )
        .prop_map(str::to_string),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| encoded(&b)),
    ];
    let value = prop_oneof![
        prop::sample::select(&["0", "1", "2", "-1", "true", "", "18446744073709551616", "99999999999"][..])
            .prop_map(str::to_string),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| encoded(&b)),
    ];
    prop::collection::vec((key, value), 0..8)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// What every answer must be: no 5xx; a refusal is `{"error": {"code", "message"}}`.
async fn answer_is_sound(request: reqwest::RequestBuilder, what: &str) -> Result<(), TestCaseError> {
    let answer = request.send().await.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    prop_assert!(status.as_u16() < 500, "{what}: {status} {text}");
    if status.as_u16() >= 400 {
        let body: Value =
            serde_json::from_str(&text).map_err(|_| TestCaseError::fail(format!("{what}: {status} {text}")))?;
        prop_assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{what}: {body}");
    }
    Ok(())
}

fn send(caller: &Client, method: Method, path: &str) -> reqwest::RequestBuilder {
    let request = caller.http.request(method, format!("{}{path}", caller.base));
    match &caller.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

struct World {
    app: TestApp,
    master: Client,
    admin: Client,
    farmer: Client,
    device: Client,
    farmer_id: String,
}

fn world(rt: &tokio::runtime::Runtime) -> World {
    rt.block_on(async {
        let app = spawn_app().await;
        let t = app.tenant("rahim", 1, 10).await;
        let master = app.master().await;
        World {
            master,
            admin: t.admin.clone(),
            farmer: t.users[0].clone(),
            device: t.device.client.clone(),
            farmer_id: t.user_ids[0].clone(),
            app,
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn every_json_body_answers_json_and_never_5xx() {
    let rt = runtime();
    let w = world(&rt);
    let anon = w.app.anonymous();
    let user = w.farmer_id.as_str();
    let endpoints: Vec<(Method, String, &Client)> = vec![
        (Method::POST, "/api/auth/login".into(), &anon),
        (Method::POST, "/api/mobile/login".into(), &anon),
        (Method::POST, "/api/mobile/refresh".into(), &anon),
        (Method::POST, "/api/master/admins".into(), &w.master),
        (Method::POST, "/api/admin/users".into(), &w.admin),
        (Method::POST, "/api/admin/recharge".into(), &w.admin),
        (Method::POST, "/api/admin/corrections".into(), &w.admin),
        (Method::POST, "/api/admin/devices".into(), &w.admin),
        (Method::PUT, "/api/admin/pump/motor".into(), &w.admin),
        (Method::POST, format!("/api/admin/queue/{user}/remove"), &w.admin),
        (Method::POST, "/api/admin/motor/stop".into(), &w.admin),
        (Method::POST, format!("/api/admin/users/{user}/rfid"), &w.admin),
        (Method::POST, "/api/motor/start".into(), &w.farmer),
        (Method::POST, "/api/minute-requests".into(), &w.farmer),
        (Method::POST, "/api/esp32/poll".into(), &w.device),
        (Method::POST, "/api/esp32/rfid".into(), &w.device),
    ];
    for (method, path, caller) in &endpoints {
        runner(128)
            .run(
                &(body(), prop::sample::select(&["application/json", "text/plain", "application/x+json"][..])),
                |(bytes, content_type)| {
                    rt.block_on(answer_is_sound(
                        send(caller, method.clone(), path).header("content-type", content_type).body(bytes),
                        &format!("{method} {path}"),
                    ))
                },
            )
            .unwrap();
    }
    rt.block_on(async move { drop(w) });
}

#[test]
fn poll_queries_path_ids_and_card_uids_answer_json_and_never_5xx() {
    let rt = runtime();
    let w = world(&rt);
    runner(512)
        .run(&query(), |query| {
            rt.block_on(answer_is_sound(send(&w.device, Method::GET, &format!("/api/esp32/poll?{query}")), "poll"))
        })
        .unwrap();
    runner(128)
        .run(&prop::collection::vec(any::<u8>(), 0..40), |bytes| {
            let id = encoded(&bytes);
            rt.block_on(async {
                answer_is_sound(send(&w.admin, Method::DELETE, &format!("/api/admin/cards/{id}")), "card uid").await?;
                answer_is_sound(send(&w.admin, Method::GET, &format!("/api/admin/users/{id}")), "user id").await?;
                answer_is_sound(send(&w.admin, Method::GET, &format!("/api/admin/users?adminId={id}")), "adminId").await
            })
        })
        .unwrap();
    runner(128)
        .run(&".{0,64}", |uid| {
            rt.block_on(async {
                let tap = send(&w.device, Method::POST, "/api/esp32/rfid").json(&json!({"uid": uid}));
                answer_is_sound(tap, "tap").await?;
                let bind = send(&w.admin, Method::POST, &format!("/api/admin/users/{}/rfid", w.farmer_id))
                    .json(&json!({"uid": uid}));
                answer_is_sound(bind, "bind").await
            })
        })
        .unwrap();
    // The fuzzing changed nothing it should not: the farmer still has their minutes.
    let status = rt.block_on(w.farmer.get("/api/wallet"));
    assert_eq!(status.0, StatusCode::OK);
    rt.block_on(async move { drop(w) });
}

#[test]
fn settings_from_any_environment_are_read_or_refused_never_a_panic() {
    const VARIABLES: &[&str] = &[
        "PUMPPILOT_BIND",
        "PUMPPILOT_DATABASE_URL",
        "PUMPPILOT_SECRET",
        "PUMPPILOT_DEVICE_LEASE_MS",
        "PUMPPILOT_POLL_INTERVAL_MS",
        "PUMPPILOT_MIN_OFF_MS",
        "PUMPPILOT_GRID_SETTLE_MS",
        "PUMPPILOT_MAX_STARTS_PER_HOUR",
        "PUMPPILOT_MAX_HASHING",
        "PUMPPILOT_MASTER_USERNAME",
        "PUMPPILOT_MASTER_PASSWORD",
        "PUMPPILOT_TRUSTED_PROXIES",
        "PUMPPILOT_METRICS_TOKEN",
    ];
    let value = prop_oneof![
        ".{0,40}",
        "[0-9]{0,25}",
        "-?[0-9]{1,12}",
        "([0-9a-f:.]{1,20}(/[0-9]{1,3})?, ?){0,3}",
        "sqlite:.{0,10}|mongodb://.{0,10}",
    ];
    runner(1024)
        .run(&prop::collection::vec((prop::sample::select(VARIABLES), value), 0..8), |pairs| {
            let result = pumppilot_server::Settings::from_lookup(|name| {
                pairs.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
            });
            if let Err(err) = result {
                prop_assert!(VARIABLES.contains(&err.variable), "{err}");
            }
            Ok(())
        })
        .unwrap();
}
