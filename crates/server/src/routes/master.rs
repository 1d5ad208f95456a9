//! The master admin: tenants (admins) and their state at a glance.

use axum::{Json, extract::State, http::StatusCode};
use futures_util::{StreamExt, TryStreamExt};
use pumppilot_engine::AdminId;
use pumppilot_store::{Account, OwnerQuery, Role};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{NewAccountBody, create_account, parse_id, set_suspended};
use crate::{
    app::AppState,
    auth::Master,
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    routes::openapi::{Body, Invalid, Missing, Refused, SignedIn},
    views::{AdminPageView, AdminSummaryView, FleetTotalsView, NewPasswordView, UserView},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_admin, list_admins))
        .routes(routes!(get_admin))
        .routes(routes!(fleet_totals))
        .routes(routes!(suspend_admin))
        .routes(routes!(unsuspend_admin))
        .routes(routes!(reset_admin_password))
}

/// Creates an admin: a new tenant with its own pump.
#[utoipa::path(post, path = "/api/master/admins", tag = "master", request_body = NewAccountBody, security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 201, description = "The new admin", body = UserView), SignedIn, Body, Refused))]
async fn create_admin(
    State(app): State<AppState>,
    Master(master): Master,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let account = create_account(&app, body, Role::Admin, None, master.id()).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&account))))
}

/// Most owners on one page of `GET /api/master/admins`.
pub const OWNERS_PAGE_MAX: usize = 200;
/// Owners on a page when `limit` is not given.
const OWNERS_PAGE_DEFAULT: usize = 50;
/// Tenants read at once for one page (their motor and device).
const READS_AT_ONCE: usize = 16;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OwnersQuery {
    /// At most this many owners (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// The `next` of the page before: owners whose username comes after it (a username: 1 to 64
    /// of letters, digits and `._+-@`).
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._+@-]+$")]
    after: Option<String>,
    /// Only owners whose username starts with this (1 to 64 of letters, digits and `._+-@`).
    #[param(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._+@-]+$")]
    q: Option<String>,
}

/// A cursor or a prefix as usernames are stored (lower case), or a 400 naming the field.
fn username_part(value: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let ok = (1..=64).contains(&value.len()) && crate::app::username_chars(&value);
    if !ok {
        return Err(ApiError::validation(format!("{field}: 1 to 64 of letters, digits and . _ + - @")));
    }
    Ok(Some(value.to_ascii_lowercase()))
}

/// An owner as the master's list shows them: their account, their farmers, their motor and device
/// (the tenant read through the runtime, brought up to date).
async fn summary(app: &AppState, admin: Account, user_count: u64) -> Result<AdminSummaryView, ApiError> {
    let tenant = AdminId(admin.id);
    let (state, online) = app.runtime.read(tenant, |t, now| (t.motor_state().0, t.device.online_at(now))).await?;
    Ok(AdminSummaryView {
        user: UserView::from(&admin),
        user_count: usize::try_from(user_count).unwrap_or(usize::MAX),
        motor_state: state.as_str().into(),
        device_online: online,
    })
}

/// One page of the pump owners, by username, each with their tenant's motor, device and number of
/// users: `limit` owners after the cursor `after` (the `next` of the page before), only those
/// whose username starts with `q` when given. The work is the page's, whatever the number of owners.
#[utoipa::path(get, path = "/api/master/admins", tag = "master", params(OwnersQuery), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "A page of the pump owners", body = AdminPageView), SignedIn, Invalid))]
async fn list_admins(
    State(app): State<AppState>,
    _: Master,
    ApiQuery(query): ApiQuery<OwnersQuery>,
) -> Result<Json<AdminPageView>, ApiError> {
    let limit = query.limit.unwrap_or(OWNERS_PAGE_DEFAULT);
    if !(1..=OWNERS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::validation(format!("limit: 1 to {OWNERS_PAGE_MAX}")));
    }
    let after = username_part(query.after, "after")?;
    let prefix = username_part(query.q, "q")?;
    let page = app.store.owner_page(&OwnerQuery { after, prefix, limit }).await?;
    let next = if page.more { page.owners.last().map(|row| row.account.username.clone()) } else { None };
    let admins = futures_util::stream::iter(page.owners)
        .map(|row| summary(&app, row.account, row.farmers))
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(Json(AdminPageView { admins, next, total: page.total }))
}

/// One pump owner with their tenant's motor, device and number of users.
#[utoipa::path(get, path = "/api/master/admins/{id}", tag = "master", params(("id" = String, Path)), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The owner", body = AdminSummaryView), SignedIn, Missing))]
async fn get_admin(
    State(app): State<AppState>,
    _: Master,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AdminSummaryView>, ApiError> {
    let id = parse_id(&id, "admin")?;
    let admin = match app.store.account(id).await? {
        Some(admin) if admin.role == Role::Admin => admin,
        _ => return Err(ApiError::not_found("admin")),
    };
    let farmers = app.store.farmer_counts(&[AdminId(admin.id)]).await?;
    Ok(Json(summary(&app, admin, farmers.first().copied().unwrap_or(0)).await?))
}

/// The window of the totals' time charged and cash taken: the last 30 days (the dashboard's page
/// of one pump shows the same window).
pub const TOTALS_WINDOW_MS: i64 = 30 * 24 * 3_600_000;

/// Every pump's figures together: owners, farmers, pumps running and on hold now, and the time
/// charged and the cash taken in the last 30 days. A few counts and sums in the store, and a read
/// of each pump with a run: the work does not grow with the number of owners.
#[utoipa::path(get, path = "/api/master/totals", tag = "master", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Every pump's figures", body = FleetTotalsView), SignedIn))]
async fn fleet_totals(State(app): State<AppState>, _: Master) -> Result<Json<FleetTotalsView>, ApiError> {
    let since = app.now() - TOTALS_WINDOW_MS;
    let (totals, runs) = tokio::join!(app.store.fleet_totals(since), app.runtime.runs());
    let (totals, runs) = (totals?, runs?);
    Ok(Json(FleetTotalsView {
        owners: totals.owners,
        farmers: totals.farmers,
        running: runs.running,
        on_hold: runs.on_hold(),
        since: crate::clock::rfc3339(since),
        charged_seconds: totals.charged_seconds,
        cash_taka: totals.cash_taka,
    }))
}

async fn set_admin_suspended(
    app: &AppState,
    master: &Master,
    id: &str,
    suspended: bool,
) -> Result<Json<UserView>, ApiError> {
    let id = parse_id(id, "admin")?;
    match app.sessions.account(app, id).await? {
        Some(admin) if admin.role == Role::Admin => {
            Ok(Json(set_suspended(app, master.0.id(), &admin, suspended).await?))
        }
        _ => Err(ApiError::not_found("admin")),
    }
}

/// Suspends an admin and so the whole tenant: its users are locked out, its run ends.
#[utoipa::path(post, path = "/api/master/admins/{id}/suspend", tag = "master", params(("id" = String, Path)), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The admin, suspended", body = UserView), SignedIn, Missing, Refused))]
async fn suspend_admin(
    State(app): State<AppState>,
    master: Master,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_admin_suspended(&app, &master, &id, true).await
}

/// Lets a suspended admin and their users back in.
#[utoipa::path(post, path = "/api/master/admins/{id}/unsuspend", tag = "master", params(("id" = String, Path)), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The admin, let back in", body = UserView), SignedIn, Missing, Refused))]
async fn unsuspend_admin(
    State(app): State<AppState>,
    master: Master,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_admin_suspended(&app, &master, &id, false).await
}

/// Gives a pump owner a new password, shown in this answer only; every session of the owner ends
/// in the same write (audited), as when an owner gives a farmer one.
#[utoipa::path(post, path = "/api/master/admins/{id}/password", tag = "master", params(("id" = String, Path)), security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "The new password (shown this once)", body = NewPasswordView), SignedIn, Missing))]
async fn reset_admin_password(
    State(app): State<AppState>,
    Master(master): Master,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<NewPasswordView>, ApiError> {
    let id = parse_id(&id, "admin")?;
    match app.sessions.account(&app, id).await? {
        Some(admin) if admin.role == Role::Admin => {
            Ok(Json(super::owner::give_new_password(&app, master.id(), &admin).await?))
        }
        _ => Err(ApiError::not_found("admin")),
    }
}
