//! The device poll, the hot path (cards are in `cards.rs`).
//!
//! A poll is: find the device by its key hash (in memory), apply its report to the tenant (in
//! memory when nothing changed), and answer. No password hashing, no store query.
//!
//! A long-poll (`wait=<ms>&seq=<last seq seen>`) applies the report at once, then holds the
//! answer until the command's `seq` differs from the one the device knows, or the wait ends.
//! - The answer's `leaseMs` is shortened by the time waited, so the device's lease ends exactly
//!   where the server's does: the request's arrival plus the lease.
//! - The wait is cut to a third of the lease. A device that polls again at once then always holds
//!   an answer with at least a third of the lease left: the next answer comes before it runs out.
//! - A device that reports its relay OFF while the command is ON (its lease ran out, its inputs
//!   were settling) needs the command now, not at the end of a wait: it gets the answer at once.

use std::borrow::Cow;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::{AdminId, DeviceId, DevicePoll, HoldReason, ReaderState, RelayOff, ResetReason};
use pumppilot_protocol::{MAX_ANSWER_BYTES, MAX_WAIT_MS, PollAnswer, PollReport, json};
use pumppilot_store::Telemetry;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    error::{ApiError, parse_json},
    link::{Acted, DeviceLink},
    routes::openapi::{Body, Device, Forbidden, Invalid},
    start_path::{self, Step},
};

/// Where the devices' routes are (the poll, card taps, firmware): called by boards with their key,
/// never by a browser, so their answers carry no CORS or request-id header (`app::router`,
/// `metrics::Edge`).
pub const PATHS: &str = "/api/esp32/";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(poll_get, poll_post))
}

/// A device, known by its key (and, once it signs, by its link: `crate::link`).
pub struct DeviceCaller {
    pub device: DeviceId,
    pub admin: AdminId,
}

impl DeviceCaller {
    pub(crate) fn of(link: &DeviceLink) -> Self {
        DeviceCaller { device: link.device, admin: link.admin }
    }
}

/// The query of `GET /api/esp32/poll`, borrowed from the request ([`PollQuery::parse`]).
#[derive(Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct PollQuery<'a> {
    /// Must be the key's own tenant when given.
    #[param(value_type = Option<String>)]
    admin_id: Option<Cow<'a, str>>,
    /// `1` when the grid is down.
    #[param(value_type = Option<String>)]
    load_shedding: Option<Cow<'a, str>>,
    /// `1` when the pump is ready.
    #[param(value_type = Option<String>)]
    ready: Option<Cow<'a, str>>,
    /// `1` when the relay is energised.
    #[param(value_type = Option<String>)]
    relay: Option<Cow<'a, str>>,
    #[param(value_type = Option<String>)]
    fw: Option<Cow<'a, str>>,
    uptime_ms: Option<u64>,
    rssi: Option<i16>,
    /// Why the board last started (first poll after a boot): POWER_ON, BROWN_OUT, WATCHDOG, PANIC,
    /// SOFTWARE or OTHER.
    #[param(value_type = Option<String>)]
    reset: Option<ResetReason>,
    /// `1` when the motor-running feedback input says the motor runs (boards that have one).
    #[param(value_type = Option<String>)]
    feedback: Option<Cow<'a, str>>,
    /// The RFID reader: OK or ABSENT (boards that have one).
    #[param(value_type = Option<String>)]
    reader: Option<ReaderState>,
    /// Why the relay is OFF (devices that say it): NO_COMMAND, LOAD_SHEDDING, NOT_READY,
    /// GRID_SETTLING, RESTART_WAIT or NO_FEEDBACK.
    #[param(value_type = Option<String>)]
    relay_off: Option<RelayOff>,
    /// Long-poll: hold the answer up to this many milliseconds (at most 30000; cut to a third of
    /// the lease) until the command changes.
    wait: Option<u32>,
    /// Long-poll: the last `seq` this device received; an answer with another `seq` returns at once.
    seq: Option<u64>,
}

impl<'a> PollQuery<'a> {
    /// Reads the query in one pass, borrowing every value that is not percent-encoded. A name
    /// given twice or a value that does not read is a 400 naming it; other names are ignored.
    fn parse(query: Option<&'a str>) -> Result<Self, ApiError> {
        let mut q = PollQuery::default();
        for (name, value) in query_pairs(query) {
            match &*name {
                "adminId" => once(&mut q.admin_id, "adminId", text(value))?,
                "loadShedding" => once(&mut q.load_shedding, "loadShedding", text(value))?,
                "ready" => once(&mut q.ready, "ready", text(value))?,
                "relay" => once(&mut q.relay, "relay", text(value))?,
                "fw" => once(&mut q.fw, "fw", text(value))?,
                "uptimeMs" => once(&mut q.uptime_ms, "uptimeMs", number(&value))?,
                "rssi" => once(&mut q.rssi, "rssi", number(&value))?,
                "reset" => once(&mut q.reset, "reset", named(&value))?,
                "feedback" => once(&mut q.feedback, "feedback", text(value))?,
                "reader" => once(&mut q.reader, "reader", named(&value))?,
                "relayOff" => once(&mut q.relay_off, "relayOff", named(&value))?,
                "wait" => once(&mut q.wait, "wait", number(&value))?,
                "seq" => once(&mut q.seq, "seq", number(&value))?,
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The pairs of a query string, read as `application/x-www-form-urlencoded` (a name or value
/// with nothing encoded in it is borrowed as it stands). A query with no `%` and no `+` in it (a
/// board's everyday poll) has nothing to decode: it is split on `&` and each part on its first
/// `=`, empty parts skipped, which are the very pairs `form_urlencoded` reads from it, without
/// its look at every name and value for something to decode.
fn query_pairs(query: Option<&str>) -> QueryPairs<'_> {
    let query = query.unwrap_or_default();
    match memchr::memchr2(b'%', b'+', query.as_bytes()) {
        None => QueryPairs::Plain(query),
        Some(_) => QueryPairs::Decoded(form_urlencoded::parse(query.as_bytes())),
    }
}

/// See [`query_pairs`].
enum QueryPairs<'a> {
    /// What is left of a query with nothing to decode.
    Plain(&'a str),
    Decoded(form_urlencoded::Parse<'a>),
}

impl<'a> Iterator for QueryPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = match self {
            QueryPairs::Plain(rest) => rest,
            QueryPairs::Decoded(pairs) => return pairs.next(),
        };
        loop {
            if rest.is_empty() {
                return None;
            }
            // Cut at ASCII bytes, so always at a character's boundary.
            let (part, after) = match memchr::memchr(b'&', rest.as_bytes()) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (*rest, ""),
            };
            *rest = after;
            if part.is_empty() {
                continue;
            }
            let (name, value) = match memchr::memchr(b'=', part.as_bytes()) {
                Some(at) => (&part[..at], &part[at + 1..]),
                None => (part, ""),
            };
            return Some((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }
}

/// Sets a query field the first time its name comes.
fn once<T, E: std::fmt::Display>(slot: &mut Option<T>, name: &str, value: Result<T, E>) -> Result<(), ApiError> {
    let value = value.map_err(|err| ApiError::validation(format!("{name}: {err}")))?;
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(ApiError::validation(format!("{name}: given twice"))),
    }
}

fn text(value: Cow<'_, str>) -> Result<Cow<'_, str>, std::convert::Infallible> {
    Ok(value)
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, T::Err> {
    value.parse()
}

/// A value named by one of the protocol's words (`POWER_ON`, `ABSENT`, …), as serde reads it.
fn named<'de, T: Deserialize<'de>>(value: &'de str) -> Result<T, serde::de::value::Error> {
    T::deserialize(serde::de::value::BorrowedStrDeserializer::new(value))
}

/// Long-poll parameters, on both forms of the poll.
#[derive(Default, Clone, Copy)]
struct LongPoll {
    wait: Option<u32>,
    seq: Option<u64>,
}

fn flag(value: Option<&str>, field: &str, default: Option<bool>) -> Result<bool, ApiError> {
    match value {
        Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        None if default.is_some() => Ok(default.unwrap_or(false)),
        _ => Err(ApiError::validation(format!("{field}: 0 or 1"))),
    }
}

fn check_tenant(caller: &DeviceCaller, admin_id: Option<&str>) -> Result<(), ApiError> {
    match admin_id {
        Some(text) if text.parse::<AdminId>().ok() != Some(caller.admin) => {
            Err(ApiError::forbidden("this device key belongs to another tenant"))
        }
        _ => Ok(()),
    }
}

/// The poll answer with, when one is meant for this device and it runs another, the firmware
/// version to update to (`update`; the rest is `PollAnswer`, which devices read alone), and over
/// MQTT the `ref` of the report it follows (`crate::mqtt`).
#[derive(Serialize)]
pub(crate) struct Reply {
    #[serde(flatten)]
    pub answer: PollAnswer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<u32>,
}

impl Reply {
    /// The reply as JSON: the bytes serde makes for it (tested), written without serde on the
    /// devices' hot path (its `flatten` goes through a map, field by field): the answer as the
    /// protocol writes it ([`json::encode_answer`]), then `update` and `ref` when there are.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, ApiError> {
        let mut answer = [0u8; MAX_ANSWER_BYTES];
        let n = json::encode_answer(&self.answer, &mut answer).map_err(|_| ApiError::internal())?;
        if self.update.is_none() && self.reference.is_none() {
            // Exactly its length: a `Vec` with room to spare becomes `Bytes` through an
            // allocation of its own (`Bytes::from`), one with none does not.
            return Ok(answer[..n].to_vec());
        }
        // Sized for the whole reply at once.
        let mut body = Vec::with_capacity(n + 64);
        body.extend_from_slice(&answer[..n]);
        // In place of the answer's closing brace.
        body.pop();
        if let Some(update) = &self.update {
            body.extend_from_slice(b",\"update\":");
            serde_json::to_writer(&mut body, update).map_err(|_| ApiError::internal())?;
        }
        if let Some(reference) = self.reference {
            let mut digits = [0u8; 20];
            body.extend_from_slice(b",\"ref\":");
            body.extend_from_slice(pumppilot_protocol::link::decimal(reference.into(), &mut digits));
        }
        body.push(b'}');
        Ok(body)
    }
}

impl IntoResponse for Reply {
    /// The answer as JSON ([`Reply::to_json`]).
    fn into_response(self) -> Response {
        let body = match self.to_json() {
            Ok(body) => body,
            Err(err) => return err.into_response(),
        };
        let mut response = Response::new(axum::body::Body::from(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The reply to a report, and whether its inputs were applied.
pub(crate) struct Reported {
    pub reply: Reply,
    /// False for a signed report older than one of the device applied on this server: it changed
    /// nothing, and its reply is the current command.
    pub applied: bool,
}

/// A device's report applied: the one way a report becomes a command, for the HTTP poll and for
/// MQTT alike. Records the telemetry, applies the poll to the tenant (the engine decides), and
/// answers with the command and the firmware meant for the device. A signed report (`counter`,
/// accepted already) older than one of the device applied here is answered as a poll with
/// nothing new: the current command, its inputs and telemetry not applied
/// ([`crate::link::CounterWindows::newest`]), so a copy held back and delivered later ("grid up"
/// during load shedding) does not undo the reports that came after it.
pub(crate) async fn report(
    app: &AppState,
    caller: &DeviceCaller,
    counter: Option<u64>,
    report: PollReport<'_>,
) -> Result<Reported, ApiError> {
    report_at(app, caller, counter, report, app.now()).await
}

/// [`report`], the report having arrived `now` (the poll's one reading of the clock).
async fn report_at(
    app: &AppState,
    caller: &DeviceCaller,
    counter: Option<u64>,
    report: PollReport<'_>,
    now: pumppilot_engine::Timestamp,
) -> Result<Reported, ApiError> {
    let update = app.firmware.meant_for(caller.admin, caller.device, report.fw);
    if let Some(counter) = counter
        && !app.counters.newest(caller.device, Acted::Report, counter)
    {
        tracing::debug!(device = %caller.device, counter, "a report older than one applied here; its inputs are not applied");
        let answer = match app.runtime.outage_answer(caller.admin, now).await {
            Some(off) => off,
            None => app.runtime.command(caller.admin, caller.device).await?,
        };
        return Ok(Reported { reply: Reply { answer, update, reference: None }, applied: false });
    }
    let telemetry = Telemetry {
        device_id: caller.device,
        admin_id: caller.admin,
        last_seen_at: now,
        load_shedding: report.load_shedding,
        ready: report.ready,
        relay: report.relay,
        // At most 40 characters, none that would pose as other text on the owner's pages (a plain
        // name of 40 bytes or fewer is copied as it is).
        firmware: report.fw.map(|fw| {
            if fw.len() <= 40 && fw.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                fw.to_owned()
            } else {
                fw.chars().filter(|c| super::plain(*c)).take(40).collect()
            }
        }),
        uptime_ms: report.uptime_ms,
        rssi: report.rssi,
        last_reset: report.reset,
        // When the board started: now less its uptime (or now, without one).
        last_reset_at: report.reset.map(|_| now - report.uptime_ms.map_or(0, |ms| i64::try_from(ms).unwrap_or(0))),
        reader: report.reader,
        feedback: report.feedback,
    };
    let poll = DevicePoll::of_report(caller.device, &report);
    let answer = app.runtime.poll(caller.admin, poll, telemetry).await?;
    Ok(Reported { reply: Reply { answer, update, reference: None }, applied: true })
}

/// A poll's report applied: its answer, and what its long-poll waits with.
struct First {
    reply: Reply,
    /// The relay as the report said.
    relay: bool,
    arrived: pumppilot_engine::Timestamp,
    wait: u32,
    seq: Option<u64>,
}

/// Applies a poll's report (arrived now) and gives its answer, for the long-poll to hold
/// ([`First::held`]). Each poll handler boxes it with the parsing before it: the query and the
/// report run only before the wait, and a handler's future is kept at its largest state's size
/// through a whole long-poll.
async fn first_answer(
    app: &AppState,
    caller: &DeviceCaller,
    counter: Option<u64>,
    report: PollReport<'_>,
    long_poll: LongPoll,
) -> Result<First, ApiError> {
    let wait = long_poll.wait.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::validation(format!("wait: at most {MAX_WAIT_MS} ms")));
    }
    let arrived = app.now();
    let relay = report.relay;
    let reply = report_at(app, caller, counter, report, arrived).await?.reply;
    Ok(First { reply, relay, arrived, wait, seq: long_poll.seq })
}

/// A long-poll: the answer to the report that arrived (`first`), or a newer one when the command
/// changes within the wait.
///
/// Memory: a parked long-poll costs what its futures weigh, and a future weighs its largest state
/// for as long as it lives, so what runs after the wait (the runtime's locks, the store) is boxed
/// and what is kept through the wait is the change subscription, the timer and `first`.
async fn held(app: &AppState, caller: &DeviceCaller, first: First) -> Result<Reply, ApiError> {
    let wait = first.wait.min(app.settings.device_lease_ms / 3);
    let answer = first.reply.answer;
    // A device told OFF for the store gets no long wait: the store may be back in a moment.
    let behind = (answer.commands_on() && !first.relay) || answer.hold_reason == Some(HoldReason::StoreUnavailable);
    let Some(known) = first.seq.filter(|seq| wait > 0 && !behind && *seq == answer.seq) else {
        return Ok(first.reply);
    };
    // Boxed: only a long-poll waits, and a poll's future (allocated for every poll) stays small.
    let changed = Box::pin(changed_within(app, caller.admin, known, first.arrived + i64::from(wait))).await;
    let answer = Box::pin(after_wait(app, caller, answer, first.arrived, changed)).await?;
    Ok(Reply { answer, ..first.reply })
}

/// Waits until the tenant's command `seq` differs from `known` (true) or `until` comes (false).
async fn changed_within(app: &AppState, admin: AdminId, known: u64, until: pumppilot_engine::Timestamp) -> bool {
    // Subscribing after the poll misses nothing: the channel holds the latest stamp, so a change
    // committed since the poll is seen at once by `wait_for`.
    let mut changes = app.runtime.subscribe(admin);
    tokio::select! {
        seen = changes.wait_for(|stamp| stamp.seq != known) => seen.is_ok(),
        () = app.settings.clock.sleep_until(until) => false,
    }
}

/// The answer at the end of a long-poll: `first` with the lease left, or the command now when it
/// `changed`, or OFF when the store failed meanwhile.
async fn after_wait(
    app: &AppState,
    caller: &DeviceCaller,
    first: PollAnswer,
    arrived: pumppilot_engine::Timestamp,
    changed: bool,
) -> Result<PollAnswer, ApiError> {
    let now = app.now();
    let elapsed_ms = u32::try_from(now - arrived).unwrap_or(0);
    // The store failed while the answer was held: the ON it held can no longer be recorded.
    if let Some(off) = app.runtime.outage_answer(caller.admin, now).await {
        return Ok(off);
    }
    if !changed {
        return Ok(PollAnswer { lease_ms: first.lease_ms.saturating_sub(elapsed_ms), ..first });
    }
    let now = app.runtime.command(caller.admin, caller.device).await?;
    start_path::note(Step::Sent, caller.admin);
    Ok(PollAnswer { lease_ms: now.lease_ms.saturating_sub(elapsed_ms), ..now })
}

/// Report inputs and get the motor command (query form).
#[utoipa::path(get, path = "/api/esp32/poll", tag = "device", params(PollQuery), security(("deviceKey" = [])),
    responses((status = 200, description = "the command: motor, state, holdReason, remainingSeconds, pollMs, leaseMs, seq",
        body = Object), Device, Invalid, Forbidden))]
async fn poll_get(State(app): State<AppState>, link: DeviceLink) -> Response {
    // Inline (as in `poll_post`): axum allocates the handler's future for every poll, one block
    // (jemalloc keeps blocks of this size in its per-thread cache); what is large and runs only
    // before or after a long-poll's wait is boxed further down (`answer`, `held`).
    let caller = DeviceCaller::of(&link);
    let result = async {
        let first = Box::pin(async {
            let q = PollQuery::parse(link.uri.query())?;
            check_tenant(&caller, q.admin_id.as_deref())?;
            let report = PollReport {
                load_shedding: flag(q.load_shedding.as_deref(), "loadShedding", None)?,
                ready: flag(q.ready.as_deref(), "ready", None)?,
                relay: flag(q.relay.as_deref(), "relay", Some(false))?,
                fw: q.fw.as_deref(),
                uptime_ms: q.uptime_ms,
                rssi: q.rssi,
                reset: q.reset,
                feedback: q.feedback.as_deref().map(|f| flag(Some(f), "feedback", None)).transpose()?,
                reader: q.reader,
                relay_off: q.relay_off,
            };
            first_answer(&app, &caller, link.counter(), report, LongPoll { wait: q.wait, seq: q.seq }).await
        })
        .await?;
        held(&app, &caller, first).await
    }
    .await;
    link.answer(result).await
}

#[derive(Default, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
struct PollPostQuery<'a> {
    /// Must be the key's own tenant when given.
    #[param(value_type = Option<String>)]
    admin_id: Option<Cow<'a, str>>,
    /// Long-poll: hold the answer up to this many milliseconds (at most 30000; cut to a third of the
    /// lease) until the command changes.
    wait: Option<u32>,
    /// Long-poll: the last `seq` this device received; an answer with another `seq` returns at once.
    seq: Option<u64>,
}

impl<'a> PollPostQuery<'a> {
    /// As [`PollQuery::parse`], for the names of the JSON form's query.
    fn parse(query: Option<&'a str>) -> Result<Self, ApiError> {
        let mut q = PollPostQuery::default();
        for (name, value) in query_pairs(query) {
            match &*name {
                "adminId" => once(&mut q.admin_id, "adminId", text(value))?,
                "wait" => once(&mut q.wait, "wait", number(&value))?,
                "seq" => once(&mut q.seq, "seq", number(&value))?,
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Report inputs and get the motor command (JSON body `{loadShedding, ready, relay, fw?, uptimeMs?, rssi?,
/// reset?, feedback?, reader?}`).
#[utoipa::path(post, path = "/api/esp32/poll", tag = "device", params(PollPostQuery), security(("deviceKey" = [])),
    request_body(content = Object, description = "`{loadShedding, ready, relay, fw?, uptimeMs?, rssi?, reset?, feedback?, reader?}`"),
    responses((status = 200, description = "the command, as for `GET`", body = Object), Device, Body, Forbidden))]
async fn poll_post(State(app): State<AppState>, link: DeviceLink) -> Response {
    let caller = DeviceCaller::of(&link);
    let result = async {
        let first = Box::pin(async {
            let q = PollPostQuery::parse(link.uri.query())?;
            check_tenant(&caller, q.admin_id.as_deref())?;
            let report: PollReport = parse_json(&link.body)?;
            first_answer(&app, &caller, link.counter(), report, LongPoll { wait: q.wait, seq: q.seq }).await
        })
        .await?;
        held(&app, &caller, first).await
    }
    .await;
    link.answer(result).await
}

#[cfg(test)]
mod tests {
    use axum::extract::{FromRequest, Request};

    use super::*;

    fn size2<A, B, F: std::future::Future>(_: impl FnOnce(A, B) -> F) -> usize {
        size_of::<F>()
    }
    fn size3<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        size_of::<F>()
    }

    /// axum boxes a handler's future at its largest state's size and keeps it through the whole
    /// long-poll: what runs before and after the wait (the device's link, the query, the report,
    /// the sealing) stays out of it (4,104 bytes for `poll_get` once; 1,288 before the query and
    /// the report were boxed with the report's run). With axum's own 256 bytes around it, it
    /// fits one of jemalloc's 1,280-byte blocks (1,536 bytes a long-poll more otherwise).
    #[test]
    fn a_parked_long_poll_keeps_small_futures() {
        let handlers = [("poll_get", size2(poll_get)), ("poll_post", size2(poll_post))];
        for (name, size) in handlers {
            assert!(size <= 1024, "{name}'s future: {size} bytes");
        }
        let link = size2(|request: Request, app: &'static AppState| DeviceLink::from_request(request, app));
        assert!(link <= 512, "the link's extraction: {link} bytes");
        let held = size3(held);
        assert!(held <= 512, "the held wait: {held} bytes");
    }

    #[test]
    fn a_reply_is_written_as_serde_writes_it() {
        use pumppilot_protocol::{Motor, MotorState};
        let answers = [
            PollAnswer {
                motor: Motor::On,
                state: MotorState::Running,
                hold_reason: None,
                remaining_seconds: 600,
                poll_ms: 5000,
                lease_ms: 15000,
                seq: 7,
                min_off_ms: 60000,
                grid_settle_ms: 45000,
                max_starts_per_hour: 6,
            },
            PollAnswer {
                motor: Motor::Off,
                state: MotorState::Hold,
                hold_reason: Some(HoldReason::StoreUnavailable),
                remaining_seconds: u32::MAX,
                poll_ms: 0,
                lease_ms: u32::MAX,
                seq: u64::MAX,
                min_off_ms: 0,
                grid_settle_ms: u32::MAX,
                max_starts_per_hour: u8::MAX,
            },
        ];
        for answer in answers {
            for update in [None, Some("1.5.0"), Some("pump/2.0 \"beta\" \\ \u{7}\u{e9}"), Some("")] {
                for reference in [None, Some(0), Some(42), Some(u32::MAX)] {
                    let reply = Reply { answer, update: update.map(str::to_owned), reference };
                    let ours = reply.to_json().unwrap();
                    let serde = serde_json::to_vec(&reply).unwrap();
                    assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(serde).unwrap());
                }
            }
        }
    }

    fn message(error: ApiError) -> String {
        error.message.to_string()
    }

    #[test]
    fn the_poll_query_reads_every_name_and_borrows_plain_values() {
        let q = PollQuery::parse(Some(
            "adminId=a&loadShedding=0&ready=1&relay=1&fw=pump%2F1.2+beta&uptimeMs=42&rssi=-70&reset=BROWN_OUT\
             &feedback=1&reader=ABSENT&relayOff=GRID_SETTLING&wait=100&seq=7&unknown=x&&",
        ))
        .unwrap();
        assert!(matches!(q.admin_id, Some(Cow::Borrowed("a"))));
        assert_eq!(
            (q.load_shedding.as_deref(), q.ready.as_deref(), q.relay.as_deref()),
            (Some("0"), Some("1"), Some("1"))
        );
        assert_eq!(q.fw.as_deref(), Some("pump/1.2 beta"), "decoded as a form");
        assert_eq!((q.uptime_ms, q.rssi, q.wait, q.seq), (Some(42), Some(-70), Some(100), Some(7)));
        assert_eq!(q.reset, Some(ResetReason::BrownOut));
        assert_eq!(q.feedback.as_deref(), Some("1"));
        assert_eq!(q.reader, Some(ReaderState::Absent));
        assert_eq!(q.relay_off, Some(RelayOff::GridSettling));
        let empty = PollQuery::parse(None).unwrap();
        assert!(empty.admin_id.is_none() && empty.ready.is_none() && empty.wait.is_none());
        assert_eq!(PollQuery::parse(Some("ready")).unwrap().ready.as_deref(), Some(""));
    }

    #[test]
    fn a_plain_query_is_split_into_the_pairs_form_urlencoded_reads() {
        for query in [
            "adminId=a&loadShedding=0&ready=1&relay=1&fw=bench",
            "ready",
            "ready=&=1&&a=b=c&",
            "&&",
            "",
            "fw=pump%2F1.2+beta&ready=1",
            "fw=a+b",
            "x=%E2%82%AC&y=%zz",
            "wait=100&seq=7&unknown=x",
            "=",
            "==&=&&x",
            "a&b&",
            "&a=1",
            "fw=pump\u{e9}&ready=\u{20ac}1&x=\u{1F4A7}=",
        ] {
            let ours: Vec<_> = query_pairs(Some(query)).collect();
            let theirs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
            assert_eq!(ours, theirs, "{query:?}");
        }
        assert_eq!(query_pairs(None).count(), 0);
        assert!(query_pairs(Some("ready=1")).all(|(n, v)| matches!((n, v), (Cow::Borrowed(_), Cow::Borrowed(_)))));
    }

    #[test]
    fn a_query_value_that_does_not_read_is_named() {
        let bad = |query: &str| message(PollQuery::parse(Some(query)).err().expect(query));
        assert!(bad("wait=-5").starts_with("wait: "), "{}", bad("wait=-5"));
        assert!(bad("rssi=99999").starts_with("rssi: "));
        assert!(bad("uptimeMs=1e3").starts_with("uptimeMs: "));
        assert!(bad("reset=TIRED").starts_with("reset: unknown variant `TIRED`"), "{}", bad("reset=TIRED"));
        assert!(bad("reader=ok").starts_with("reader: "));
        assert_eq!(bad("ready=1&ready=0"), "ready: given twice");
        let post = |query: &str| message(PollPostQuery::parse(Some(query)).err().expect(query));
        assert!(post("seq=x").starts_with("seq: "));
        assert_eq!(post("adminId=a&adminId=b"), "adminId: given twice");
        let q = PollPostQuery::parse(Some("adminId=a%20b&wait=5&seq=9&ready=1")).unwrap();
        assert_eq!((q.admin_id.as_deref(), q.wait, q.seq), (Some("a b"), Some(5), Some(9)));
    }
}
