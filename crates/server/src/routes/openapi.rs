//! The OpenAPI document's frame: its title, the security schemes, and the error answers that
//! operations share.
//!
//! Each operation lists its successful answer in its own `#[utoipa::path]` and its errors as
//! sets from here, named after the extractor or the kind of work that can fail that way:
//! `responses((status = 200, body = X), Scoped, Body, Missing)`. A status in two sets has the same
//! description in both, so listing it twice is harmless. Each operation names its security
//! schemes (`security(("bearer" = []), ("sessionCookie" = []))`, `security(("deviceKey" = []))`, or
//! `security()` for none) with the names below; `tests/contract.rs` checks they all exist.

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses, Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr, ResponseBuilder,
        response::Response,
        security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme},
    },
};

use crate::{auth::SESSION_COOKIE, error::ErrorBody};

/// A web session token (`w_…`, from `POST /api/auth/login`) or a mobile access token (`m_…`).
pub const BEARER: &str = "bearer";
/// The web session cookie set by `POST /api/auth/login`.
pub const COOKIE: &str = "sessionCookie";
/// A device key (`pp_dev_…`), shown once when the device is registered or its key rotated.
pub const DEVICE_KEY: &str = "deviceKey";

#[derive(OpenApi)]
#[openapi(
    info(title = "PumpPilot API", description = "Shared water pumps: accounts, queue, wallet, devices."),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("A web session token or a mobile access token (15 minutes).".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The web session (HttpOnly, SameSite=Strict); a request that changes something must \
                 come from the same origin.",
            ))),
        );
        let mut device = Http::new(HttpAuthScheme::Bearer);
        device.bearer_format = Some("device key".into());
        device.description = Some("The device's key, `Authorization: Bearer pp_dev_…`.".into());
        components.add_security_scheme(DEVICE_KEY, SecurityScheme::Http(device));
    }
}

/// One error status, with the codes it carries and when.
#[derive(Clone, Copy)]
enum Failure {
    Validation,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    KeyReused,
    TooLarge,
    RateLimited,
    Unavailable,
}

impl Failure {
    fn status(self) -> &'static str {
        match self {
            Failure::Validation => "400",
            Failure::Unauthenticated => "401",
            Failure::Forbidden => "403",
            Failure::NotFound => "404",
            Failure::Conflict => "409",
            Failure::KeyReused => "422",
            Failure::TooLarge => "413",
            Failure::RateLimited => "429",
            Failure::Unavailable => "503",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Failure::Validation => {
                "`VALIDATION`: a malformed body or parameter (the message names the field), a body \
                 without `Content-Type: application/json`, or the master without `?adminId=`"
            }
            Failure::Unauthenticated => {
                "`UNAUTHENTICATED` (no, unknown or revoked credentials), `TOKEN_EXPIRED` or \
                 `INVALID_CREDENTIALS` (wrong username or password); for a device `BAD_SIGNATURE` (its \
                 request MAC does not check) or `SIGNATURE_REQUIRED` (an unsigned request from a device \
                 that signs)"
            }
            Failure::Forbidden => {
                "`FORBIDDEN` (this role may not; a cookie request from another site; a device key of \
                 another tenant; `?adminId=` naming another tenant), `ACCOUNT_SUSPENDED` (the account or its tenant) \
                 or `WRONG_PASSWORD` (the current password, on a change of one's own; nothing was changed)"
            }
            Failure::NotFound => "`NOT_FOUND`: no such object, or it belongs to another tenant",
            Failure::Conflict => {
                "`CONFLICT`, `INSUFFICIENT_BALANCE`, `BELOW_ZERO`, `ALREADY_DECIDED`, `ALREADY_ENDED`, \
                 `ALREADY_VOID` or `USERNAME_TAKEN`: the state does not allow it; nothing was changed. For a \
                 device `STALE_COUNTER`: the request's counter was used already or is too old (signed; \
                 `x-pumppilot-counter` names the highest)"
            }
            Failure::KeyReused => {
                "`KEY_REUSED`: the `Idempotency-Key` already made another change (or another device); nothing \
                 was changed"
            }
            Failure::TooLarge => "`PAYLOAD_TOO_LARGE`: the body is over 64 KiB",
            Failure::RateLimited => {
                "`RATE_LIMITED` (with `Retry-After`): too many failed sign-ins for this username from \
                 this client, or this username (or a much-failing client) is being checked already, or \
                 its line of sign-ins waiting after many failures is full or was waited in 5 seconds; \
                 for `GET /api/events`, the session has as many live streams open as it may"
            }
            Failure::Unavailable => {
                "`UNAVAILABLE`: the store cannot be reached; nothing was changed (never answered 401). \
                 `BUSY` (with `Retry-After`): for a sign-in, every password check slot is taken; for \
                 `GET /api/events`, this server holds as many live streams as it may"
            }
        }
    }

    fn response(self) -> Response {
        ResponseBuilder::new()
            .description(self.description())
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
    }
}

fn responses(failures: &[Failure]) -> BTreeMap<String, RefOr<Response>> {
    failures.iter().map(|f| (f.status().to_string(), RefOr::T(f.response()))).collect()
}

/// Declares a set of error answers that operations list in `responses(…)`.
macro_rules! failures {
    ($($(#[$doc:meta])* $name:ident = [$($failure:ident),*];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                responses(&[$(Failure::$failure),*])
            }
        }
    )*};
}

failures! {
    /// Signing in with a password (`authenticate`): the checks, the rate limit, a suspended account.
    SignIn = [Validation, Unauthenticated, Forbidden, TooLarge, RateLimited, Unavailable];
    /// Any signed-in caller, or one of a single role (`Caller`, `Master`, `Farmer`).
    SignedIn = [Unauthenticated, Forbidden, Unavailable];
    /// A caller scoped to a tenant (`AdminScope`, `Member`): the master names it with `?adminId=`,
    /// 400 without it, 404 when it is no admin.
    Scoped = [Validation, Unauthenticated, Forbidden, NotFound, Unavailable];
    /// A device key, and the device's signature when it signs (`DeviceLink`).
    Device = [Unauthenticated, Conflict, Unavailable];
    /// A request body (`ApiJson`, `OptionalJson`, `RawBody`).
    Body = [Validation, TooLarge];
    /// Parameters checked by the handler.
    Invalid = [Validation];
    /// Refused for this caller by the handler (a device key of another tenant).
    Forbidden = [Forbidden];
    /// The object named in the path or body.
    Missing = [NotFound];
    /// The state does not allow it (including a change refused by the store).
    Refused = [Conflict];
    /// A change made once per `Idempotency-Key` ([`OnceKeyParam`]), refused for another change.
    KeyReused = [KeyReused];
    /// A store read or write with no caller to check.
    Store = [Unavailable];
    /// Too many at once for this caller.
    Limited = [RateLimited];
}

/// `?adminId=`: the tenant the master acts on (required for the master; others act on their own
/// tenant, and naming another is 403).
#[derive(utoipa::IntoParams)]
#[into_params(names("adminId"), parameter_in = Query)]
pub struct AdminIdParam(#[allow(dead_code)] Option<String>);

/// `Idempotency-Key` (optional): 1 to 100 visible ASCII characters, a new one for each change
/// (a UUID). The same change sent again with it (a retry) is made once and answered as the first
/// was; another change sent with it is 422 `KEY_REUSED`.
#[derive(utoipa::IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct OnceKeyParam(#[allow(dead_code)] Option<String>);
