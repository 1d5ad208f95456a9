//! An admin's own tenant (or the master's, with `?adminId=`): users, minutes, requests, the
//! device, the motor, and the books.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::{Credit, DeviceId, Event, LedgerKind, Reply, RequestId, UserId};
use pumppilot_store::{
    Account, AuditEntry, Decision, Device, MinuteRequest, RequestQuery, RequestStatus, Role, UsageQuery,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{NewAccountBody, audit_entry, create_account, parse_id, set_suspended, wallet_view};
use crate::{
    app::{App, AppState},
    auth::{AdminScope, TenantScope},
    clock,
    error::{ApiError, ApiJson},
    keys::Keyring,
    runtime::Extras,
    views::{
        AuditView, BalanceView, DeviceCreatedView, DeviceView, EntryView, MinuteRequestView, UsageView,
        UserBalanceView, UserView, WalletView, minutes,
    },
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(suspend_user))
        .routes(routes!(unsuspend_user))
        .routes(routes!(recharge))
        .routes(routes!(correct))
        .routes(routes!(user_wallet))
        .routes(routes!(list_requests))
        .routes(routes!(approve_request))
        .routes(routes!(reject_request))
        .routes(routes!(register_device, list_devices))
        .routes(routes!(rotate_device_key))
        .routes(routes!(admin_stop))
        .routes(routes!(tenant_usage))
        .routes(routes!(audit_log))
}

/// A user of this tenant, or 404 (another tenant's user does not exist here).
pub async fn tenant_user(app: &App, scope: TenantScope, id: &str) -> Result<Arc<Account>, ApiError> {
    let id: UserId = parse_id(id, "user")?;
    match app.sessions.account(app, id).await? {
        Some(account) if account.role == Role::User && account.admin_id == Some(scope.admin()) => Ok(account),
        _ => Err(ApiError::not_found("user")),
    }
}

fn audit(app: &App, admin: &AdminScope, action: &str, target: String, detail: String) -> AuditEntry {
    audit_entry(app.now(), Some(admin.scope.admin()), admin.caller.id(), action, &target, detail)
}

/// Creates a user in this tenant.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewAccountBody,
    responses((status = 201, body = UserView), (status = "4XX", body = crate::error::ErrorBody)))]
async fn create_user(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let account = create_account(&app, body, Role::User, Some(admin.scope.admin()), admin.caller.id()).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&account))))
}

/// The tenant's users with their balances.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", responses((status = 200, body = [UserBalanceView])))]
async fn list_users(State(app): State<AppState>, admin: AdminScope) -> Result<Json<Vec<UserBalanceView>>, ApiError> {
    let users = app.store.accounts(Role::User, Some(admin.scope.admin())).await?;
    let views = app
        .runtime
        .read(admin.scope.admin(), |tenant, now| {
            users
                .iter()
                .map(|user| {
                    let available = tenant.available_seconds(user.id, now);
                    UserBalanceView {
                        user: UserView::from(user),
                        available_seconds: available,
                        available_minutes: minutes(available),
                    }
                })
                .collect()
        })
        .await?;
    Ok(Json(views))
}

async fn set_user_suspended(
    app: &AppState,
    admin: &AdminScope,
    id: &str,
    suspended: bool,
) -> Result<Json<UserView>, ApiError> {
    let user = tenant_user(app, admin.scope, id).await?;
    Ok(Json(set_suspended(app, admin.caller.id(), &user, suspended).await?))
}

/// Suspends a user: signed out everywhere, their run or place in line ends.
#[utoipa::path(post, path = "/api/admin/users/{id}/suspend", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::ErrorBody)))]
async fn suspend_user(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    set_user_suspended(&app, &admin, &id, true).await
}

/// Lets a suspended user back in.
#[utoipa::path(post, path = "/api/admin/users/{id}/unsuspend", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::ErrorBody)))]
async fn unsuspend_user(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    set_user_suspended(&app, &admin, &id, false).await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RechargeBody {
    user_id: String,
    /// 1 to 100000.
    minutes: i64,
    #[serde(default)]
    note: Option<String>,
}

fn note(text: Option<String>) -> Result<String, ApiError> {
    let text = text.unwrap_or_default();
    if text.chars().count() > 500 {
        return Err(ApiError::validation("note: at most 500 characters"));
    }
    Ok(text)
}

/// Adds minutes to a user's wallet.
#[utoipa::path(post, path = "/api/admin/recharge", tag = "admin", request_body = RechargeBody,
    responses((status = 200, body = BalanceView), (status = "4XX", body = crate::error::ErrorBody)))]
async fn recharge(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<RechargeBody>,
) -> Result<Json<BalanceView>, ApiError> {
    if !(1..=100_000).contains(&body.minutes) {
        return Err(ApiError::validation("minutes: from 1 to 100000"));
    }
    let note = note(body.note)?;
    change_balance(&app, &admin, &body.user_id, body.minutes, LedgerKind::Recharge, note).await
}

/// Adds (or, for a correction, takes away) minutes, with its ledger and audit entries.
async fn change_balance(
    app: &AppState,
    admin: &AdminScope,
    user_id: &str,
    minutes_delta: i64,
    kind: LedgerKind,
    note: String,
) -> Result<Json<BalanceView>, ApiError> {
    let user = tenant_user(app, admin.scope, user_id).await?;
    let detail = format!("{minutes_delta:+} min {note}").trim_end().to_string();
    let action = if kind == LedgerKind::Correction { "correction" } else { "recharge" };
    let extras = Extras::audit(audit(app, admin, action, user.id.to_string(), detail));
    let credit =
        Credit { user: user.id, seconds: minutes_delta * 60, kind, actor: admin.caller.id(), note, request_id: None };
    let (reply, available) = app
        .runtime
        .apply(admin.scope.admin(), Event::Credit(credit), extras, |t, now| t.available_seconds(user.id, now))
        .await?;
    reply?;
    Ok(Json(BalanceView {
        user_id: user.id.to_string(),
        available_seconds: available,
        available_minutes: minutes(available),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrectionBody {
    user_id: String,
    /// Minutes to add (positive) or take away (negative), -100000 to 100000, not 0.
    minutes: i64,
    /// Why, for the ledger and the audit log (required, up to 500 characters).
    note: String,
}

/// Corrects a user's balance up or down (a mistaken recharge, say). Never below zero, nor below
/// what a running run has already used.
#[utoipa::path(post, path = "/api/admin/corrections", tag = "admin", request_body = CorrectionBody,
    responses((status = 200, body = BalanceView), (status = "4XX", body = crate::error::ErrorBody)))]
async fn correct(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Json<BalanceView>, ApiError> {
    if body.minutes == 0 || body.minutes.abs() > 100_000 {
        return Err(ApiError::validation("minutes: from -100000 to 100000, not 0"));
    }
    let note = note(Some(body.note))?;
    if note.trim().is_empty() {
        return Err(ApiError::validation("note: say why the balance is corrected"));
    }
    change_balance(&app, &admin, &body.user_id, body.minutes, LedgerKind::Correction, note).await
}

/// A user's balance and ledger, newest first.
#[utoipa::path(get, path = "/api/admin/users/{id}/wallet", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = WalletView), (status = 404, body = crate::error::ErrorBody)))]
async fn user_wallet(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let user = tenant_user(&app, admin.scope, &id).await?;
    Ok(Json(wallet_view(&app, admin.scope, user.id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestFilter {
    /// `PENDING`, `APPROVED` or `REJECTED`; all when absent.
    status: Option<String>,
    #[allow(dead_code)]
    #[serde(rename = "adminId")]
    admin_id: Option<String>,
}

/// The tenant's minute requests, newest first.
#[utoipa::path(get, path = "/api/admin/minute-requests", tag = "admin", params(RequestFilter),
    responses((status = 200, body = [MinuteRequestView])))]
async fn list_requests(
    State(app): State<AppState>,
    admin: AdminScope,
    Query(filter): Query<RequestFilter>,
) -> Result<Json<Vec<MinuteRequestView>>, ApiError> {
    let status = match filter.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            RequestStatus::parse(text).ok_or_else(|| ApiError::validation("status: PENDING, APPROVED or REJECTED"))?,
        ),
    };
    let query = RequestQuery { admin: admin.scope.admin(), user: None, status };
    Ok(Json(app.store.minute_requests(&query).await?.iter().map(MinuteRequestView::from).collect()))
}

async fn tenant_request(app: &App, scope: TenantScope, id: &str) -> Result<MinuteRequest, ApiError> {
    let id: RequestId = parse_id(id, "minute request")?;
    match app.store.minute_request(id).await? {
        Some(request) if request.admin_id == scope.admin() => Ok(request),
        _ => Err(ApiError::not_found("minute request")),
    }
}

/// Approves a request: its minutes are recharged in the same write.
#[utoipa::path(post, path = "/api/admin/minute-requests/{id}/approve", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = MinuteRequestView), (status = 409, body = crate::error::ErrorBody)))]
async fn approve_request(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<MinuteRequestView>, ApiError> {
    let request = tenant_request(&app, admin.scope, &id).await?;
    if request.status != RequestStatus::Pending {
        return Err(ApiError::conflict("ALREADY_DECIDED", "this request was already decided"));
    }
    let now = app.now();
    let decision = Decision {
        request_id: request.id,
        admin_id: request.admin_id,
        status: RequestStatus::Approved,
        decided_by: admin.caller.id(),
        at: now,
    };
    let credit = Credit {
        user: request.user_id,
        seconds: request.minutes * 60,
        kind: LedgerKind::RequestApproved,
        actor: admin.caller.id(),
        note: request.note.clone(),
        request_id: Some(request.id),
    };
    let extras = Extras {
        decision: Some(decision.clone()),
        ..Extras::audit(audit(
            &app,
            &admin,
            "request.approve",
            request.id.to_string(),
            format!("+{} min", request.minutes),
        ))
    };
    app.runtime.apply(admin.scope.admin(), Event::Credit(credit), extras, |_, _| ()).await?.0?;
    Ok(Json(decided(request, &decision)))
}

/// The view of a request after `decision` was written.
fn decided(request: MinuteRequest, decision: &Decision) -> MinuteRequestView {
    MinuteRequestView::from(&MinuteRequest {
        status: decision.status,
        decided_at: Some(decision.at),
        decided_by: Some(decision.decided_by),
        ..request
    })
}

/// Rejects a request.
#[utoipa::path(post, path = "/api/admin/minute-requests/{id}/reject", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = MinuteRequestView), (status = 409, body = crate::error::ErrorBody)))]
async fn reject_request(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<MinuteRequestView>, ApiError> {
    let request = tenant_request(&app, admin.scope, &id).await?;
    let decision = Decision {
        request_id: request.id,
        admin_id: request.admin_id,
        status: RequestStatus::Rejected,
        decided_by: admin.caller.id(),
        at: app.now(),
    };
    app.store.decide_minute_request(&decision).await?;
    app.store
        .append_audit(&audit(
            &app,
            &admin,
            "request.reject",
            request.id.to_string(),
            format!("{} min", request.minutes),
        ))
        .await?;
    Ok(Json(decided(request, &decision)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    /// 1 to 80 characters.
    name: String,
}

/// Registers a device; its key is shown in this answer only.
#[utoipa::path(post, path = "/api/admin/devices", tag = "admin", request_body = NewDeviceBody,
    responses((status = 201, body = DeviceCreatedView)))]
async fn register_device(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<DeviceCreatedView>), ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::validation("name: 1 to 80 characters"));
    }
    let key = Keyring::new_token("pp_dev_");
    let hash = app.keyring.hash(&key);
    let device = Device {
        id: DeviceId::new(),
        admin_id: admin.scope.admin(),
        name,
        key_hash: hash.to_vec(),
        created_at: app.now(),
        telemetry: None,
    };
    app.store.create_device(&device).await?;
    app.device_keys.write().expect("device keys lock").insert(hash, (device.id, device.admin_id));
    app.store.append_audit(&audit(&app, &admin, "device.register", device.id.to_string(), device.name.clone())).await?;
    Ok((StatusCode::CREATED, Json(DeviceCreatedView { id: device.id.to_string(), name: device.name, device_key: key })))
}

/// Gives a device a new key, shown in this answer only; the old key stops working at once.
#[utoipa::path(post, path = "/api/admin/devices/{id}/rotate-key", tag = "admin", params(("id" = String, Path)),
    responses((status = 200, body = DeviceCreatedView), (status = 404, body = crate::error::ErrorBody)))]
async fn rotate_device_key(
    State(app): State<AppState>,
    admin: AdminScope,
    Path(id): Path<String>,
) -> Result<Json<DeviceCreatedView>, ApiError> {
    let id: DeviceId = parse_id(&id, "device")?;
    let devices = app.store.devices(Some(admin.scope.admin())).await?;
    let device = devices.into_iter().find(|d| d.id == id).ok_or_else(|| ApiError::not_found("device"))?;
    let key = Keyring::new_token("pp_dev_");
    let hash = app.keyring.hash(&key);
    app.store.set_device_key(device.admin_id, device.id, &hash).await?;
    {
        let mut keys = app.device_keys.write().expect("device keys lock");
        keys.retain(|_, (known, _)| *known != device.id);
        keys.insert(hash, (device.id, device.admin_id));
    }
    app.store
        .append_audit(&audit(&app, &admin, "device.rotate-key", device.id.to_string(), device.name.clone()))
        .await?;
    Ok(Json(DeviceCreatedView { id: device.id.to_string(), name: device.name, device_key: key }))
}

/// The tenant's devices with what they last reported.
#[utoipa::path(get, path = "/api/admin/devices", tag = "admin", responses((status = 200, body = [DeviceView])))]
async fn list_devices(State(app): State<AppState>, admin: AdminScope) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let now = app.now();
    let lease = i64::from(app.settings.device_lease_ms);
    let views = app
        .store
        .devices(Some(admin.scope.admin()))
        .await?
        .into_iter()
        .map(|mut device| {
            if let Some(latest) = app.runtime.pending_telemetry(device.id) {
                device.telemetry = Some(latest);
            }
            DeviceView::new(&device, lease, now)
        })
        .collect();
    Ok(Json(views))
}

/// Stops the active run (404 when nothing is active); the next in line starts.
#[utoipa::path(post, path = "/api/admin/motor/stop", tag = "admin", responses((status = 200, body = EntryView), (status = 404, body = crate::error::ErrorBody)))]
async fn admin_stop(State(app): State<AppState>, admin: AdminScope) -> Result<Json<EntryView>, ApiError> {
    let extras = Extras::audit(audit(&app, &admin, "motor.stop", admin.scope.admin().to_string(), String::new()));
    let (reply, tenant) =
        app.runtime.apply(admin.scope.admin(), Event::AdminStop, extras, |t, now| (t.clone(), now)).await?;
    let Reply::Ended(entry) = reply? else { return Err(ApiError::internal()) };
    let names = app.names(vec![entry.user_id]).await?;
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_default();
    Ok(Json(EntryView::new(&entry, &tenant.0, tenant.1, &name)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageFilter {
    /// RFC 3339 time or `YYYY-MM-DD` (inclusive).
    from: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD` (exclusive).
    to: Option<String>,
    /// `csv` for a spreadsheet.
    format: Option<String>,
    /// Only this user.
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[allow(dead_code)]
    #[serde(rename = "adminId")]
    admin_id: Option<String>,
}

fn time_param(text: Option<&str>, field: &str) -> Result<Option<pumppilot_engine::Timestamp>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => clock::parse_time(text)
            .map(Some)
            .ok_or_else(|| ApiError::validation(format!("{field}: an RFC 3339 time or YYYY-MM-DD"))),
    }
}

/// Finished runs of the tenant, newest first (`?format=csv` for a spreadsheet).
#[utoipa::path(get, path = "/api/admin/usage", tag = "admin", params(UsageFilter), responses((status = 200, body = [UsageView])))]
async fn tenant_usage(
    State(app): State<AppState>,
    admin: AdminScope,
    Query(filter): Query<UsageFilter>,
) -> Result<Response, ApiError> {
    let user = match filter.user_id.as_deref() {
        Some(id) => Some(tenant_user(&app, admin.scope, id).await?.id),
        None => None,
    };
    let query = UsageQuery {
        admin: admin.scope.admin(),
        user,
        from: time_param(filter.from.as_deref(), "from")?,
        to: time_param(filter.to.as_deref(), "to")?,
        limit: 10_000,
    };
    let rows: Vec<UsageView> = app.store.usage(&query).await?.iter().map(UsageView::from).collect();
    match filter.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => Ok(usage_csv(&app, &rows).await?.into_response()),
        Some(_) => Err(ApiError::validation("format: json or csv")),
    }
}

async fn usage_csv(app: &App, rows: &[UsageView]) -> Result<impl IntoResponse, ApiError> {
    let ids = rows.iter().filter_map(|r| r.user_id.parse::<UserId>().ok()).collect();
    let names = app.names(ids).await?;
    let mut csv =
        String::from("entryId,userId,userName,startedAt,endedAt,runningSeconds,heldSeconds,chargedSeconds,endReason\n");
    for r in rows {
        let name = r.user_id.parse::<UserId>().ok().and_then(|id| names.get(&id)).cloned().unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.entry_id,
            r.user_id,
            csv_field(&name),
            r.started_at,
            r.ended_at,
            r.running_seconds,
            r.held_seconds,
            r.charged_seconds,
            r.end_reason
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"usage.csv\""),
        ],
        csv,
    ))
}

/// Quotes a CSV field, and defuses spreadsheet formulas in user-supplied text.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_string() };
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", responses((status = 200, body = [AuditView])))]
async fn audit_log(State(app): State<AppState>, admin: AdminScope) -> Result<Json<Vec<AuditView>>, ApiError> {
    Ok(Json(app.store.audit(Some(admin.scope.admin()), 500).await?.iter().map(AuditView::from).collect()))
}
