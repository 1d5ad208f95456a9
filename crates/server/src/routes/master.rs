//! The master admin: tenants (admins) and their state at a glance.

use axum::{Json, extract::State, http::StatusCode};
use pumppilot_engine::AdminId;
use pumppilot_store::Role;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{NewAccountBody, create_account, parse_id, set_suspended};
use crate::{
    app::AppState,
    auth::Master,
    error::{ApiError, ApiJson, ApiPath},
    routes::openapi::{Body, Missing, Refused, SignedIn},
    views::{AdminSummaryView, UserView},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_admin, list_admins))
        .routes(routes!(suspend_admin))
        .routes(routes!(unsuspend_admin))
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

/// Every admin with their tenant's motor, device and number of users.
#[utoipa::path(get, path = "/api/master/admins", tag = "master", security(("bearer" = []), ("sessionCookie" = [])),
    responses((status = 200, description = "Every admin", body = [AdminSummaryView]), SignedIn))]
async fn list_admins(State(app): State<AppState>, _: Master) -> Result<Json<Vec<AdminSummaryView>>, ApiError> {
    let mut out = Vec::new();
    for admin in app.store.accounts(Role::Admin, None).await? {
        let tenant = AdminId(admin.id);
        let user_count = app.store.accounts(Role::User, Some(tenant)).await?.len();
        let (state, online) = app.runtime.read(tenant, |t, now| (t.motor_state().0, t.device.online_at(now))).await?;

        out.push(AdminSummaryView {
            user: UserView::from(&admin),
            user_count,
            motor_state: state.as_str().into(),
            device_online: online,
        });
    }
    Ok(Json(out))
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
