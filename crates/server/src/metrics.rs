//! `GET /metrics`: the server's figures in Prometheus' text format, for the master or a scraper
//! holding `PUMPPILOT_METRICS_TOKEN`.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `pumppilot_http_requests_total{method,route,status}` | counter | answers, by route template (`/api/admin/users/{id}`; `other` for no route) and status |
//! | `pumppilot_http_request_seconds_sum` / `_count{route}` | counter | time spent answering, by route |
//! | `pumppilot_device_polls_total` | counter | device polls answered (GET and POST `/api/esp32/poll`); its `rate()` is the poll rate |
//! | `pumppilot_failed_logins_total` | counter | sign-ins refused for a wrong username or password |
//! | `pumppilot_mqtt_connections` | gauge | MQTT connections open now (`crate::mqtt`) |
//! | `pumppilot_mqtt_connects_total` | counter | MQTT CONNECTs received (refused ones included) |
//! | `pumppilot_mqtt_messages_received_total` / `_sent_total` | counter | MQTT packets from and to devices after CONNECT |
//! | `pumppilot_active_runs{status}` | gauge | pumps with a RUNNING or HOLD run |
//! | `pumppilot_holds{reason}` | gauge | runs on HOLD, by reason |
//! | `pumppilot_devices_online` | gauge | pumps whose controlling device polled within its lease |
//! | `pumppilot_tenants` | gauge | pump owners |
//! | `pumppilot_store_up` | gauge | 1 when the store's read below answered, else 0 |
//! | `pumppilot_store_read_seconds` | gauge | how long one store read (the pump owners' list) took during this scrape |
//! | `pumppilot_store_outage` | gauge | 1 while the runtime holds a store outage (no write succeeded since one failed) |

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use pumppilot_engine::{AdminId, EntryStatus};
use pumppilot_store::Role;

use crate::{app::AppState, error::ApiError};

/// The figures counted as requests are answered.
#[derive(Default)]
pub struct Metrics {
    /// Route template → its figures (one lock per answer, no allocation once a route was seen).
    routes: Mutex<HashMap<String, RouteFigures>>,
    failed_logins: AtomicU64,
    mqtt: MqttFigures,
}

/// What the MQTT listener counts.
#[derive(Default)]
struct MqttFigures {
    open: AtomicU64,
    connects: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

/// One open MQTT connection, counted in `pumppilot_mqtt_connections` until it is dropped.
pub struct MqttOpen<'a>(&'a Metrics);

impl Drop for MqttOpen<'_> {
    fn drop(&mut self) {
        self.0.mqtt.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one route template answered.
#[derive(Default, Clone)]
struct RouteFigures {
    /// (method, status) → answers.
    answers: HashMap<(Method, u16), u64>,
    seconds: f64,
    count: u64,
}

impl Metrics {
    /// Counts a sign-in refused for a wrong username or password.
    pub fn failed_login(&self) {
        self.failed_logins.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed_logins(&self) -> u64 {
        self.failed_logins.load(Ordering::Relaxed)
    }

    /// Counts an MQTT connection as open until the guard is dropped.
    pub fn mqtt_opened(&self) -> MqttOpen<'_> {
        self.mqtt.open.fetch_add(1, Ordering::Relaxed);
        MqttOpen(self)
    }

    /// MQTT connections open now.
    pub fn mqtt_connections(&self) -> u64 {
        self.mqtt.open.load(Ordering::Relaxed)
    }

    /// Counts an MQTT CONNECT.
    pub fn mqtt_connect(&self) {
        self.mqtt.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a packet received from a connected device.
    pub fn mqtt_message_in(&self) {
        self.mqtt.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a packet sent to a connected device.
    pub fn mqtt_message_out(&self) {
        self.mqtt.sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// Middleware: counts every answer by its route template and status.
pub async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("other", MatchedPath::as_str);
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let mut routes = app.metrics.routes.lock().expect("metrics lock");
    let figures = match routes.get_mut(route) {
        Some(figures) => figures,
        None => routes.entry(route.to_string()).or_default(),
    };
    *figures.answers.entry((method, status)).or_insert(0) += 1;
    figures.seconds += seconds;
    figures.count += 1;
    response
}

/// The routes of `/metrics` (outside the API's OpenAPI document: it is for operators' scrapers).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}

/// Who may read the figures: the master's session or token, or `PUMPPILOT_METRICS_TOKEN` as a
/// bearer token (compared by their HMACs, so the comparison's time says nothing of the token).
async fn allowed(app: &AppState, request: &mut axum::http::request::Parts) -> Result<(), ApiError> {
    let bearer = request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let (Some(token), Some(expected)) = (bearer, &app.settings.metrics_token)
        && app.keyring.hash(token) == app.keyring.hash(expected.0.trim())
    {
        return Ok(());
    }
    use axum::extract::FromRequestParts;
    crate::auth::Master::from_request_parts(request, app).await.map(drop)
}

async fn metrics(State(app): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if let Err(err) = allowed(&app, &mut parts).await {
        return err.into_response();
    }
    let mut out = String::new();
    render_counters(&app, &mut out);
    render_state(&app, &mut out).await;
    let mut response = (StatusCode::OK, out).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_counters(app: &AppState, out: &mut String) {
    let routes: BTreeMap<String, RouteFigures> =
        app.metrics.routes.lock().expect("metrics lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    family(out, "pumppilot_http_requests_total", "counter", "HTTP answers by route template and status.");
    let mut polls = 0;
    for (route, figures) in &routes {
        let answers: BTreeMap<(&str, u16), u64> =
            figures.answers.iter().map(|((method, status), n)| ((method.as_str(), *status), *n)).collect();
        for ((method, status), count) in answers {
            let _ = writeln!(
                out,
                "pumppilot_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                label(method),
                label(route)
            );
            if route == "/api/esp32/poll" {
                polls += count;
            }
        }
    }
    family(out, "pumppilot_http_request_seconds", "summary", "Time spent answering, by route template.");
    for (route, RouteFigures { seconds, count, .. }) in &routes {
        let route = label(route);
        let _ = writeln!(out, "pumppilot_http_request_seconds_sum{{route=\"{route}\"}} {seconds}");
        let _ = writeln!(out, "pumppilot_http_request_seconds_count{{route=\"{route}\"}} {count}");
    }
    family(out, "pumppilot_device_polls_total", "counter", "Device polls answered.");
    let _ = writeln!(out, "pumppilot_device_polls_total {polls}");
    family(out, "pumppilot_failed_logins_total", "counter", "Sign-ins refused for a wrong username or password.");
    let _ = writeln!(out, "pumppilot_failed_logins_total {}", app.metrics.failed_logins());
    let mqtt = &app.metrics.mqtt;
    family(out, "pumppilot_mqtt_connections", "gauge", "MQTT connections open now.");
    let _ = writeln!(out, "pumppilot_mqtt_connections {}", mqtt.open.load(Ordering::Relaxed));
    family(out, "pumppilot_mqtt_connects_total", "counter", "MQTT CONNECTs received, refused ones included.");
    let _ = writeln!(out, "pumppilot_mqtt_connects_total {}", mqtt.connects.load(Ordering::Relaxed));
    family(out, "pumppilot_mqtt_messages_received_total", "counter", "MQTT packets received from connected devices.");
    let _ = writeln!(out, "pumppilot_mqtt_messages_received_total {}", mqtt.received.load(Ordering::Relaxed));
    family(out, "pumppilot_mqtt_messages_sent_total", "counter", "MQTT packets sent to connected devices.");
    let _ = writeln!(out, "pumppilot_mqtt_messages_sent_total {}", mqtt.sent.load(Ordering::Relaxed));
}

async fn render_state(app: &AppState, out: &mut String) {
    let started = Instant::now();
    let owners = app.store.accounts(Role::Admin, None).await;
    let read_seconds = started.elapsed().as_secs_f64();
    family(out, "pumppilot_store_up", "gauge", "1 when the store answered a read during this scrape.");
    let _ = writeln!(out, "pumppilot_store_up {}", u8::from(owners.is_ok()));
    family(out, "pumppilot_store_read_seconds", "gauge", "How long one store read took during this scrape.");
    let _ = writeln!(out, "pumppilot_store_read_seconds {read_seconds}");
    family(out, "pumppilot_store_outage", "gauge", "1 while no store write has succeeded since one failed.");
    let _ = writeln!(out, "pumppilot_store_outage {}", u8::from(app.runtime.store_outage().is_some()));
    let owners = owners.unwrap_or_default();
    let (mut running, mut held, mut online) = (0u64, 0u64, 0u64);
    let mut holds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for owner in &owners {
        let seen = app
            .runtime
            .read(AdminId(owner.id), |tenant, now| {
                let active = tenant.active.as_ref().map(|entry| (entry.status, entry.hold_reason));
                (active, tenant.device.online_at(now))
            })
            .await;
        let Ok((active, device_online)) = seen else { continue };
        online += u64::from(device_online);
        match active {
            Some((EntryStatus::Running, _)) => running += 1,
            Some((EntryStatus::Hold, reason)) => {
                held += 1;
                *holds.entry(reason.map_or("UNKNOWN", |r| r.as_str())).or_insert(0) += 1;
            }
            _ => {}
        }
    }
    family(out, "pumppilot_tenants", "gauge", "Pump owners.");
    let _ = writeln!(out, "pumppilot_tenants {}", owners.len());
    family(out, "pumppilot_active_runs", "gauge", "Pumps with an active run, by its status.");
    let _ = writeln!(out, "pumppilot_active_runs{{status=\"RUNNING\"}} {running}");
    let _ = writeln!(out, "pumppilot_active_runs{{status=\"HOLD\"}} {held}");
    family(out, "pumppilot_holds", "gauge", "Runs on HOLD, by reason.");
    for (reason, count) in holds {
        let _ = writeln!(out, "pumppilot_holds{{reason=\"{reason}\"}} {count}");
    }
    family(out, "pumppilot_devices_online", "gauge", "Pumps whose controlling device polled within its lease.");
    let _ = writeln!(out, "pumppilot_devices_online {online}");
}
