//! The HTTP routes, one module per caller family.

mod accounts;
mod admin;
mod device;
mod master;
mod motor;

use axum::{Router, extract::State, routing::get};
use pumppilot_engine::{AdminId, UserId};
use pumppilot_store::{Account, AuditEntry, Role};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::{app::AppState, clock, error::ApiError, keys};

/// Every `/api` route, documented.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(master::routes())
        .merge(admin::routes())
        .merge(motor::routes())
        .merge(device::routes())
}

/// `/healthz` (serving) and `/readyz` (the store answers).
pub fn health() -> Router<AppState> {
    Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(|State(app): State<AppState>| async move {
            match app.store.ping().await {
                Ok(()) => Ok("ready"),
                Err(_) => Err(ApiError::unavailable()),
            }
        }),
    )
}

/// Parses an id from a path; a malformed id is simply an object that does not exist.
pub fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::not_found(what))
}

/// A new admin or user.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccountBody {
    /// The person's name, 1 to 80 characters.
    name: String,
    /// Unique system-wide, case-insensitive (a phone number works): 3 to 64 of letters, digits
    /// and `._+-@`.
    username: String,
    /// 8 to 256 characters.
    password: String,
}

fn validate_account(body: &NewAccountBody) -> Result<(), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::validation("name: 1 to 80 characters"));
    }
    let username_ok = (3..=64).contains(&body.username.len())
        && body.username.chars().all(|c| c.is_ascii_alphanumeric() || "._+-@".contains(c));
    if !username_ok {
        return Err(ApiError::validation("username: 3 to 64 of letters, digits and . _ + - @"));
    }
    if !(8..=256).contains(&body.password.chars().count()) {
        return Err(ApiError::validation("password: 8 to 256 characters"));
    }
    Ok(())
}

/// Creates an admin (a tenant) or a user of `admin`, with an audit entry.
pub async fn create_account(
    app: &AppState,
    body: NewAccountBody,
    role: Role,
    admin: Option<AdminId>,
    actor: UserId,
) -> Result<Account, ApiError> {
    validate_account(&body)?;
    let id = UserId::new();
    let account = Account {
        id,
        username: body.username.to_ascii_lowercase(),
        name: body.name.trim().to_string(),
        role,
        admin_id: if role == Role::Admin { Some(AdminId(id)) } else { admin },
        password_hash: keys::hash_password(body.password).await?,
        suspended: false,
        created_at: clock::now(),
    };
    app.store.create_account(&account).await?;
    let audit = AuditEntry {
        admin_id: account.admin_id,
        at: account.created_at,
        actor_id: Some(actor),
        action: format!("{}.create", role.as_str()),
        target_id: Some(account.id.to_string()),
        detail: account.username.clone(),
    };
    app.store.append_audit(&audit).await?;
    Ok(account)
}
