//! A user's own motor operation: start, stop, status, the queue, the wallet, minute requests.

use axum::{Json, extract::State, http::StatusCode};
use pumppilot_engine::{AdminId, EntryId, Event, RUN_MINUTES, Reply, Tenant, Timestamp, UserId};
use pumppilot_store::{Account, MinuteRequest, RequestQuery, RequestStatus, UsageQuery};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::{Farmer, Member},
    error::{ApiError, ApiJson, OptionalJson},
    routes::{
        openapi::{AdminIdParam, Body, Missing, Refused, Scoped, SignedIn},
        wallet_view,
    },
    start_path::{self, Step},
    views::{
        DeviceStateView, EntryView, MeView, MinuteRequestView, MotorView, QueueView, StatusView, UsageView, WalletView,
        farmer_state, minutes,
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(status))
        .routes(routes!(queue))
        .routes(routes!(wallet))
        .routes(routes!(request_minutes, own_requests))
        .routes(routes!(own_usage))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    /// Run at most this many minutes (1 to 1440); until stopped or out of minutes when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1440)]
    minutes: Option<u32>,
}

/// Turns an entry into its view, with the display names it needs.
async fn entry_view(
    app: &AppState,
    entry: &pumppilot_engine::QueueEntry,
    tenant: &Tenant,
    now: Timestamp,
) -> Result<EntryView, ApiError> {
    let names = app.names(vec![entry.user_id]).await?;
    Ok(EntryView::new(entry, tenant, now, &|id: UserId| names.get(&id).cloned().unwrap_or_default()))
}

/// Start the motor: RUNNING (or HOLD) when it is free, else WAITING with a position.
#[utoipa::path(post, path = "/api/motor/start", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    request_body(content = Option<StartBody>, description = "optional"),
    responses((status = 200, description = "The caller's entry: RUNNING, HOLD or WAITING", body = EntryView),
        SignedIn, Body, Refused))]
async fn start(
    State(app): State<AppState>,
    farmer: Farmer,
    OptionalJson(body): OptionalJson<StartBody>,
) -> Result<Json<EntryView>, ApiError> {
    if body.minutes.is_some_and(|m| !RUN_MINUTES.contains(&m)) {
        return Err(ApiError::validation(format!("minutes: from {} to {}", RUN_MINUTES.start(), RUN_MINUTES.end())));
    }
    start_path::note(Step::Asked, farmer.scope.admin());
    let event = Event::Start { user: farmer.id(), requested_minutes: body.minutes, entry_id: EntryId::new() };
    let (reply, (tenant, now)) =
        app.runtime.apply(farmer.scope.admin(), event, Default::default(), |t, now| (t.clone(), now)).await?;
    start_path::note(Step::Committed, farmer.scope.admin());
    let Reply::Entry(entry) = reply? else { return Err(ApiError::internal()) };
    Ok(Json(entry_view(&app, &entry, &tenant, now).await?))
}

/// Stop: ends the caller's run (charged to this moment) or takes them out of the line.
#[utoipa::path(post, path = "/api/motor/stop", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The ended entry", body = EntryView), SignedIn, Missing, Refused))]
async fn stop(State(app): State<AppState>, farmer: Farmer) -> Result<Json<EntryView>, ApiError> {
    let event = Event::Stop { user: farmer.id() };
    let (reply, (tenant, now)) =
        app.runtime.apply(farmer.scope.admin(), event, Default::default(), |t, now| (t.clone(), now)).await?;
    let Reply::Ended(entry) = reply? else { return Err(ApiError::internal()) };
    Ok(Json(entry_view(&app, &entry, &tenant, now).await?))
}

/// The motor, the caller's own entry and balance, and the device.
#[utoipa::path(get, path = "/api/motor/status", tag = "motor", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The motor, the caller's entry and balance, the device", body = StatusView),
        Scoped))]
async fn status(State(app): State<AppState>, member: Member) -> Result<Json<StatusView>, ApiError> {
    let me = member.caller.id();
    let (tenant, now) = app.runtime.read(member.scope.admin(), |t, now| (t.clone(), now)).await?;
    let ids = tenant.live_entry(me).map(|(entry, _)| entry.user_id).into_iter().collect();
    let names = app.names(ids).await?;
    Ok(Json(status_view(&tenant, now, me, &|id: UserId| names.get(&id).cloned().unwrap_or_default())))
}

/// The motor, `me`'s own entry and balance, and the device, as they stand at `now`.
pub fn status_view(tenant: &Tenant, now: Timestamp, me: UserId, name: &impl Fn(UserId) -> String) -> StatusView {
    let available = tenant.available_seconds(me, now);
    let entry = tenant.live_entry(me).map(|(entry, _)| EntryView::new(entry, tenant, now, name));
    StatusView {
        motor: MotorView::new(tenant, now),
        me: MeView {
            state: farmer_state(entry.as_ref()),
            entry,
            available_seconds: available,
            available_minutes: minutes(available),
        },
        device: DeviceStateView::new(tenant, now),
    }
}

/// The tenant's active run and waiting line.
#[utoipa::path(get, path = "/api/queue", tag = "motor", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The active run and the waiting line", body = QueueView), Scoped))]
async fn queue(State(app): State<AppState>, member: Member) -> Result<Json<QueueView>, ApiError> {
    let (tenant, now) = app.runtime.read(member.scope.admin(), |t, now| (t.clone(), now)).await?;
    let ids = tenant.active.as_deref().into_iter().chain(&tenant.waiting).map(|e| e.user_id).collect();
    let names = app.names(ids).await?;
    Ok(Json(QueueView::new(&tenant, now, &|id: UserId| names.get(&id).cloned().unwrap_or_default())))
}

/// The caller's balance and ledger, newest first.
#[utoipa::path(get, path = "/api/wallet", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's balance and ledger", body = WalletView), SignedIn))]
async fn wallet(State(app): State<AppState>, farmer: Farmer) -> Result<Json<WalletView>, ApiError> {
    Ok(Json(wallet_view(&app, farmer.scope, farmer.id()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinuteRequestBody {
    /// 1 to the pump's `maxRequestMinutes` (`GET /api/terms`; 600 until the owner sets it).
    #[schema(minimum = 1)]
    minutes: i64,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    note: Option<String>,
}

/// Ask the admin for minutes (for example after paying in cash). One request may wait at a time:
/// a second answers 409 `REQUEST_PENDING` until the owner decides the first.
#[utoipa::path(post, path = "/api/minute-requests", tag = "motor", request_body = MinuteRequestBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 201, description = "The new, pending request", body = MinuteRequestView), SignedIn, Body, Refused))]
async fn request_minutes(
    State(app): State<AppState>,
    farmer: Farmer,
    ApiJson(body): ApiJson<MinuteRequestBody>,
) -> Result<(StatusCode, Json<MinuteRequestView>), ApiError> {
    let note = super::check_text("note", &body.note.unwrap_or_default(), 500, false)?;
    let request = ask_for_minutes(&app, &farmer.caller.account, farmer.scope.admin(), body.minutes, note)
        .await?
        .map_err(|most| ApiError::validation(format!("minutes: from 1 to {most}")))?;
    Ok((StatusCode::CREATED, Json(MinuteRequestView::from(&request))))
}

/// Asks the owner of `admin`'s pump for `minutes` as `farmer` (from the app, a page or a text),
/// the owner's notice in the request's own write: both or neither. `Ok(Err(most))` when the
/// minutes are outside 1 to the pump's most, and nothing is asked; `REQUEST_PENDING` while a
/// request of theirs waits.
pub(crate) async fn ask_for_minutes(
    app: &AppState,
    farmer: &Account,
    admin: AdminId,
    minutes: i64,
    note: String,
) -> Result<Result<MinuteRequest, i64>, ApiError> {
    let most = app.store.terms(admin).await?.max_request_minutes;
    if !(1..=most).contains(&minutes) {
        return Ok(Err(most));
    }
    let request = MinuteRequest {
        id: pumppilot_engine::RequestId::new(),
        user_id: farmer.id,
        admin_id: admin,
        minutes,
        note,
        status: RequestStatus::Pending,
        created_at: app.now(),
        decided_at: None,
        decided_by: None,
        reject_reason: None,
    };
    let notice = crate::alerts::request_new(&request, &farmer.name);
    app.store.create_minute_request(&request, &[notice]).await?;
    Ok(Ok(request))
}

/// The caller's own minute requests, newest first.
#[utoipa::path(get, path = "/api/minute-requests", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's requests", body = [MinuteRequestView]), SignedIn))]
async fn own_requests(State(app): State<AppState>, farmer: Farmer) -> Result<Json<Vec<MinuteRequestView>>, ApiError> {
    let query = RequestQuery { admin: farmer.scope.admin(), user: Some(farmer.id()), status: None };
    Ok(Json(app.store.minute_requests(&query).await?.iter().map(MinuteRequestView::from).collect()))
}

/// The caller's finished runs, newest first.
#[utoipa::path(get, path = "/api/usage", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The caller's finished runs", body = [UsageView]), SignedIn))]
async fn own_usage(State(app): State<AppState>, farmer: Farmer) -> Result<Json<Vec<UsageView>>, ApiError> {
    let query = UsageQuery { admin: farmer.scope.admin(), user: Some(farmer.id()), from: None, to: None, limit: 1000 };
    Ok(Json(app.store.usage(&query).await?.iter().map(UsageView::from).collect()))
}
