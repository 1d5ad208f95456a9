//! The HTTP routes, one module per caller family.

mod accounts;
pub(crate) mod admin;
mod alerts;
pub(crate) mod cards;
pub(crate) mod device;
pub(crate) mod firmware;
mod live;
pub use live::{STREAMS_PER_SESSION, StreamSlots};
pub mod master;
pub(crate) mod motor;
pub mod openapi;
pub(crate) mod owner;
mod sms;

pub use cards::{CardView, RecentTaps};

use axum::extract::State;
use pumppilot_engine::{AdminId, Event, Timestamp, UserId};
use pumppilot_store::{Account, AuditEntry, AuditedWrite, Role, SessionScope};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    auth::TenantScope,
    error::ApiError,
    keys,
    runtime::Extras,
    views::{LedgerView, UserView, WalletView, minutes},
};

/// Every `/api` route, and `/healthz` and `/readyz`, documented.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .merge(accounts::routes())
        .merge(master::routes())
        .merge(admin::routes())
        .merge(owner::routes())
        .merge(motor::routes())
        .merge(device::routes())
        .merge(cards::routes())
        .merge(firmware::routes())
        .merge(live::routes())
        .merge(alerts::routes())
        .merge(sms::routes())
}

/// The server is serving (`/` is the dashboard's, `web`).
#[utoipa::path(get, path = "/healthz", tag = "health", security(),
    responses((status = 200, description = "`ok`: the server is serving", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The store commits a write (on SQLite, to the very files the server opened) and the first master
/// admin exists.
#[utoipa::path(get, path = "/readyz", tag = "health", security(),
    responses((status = 200, description = "`ready`: the store commits a write and the master admin exists", body = String, content_type = "text/plain"),
        openapi::Store))]
async fn readyz(State(app): State<AppState>) -> Result<&'static str, ApiError> {
    let was_out = app.runtime.store_outage().is_some();
    if let Err(err) = app.runtime.probe_store().await {
        // Said once when the outage begins, not at every probe: a full disk is not filled further
        // by a load balancer's probes (each failing write says its cause at debug).
        if was_out {
            tracing::debug!(error = ?err, "not ready: the store does not commit a write");
        } else {
            tracing::warn!(error = ?err, "not ready: the store does not commit a write");
        }
        return Err(ApiError::unavailable());
    }
    match app.store.accounts(pumppilot_store::Role::Master, None).await {
        Ok(masters) if !masters.is_empty() => Ok("ready"),
        Ok(_) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "not ready: no master admin exists yet (set PUMPPILOT_MASTER_USERNAME and _PASSWORD, or run create-master)",
        )),
        Err(_) => Err(ApiError::unavailable()),
    }
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
    #[schema(min_length = 1, max_length = 80)]
    name: String,
    /// Unique system-wide, case-insensitive (a phone number works): 3 to 64 of letters, digits
    /// and `._+-@`.
    #[schema(pattern = r"^[A-Za-z0-9._+@-]{3,64}$")]
    username: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// The one check of every name that enters the system (a person's, a device's): 1 to 80
/// characters after trimming, at least one of them a letter or a digit, and none but
/// [`plain`] ones, so a name cannot read as another in a list, a log or the usage spreadsheet.
/// Returns the trimmed name.
pub fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(ApiError::validation("name: 1 to 80 characters"));
    }
    if !name.chars().all(plain) {
        return Err(ApiError::validation("name: no control or text-direction characters"));
    }
    if !name.chars().any(char::is_alphanumeric) {
        return Err(ApiError::validation("name: at least one letter or digit"));
    }
    Ok(name.to_string())
}

/// The one check of every free text that others read (a note, a reason): at most `most`
/// characters after trimming (at least one when `required`), [`plain`] ones and line breaks.
/// Returns the trimmed text.
pub fn check_text(field: &str, text: &str, most: usize, required: bool) -> Result<String, ApiError> {
    // A line break is kept as one character, whoever's convention it came in.
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    if required && text.is_empty() {
        return Err(ApiError::validation(format!("{field}: say why, in 1 to {most} characters")));
    }
    if text.chars().count() > most {
        return Err(ApiError::validation(format!("{field}: at most {most} characters")));
    }
    if !text.chars().all(|c| c == '\n' || plain(c)) {
        return Err(ApiError::validation(format!("{field}: no control or text-direction characters")));
    }
    Ok(text.to_string())
}

/// Whether a character may stand in text others read: not a control character (NUL, line
/// breaks, escapes), and none that makes text read as other text: bidirectional overrides,
/// embeddings, isolates and marks, line and paragraph separators (line breaks that are not
/// control characters), and invisible spaces. The joiners Bangla needs (U+200C, U+200D) are plain.
pub(crate) fn plain(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{200B}'
                | '\u{2060}'
                | '\u{FEFF}'
        )
}

/// A password a person chose, checked by its one rule ([`crate::keys::password_allowed`]);
/// `field` names it in the error.
pub fn check_password(field: &str, password: &str) -> Result<(), ApiError> {
    if !crate::keys::password_allowed(password) {
        return Err(ApiError::validation(format!("{field}: 8 to 256 characters")));
    }
    Ok(())
}

fn validate_account(body: &NewAccountBody) -> Result<(), ApiError> {
    check_name(&body.name)?;
    crate::app::check_username(&body.username)?;
    check_password("password", &body.password)
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
        created_at: app.now(),
    };
    let action = format!("{}.create", role.as_str());
    let entry = audit_entry(app.now(), account.admin_id, actor, action, &account.id, &account.username);
    app.store.write_audited(&AuditedWrite::CreateAccount(account.clone()), &entry).await?;
    Ok(account)
}

/// Suspends or lets back in an admin (the whole tenant) or a user. The engine ends what must end
/// (charged to this moment), and the flag and the audit entry go in the same commit; then every
/// session of the account (or tenant) is revoked.
pub async fn set_suspended(
    app: &AppState,
    actor: UserId,
    account: &Account,
    suspended: bool,
) -> Result<UserView, ApiError> {
    let tenant = account.admin_id.ok_or_else(|| ApiError::forbidden("the master cannot be suspended here"))?;
    let (event, scope) = match (account.role, suspended) {
        (Role::Admin, true) => (Event::SuspendTenant, SessionScope::Tenant(tenant)),
        (Role::Admin, false) => (Event::UnsuspendTenant, SessionScope::Tenant(tenant)),
        (_, true) => (Event::SuspendUser { user: account.id }, SessionScope::User(account.id)),
        (_, false) => (Event::Tick, SessionScope::User(account.id)),
    };
    let action = format!("{}.{}", account.role.as_str(), if suspended { "suspend" } else { "unsuspend" });
    let audit = audit_entry(app.now(), Some(tenant), actor, action, &account.id, &account.username);
    let extras = Extras { suspension: Some((account.id, suspended)), ..Extras::audit(audit) };
    app.runtime.apply(tenant, event, extras, |_, _| ()).await?.0?;
    if suspended {
        let revoked = app.store.revoke_sessions(scope, app.now()).await?;
        app.sessions.forget(&revoked);
    }
    app.sessions.forget_account(account.id);
    Ok(UserView::from(&Account { suspended, ..account.clone() }))
}

/// An audit log line about `target`, made now.
pub fn audit_entry(
    at: Timestamp,
    tenant: Option<AdminId>,
    actor: UserId,
    action: impl Into<String>,
    target: &impl std::fmt::Display,
    detail: impl Into<String>,
) -> AuditEntry {
    AuditEntry {
        admin_id: tenant,
        at,
        actor_id: Some(actor),
        action: action.into(),
        target_id: Some(target.to_string()),
        detail: detail.into(),
    }
}

/// A user's balance (less the running charge) and ledger, newest first.
pub async fn wallet_view(app: &AppState, scope: TenantScope, user: UserId) -> Result<WalletView, ApiError> {
    let available = app.runtime.read(scope.admin(), |t, now| t.available_seconds(user, now)).await?;
    let ledger = app.store.ledger(user, 500).await?.iter().map(LedgerView::from).collect();
    Ok(WalletView { available_seconds: available, available_minutes: minutes(available), ledger })
}
