//! An admin's own tenant (or the master's, with `?adminId=`): users, minutes, requests, the
//! device, the motor, and the books.

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use pumppilot_engine::{
    Credit, DeviceId, Event, LedgerKind, MotorSettings, ReceiptId, RejectReason, Reply, RequestId, UserId,
    request_rejected,
};
use pumppilot_store::{
    Account, AlertProfile, AuditEntry, AuditQuery, AuditedWrite, Decision, Device, MinuteRequest, RequestQuery,
    RequestStatus, Role, StoreError, UsageQuery, is_e164,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{NewAccountBody, audit_entry, create_account, parse_id, set_suspended, wallet_view};
use crate::{
    app::{App, AppState},
    auth::{AdminScope, TenantScope},
    clock,
    error::{ApiError, ApiJson, ApiPath, ApiQuery, OnceKey, OptionalJson},
    keys::Keyring,
    link,
    routes::openapi::{AdminIdParam, Body, KeyReused, OnceKeyParam, Refused, Scoped},
    runtime::{Extras, RuntimeError},
    views::{
        AuditView, BalanceView, DeviceCreatedView, DeviceView, EntryView, FarmerPhoneView, MinuteRequestView,
        MotorSettingsView, QueueView, UsageView, UserBalanceView, UserView, WalletView, minutes,
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
        .routes(routes!(farmer_phone, enrol_farmer_phone))
        .routes(routes!(list_requests))
        .routes(routes!(approve_request))
        .routes(routes!(reject_request))
        .routes(routes!(register_device, list_devices))
        .routes(routes!(rotate_device_key))
        .routes(routes!(retire_device))
        .routes(routes!(choose_controller))
        .routes(routes!(motor_settings, set_motor_settings))
        .routes(routes!(admin_stop))
        .routes(routes!(remove_waiting))
        .routes(routes!(move_waiting))
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
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", request_body = NewAccountBody, params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 201, description = "The new user", body = UserView), Scoped, Body, Refused))]
async fn create_user(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let account = create_account(&app, body, Role::User, Some(admin.scope.admin()), admin.caller.id()).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&account))))
}

/// The tenant's users with their balances.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The tenant's users", body = [UserBalanceView]), Scoped))]
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
#[utoipa::path(post, path = "/api/admin/users/{id}/suspend", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The user, suspended", body = UserView), Scoped, Refused))]
async fn suspend_user(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_user_suspended(&app, &admin, &id, true).await
}

/// Lets a suspended user back in.
#[utoipa::path(post, path = "/api/admin/users/{id}/unsuspend", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The user, let back in", body = UserView), Scoped, Refused))]
async fn unsuspend_user(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_user_suspended(&app, &admin, &id, false).await
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RechargeBody {
    user_id: String,
    /// 1 to 100000.
    #[schema(minimum = 1, maximum = 100000)]
    minutes: i64,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    note: Option<String>,
    /// The cash taken for these minutes, in whole taka (0 to 10000000); a receipt is written with
    /// the recharge. When absent and the pump has a price, the price of the minutes is taken (and
    /// refused like a given one when over 10000000).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10000000)]
    cash_taka: Option<i64>,
}

fn note(text: Option<String>) -> Result<String, ApiError> {
    super::check_text("note", &text.unwrap_or_default(), 500, false)
}

/// The most cash one receipt may say, in taka.
const MOST_CASH_TAKA: i64 = 10_000_000;

/// Adds minutes to a user's wallet. Sent again with the same `Idempotency-Key`, it is made once
/// and answered as the first was (with the balance now).
#[utoipa::path(post, path = "/api/admin/recharge", tag = "admin", request_body = RechargeBody, params(AdminIdParam, OnceKeyParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The user's new balance", body = BalanceView), Scoped, Body, Refused, KeyReused))]
async fn recharge(
    State(app): State<AppState>,
    admin: AdminScope,
    OnceKey(once_key): OnceKey,
    ApiJson(body): ApiJson<RechargeBody>,
) -> Result<Json<BalanceView>, ApiError> {
    if !(1..=100_000).contains(&body.minutes) {
        return Err(ApiError::validation("minutes: from 1 to 100000"));
    }
    let note = note(body.note)?;
    let cash = match body.cash_taka {
        Some(taka) => Some(Cash { taka, priced: false }),
        None => super::owner::price_of(&app.store.terms(admin.scope.admin()).await?, body.minutes)
            .map(|taka| Cash { taka, priced: true }),
    };
    // The cash a receipt may say, given or at the pump's price.
    if cash.is_some_and(|cash| !(0..=MOST_CASH_TAKA).contains(&cash.taka)) {
        return Err(ApiError::validation(format!("cashTaka: from 0 to {MOST_CASH_TAKA}")));
    }
    let change = Change { minutes: body.minutes, kind: LedgerKind::Recharge, note, cash, once_key };
    change_balance(&app, &admin, &body.user_id, change).await
}

/// A change to a wallet as a person asked for it.
struct Change {
    /// Minutes to add (or, for a correction, to take away when negative).
    minutes: i64,
    kind: LedgerKind,
    note: String,
    /// The cash taken, for a receipt.
    cash: Option<Cash>,
    once_key: Option<String>,
}

/// The cash a recharge's receipt says.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Cash {
    taka: i64,
    /// The recharge gave none: this is the pump's price of its minutes at the time.
    priced: bool,
}

impl Cash {
    /// The `cashTaka` a recharge that made a receipt with this cash asked for: none when it took
    /// the price (whatever the price is now).
    fn asked(cash: Option<Cash>) -> Option<i64> {
        cash.filter(|cash| !cash.priced).map(|cash| cash.taka)
    }
}

/// Adds (or, for a correction, takes away) minutes, with its ledger and audit entries. A change
/// whose key the pump's ledger already has is not made again: it is answered as the first was,
/// or refused when it asks for something else under that key.
async fn change_balance(
    app: &AppState,
    admin: &AdminScope,
    user_id: &str,
    change: Change,
) -> Result<Json<BalanceView>, ApiError> {
    let user = tenant_user(app, admin.scope, user_id).await?;
    let Change { minutes: minutes_delta, kind, note, cash, once_key } = change;
    let seconds = minutes_delta.checked_mul(60).ok_or_else(|| ApiError::validation("minutes: too many"))?;
    let paid = cash.map(|cash| format!(" ({} taka)", cash.taka)).unwrap_or_default();
    let detail = format!("{minutes_delta:+} min{paid} {note}").trim_end().to_string();
    let action = if kind == LedgerKind::Correction { "correction" } else { "recharge" };
    let receipt =
        cash.map(|cash| super::owner::new_receipt(app, admin, user.id, minutes_delta, cash.taka, cash.priced));
    let receipt_id = receipt.as_ref().map(|r| r.id);
    let extras = Extras { receipt, ..Extras::audit(audit(app, admin, action, user.id.to_string(), detail)) };
    let credit =
        Credit { user: user.id, seconds, kind, actor: admin.caller.id(), note, request_id: None, once_key, receipt_id };
    let first = credit.clone();
    let available = |t: &pumppilot_engine::Tenant, now| t.available_seconds(user.id, now);
    let (receipt_id, available, repeated) =
        match app.runtime.apply(admin.scope.admin(), Event::Credit(credit), extras, available).await {
            Ok((reply, now_available)) => {
                reply?;
                (receipt_id, now_available, false)
            }
            Err(RuntimeError::Store(StoreError::AlreadyMade)) => (
                made_before(app, admin, &first, Cash::asked(cash)).await?,
                app.runtime.read(admin.scope.admin(), available).await?,
                true,
            ),
            Err(other) => return Err(other.into()),
        };
    Ok(Json(BalanceView {
        user_id: user.id.to_string(),
        name: user.name.clone(),
        available_seconds: available,
        available_minutes: minutes(available),
        receipt_id: receipt_id.map(|id| id.to_string()),
        repeated,
    }))
}

/// The receipt of the change made before with `asked`'s key, when it asked for the same change;
/// else 422 `KEY_REUSED`. What was asked is compared, never what was derived from it: a recharge
/// that gave no cash (`cash_asked` none) took the pump's price, and is the same recharge sent
/// again after the owner changed the price.
async fn made_before(
    app: &AppState,
    admin: &AdminScope,
    asked: &Credit,
    cash_asked: Option<i64>,
) -> Result<Option<ReceiptId>, ApiError> {
    let key = asked.once_key.as_deref().unwrap_or_default();
    let Some(made) = app.store.ledger_entry_with_key(admin.scope.admin(), key).await? else {
        return Err(ApiError::conflict("CONFLICT", "the change was refused; try again"));
    };
    let cash_made = match made.receipt_id {
        Some(id) => {
            app.store.receipt(admin.scope.admin(), id).await?.map(|r| Cash { taka: r.cash_taka, priced: r.priced })
        }
        None => None,
    };
    let same = made.user_id == asked.user
        && made.delta_seconds == asked.seconds
        && made.kind == asked.kind
        && made.note == asked.note
        && Cash::asked(cash_made) == cash_asked;
    if !same {
        return Err(key_reused("another change"));
    }
    Ok(made.receipt_id)
}

/// 422 `KEY_REUSED`: the `Idempotency-Key` already made `what`; nothing is made.
fn key_reused(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "KEY_REUSED",
        format!("Idempotency-Key: this key was used for {what}; send a new key"),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorrectionBody {
    user_id: String,
    /// Minutes to add (positive) or take away (negative), -100000 to 100000, not 0.
    #[schema(minimum = -100000, maximum = 100000)]
    minutes: i64,
    /// Why, for the ledger and the audit log (required, up to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    note: String,
}

/// Corrects a user's balance up or down (a mistaken recharge, say). Never below zero, nor below
/// what a running run has already used. Sent again with the same `Idempotency-Key`, it is made
/// once.
#[utoipa::path(post, path = "/api/admin/corrections", tag = "admin", request_body = CorrectionBody, params(AdminIdParam, OnceKeyParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The user's new balance", body = BalanceView), Scoped, Body, Refused, KeyReused))]
async fn correct(
    State(app): State<AppState>,
    admin: AdminScope,
    OnceKey(once_key): OnceKey,
    ApiJson(body): ApiJson<CorrectionBody>,
) -> Result<Json<BalanceView>, ApiError> {
    if body.minutes == 0 || body.minutes.unsigned_abs() > 100_000 {
        return Err(ApiError::validation("minutes: from -100000 to 100000, not 0"));
    }
    let note = note(Some(body.note))?;
    if note.trim().is_empty() {
        return Err(ApiError::validation("note: say why the balance is corrected"));
    }
    let change = Change { minutes: body.minutes, kind: LedgerKind::Correction, note, cash: None, once_key };
    change_balance(&app, &admin, &body.user_id, change).await
}

/// A user's balance and ledger, newest first.
#[utoipa::path(get, path = "/api/admin/users/{id}/wallet", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The user's balance and ledger", body = WalletView), Scoped))]
async fn user_wallet(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
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
/// A farmer's number for SMS and the language of their messages, as their owner enrols them.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FarmerPhoneBody {
    /// E.164, e.g. `+8801711000000`.
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    phone: String,
    /// `en` or `bn`.
    language: String,
}

/// A farmer of this pump and their alert profile (the empty one until set).
async fn farmer_profile(app: &AppState, admin: &AdminScope, id: &str) -> Result<AlertProfile, ApiError> {
    let farmer = tenant_user(app, admin.scope, id).await?;
    Ok(app.store.alert_profile(farmer.id).await?.unwrap_or_else(|| AlertProfile::empty(farmer.id)))
}

/// A farmer's number for SMS: the confirmed one, the one waiting with its code, their language.
#[utoipa::path(get, path = "/api/admin/users/{id}/phone", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The farmer's number", body = FarmerPhoneView), Scoped))]
async fn farmer_phone(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FarmerPhoneView>, ApiError> {
    let profile = farmer_profile(&app, &admin, &id).await?;
    Ok(Json(super::alerts::farmer_phone_view(&app, &profile)))
}

/// Enrols a farmer for SMS (one with a feature phone and no app): the number waits, with a code,
/// until it is texted from that phone (the owner stands with the farmer), exactly as a number the
/// farmer sets themselves; the language of their messages is set at once. The enrolment lands on
/// the profile it was made from: one changed meanwhile (a number confirmed, the farmer's phone
/// registering its token) is read again and the enrolment made afresh; changed at every try, 409
/// `CONFLICT`, and nothing is written.
#[utoipa::path(put, path = "/api/admin/users/{id}/phone", tag = "admin", request_body = FarmerPhoneBody, params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The farmer's number, waiting with its code", body = FarmerPhoneView), Scoped, Body, Refused))]
async fn enrol_farmer_phone(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FarmerPhoneBody>,
) -> Result<Json<FarmerPhoneView>, ApiError> {
    if !is_e164(&body.phone) {
        return Err(ApiError::validation("phone: E.164, like +8801711000000"));
    }
    if !matches!(body.language.as_str(), "en" | "bn") {
        return Err(ApiError::validation("language: en or bn"));
    }
    let farmer = tenant_user(&app, admin.scope, &id).await?.id;
    // Who may start this farmer's pump by SMS once confirmed: the owner's enrolment is audited.
    let entry = audit(&app, &admin, "farmer.phone", farmer.to_string(), body.phone.clone());
    let make = |mut profile: AlertProfile| {
        profile.language = body.language.clone();
        super::alerts::ask_for_phone(&mut profile, Some(body.phone.clone()), app.now());
        profile
    };
    let write = |profile: AlertProfile, read: Option<AlertProfile>| {
        let (store, entry) = (&app.store, &entry);
        async move { store.write_audited(&AuditedWrite::SetAlertProfile { profile, read }, entry).await }
    };
    let stored = super::alerts::save_afresh(&app, farmer, make, write).await?;
    Ok(Json(super::alerts::farmer_phone_view(&app, &stored)))
}

#[utoipa::path(get, path = "/api/admin/minute-requests", tag = "admin", params(RequestFilter), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The tenant's minute requests", body = [MinuteRequestView]), Scoped))]
async fn list_requests(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiQuery(filter): ApiQuery<RequestFilter>,
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

/// Approves a request: its minutes are recharged in the same write (and the engine tells the
/// farmer, with the balance it leaves).
#[utoipa::path(post, path = "/api/admin/minute-requests/{id}/approve", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The request, approved", body = MinuteRequestView), Scoped, Refused))]
async fn approve_request(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MinuteRequestView>, ApiError> {
    let request = tenant_request(&app, admin.scope, &id).await?;
    let decision = approve(&app, admin.caller.id(), &request).await?;
    Ok(Json(decided(request, &decision)))
}

/// Approves `request` of its owner's pump, decided by `actor` (from the app, a page or the
/// owner's phone): its minutes recharged, the decision and its line in the log, in one write.
pub(crate) async fn approve(app: &App, actor: UserId, request: &MinuteRequest) -> Result<Decision, ApiError> {
    if request.status != RequestStatus::Pending {
        return Err(ApiError::conflict("ALREADY_DECIDED", "this request was already decided"));
    }
    let now = app.now();
    let decision = Decision {
        request_id: request.id,
        admin_id: request.admin_id,
        status: RequestStatus::Approved,
        decided_by: actor,
        at: now,
        reason: None,
    };
    let credit = Credit {
        user: request.user_id,
        seconds: request.minutes.checked_mul(60).ok_or_else(|| ApiError::validation("minutes: too many"))?,
        kind: LedgerKind::RequestApproved,
        actor,
        note: request.note.clone(),
        request_id: Some(request.id),
        once_key: None,
        receipt_id: None,
    };
    let detail = format!("+{} min", request.minutes);
    let entry = audit_entry(now, Some(request.admin_id), actor, "request.approve", &request.id, detail);
    let extras = Extras { decision: Some(decision.clone()), ..Extras::audit(entry) };
    app.runtime.apply(request.admin_id, Event::Credit(credit), extras, |_, _| ()).await?.0?;
    Ok(decision)
}

/// The view of a request after `decision` was written.
fn decided(request: MinuteRequest, decision: &Decision) -> MinuteRequestView {
    MinuteRequestView::from(&MinuteRequest {
        status: decision.status,
        decided_at: Some(decision.at),
        decided_by: Some(decision.decided_by),
        reject_reason: decision.reason,
        ..request
    })
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why, when the owner says: one of a fixed set, each said to the farmer in their own language.
    /// Absent or null: no reason.
    #[serde(default)]
    #[schema(value_type = Option<crate::views::names::RejectReason>)]
    reason: Option<String>,
}

/// Rejects a request, with the owner's reason when they give one; the farmer is told (with it).
#[utoipa::path(post, path = "/api/admin/minute-requests/{id}/reject", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    request_body(content = Option<RejectBody>, description = "optional: without `reason`, no reason"),
    responses((status = 200, description = "The request, rejected", body = MinuteRequestView), Scoped, Body, Refused))]
async fn reject_request(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RejectBody>,
) -> Result<Json<MinuteRequestView>, ApiError> {
    let unknown = || ApiError::validation("reason: choose NOT_PAID, WRONG_AMOUNT, TOO_MANY or PUMP_CLOSED");
    let reason = body.reason.as_deref().map(|code| RejectReason::parse(code).ok_or_else(unknown)).transpose()?;
    let request = tenant_request(&app, admin.scope, &id).await?;
    let decision = reject(&app, admin.caller.id(), &request, reason).await?;
    Ok(Json(decided(request, &decision)))
}

/// Rejects `request` of its owner's pump, decided by `actor`, for `reason` when one is given:
/// the decision, its line in the log and the farmer's notice in one write.
pub(crate) async fn reject(
    app: &App,
    actor: UserId,
    request: &MinuteRequest,
    reason: Option<RejectReason>,
) -> Result<Decision, ApiError> {
    let decision = Decision {
        request_id: request.id,
        admin_id: request.admin_id,
        status: RequestStatus::Rejected,
        decided_by: actor,
        at: app.now(),
        reason,
    };
    // The log says the minutes and, when the owner gave one, the reason's code: `15 min: NOT_PAID`.
    let detail = match reason {
        Some(reason) => format!("{} min: {}", request.minutes, reason.as_str()),
        None => format!("{} min", request.minutes),
    };
    let entry = audit_entry(decision.at, Some(request.admin_id), actor, "request.reject", &request.id, detail);
    // The farmer's notice, as the engine tells it, goes in the rejection's own write: both or
    // neither.
    let seconds = request.minutes.checked_mul(60).ok_or_else(|| ApiError::validation("minutes: too many"))?;
    let notices = vec![request_rejected(request.admin_id, request.user_id, seconds, reason, decision.at)];
    app.store.write_audited(&AuditedWrite::Decide { decision: decision.clone(), notices }, &entry).await?;
    Ok(decision)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    /// 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    name: String,
}

/// Registers a device; its key and link secret are shown in this answer only. Sent again with the
/// same `Idempotency-Key` (a form sent twice, a retry after an answer lost on a poor link), the
/// device is registered once: the repeat is answered 200 with the first device and
/// `repeated: true`, without its key (which was shown once, in the first answer; a lost one is
/// replaced with rotate-key); another device asked for under the key is 422 `KEY_REUSED`.
#[utoipa::path(post, path = "/api/admin/devices", tag = "admin", request_body = NewDeviceBody, params(AdminIdParam, OnceKeyParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 201, description = "The device and its key (shown this once)", body = DeviceCreatedView),
        (status = 200, description = "A registration sent again with its `Idempotency-Key`: the device it made \
            (`repeated`), without its key, which the first answer alone showed", body = DeviceCreatedView),
        Scoped, Body, Refused, KeyReused))]
async fn register_device(
    State(app): State<AppState>,
    admin: AdminScope,
    OnceKey(once_key): OnceKey,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<DeviceCreatedView>), ApiError> {
    let name = super::check_name(&body.name)?;
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
    let entry = audit(&app, &admin, "device.register", device.id.to_string(), device.name.clone());
    let write = AuditedWrite::CreateDevice { device: device.clone(), once_key: once_key.clone() };
    match app.store.write_audited(&write, &entry).await {
        Ok(()) => {}
        Err(StoreError::AlreadyMade) => {
            let key = once_key.as_deref().unwrap_or_default();
            let Some(made) = app.store.device_with_key(admin.scope.admin(), key).await? else {
                return Err(ApiError::conflict("CONFLICT", "the device was refused; try again"));
            };
            // What was asked: the name (as checked), which a device keeps.
            if made.name != device.name {
                return Err(key_reused("another device"));
            }
            let view = DeviceCreatedView {
                id: made.id.to_string(),
                name: made.name,
                device_key: None,
                link_secret: None,
                repeated: true,
            };
            return Ok((StatusCode::OK, Json(view)));
        }
        Err(other) => return Err(other.into()),
    }
    app.device_keys.write().expect("device keys lock").insert(hash, (device.id, device.admin_id));
    let link_secret = link::secret_for(&app.keyring, device.id, &hash);
    let view = DeviceCreatedView {
        id: device.id.to_string(),
        name: device.name,
        device_key: Some(key),
        link_secret: Some(link_secret),
        repeated: false,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Gives a device a new key and link secret, shown in this answer only; the old key stops working at once.
#[utoipa::path(post, path = "/api/admin/devices/{id}/rotate-key", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The device and its new key (shown this once)", body = DeviceCreatedView),
        Scoped, Refused))]
async fn rotate_device_key(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeviceCreatedView>, ApiError> {
    let id: DeviceId = parse_id(&id, "device")?;
    let devices = app.store.devices(admin.scope.admin()).await?;
    let device = devices.into_iter().find(|d| d.id == id).ok_or_else(|| ApiError::not_found("device"))?;
    let key = Keyring::new_token("pp_dev_");
    let hash = app.keyring.hash(&key);
    let entry = audit(&app, &admin, "device.rotate-key", device.id.to_string(), device.name.clone());
    let rotation = AuditedWrite::SetDeviceKey { admin: device.admin_id, device: device.id, key_hash: hash.to_vec() };
    app.store.write_audited(&rotation, &entry).await?;
    // The old key stops here at once, over MQTT too (its connection is closed) and for a long-poll
    // held with it; the other servers of a fleet hear of it from the store's feed, and do the same.
    app.set_device_key(device.id, Some((hash, device.admin_id)));
    let link_secret = link::secret_for(&app.keyring, device.id, &hash);
    Ok(Json(DeviceCreatedView {
        id: device.id.to_string(),
        name: device.name,
        device_key: Some(key),
        link_secret: Some(link_secret),
        repeated: false,
    }))
}

/// The tenant's devices with what they last reported, and which one drives the motor.
#[utoipa::path(get, path = "/api/admin/devices", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The tenant's devices", body = [DeviceView]), Scoped))]
async fn list_devices(State(app): State<AppState>, admin: AdminScope) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let now = app.now();
    let lease = i64::from(app.settings.device_lease_ms);
    let controller = app.runtime.read(admin.scope.admin(), |tenant, _| tenant.controller).await?;
    let downloads = app.firmware.downloads(&app, admin.scope.admin()).await?;
    let views = app
        .store
        .devices(admin.scope.admin())
        .await?
        .into_iter()
        .map(|mut device| {
            if let Some(mut latest) = app.runtime.pending_telemetry(device.id) {
                // A board says why it started once: a later report without it keeps the stored one.
                if latest.last_reset.is_none()
                    && let Some(stored) = &device.telemetry
                {
                    latest.last_reset = stored.last_reset;
                    latest.last_reset_at = stored.last_reset_at;
                }
                device.telemetry = Some(latest);
            }
            // Present at another server: its heartbeat says how late the device polled at least.
            if let (Some(seen), Some(telemetry)) =
                (app.runtime.present_since(device.admin_id, device.id), device.telemetry.as_mut())
            {
                telemetry.last_seen_at = telemetry.last_seen_at.max(seen);
            }
            let signed = app.signed_devices.read().expect("signed devices lock").contains(&device.id);
            let update = app.firmware.meant_for(
                device.admin_id,
                device.id,
                device.telemetry.as_ref().and_then(|t| t.firmware.as_deref()),
            );
            let progress = app.firmware.progress(
                device.admin_id,
                device.id,
                device.telemetry.as_ref().and_then(|t| t.firmware.as_deref()),
                device.telemetry.as_ref().and_then(|t| t.last_reset_at),
                downloads.get(&device.id),
            );
            DeviceView::new(&device, lease, now, controller == Some(device.id))
                .signing(signed)
                .updating(update)
                .update_progress(progress)
        })
        .collect();
    Ok(Json(views))
}

/// One device of this tenant, or 404.
async fn tenant_device(app: &App, admin: &AdminScope, id: &str) -> Result<Device, ApiError> {
    let id: DeviceId = parse_id(id, "device")?;
    let devices = app.store.devices(admin.scope.admin()).await?;
    devices.into_iter().find(|d| d.id == id).ok_or_else(|| ApiError::not_found("device"))
}

/// Retires a device: its key stops at once and it is gone from the list. If it drove the motor,
/// the run holds (DEVICE_OFFLINE) until another device of the pump polls and takes over.
#[utoipa::path(delete, path = "/api/admin/devices/{id}", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 204, description = "Retired: its key no longer works"), Scoped, Refused))]
async fn retire_device(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let device = tenant_device(&app, &admin, &id).await?;
    // The key stops first: from here on the device cannot poll, whatever happens next, and its
    // MQTT session here ends (a report of it still on its way undoes itself: `release_retired`).
    app.set_device_key(device.id, None);
    let extras = Extras::audit(audit(&app, &admin, "device.retire", device.id.to_string(), device.name.clone()));
    let (_done, ()) =
        app.runtime.apply(admin.scope.admin(), Event::RetireDevice { device: device.id }, extras, |_, _| ()).await?;
    app.store.delete_device(device.admin_id, device.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes this device the one that drives the motor and reports the grid; every other device of
/// the pump is told OFF from now on. A run holds (DEVICE_OFFLINE) until the new controller polls.
#[utoipa::path(post, path = "/api/admin/devices/{id}/controller", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The device, now the pump's controller", body = DeviceView), Scoped, Refused))]
async fn choose_controller(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = tenant_device(&app, &admin, &id).await?;
    let extras = Extras::audit(audit(&app, &admin, "device.controller", device.id.to_string(), device.name.clone()));
    let event = Event::SetController { device: Some(device.id) };
    let (_done, ()) = app.runtime.apply(admin.scope.admin(), event, extras, |_, _| ()).await?;
    let signed = app.signed_devices.read().expect("signed devices lock").contains(&device.id);
    Ok(Json(DeviceView::new(&device, i64::from(app.settings.device_lease_ms), app.now(), true).signing(signed)))
}

/// The pump's restart protection: the owner's own values and the values in force.
#[utoipa::path(get, path = "/api/admin/pump/motor", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The owner's values and the values in force", body = MotorSettingsView), Scoped))]
async fn motor_settings(State(app): State<AppState>, admin: AdminScope) -> Result<Json<MotorSettingsView>, ApiError> {
    Ok(Json(app.runtime.read(admin.scope.admin(), |tenant, _| MotorSettingsView::new(tenant)).await?))
}

/// The owner's restart protection for their motor; each value null (or absent) takes the server's
/// default.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MotorSettingsBody {
    /// Least time the motor stays OFF before it may start again: 0 to 3600000 ms.
    #[serde(default)]
    min_off_ms: Option<i64>,
    /// How long the grid must be back before ON: 0 to 3600000 ms.
    #[serde(default)]
    grid_settle_ms: Option<i64>,
    /// Most starts in any hour: 0 (no cap) to 60.
    #[serde(default)]
    max_starts_per_hour: Option<i64>,
}

/// Sets the pump's restart protection for the motor it has (audited).
#[utoipa::path(put, path = "/api/admin/pump/motor", tag = "admin", request_body = MotorSettingsBody, params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The owner's values and the values in force", body = MotorSettingsView), Scoped, Body, Refused))]
async fn set_motor_settings(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<MotorSettingsBody>,
) -> Result<Json<MotorSettingsView>, ApiError> {
    let wait = |value: Option<i64>, field: &str| match value {
        Some(ms) if !u32::try_from(ms).is_ok_and(|ms| crate::config::MOTOR_WAIT_MS.contains(&ms)) => {
            Err(ApiError::validation(format!("{field}: 0 to {} ms, or null", crate::config::MOTOR_WAIT_MS.end())))
        }
        other => Ok(other),
    };
    let settings = MotorSettings {
        min_off_ms: wait(body.min_off_ms, "minOffMs")?,
        grid_settle_ms: wait(body.grid_settle_ms, "gridSettleMs")?,
        max_starts_per_hour: match body.max_starts_per_hour {
            None => None,
            Some(n) => {
                Some(u32::try_from(n).ok().filter(|n| crate::config::MAX_STARTS.contains(n)).ok_or_else(|| {
                    ApiError::validation(format!("maxStartsPerHour: 0 to {}, or null", crate::config::MAX_STARTS.end()))
                })?)
            }
        },
    };
    let detail = format!(
        "minOffMs={:?} gridSettleMs={:?} maxStartsPerHour={:?}",
        settings.min_off_ms, settings.grid_settle_ms, settings.max_starts_per_hour
    );
    let extras = Extras::audit(audit(&app, &admin, "pump.motor", admin.scope.admin().to_string(), detail));
    let (_, view) = app
        .runtime
        .apply(admin.scope.admin(), Event::SetMotorSettings(settings), extras, |tenant, _| {
            MotorSettingsView::new(tenant)
        })
        .await?;
    Ok(Json(view))
}

/// The run the owner stops.
#[derive(Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminStopBody {
    /// The `id` of the active run as the owner saw it (in the queue or the status). Send it: a
    /// Stop sent twice (a second tap on a slow network, a retry after a timeout) then finds its
    /// run ended and stops nothing, where without it the second Stop ends the next farmer's run.
    #[serde(default)]
    entry_id: Option<String>,
}

/// Stops the run `entryId` names; the next in line starts. 409 `ALREADY_ENDED` when that run is no
/// longer the active one (nothing is stopped). Without `entryId` (older apps) the run active when
/// the stop arrives is stopped, whichever it is; 404 when nothing is active.
#[utoipa::path(post, path = "/api/admin/motor/stop", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    request_body(content = Option<AdminStopBody>, description = "optional: `{entryId}`, the run to stop"),
    responses((status = 200, description = "The ended entry", body = EntryView), Scoped, Body, Refused))]
async fn admin_stop(
    State(app): State<AppState>,
    admin: AdminScope,
    OptionalJson(body): OptionalJson<AdminStopBody>,
) -> Result<Json<EntryView>, ApiError> {
    let entry = match body.entry_id.as_deref() {
        Some(id) => id.parse().map_err(|_| ApiError::validation("entryId: the id of the run to stop"))?,
        None => app
            .runtime
            .read(admin.scope.admin(), |t, _| t.active.as_ref().map(|e| e.id))
            .await?
            .ok_or(pumppilot_engine::Refusal::NothingToStop)?,
    };
    let extras = Extras::audit(audit(&app, &admin, "motor.stop", admin.scope.admin().to_string(), String::new()));
    let (reply, tenant) =
        app.runtime.apply(admin.scope.admin(), Event::AdminStop { entry }, extras, |t, now| (t.clone(), now)).await?;
    let Reply::Ended(entry) = reply? else { return Err(ApiError::internal()) };
    let names = app.names(vec![entry.user_id]).await?;
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_default();
    Ok(Json(EntryView::new(&entry, &tenant.0, tenant.1, &name)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveWaitingBody {
    /// Why the farmer is taken out of the line (1 to 500 characters); written in the audit log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Takes a waiting farmer out of the line, with a reason (audited). Their minutes are untouched;
/// 404 when the farmer is not waiting (a running or held run is stopped with `motor/stop`).
#[utoipa::path(post, path = "/api/admin/queue/{userId}/remove", tag = "admin", params(("userId" = String, Path), AdminIdParam),
    request_body = RemoveWaitingBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The farmer's entry, ended", body = EntryView), Scoped, Body, Refused))]
async fn remove_waiting(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<RemoveWaitingBody>,
) -> Result<Json<EntryView>, ApiError> {
    let reason = super::check_text("reason", &body.reason, 500, true)?;
    let user = tenant_user(&app, admin.scope, &user_id).await?;
    let extras = Extras::audit(audit(&app, &admin, "queue.remove", user.id.to_string(), reason));
    let (reply, (tenant, now)) = app
        .runtime
        .apply(admin.scope.admin(), Event::RemoveWaiting { user: user.id }, extras, |t, now| (t.clone(), now))
        .await?;
    let Reply::Ended(entry) = reply? else { return Err(ApiError::internal()) };
    let name = |_: UserId| user.name.clone();
    Ok(Json(EntryView::new(&entry, &tenant, now, &name)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveWaitingBody {
    /// The new place in line: 1 is next; past the end is last.
    #[schema(minimum = 1)]
    position: i64,
    /// Why (1 to 500 characters); written in the audit log.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Moves a waiting farmer to another place in line, with a reason (audited); the others keep
/// their order. 404 when the farmer is not waiting.
#[utoipa::path(post, path = "/api/admin/queue/{userId}/move", tag = "admin", params(("userId" = String, Path), AdminIdParam),
    request_body = MoveWaitingBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The queue in its new order", body = QueueView), Scoped, Body, Refused))]
async fn move_waiting(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<MoveWaitingBody>,
) -> Result<Json<QueueView>, ApiError> {
    let reason = super::check_text("reason", &body.reason, 500, true)?;
    let to = usize::try_from(body.position)
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| ApiError::validation("position: 1 or more"))?;
    let user = tenant_user(&app, admin.scope, &user_id).await?;
    let (from, waiting) = app
        .runtime
        .read(admin.scope.admin(), |t, _| (t.waiting.iter().position(|e| e.user_id == user.id), t.waiting.len()))
        .await?;
    let from = from.ok_or_else(|| ApiError::not_found("waiting farmer"))?;
    // The audit line says where the farmer lands (past the end is last).
    let detail = format!("#{} → #{} {reason}", from + 1, to.min(waiting));
    let extras = Extras::audit(audit(&app, &admin, "queue.move", user.id.to_string(), detail));
    let (reply, (tenant, now)) = app
        .runtime
        .apply(admin.scope.admin(), Event::MoveWaiting { user: user.id, to }, extras, |t, now| (t.clone(), now))
        .await?;
    reply?;
    let ids = tenant.active.as_deref().into_iter().chain(&tenant.waiting).map(|e| e.user_id).collect();
    let names = app.names(ids).await?;
    Ok(Json(QueueView::new(&tenant, now, &|id: UserId| names.get(&id).cloned().unwrap_or_default())))
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

pub(crate) fn time_param(text: Option<&str>, field: &str) -> Result<Option<pumppilot_engine::Timestamp>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => clock::parse_time(text)
            .map(Some)
            .ok_or_else(|| ApiError::validation(format!("{field}: an RFC 3339 time or YYYY-MM-DD"))),
    }
}

/// Finished runs of the tenant, newest first (`?format=csv` for a spreadsheet).
#[utoipa::path(get, path = "/api/admin/usage", tag = "admin", params(UsageFilter), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Finished runs: JSON, or CSV with `?format=csv`",
        content((Vec<UsageView> = "application/json"), (String = "text/csv"))), Scoped))]
async fn tenant_usage(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiQuery(filter): ApiQuery<UsageFilter>,
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
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_string() };
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditFilter {
    /// One action (`recharge`, `user.suspend`, `queue.remove`, …).
    action: Option<String>,
    /// Lines whose actor or target is this id (a farmer's lines).
    about: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD` (inclusive).
    from: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD` (exclusive).
    to: Option<String>,
    /// Lines to skip: the pages before (default 0).
    offset: Option<usize>,
    /// Lines in the page: 1 to 500 (default 500).
    limit: Option<usize>,
    #[allow(dead_code)]
    #[serde(rename = "adminId")]
    admin_id: Option<String>,
}

/// Most lines in one page of the audit log.
pub const AUDIT_PAGE_MAX: usize = 500;

/// The tenant's audit log, newest first, filtered over the whole log (`action`, `about`,
/// `from`, `to`) a page at a time (`offset`, `limit`).
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", params(AuditFilter), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "A page of the tenant's audit log", body = [AuditView]), Scoped))]
async fn audit_log(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = filter.limit.unwrap_or(AUDIT_PAGE_MAX);
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::validation(format!("limit: 1 to {AUDIT_PAGE_MAX}")));
    }
    let offset = filter.offset.unwrap_or(0);
    if offset > 1_000_000 {
        return Err(ApiError::validation("offset: 0 to 1000000"));
    }
    let text = |value: Option<String>, field: &str| match value {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > 100 => Err(ApiError::validation(format!("{field}: at most 100 characters"))),
        other => Ok(other),
    };
    let query = AuditQuery {
        admin: admin.scope.admin(),
        action: text(filter.action, "action")?,
        about: text(filter.about, "about")?,
        from: time_param(filter.from.as_deref(), "from")?,
        to: time_param(filter.to.as_deref(), "to")?,
        offset,
        limit,
    };
    Ok(Json(app.store.audit_lines(&query).await?.iter().map(AuditView::from).collect()))
}
