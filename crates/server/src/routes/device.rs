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

use axum::{
    Json,
    extract::{Query, State},
    response::Response,
};
use pumppilot_engine::{AdminId, DeviceId, DevicePoll, HoldReason, ReaderState, RelayOff, ResetReason};
use pumppilot_protocol::{MAX_WAIT_MS, PollAnswer, PollReport};
use pumppilot_store::Telemetry;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    error::{ApiError, parse_json},
    link::DeviceLink,
    routes::openapi::{Body, Device, Forbidden, Invalid},
};

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

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct PollQuery {
    /// Must be the key's own tenant when given.
    admin_id: Option<String>,
    /// `1` when the grid is down.
    load_shedding: Option<String>,
    /// `1` when the pump is ready.
    ready: Option<String>,
    /// `1` when the relay is energised.
    relay: Option<String>,
    fw: Option<String>,
    uptime_ms: Option<u64>,
    rssi: Option<i16>,
    /// Why the board last started (first poll after a boot): POWER_ON, BROWN_OUT, WATCHDOG, PANIC,
    /// SOFTWARE or OTHER.
    #[param(value_type = Option<String>)]
    reset: Option<ResetReason>,
    /// `1` when the motor-running feedback input says the motor runs (boards that have one).
    feedback: Option<String>,
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

/// A device's report applied: the one way a report becomes a command, for the HTTP poll and for
/// MQTT alike. Records the telemetry, applies the poll to the tenant (the engine decides), and
/// answers with the command and the firmware meant for the device.
pub(crate) async fn report(app: &AppState, caller: &DeviceCaller, report: PollReport<'_>) -> Result<Reply, ApiError> {
    let update = app.firmware.meant_for(caller.admin, caller.device, report.fw);
    let now = app.now();
    let telemetry = Telemetry {
        device_id: caller.device,
        admin_id: caller.admin,
        last_seen_at: now,
        load_shedding: report.load_shedding,
        ready: report.ready,
        relay: report.relay,
        firmware: report.fw.map(|fw| fw.chars().take(40).collect()),
        uptime_ms: report.uptime_ms,
        rssi: report.rssi,
        last_reset: report.reset,
        // When the board started: now less its uptime (or now, without one).
        last_reset_at: report.reset.map(|_| now - report.uptime_ms.map_or(0, |ms| i64::try_from(ms).unwrap_or(0))),
        reader: report.reader,
        feedback: report.feedback,
    };
    let poll = DevicePoll {
        device: caller.device,
        load_shedding: report.load_shedding,
        ready: report.ready,
        relay: report.relay,
        feedback: report.feedback,
        reset: report.reset,
        relay_off: report.relay_off,
    };
    let answer = app.runtime.poll(caller.admin, poll, telemetry).await?;
    Ok(Reply { answer, update, reference: None })
}

async fn answer(
    app: &AppState,
    caller: &DeviceCaller,
    report: PollReport<'_>,
    long_poll: LongPoll,
) -> Result<Json<Reply>, ApiError> {
    let wait = long_poll.wait.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::validation(format!("wait: at most {MAX_WAIT_MS} ms")));
    }
    let arrived = app.now();
    let relay = report.relay;
    // On the heap only while the report runs: this future is kept, at its largest state's size,
    // through the whole long-poll (see `held`), and the report's (the runtime, the store) is large.
    let first = Box::pin(self::report(app, caller, report)).await?;
    let answer = held(app, caller, first.answer, relay, arrived, wait, long_poll.seq).await?;
    Ok(Json(Reply { answer, ..first }))
}

/// A long-poll: the answer `first` to the report that arrived at `arrived`, or a newer one when
/// the command changes within the wait.
///
/// Memory: a parked long-poll costs what its futures weigh, and a future weighs its largest state
/// for as long as it lives, so what runs after the wait (the runtime's locks, the store) is boxed
/// and what is kept through the wait is the change subscription, the timer and `first`.
async fn held(
    app: &AppState,
    caller: &DeviceCaller,
    first: PollAnswer,
    relay: bool,
    arrived: pumppilot_engine::Timestamp,
    wait: u32,
    seq: Option<u64>,
) -> Result<PollAnswer, ApiError> {
    let wait = wait.min(app.settings.device_lease_ms / 3);
    // A device told OFF for the store gets no long wait: the store may be back in a moment.
    let behind = (first.commands_on() && !relay) || first.hold_reason == Some(HoldReason::StoreUnavailable);
    let Some(known) = seq.filter(|seq| wait > 0 && !behind && *seq == first.seq) else {
        return Ok(first);
    };
    let changed = changed_within(app, caller.admin, known, arrived + i64::from(wait)).await;
    Box::pin(after_wait(app, caller, first, arrived, changed)).await
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
    Ok(PollAnswer { lease_ms: now.lease_ms.saturating_sub(elapsed_ms), ..now })
}

/// Report inputs and get the motor command (query form).
#[utoipa::path(get, path = "/api/esp32/poll", tag = "device", params(PollQuery), security(("deviceKey" = [])),
    responses((status = 200, description = "the command: motor, state, holdReason, remainingSeconds, pollMs, leaseMs, seq",
        body = Object), Device, Invalid, Forbidden))]
async fn poll_get(
    State(app): State<AppState>,
    query: Result<Query<PollQuery>, axum::extract::rejection::QueryRejection>,
    link: DeviceLink,
) -> Response {
    let result = async {
        let caller = DeviceCaller::of(&link);
        let Query(q) = query.map_err(|e| ApiError::validation(e.body_text()))?;
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
        answer(&app, &caller, report, LongPoll { wait: q.wait, seq: q.seq }).await
    }
    .await;
    link.answer(result).await
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct PollPostQuery {
    /// Must be the key's own tenant when given.
    admin_id: Option<String>,
    /// Long-poll: hold the answer up to this many milliseconds (at most 30000; cut to a third of the
    /// lease) until the command changes.
    wait: Option<u32>,
    /// Long-poll: the last `seq` this device received; an answer with another `seq` returns at once.
    seq: Option<u64>,
}

/// Report inputs and get the motor command (JSON body `{loadShedding, ready, relay, fw?, uptimeMs?, rssi?,
/// reset?, feedback?, reader?}`).
#[utoipa::path(post, path = "/api/esp32/poll", tag = "device", params(PollPostQuery), security(("deviceKey" = [])),
    request_body(content = Object, description = "`{loadShedding, ready, relay, fw?, uptimeMs?, rssi?, reset?, feedback?, reader?}`"),
    responses((status = 200, description = "the command, as for `GET`", body = Object), Device, Body, Forbidden))]
async fn poll_post(
    State(app): State<AppState>,
    query: Result<Query<PollPostQuery>, axum::extract::rejection::QueryRejection>,
    link: DeviceLink,
) -> Response {
    let result = async {
        let caller = DeviceCaller::of(&link);
        let Query(q) = query.map_err(|e| ApiError::validation(e.body_text()))?;
        check_tenant(&caller, q.admin_id.as_deref())?;
        let report: PollReport = parse_json(&link.body)?;
        answer(&app, &caller, report, LongPoll { wait: q.wait, seq: q.seq }).await
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
    /// long-poll: what runs before and after the wait (the device's link, the report, the
    /// sealing) stays out of it (4,104 bytes for `poll_get` before; the parked wait is ~400).
    #[test]
    fn a_parked_long_poll_keeps_small_futures() {
        let handlers = [("poll_get", size3(poll_get)), ("poll_post", size3(poll_post))];
        for (name, size) in handlers {
            assert!(size <= 2048, "{name}'s future: {size} bytes");
        }
        let link = size2(|request: Request, app: &'static AppState| DeviceLink::from_request(request, app));
        assert!(link <= 512, "the link's extraction: {link} bytes");
        let held = size3(|app: &'static AppState, caller: &'static DeviceCaller, first: PollAnswer| {
            held(app, caller, first, false, pumppilot_engine::Timestamp(0), 0, None)
        });
        assert!(held <= 512, "the held wait: {held} bytes");
    }
}
