//! The owner's day: the terms of their pump (the most minutes one request may ask for, the price
//! of an hour), receipts of cash recharges (and voiding a mistaken one), and changes to a
//! farmer's account (a new name, a new password shown once).

use axum::{Json, extract::State, http::StatusCode};
use pumppilot_engine::{Credit, Event, LedgerKind, ReceiptId, Refusal, Tenant, UserId};
use pumppilot_store::{Account, AccountChange, Receipt, ReceiptQuery, ReceiptVoid, Role, SessionId, StoreError, Terms};
use rand::Rng;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::{AdminScope, Farmer},
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    keys,
    routes::{
        admin::{tenant_user, time_param},
        audit_entry,
        openapi::{AdminIdParam, Body, Missing, Refused, Scoped, SignedIn},
        parse_id,
    },
    runtime::{Extras, RuntimeError},
    views::{NewPasswordView, ReceiptView, TermsView, UserView, receipt_number},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(terms, set_terms))
        .routes(routes!(own_terms))
        .routes(routes!(list_receipts))
        .routes(routes!(one_receipt))
        .routes(routes!(own_receipt))
        .routes(routes!(void_receipt))
        .routes(routes!(edit_user))
        .routes(routes!(reset_password))
}

/// The pump's terms: the most minutes one request may ask for, and the price of an hour.
#[utoipa::path(get, path = "/api/admin/terms", tag = "admin", params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The pump's terms", body = TermsView), Scoped))]
async fn terms(State(app): State<AppState>, admin: AdminScope) -> Result<Json<TermsView>, ApiError> {
    Ok(Json(TermsView::from(app.store.terms(admin.scope.admin()).await?)))
}

/// The terms of the caller's pump (a farmer sees the most one request may ask for, and the price).
#[utoipa::path(get, path = "/api/terms", tag = "motor", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The terms of the caller's pump", body = TermsView), SignedIn))]
async fn own_terms(State(app): State<AppState>, farmer: Farmer) -> Result<Json<TermsView>, ApiError> {
    Ok(Json(TermsView::from(app.store.terms(farmer.scope.admin()).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TermsBody {
    /// The most minutes one request may ask for: 1 to 10080.
    #[schema(minimum = 1, maximum = 10080)]
    max_request_minutes: i64,
    /// Taka for an hour of pumping, 0 to 100000; null when the pump has no price.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000)]
    price_per_hour_taka: Option<i64>,
}

/// Sets the pump's terms (audited, in the same write).
#[utoipa::path(put, path = "/api/admin/terms", tag = "admin", request_body = TermsBody, params(AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The pump's terms", body = TermsView), Scoped, Body))]
async fn set_terms(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiJson(body): ApiJson<TermsBody>,
) -> Result<Json<TermsView>, ApiError> {
    if !(1..=Terms::MAX_REQUEST_MINUTES_LIMIT).contains(&body.max_request_minutes) {
        return Err(ApiError::validation(format!("maxRequestMinutes: from 1 to {}", Terms::MAX_REQUEST_MINUTES_LIMIT)));
    }
    if body.price_per_hour_taka.is_some_and(|taka| !(0..=Terms::MAX_PRICE_PER_HOUR_TAKA).contains(&taka)) {
        return Err(ApiError::validation(format!(
            "pricePerHourTaka: from 0 to {}, or null",
            Terms::MAX_PRICE_PER_HOUR_TAKA
        )));
    }
    let terms = Terms { max_request_minutes: body.max_request_minutes, price_per_hour_taka: body.price_per_hour_taka };
    let tenant = admin.scope.admin();
    let detail = match terms.price_per_hour_taka {
        Some(taka) => format!("max {} min, {taka} taka/h", terms.max_request_minutes),
        None => format!("max {} min, no price", terms.max_request_minutes),
    };
    let line = audit_entry(app.now(), Some(tenant), admin.caller.id(), "terms.set", &tenant, detail);
    app.store.set_terms(tenant, &terms, &line).await?;
    Ok(Json(TermsView::from(terms)))
}

/// The cash for `minutes` at the pump's price, rounded to the nearest taka (`None` without a price).
pub fn price_of(terms: &Terms, minutes: i64) -> Option<i64> {
    terms.price_per_hour_taka.map(|taka| (taka * minutes + 30).div_euclid(60))
}

/// The receipt of a recharge of `minutes` for which the owner took `cash_taka` (`priced`: the
/// pump's price of the minutes, the recharge giving none).
pub fn new_receipt(
    app: &AppState,
    admin: &AdminScope,
    user: UserId,
    minutes: i64,
    cash_taka: i64,
    priced: bool,
) -> Receipt {
    Receipt {
        id: ReceiptId::new(),
        admin_id: admin.scope.admin(),
        user_id: user,
        at: app.now(),
        minutes,
        cash_taka,
        recorded_by: admin.caller.id(),
        priced,
        void: None,
    }
}

async fn receipt_view(app: &AppState, receipt: &Receipt) -> Result<ReceiptView, ApiError> {
    let names = app.names(ReceiptView::names(receipt).collect()).await?;
    Ok(ReceiptView::new(receipt, |id| names.get(&id).cloned().unwrap_or_default()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReceiptFilter {
    /// RFC 3339 time or `YYYY-MM-DD` (inclusive).
    from: Option<String>,
    /// RFC 3339 time or `YYYY-MM-DD` (exclusive).
    to: Option<String>,
    /// Only this farmer.
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[allow(dead_code)]
    #[serde(rename = "adminId")]
    admin_id: Option<String>,
}

/// The pump's receipts, newest first.
#[utoipa::path(get, path = "/api/admin/receipts", tag = "admin", params(ReceiptFilter), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Receipts of cash recharges", body = [ReceiptView]), Scoped))]
async fn list_receipts(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiQuery(filter): ApiQuery<ReceiptFilter>,
) -> Result<Json<Vec<ReceiptView>>, ApiError> {
    let user = match filter.user_id.as_deref() {
        Some(id) if !id.is_empty() => Some(tenant_user(&app, admin.scope, id).await?.id),
        _ => None,
    };
    let query = ReceiptQuery {
        admin: admin.scope.admin(),
        user,
        from: time_param(filter.from.as_deref(), "from")?,
        to: time_param(filter.to.as_deref(), "to")?,
        limit: 10_000,
    };
    let receipts = app.store.receipts(&query).await?;
    let mut ids: Vec<UserId> = receipts.iter().flat_map(ReceiptView::names).collect();
    ids.sort();
    ids.dedup();
    let names = app.names(ids).await?;
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_default();
    Ok(Json(receipts.iter().map(|r| ReceiptView::new(r, name)).collect()))
}

/// One receipt of the pump (404 for another pump's).
#[utoipa::path(get, path = "/api/admin/receipts/{id}", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The receipt", body = ReceiptView), Scoped))]
async fn one_receipt(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    let id: ReceiptId = parse_id(&id, "receipt")?;
    let receipt = app.store.receipt(admin.scope.admin(), id).await?.ok_or_else(|| ApiError::not_found("receipt"))?;
    Ok(Json(receipt_view(&app, &receipt).await?))
}

/// One of the caller's own receipts (the farmer's copy: a paper lost, or the cash to show again);
/// 404 for anyone else's.
#[utoipa::path(get, path = "/api/receipts/{id}", tag = "motor", params(("id" = String, Path)), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The receipt", body = ReceiptView), SignedIn, Missing))]
async fn own_receipt(
    State(app): State<AppState>,
    farmer: Farmer,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    let id: ReceiptId = parse_id(&id, "receipt")?;
    let receipt = app.store.receipt(farmer.scope.admin(), id).await?;
    let receipt = receipt.filter(|r| r.user_id == farmer.id()).ok_or_else(|| ApiError::not_found("receipt"))?;
    Ok(Json(receipt_view(&app, &receipt).await?))
}

/// 409 `ALREADY_VOID`: the receipt was voided before; nothing was changed now.
fn already_void() -> ApiError {
    ApiError::conflict("ALREADY_VOID", "this receipt is void already; nothing was changed")
}

/// Seconds as the sentences of the API say them: `12 min 30 s`, `12 min`.
fn min_s(seconds: i64) -> String {
    match seconds.rem_euclid(60) {
        0 => format!("{} min", seconds.div_euclid(60)),
        s => format!("{} min {s} s", seconds.div_euclid(60)),
    }
}

/// Voids a receipt of the pump (a mistaken recharge): the minutes it gave are taken back from the
/// farmer by a correction that names the receipt, and the receipt is marked void, in one write
/// with its audit line. A void receipt stays listed and counts for no cash. Once per receipt: a
/// void sent again (a retry after a timeout) is 409 `ALREADY_VOID` and takes nothing; 409
/// `BELOW_ZERO` when the farmer no longer has those minutes (the sentence says how many are left;
/// a correction by hand can still take those); 404 for another pump's receipt.
#[utoipa::path(post, path = "/api/admin/receipts/{id}/void", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The receipt, void", body = ReceiptView), Scoped, Refused))]
async fn void_receipt(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    let id: ReceiptId = parse_id(&id, "receipt")?;
    let tenant = admin.scope.admin();
    let receipt = app.store.receipt(tenant, id).await?.ok_or_else(|| ApiError::not_found("receipt"))?;
    if receipt.void.is_some() {
        return Err(already_void());
    }
    let (now, by) = (app.now(), admin.caller.id());
    let voided = Receipt { void: Some(ReceiptVoid { at: now, by }), ..receipt.clone() };
    let seconds = receipt.minutes.checked_mul(-60).ok_or_else(|| ApiError::validation("minutes: too many"))?;
    let take_back =
        Credit { receipt_id: Some(id), ..Credit::new(receipt.user_id, seconds, LedgerKind::Correction, by) };
    let detail = format!("-{} min ({} taka) {}", receipt.minutes, receipt.cash_taka, receipt_number(id));
    let line = audit_entry(now, Some(tenant), by, "receipt.void", &receipt.user_id, detail);
    let extras = Extras { receipt: Some(voided.clone()), ..Extras::audit(line) };
    let left = |t: &Tenant, now| t.available_seconds(receipt.user_id, now);
    match app.runtime.apply(tenant, Event::Credit(take_back), extras, left).await {
        Ok((Ok(_), _)) => Ok(Json(receipt_view(&app, &voided).await?)),
        Ok((Err(Refusal::InvalidAmount), left)) => {
            // A void of the same receipt that landed meanwhile took the minutes: that is the answer.
            if app.store.receipt(tenant, id).await?.is_some_and(|stored| stored.void.is_some()) {
                return Err(already_void());
            }
            let names = app.names(vec![receipt.user_id]).await?;
            let farmer = names.get(&receipt.user_id).cloned().unwrap_or_default();
            Err(ApiError::conflict(
                "BELOW_ZERO",
                format!(
                    "{farmer} has {} left of the {} this receipt added, and a balance cannot go below zero: \
                     nothing was changed; correct the balance by hand",
                    min_s(left.max(0)),
                    min_s(-seconds)
                ),
            ))
        }
        Ok((Err(refusal), _)) => Err(refusal.into()),
        Err(RuntimeError::Store(StoreError::AlreadyMade)) => Err(already_void()),
        Err(RuntimeError::Store(StoreError::NotFound)) => Err(ApiError::not_found("receipt")),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditUserBody {
    /// The farmer's name, 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    name: String,
}

/// Renames a farmer (audited, in the same write).
#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", request_body = EditUserBody, params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The farmer, renamed", body = UserView), Scoped, Body))]
async fn edit_user(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<EditUserBody>,
) -> Result<Json<UserView>, ApiError> {
    let name = super::check_name(&body.name)?;
    let user = tenant_user(&app, admin.scope, &id).await?;
    let change = AccountChange {
        id: user.id,
        role: Role::User,
        admin_id: Some(admin.scope.admin()),
        name: Some(name.clone()),
        password_hash: None,
        keep_session: None,
        at: app.now(),
    };
    let detail = format!("{} → {name}", user.name);
    let line = audit_entry(app.now(), Some(admin.scope.admin()), admin.caller.id(), "user.edit", &user.id, detail);
    app.store.change_account(&change, &line).await?;
    app.sessions.forget_account(user.id);
    Ok(Json(UserView::from(&pumppilot_store::Account { name, ..(*user).clone() })))
}

/// Letters and digits a farmer cannot confuse (no 0/O, 1/l/I).
const PASSWORD_LETTERS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// A new password's length: 10 of 31 letters is about 50 bits, behind Argon2 and the sign-in limit.
const PASSWORD_LENGTH: usize = 10;

/// A new password a farmer can type.
fn new_password() -> String {
    let mut rng = rand::rng();
    (0..PASSWORD_LENGTH).map(|_| char::from(PASSWORD_LETTERS[rng.random_range(0..PASSWORD_LETTERS.len())])).collect()
}

/// Gives a farmer a new password, shown in this answer only; every session of the farmer ends in
/// the same write (audited).
#[utoipa::path(post, path = "/api/admin/users/{id}/password", tag = "admin", params(("id" = String, Path), AdminIdParam), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The new password (shown this once)", body = NewPasswordView), Scoped))]
async fn reset_password(
    State(app): State<AppState>,
    admin: AdminScope,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<NewPasswordView>), ApiError> {
    let user = tenant_user(&app, admin.scope, &id).await?;
    Ok((StatusCode::OK, Json(give_new_password(&app, admin.caller.id(), &user).await?)))
}

/// Sets `account`'s password (hashed here) with its audit line (`action`, by `actor`) in one
/// write, and ends every session of the account but `keep_session`, in the store and in memory:
/// a new password given by an owner or the master, and one's own change.
pub async fn set_password(
    app: &AppState,
    actor: UserId,
    account: &Account,
    password: String,
    keep_session: Option<SessionId>,
    action: String,
) -> Result<(), ApiError> {
    let change = AccountChange {
        id: account.id,
        role: account.role,
        admin_id: account.admin_id,
        name: None,
        password_hash: Some(keys::hash_password(password).await?),
        keep_session,
        at: app.now(),
    };
    let line = audit_entry(app.now(), account.admin_id, actor, action, &account.id, "");
    let revoked = app.store.change_account(&change, &line).await?;
    app.sessions.forget(&revoked);
    app.sessions.forget_account(account.id);
    Ok(())
}

/// Gives `account` (an owner's farmer, or the master's owner) a new made-up password, shown in
/// the answer only: the password and the audit line (`{role}.password`, by `actor`) in one write,
/// which ends every session of the account.
pub async fn give_new_password(app: &AppState, actor: UserId, account: &Account) -> Result<NewPasswordView, ApiError> {
    let password = new_password();
    let action = format!("{}.password", account.role.as_str());
    set_password(app, actor, account, password.clone(), None, action).await?;
    Ok(NewPasswordView {
        user_id: account.id.to_string(),
        name: account.name.clone(),
        username: account.username.clone(),
        password,
    })
}
