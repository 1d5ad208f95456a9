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
//! | `pumppilot_mqtt_sessions_ended_total{why}` | counter | MQTT sessions (after CONNACK) the server ended, by why: `gone` (the socket closed), `stuck` (a write did not finish in time), `silent`, `refused` (the store could not apply a report), `taken_over`, … |
//! | `pumppilot_mqtt_heard_late_total` | counter | MQTT connections whose time (the keep-alive's silence, the CONNECT's 10 s) was up while the device's packet waited unread in its socket: the server was behind, and the packet was read |
//! | `pumppilot_presence_joins_total` / `_leaves_total` | counter | on several servers: devices joined to this server, and let go by it as silent |
//! | `pumppilot_tenant_loads_total` | counter | pump owners' states read from the store into this server (one not held here, or read again); a steady climb means tenants are read over and over |
//! | `pumppilot_tenant_states_from_feed_total` | counter | on a shared store, pump owners' committed states (another server's commits, mostly) taken from the change feed's event instead of a read of the tenant (a farmer's Start reaches the device's server without a store read) |
//! | `pumppilot_active_runs{status}` | gauge | pumps with a RUNNING or HOLD run |
//! | `pumppilot_holds{reason}` | gauge | runs on HOLD, by reason |
//! | `pumppilot_devices_online` | gauge | pumps whose controlling device polled within its lease, among those this server serves (on several servers, sum them) |
//! | `pumppilot_tenants` | gauge | pump owners, counted in the store at most every `OWNERS_COUNTED_EVERY` (a minute) |
//! | `pumppilot_store_up` | gauge | 1 when the store answered a ping during this scrape, else 0 |
//! | `pumppilot_store_read_seconds` | gauge | how long that ping took |
//! | `pumppilot_store_outage` | gauge | 1 while the runtime holds a store outage (no write succeeded since one failed) |
//! | `pumppilot_feed_behind_seconds` | gauge | on a shared store, how far behind the change feed is (how late the other servers' changes reach it): how long this server's latest heartbeat took to come back through it, or how long an earlier one has been awaited; past `FRESH_FOR` (2 s) every answer that may keep a motor ON reads the store; absent on a store of one process and before the first beat |

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    fmt::Write as _,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};

use pumppilot_engine::Timestamp;

use crate::{app::AppState, error::ApiError};

/// The figures counted as requests are answered: per route template, atomics (a request takes
/// no lock but a shared read of the route table, and allocates nothing once its route was seen).
#[derive(Default)]
pub struct Metrics {
    /// By route template (or `other`): the router's own names, never a caller's.
    routes: RwLock<HashMap<String, Arc<RouteFigures>, crate::keys::Ids>>,
    failed_logins: AtomicU64,
    mqtt: MqttFigures,
    /// The owners counted in the store, and when (on the server's clock): [`OWNERS_COUNTED_EVERY`].
    owners: std::sync::Mutex<Option<(Timestamp, u64)>>,
}

/// What the MQTT listener counts.
#[derive(Default)]
struct MqttFigures {
    open: AtomicU64,
    connects: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
    /// Times up that found the device's packet waiting unread (`mqtt_heard_late`).
    heard_late: AtomicU64,
    /// Sessions ended, by why (`crate::mqtt`'s reasons, a few fixed words): a session ends once
    /// per connection, not per packet, so a lock is cheap here.
    ended: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

/// One open MQTT connection, counted in `pumppilot_mqtt_connections` until it is dropped.
pub struct MqttOpen<'a>(&'a Metrics);

impl Drop for MqttOpen<'_> {
    fn drop(&mut self) {
        self.0.mqtt.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one route template answered.
#[derive(Default)]
struct RouteFigures {
    /// (method, status) → answers; a pair not seen before is added under the write lock.
    answers: RwLock<Vec<(Method, u16, AtomicU64)>>,
    nanos: AtomicU64,
    count: AtomicU64,
}

impl RouteFigures {
    fn record(&self, method: &Method, status: u16, elapsed: std::time::Duration) {
        self.nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let seen = |answers: &[(Method, u16, AtomicU64)]| {
            answers.iter().find(|(m, s, _)| *s == status && m == method).map(|(_, _, n)| {
                n.fetch_add(1, Ordering::Relaxed);
            })
        };
        if seen(&self.answers.read().expect("metrics lock")).is_some() {
            return;
        }
        let mut answers = self.answers.write().expect("metrics lock");
        if seen(&answers).is_none() {
            answers.push((method.clone(), status, AtomicU64::new(1)));
        }
    }
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

    /// Packets received from connected devices since the server started.
    pub fn mqtt_messages_in(&self) -> u64 {
        self.mqtt.received.load(Ordering::Relaxed)
    }

    /// Counts a packet sent to a connected device.
    pub fn mqtt_message_out(&self) {
        self.mqtt.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection whose time was up while the device's packet waited unread: the server
    /// was behind, and the packet was read.
    pub fn mqtt_heard_late(&self) {
        self.mqtt.heard_late.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a session the server ended, by why (a fixed word of the MQTT listener).
    pub fn mqtt_session_ended(&self, why: &'static str) {
        *self.mqtt.ended.lock().expect("metrics lock").entry(why).or_default() += 1;
    }

    /// Sessions ended so far, by why.
    pub fn mqtt_sessions_ended(&self) -> BTreeMap<&'static str, u64> {
        self.mqtt.ended.lock().expect("metrics lock").clone()
    }

    fn route(&self, route: &str) -> Arc<RouteFigures> {
        if let Some(figures) = self.routes.read().expect("metrics lock").get(route) {
            return Arc::clone(figures);
        }
        Arc::clone(self.routes.write().expect("metrics lock").entry(route.to_owned()).or_default())
    }
}

/// The one layer every request goes through (after routing, so its route template is known), in
/// one pass and without a lock held while the handler runs:
/// - the request head's size: an oversized target (414 `URI_TOO_LONG`) or head (431
///   `HEADERS_TOO_LARGE`) is answered with this API's JSON error ([`crate::error::head_refusal`]);
/// - the client's address behind trusted proxies ([`crate::auth::resolve_client`]);
/// - the request id (`x-request-id`: the proxy's own, when it sent one, else a new UUID), in the
///   request for handlers and in the answer; a device's request (`/api/esp32/…`) gets no new one
///   (nothing logs it, and a board reads no header but the link's), only the proxy's echoed;
/// - the `request` span with it, the method and the path (never the query or a header), so every
///   line logged while serving it names it, but for the devices' hot path (thousands of polls a
///   second: a span formatted for the log would cost more than the poll); each answer is logged
///   at debug level (`PUMPPILOT_LOG=info,tower_http=debug`);
/// - the answer counted by route template and status, and its time.
///
/// A tower layer of its own rather than `axum::middleware::from_fn`, which boxes the rest of the
/// route again for every request: the request's part is done in `call`, the answer's in its
/// future ([`EdgeFuture`]).
#[derive(Clone)]
pub struct Edge(pub AppState);

impl<S> tower::Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService { app: Arc::clone(&self.0), inner }
    }
}

/// A route behind the [`Edge`].
#[derive(Clone)]
pub struct EdgeService<S> {
    app: AppState,
    inner: S,
}

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let app = &self.app;
        if let Some(refusal) = crate::error::head_refusal(&request) {
            return EdgeFuture::Refused { refusal: Some(refusal) };
        }
        crate::auth::resolve_client(app, &mut request);
        let figures = app.metrics.route(request.extensions().get::<MatchedPath>().map_or("other", MatchedPath::as_str));
        let method = request.method().clone();
        let device = request.uri().path().starts_with(crate::routes::device::PATHS);
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) => Some(id.clone()),
            // A device's request gets no id of its own: no span or log line names it, and the
            // boards read no header of the answer but the link's.
            None if device => None,
            None => {
                let mut text = [0u8; 36];
                let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text).as_bytes();
                let id = HeaderValue::from_bytes(id).expect("a UUID is a header value");
                request.headers_mut().insert(REQUEST_ID, id.clone());
                Some(id)
            }
        };
        let span = (!device).then(|| {
            tracing::info_span!(
                "request",
                id = id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-"),
                method = %request.method(),
                path = ?request.uri().path()
            )
        });
        let started = Instant::now();
        let answer = self.inner.call(request);
        EdgeFuture::Answering { answer, span, answered: Some(Answered { figures, method, id, started }) }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a route behind the [`Edge`], counted and timed when it comes: a future of its
    /// own rather than a boxed `async` block, so the edge costs a request no allocation (axum
    /// boxes each route's future once, this one with the route's inside it).
    #[project = EdgeProjection]
    pub enum EdgeFuture<F> {
        /// A head too large, answered at once.
        Refused { refusal: Option<Response> },
        /// The route's answer to come, inside the `request` span when there is one (not for
        /// devices).
        Answering { #[pin] answer: F, span: Option<tracing::Span>, answered: Option<Answered> },
    }
}

/// What the edge notes of an answer once it comes.
pub struct Answered {
    figures: Arc<RouteFigures>,
    method: Method,
    id: Option<HeaderValue>,
    started: Instant,
}

impl<F: std::future::Future<Output = Result<Response, Infallible>>> std::future::Future for EdgeFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let (answer, span, answered) = match self.project() {
            EdgeProjection::Refused { refusal } => {
                return std::task::Poll::Ready(Ok(refusal.take().expect("an answer is taken once")));
            }
            EdgeProjection::Answering { answer, span, answered } => (answer, span, answered),
        };
        let answer = {
            let _entered = span.as_ref().map(tracing::Span::enter);
            std::task::ready!(answer.poll(cx))
        };
        let mut response = match answer {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let Answered { figures, method, id, started } = answered.take().expect("an answer is taken once");
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        {
            // In the request's span, so the line names its id, method and path as the others do.
            let _entered = span.as_ref().map(tracing::Span::enter);
            tracing::debug!(target: "tower_http::trace::on_response", status, latency_us = elapsed.as_micros() as u64, "answered");
        }
        if let Some(id) = id {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        figures.record(&method, status, elapsed);
        std::task::Poll::Ready(Ok(response))
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
/// The owners counted in the store (a page of none, with its total: never a read of each), or the
/// count of a scrape less than [`OWNERS_COUNTED_EVERY`] ago. `None` when the store did not answer
/// by `deadline`.
async fn owners(app: &AppState, deadline: tokio::time::Instant) -> Option<u64> {
    let now = app.now();
    let every = i64::try_from(OWNERS_COUNTED_EVERY.as_millis()).unwrap_or(i64::MAX);
    let counted = *app.metrics.owners.lock().expect("owners lock");
    if let Some((at, owners)) = counted
        && (0..every).contains(&(now - at))
    {
        return Some(owners);
    }
    let query = pumppilot_store::OwnerQuery { after: None, prefix: None, limit: 0 };
    let page = tokio::time::timeout_at(deadline, app.store.owner_page(&query)).await.ok()?.ok()?;
    *app.metrics.owners.lock().expect("owners lock") = Some((now, page.total));
    Some(page.total)
}

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render_counters(app: &AppState, out: &mut String) {
    type Answers = BTreeMap<(String, u16), u64>;
    let routes: BTreeMap<String, (Answers, f64, u64)> = app
        .metrics
        .routes
        .read()
        .expect("metrics lock")
        .iter()
        .map(|(route, figures)| {
            let answers = figures
                .answers
                .read()
                .expect("metrics lock")
                .iter()
                .map(|(method, status, n)| ((method.as_str().to_owned(), *status), n.load(Ordering::Relaxed)))
                .collect();
            let seconds = figures.nanos.load(Ordering::Relaxed) as f64 / 1e9;
            (route.clone(), (answers, seconds, figures.count.load(Ordering::Relaxed)))
        })
        .collect();
    family(out, "pumppilot_http_requests_total", "counter", "HTTP answers by route template and status.");
    let mut polls = 0;
    for (route, (answers, _, _)) in &routes {
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
    for (route, (_, seconds, count)) in &routes {
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
    family(
        out,
        "pumppilot_mqtt_heard_late_total",
        "counter",
        "MQTT connections whose time was up while the device's packet waited unread (the server was behind).",
    );
    let _ = writeln!(out, "pumppilot_mqtt_heard_late_total {}", mqtt.heard_late.load(Ordering::Relaxed));
    let (joins, leaves) = app.runtime.presence_changes();
    family(
        out,
        "pumppilot_presence_joins_total",
        "counter",
        "Devices joined to this server (several servers on one store).",
    );
    let _ = writeln!(out, "pumppilot_presence_joins_total {joins}");
    family(
        out,
        "pumppilot_presence_leaves_total",
        "counter",
        "Devices let go by this server as silent (several servers on one store).",
    );
    let _ = writeln!(out, "pumppilot_presence_leaves_total {leaves}");
    family(out, "pumppilot_tenant_loads_total", "counter", "Pump owners' states read from the store into this server.");
    let _ = writeln!(out, "pumppilot_tenant_loads_total {}", app.runtime.loads());
    family(
        out,
        "pumppilot_tenant_states_from_feed_total",
        "counter",
        "Pump owners' committed states taken from the store's change feed instead of a read.",
    );
    let _ = writeln!(out, "pumppilot_tenant_states_from_feed_total {}", app.runtime.taken_from_feed());
    family(out, "pumppilot_mqtt_sessions_ended_total", "counter", "MQTT sessions the server ended, by why.");
    for (why, count) in app.metrics.mqtt_sessions_ended() {
        let _ = writeln!(out, "pumppilot_mqtt_sessions_ended_total{{why=\"{why}\"}} {count}");
    }
}

/// How long a scrape waits for the store, all its reads together: a scrape answers within a
/// scraper's timeout (Prometheus': 10 s) whatever the store does.
const STORE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the owners' count (`pumppilot_tenants`) of one scrape serves the next ones: a count
/// runs over every owner in the store (at 100,000 owners on SecantusDB it held a scrape about 5 s),
/// and a scraper asking every server every 15 s would keep a shared store counting. The number of
/// pump owners moves by hand, a few a day.
pub const OWNERS_COUNTED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The fleet's state, in work bounded by what is happening rather than by the fleet's size: a
/// store ping, the owners' count (counted in the store), the tenants with a run (read through the
/// runtime, few), and the devices online among the tenants held here
/// ([`crate::runtime::Runtime::devices_online`]). A
/// scrape never reads every tenant (at 100,000 pump owners that held each server for minutes and
/// filled its memory with tenants nobody used). What the store did not give within
/// [`STORE_WITHIN`] is left out of the page (an absent series is unknown, not zero), and a ping
/// not answered by then is `pumppilot_store_up 0`.
async fn render_state(app: &AppState, out: &mut String) {
    let deadline = tokio::time::Instant::now() + STORE_WITHIN;
    let started = Instant::now();
    let up = matches!(tokio::time::timeout_at(deadline, app.store.ping()).await, Ok(Ok(())));
    let read_seconds = started.elapsed().as_secs_f64();
    family(out, "pumppilot_store_up", "gauge", "1 when the store answered a ping during this scrape.");
    let _ = writeln!(out, "pumppilot_store_up {}", u8::from(up));
    family(out, "pumppilot_store_read_seconds", "gauge", "How long the store's ping took during this scrape.");
    let _ = writeln!(out, "pumppilot_store_read_seconds {read_seconds}");
    family(out, "pumppilot_store_outage", "gauge", "1 while no store write has succeeded since one failed.");
    let _ = writeln!(out, "pumppilot_store_outage {}", u8::from(app.runtime.store_outage().is_some()));
    if let Some(behind) = app.runtime.feed_behind() {
        family(
            out,
            "pumppilot_feed_behind_seconds",
            "gauge",
            "How far behind the store's change feed is: how long this server's latest heartbeat took to come back through it, or how long an earlier one has been awaited.",
        );
        let _ = writeln!(out, "pumppilot_feed_behind_seconds {}", behind.as_secs_f64());
    }
    family(
        out,
        "pumppilot_devices_online",
        "gauge",
        "Pumps whose controlling device polled within its lease, at this server (the servers' sum is the fleet's).",
    );
    let _ = writeln!(out, "pumppilot_devices_online {}", app.runtime.devices_online());
    if !up {
        return;
    }
    if let Some(owners) = owners(app, deadline).await {
        family(out, "pumppilot_tenants", "gauge", "Pump owners.");
        let _ = writeln!(out, "pumppilot_tenants {owners}");
    }
    if let Ok(Ok(runs)) = tokio::time::timeout_at(deadline, app.runtime.runs()).await {
        family(out, "pumppilot_active_runs", "gauge", "Pumps with an active run, by its status.");
        let _ = writeln!(out, "pumppilot_active_runs{{status=\"RUNNING\"}} {}", runs.running);
        let _ = writeln!(out, "pumppilot_active_runs{{status=\"HOLD\"}} {}", runs.on_hold());
        family(out, "pumppilot_holds", "gauge", "Runs on HOLD, by reason.");
        for (reason, count) in runs.holds {
            let _ = writeln!(out, "pumppilot_holds{{reason=\"{reason}\"}} {count}");
        }
    }
}
