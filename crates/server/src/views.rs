//! The JSON shapes of `API.md`. Only this layer serializes; these types are the contract.

use pumppilot_engine::{EntryStatus, LedgerEntry, QueueEntry, ReceiptId, Tenant, Timestamp, UsageRow, UserId};
use pumppilot_store::{Account, AuditEntry, Device, MinuteRequest, reader_state_name, reset_reason_name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;

/// Whole minutes in a number of seconds.
pub fn minutes(seconds: i64) -> i64 {
    seconds.div_euclid(60)
}

/// An account as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub name: String,
    #[schema(value_type = names::Role)]
    pub role: String,
    /// The tenant; null for the master.
    pub admin_id: Option<String>,
    pub suspended: bool,
}

impl From<&Account> for UserView {
    fn from(a: &Account) -> Self {
        UserView {
            id: a.id.to_string(),
            username: a.username.clone(),
            name: a.name.clone(),
            role: a.role.as_str().into(),
            admin_id: a.admin_id.map(|id| id.to_string()),
            suspended: a.suspended,
        }
    }
}

/// A user with their balance (admin's list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBalanceView {
    #[serde(flatten)]
    pub user: UserView,
    pub available_seconds: i64,
    pub available_minutes: i64,
}

/// An admin with their tenant's state at a glance (master's list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminSummaryView {
    #[serde(flatten)]
    pub user: UserView,
    pub user_count: usize,
    #[schema(value_type = names::MotorState)]
    pub motor_state: String,
    pub device_online: bool,
}

/// One page of the master's list of pump owners, by username.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminPageView {
    /// At most `limit` owners, by username.
    pub admins: Vec<AdminSummaryView>,
    /// The `after` of the next page (the last username of this one); null on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
    /// How many owners there are (with `q`: how many it matches), on every page.
    pub total: u64,
}

/// Every pump's figures together, for the master's dashboard: counted in the store and from the
/// pumps with a run, whatever the number of owners.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetTotalsView {
    /// Pump owners, suspended ones too.
    pub owners: u64,
    /// Farmers of every pump, suspended ones too.
    pub farmers: u64,
    /// Pumps whose motor runs for a farmer now.
    pub running: u64,
    /// Pumps whose run is on hold now (load shedding, the grid settling, …), its time kept.
    pub on_hold: u64,
    /// Where the window of `chargedSeconds` and `cashTaka` starts: 30 days before now.
    pub since: String,
    /// The seconds charged by every run that ended since `since`, at every pump (what every
    /// pump's `GET /api/admin/usage?from=` adds up to).
    pub charged_seconds: i64,
    /// The taka of every receipt written since `since` and not void, at every pump (what every
    /// pump's `GET /api/admin/receipts?from=` adds up to, leaving out the void ones).
    pub cash_taka: i64,
}

/// A queue entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub admin_id: String,
    #[schema(value_type = names::EntryStatus)]
    pub status: String,
    /// WAITING only, 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// WAITING only: the least time until this entry can start (the active run's remaining time,
    /// then each entry ahead for as long as its minutes allow); load shedding only adds to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<names::HoldReason>)]
    pub hold_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<names::EndReason>)]
    pub end_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charged_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_seconds: Option<i64>,
}

impl EntryView {
    /// An entry as it stands in `tenant` at `now`; `name` finds a user's display name.
    pub fn new(entry: &QueueEntry, tenant: &Tenant, now: Timestamp, name: &impl Fn(UserId) -> String) -> Self {
        let position = match entry.status {
            EntryStatus::Waiting => tenant.waiting.iter().position(|e| e.id == entry.id).map(|i| i + 1),
            _ => None,
        };
        let live_run = matches!(entry.status, EntryStatus::Running | EntryStatus::Hold);
        EntryView {
            id: entry.id.to_string(),
            user_id: entry.user_id.to_string(),
            user_name: name(entry.user_id),
            admin_id: entry.admin_id.to_string(),
            status: entry.status.as_str().into(),
            position,
            estimated_wait_seconds: position.and_then(|p| tenant.estimated_wait_seconds(p, now)),
            hold_reason: entry.hold_reason.map(|r| r.as_str().into()),
            remaining_seconds: live_run.then(|| entry.remaining_seconds_at(tenant.wallet(entry.user_id), now)),
            requested_minutes: entry.requested_seconds.map(|s| s / 60),
            started_at: entry.started_at.map(rfc3339),
            ended_at: entry.ended_at.map(rfc3339),
            end_reason: entry.end_reason.map(|r| r.as_str().into()),
            charged_seconds: entry.charged_seconds,
            available_seconds: (!entry.status.is_live()).then(|| tenant.available_seconds(entry.user_id, now)),
        }
    }
}

/// The motor of the caller's tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MotorView {
    #[schema(value_type = names::MotorState)]
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<names::HoldReason>)]
    pub hold_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<i64>,
    /// In HOLD for restart protection (GRID_SETTLING, RESTART_WAIT): whole seconds until the motor
    /// may start (rounded up), e.g. "waiting for the grid to settle, 0:42". Not charged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_in_seconds: Option<i64>,
}

impl MotorView {
    pub fn new(tenant: &Tenant, now: Timestamp) -> Self {
        let (state, hold_reason) = tenant.motor_state();
        MotorView {
            state: state.as_str().into(),
            hold_reason: hold_reason.map(|r| r.as_str().into()),
            active_user_id: tenant.active.as_ref().map(|e| e.user_id.to_string()),
            remaining_seconds: tenant.remaining_seconds(now),
            resume_in_seconds: tenant.restart_wait_until().map(|until| ((until - now).max(0) + 999) / 1000),
        }
    }
}

/// The caller's own place and balance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    /// The caller's own state, which a farmer's screen shows first (the motor comes second):
    /// IDLE when they are neither running nor in line.
    #[schema(value_type = names::FarmerState)]
    pub state: String,
    pub entry: Option<EntryView>,
    pub available_seconds: i64,
    pub available_minutes: i64,
}

/// The caller's own state: their entry's, or IDLE.
pub fn farmer_state(entry: Option<&EntryView>) -> String {
    entry.map_or_else(|| "IDLE".into(), |e| e.status.clone())
}

/// The tenant's device as the motor status shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStateView {
    /// The one word for the device that screens show: derived here from the lights below and the
    /// motor, so that no screen shows two that disagree (the lights of a silent device are stale).
    #[schema(value_type = names::DeviceStatus)]
    pub status: String,
    pub online: bool,
    pub load_shedding: bool,
    pub ready: bool,
    pub relay: bool,
}

impl DeviceStateView {
    pub fn new(tenant: &Tenant, now: Timestamp) -> Self {
        let d = &tenant.device;
        let online = d.online_at(now);
        let motor = tenant.motor_state().0.as_str();
        DeviceStateView {
            status: device_status(d.last_poll_at.is_some(), online, d.load_shedding, d.ready, d.relay, motor).into(),
            online,
            load_shedding: d.load_shedding,
            ready: d.ready,
            relay: d.relay,
        }
    }
}

/// The one status of a device, in order of what matters most: never heard from, silent, no power,
/// not ready, then whether the relay agrees with the motor (switching on or off while it does not).
pub fn device_status(
    seen: bool,
    online: bool,
    load_shedding: bool,
    ready: bool,
    relay: bool,
    motor: &str,
) -> &'static str {
    let running = motor == "RUNNING";
    match () {
        _ if !seen => "NO_DEVICE",
        _ if !online => "OFFLINE",
        _ if load_shedding => "POWER_CUT",
        _ if !ready => "NOT_READY",
        _ if relay && running => "PUMPING",
        _ if relay => "SWITCHING_OFF",
        _ if running => "SWITCHING_ON",
        _ => "READY",
    }
}

/// `GET /api/motor/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    pub motor: MotorView,
    pub me: MeView,
    pub device: DeviceStateView,
}

/// `GET /api/queue`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub active: Option<EntryView>,
    pub waiting: Vec<EntryView>,
}

impl QueueView {
    pub fn new(tenant: &Tenant, now: Timestamp, name: &impl Fn(UserId) -> String) -> Self {
        QueueView {
            active: tenant.active.as_ref().map(|e| EntryView::new(e, tenant, now, name)),
            waiting: tenant.waiting.iter().map(|e| EntryView::new(e, tenant, now, name)).collect(),
        }
    }
}

/// One line of a user's ledger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    pub at: String,
    pub delta_seconds: i64,
    #[schema(value_type = names::LedgerKind)]
    pub kind: String,
    pub balance_after: i64,
    pub note: String,
    /// The receipt written with a recharge taken in cash (`GET /api/admin/receipts/{id}`), and
    /// the number printed on it.
    pub receipt_id: Option<String>,
    pub receipt_number: Option<String>,
}

impl From<&LedgerEntry> for LedgerView {
    fn from(l: &LedgerEntry) -> Self {
        LedgerView {
            at: rfc3339(l.at),
            delta_seconds: l.delta_seconds,
            kind: l.kind.as_str().into(),
            balance_after: l.balance_after,
            note: l.note.clone(),
            receipt_id: l.receipt_id.map(|id| id.to_string()),
            receipt_number: l.receipt_id.map(receipt_number),
        }
    }
}

/// `GET /api/wallet`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    pub available_seconds: i64,
    pub available_minutes: i64,
    pub ledger: Vec<LedgerView>,
}

/// A balance after a recharge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    pub user_id: String,
    /// The user's name (as it is now).
    pub name: String,
    pub available_seconds: i64,
    pub available_minutes: i64,
    /// The receipt written with a recharge paid in cash (`GET /api/admin/receipts/{id}`).
    pub receipt_id: Option<String>,
    /// True when this answers a change sent again with the `Idempotency-Key` of one already
    /// made: nothing was changed now (the receipt is the first's, the balance today's).
    pub repeated: bool,
}

/// A pump's terms.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TermsView {
    /// The most minutes one request may ask for.
    pub max_request_minutes: i64,
    /// Taka for an hour of pumping; null when the pump has no price.
    pub price_per_hour_taka: Option<i64>,
}

impl From<pumppilot_store::Terms> for TermsView {
    fn from(terms: pumppilot_store::Terms) -> Self {
        TermsView { max_request_minutes: terms.max_request_minutes, price_per_hour_taka: terms.price_per_hour_taka }
    }
}

/// The receipt of a recharge paid in cash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptView {
    pub id: String,
    /// The number printed on the receipt: the first twelve characters of its id, which are the
    /// moment it was made to the millisecond, in capitals and in groups of four (`01A2-42B7-1C3D`),
    /// so two receipts of one pump never share it.
    pub number: String,
    pub user_id: String,
    pub user_name: String,
    pub at: String,
    pub minutes: i64,
    /// What the receipt says was paid. A void receipt (`void` set) counts for no cash: leave it
    /// out of any sum.
    pub cash_taka: i64,
    /// Who took the cash.
    pub recorded_by_name: String,
    /// Set when the receipt was voided (its minutes taken back); null while it stands.
    pub void: Option<ReceiptVoidView>,
}

/// When a receipt was voided, and by whom.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptVoidView {
    pub at: String,
    /// Who voided it (the owner, or the master for them).
    pub by_name: String,
}

/// The number printed on a receipt ([`ReceiptView::number`]).
pub fn receipt_number(id: ReceiptId) -> String {
    // The id is 32 hex digits: the first twelve are its time to the millisecond.
    let id = id.to_string();
    format!("{}-{}-{}", &id[..4], &id[4..8], &id[8..12]).to_uppercase()
}

impl ReceiptView {
    /// `receipt` with the names of the people it names (`name` of each id).
    pub fn new(receipt: &pumppilot_store::Receipt, name: impl Fn(UserId) -> String) -> Self {
        ReceiptView {
            number: receipt_number(receipt.id),
            id: receipt.id.to_string(),
            user_id: receipt.user_id.to_string(),
            user_name: name(receipt.user_id),
            at: rfc3339(receipt.at),
            minutes: receipt.minutes,
            cash_taka: receipt.cash_taka,
            recorded_by_name: name(receipt.recorded_by),
            void: receipt.void.map(|void| ReceiptVoidView { at: rfc3339(void.at), by_name: name(void.by) }),
        }
    }

    /// The cash this receipt counts for in a sum: what it says, or nothing once void.
    pub fn cash_counted(&self) -> i64 {
        if self.void.is_some() { 0 } else { self.cash_taka }
    }

    /// The people a receipt names, for [`ReceiptView::new`].
    pub fn names(receipt: &pumppilot_store::Receipt) -> impl Iterator<Item = UserId> {
        [receipt.user_id, receipt.recorded_by].into_iter().chain(receipt.void.map(|void| void.by))
    }
}

/// A farmer's new password, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPasswordView {
    pub user_id: String,
    /// The account's name (the farmer's, or the pump owner's), as it is now.
    pub name: String,
    pub username: String,
    pub password: String,
}

/// A minute request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinuteRequestView {
    pub id: String,
    pub user_id: String,
    pub minutes: i64,
    pub note: String,
    #[schema(value_type = names::RequestStatus)]
    pub status: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why the owner rejected it, when they said; absent on a request rejected without a reason,
    /// and on every request not rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<names::RejectReason>)]
    pub reject_reason: Option<String>,
}

impl From<&MinuteRequest> for MinuteRequestView {
    fn from(r: &MinuteRequest) -> Self {
        MinuteRequestView {
            id: r.id.to_string(),
            user_id: r.user_id.to_string(),
            minutes: r.minutes,
            note: r.note.clone(),
            status: r.status.as_str().into(),
            created_at: rfc3339(r.created_at),
            decided_at: r.decided_at.map(rfc3339),
            decided_by: r.decided_by.map(|id| id.to_string()),
            reject_reason: r.reject_reason.map(|reason| reason.as_str().into()),
        }
    }
}

/// A finished run in the usage history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    pub entry_id: String,
    pub user_id: String,
    pub started_at: String,
    pub ended_at: String,
    pub running_seconds: i64,
    pub held_seconds: i64,
    pub charged_seconds: i64,
    #[schema(value_type = names::EndReason)]
    pub end_reason: String,
}

impl From<&UsageRow> for UsageView {
    fn from(u: &UsageRow) -> Self {
        UsageView {
            entry_id: u.entry_id.to_string(),
            user_id: u.user_id.to_string(),
            started_at: rfc3339(u.started_at),
            ended_at: rfc3339(u.ended_at),
            running_seconds: u.running_seconds,
            held_seconds: u.held_seconds,
            charged_seconds: u.charged_seconds,
            end_reason: u.end_reason.as_str().into(),
        }
    }
}

/// A line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub at: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub detail: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        AuditView {
            at: rfc3339(a.at),
            actor_id: a.actor_id.map(|id| id.to_string()),
            action: a.action.clone(),
            target_id: a.target_id.clone(),
            detail: a.detail.clone(),
        }
    }
}

/// A registered device (admin's list).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub last_seen_at: Option<String>,
    pub load_shedding: bool,
    pub ready: bool,
    pub relay: bool,
    pub firmware: Option<String>,
    pub uptime_ms: Option<u64>,
    pub rssi: Option<i16>,
    /// This device drives the pump's motor (the others are told OFF).
    pub controller: bool,
    /// Why the board last started, as it reported: POWER_ON, BROWN_OUT, WATCHDOG, PANIC,
    /// SOFTWARE or OTHER; null until it has said.
    pub last_reset: Option<String>,
    /// When the board last started.
    pub last_reset_at: Option<String>,
    /// Its RFID reader: OK, ABSENT, or null for a board without one.
    pub reader: Option<String>,
    /// Its motor-running feedback input (true: the motor runs); null for a board without one.
    pub feedback: Option<bool>,
    /// It signs its requests with its link secret (false: it has polled with its key alone so
    /// far, as devices from before the authenticated link do).
    pub signed_link: bool,
    /// The firmware version meant for it that it does not run yet (an update is offered with
    /// every poll until it reports running it); null when it runs what is meant for it.
    pub update_to: Option<String>,
    /// Where it stands with the newest release meant for it, from what this server knows:
    /// OFFERED, DOWNLOADING, FAILED (it downloaded all of it, started again and still runs another
    /// version: a check failed or it went back to the old image), UPDATED (it runs it); null when
    /// no release is meant for it.
    #[schema(value_type = Option<names::UpdateState>)]
    pub update_state: Option<String>,
    /// While DOWNLOADING: how much of the image it has, 0 to 100.
    pub update_percent: Option<u8>,
}

impl DeviceView {
    pub fn new(device: &Device, lease_ms: i64, now: Timestamp, controller: bool) -> Self {
        let t = device.telemetry.as_ref();
        DeviceView {
            controller,
            last_reset: t.and_then(|t| t.last_reset).map(|r| reset_reason_name(r).into()),
            last_reset_at: t.and_then(|t| t.last_reset_at).map(rfc3339),
            reader: t.and_then(|t| t.reader).map(|r| reader_state_name(r).into()),
            feedback: t.and_then(|t| t.feedback),
            id: device.id.to_string(),
            name: device.name.clone(),
            online: t.is_some_and(|t| now - t.last_seen_at < lease_ms),
            last_seen_at: t.map(|t| rfc3339(t.last_seen_at)),
            load_shedding: t.is_some_and(|t| t.load_shedding),
            ready: t.is_some_and(|t| t.ready),
            relay: t.is_some_and(|t| t.relay),
            firmware: t.and_then(|t| t.firmware.clone()),
            uptime_ms: t.and_then(|t| t.uptime_ms),
            rssi: t.and_then(|t| t.rssi),
            signed_link: false,
            update_to: None,
            update_state: None,
            update_percent: None,
        }
    }

    /// The view with whether the device signs its requests.
    pub fn signing(self, signed_link: bool) -> Self {
        DeviceView { signed_link, ..self }
    }

    /// The view with the firmware update offered to it, if any.
    pub fn updating(self, update_to: Option<String>) -> Self {
        DeviceView { update_to, ..self }
    }

    /// The view with where it stands with the release meant for it (`routes::firmware`).
    pub fn update_progress(self, progress: Option<crate::routes::firmware::UpdateProgress>) -> Self {
        DeviceView {
            update_state: progress.as_ref().map(|p| p.state.as_str().to_owned()),
            update_percent: progress.and_then(|p| p.percent),
            ..self
        }
    }
}

/// A device just registered, or given a new key: the key is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCreatedView {
    pub id: String,
    pub name: String,
    /// The device's key (`pp_dev_…`); null only in the answer to a registration sent again
    /// (`repeated`), as it was shown in the first answer alone: a new key comes from
    /// `POST /api/admin/devices/{id}/rotate-key`.
    pub device_key: Option<String>,
    /// The secret the device signs its requests with and checks every answer by (`pp_link_…`;
    /// see docs/DEVICE.md, "The authenticated link"). It never travels again; a new key gives a
    /// new secret. Null whenever `deviceKey` is.
    pub link_secret: Option<String>,
    /// True when this answers a registration sent again with the `Idempotency-Key` of one
    /// already made: the first device, registered once; nothing was made now.
    pub repeated: bool,
}

/// The values of the API's named strings, for the OpenAPI document only: the views carry the
/// engine's and store's own names (`as_str`), and these enums tell clients every value there is.
/// `tests/api.rs` checks them against the Rust enums they describe.
pub mod names {
    #![allow(dead_code)]
    use utoipa::ToSchema;

    /// Who an account is.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum Role {
        Master,
        Admin,
        User,
    }

    /// The motor of a tenant.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum MotorState {
        Idle,
        Running,
        Hold,
    }

    /// A farmer's own state (`me.state`).
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum FarmerState {
        Idle,
        Waiting,
        Running,
        Hold,
    }

    /// Where a device stands with the firmware meant for it (`DeviceView.updateState`).
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum UpdateState {
        Offered,
        Downloading,
        Failed,
        Updated,
    }

    /// The one status of a pump's device (`device.status`): NO_DEVICE (none has ever reported),
    /// OFFLINE (silent past its lease), POWER_CUT (load shedding), NOT_READY, PUMPING (relay on
    /// for a run), SWITCHING_ON / SWITCHING_OFF (the relay has not yet followed the motor), READY.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum DeviceStatus {
        NoDevice,
        Offline,
        PowerCut,
        NotReady,
        Pumping,
        SwitchingOn,
        SwitchingOff,
        Ready,
    }

    /// A queue entry's state.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum EntryStatus {
        Waiting,
        Running,
        Hold,
        Completed,
        Cancelled,
    }

    /// Why a run is paused.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum HoldReason {
        LoadShedding,
        DeviceNotReady,
        DeviceOffline,
        GridSettling,
        RestartWait,
        NoFeedback,
        StoreUnavailable,
    }

    /// Why an entry ended.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum EndReason {
        UserStop,
        BalanceExhausted,
        RequestedMinutesUsed,
        AdminStop,
        Suspended,
        InsufficientBalance,
        LeftQueue,
    }

    /// What changed a wallet.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum LedgerKind {
        Recharge,
        RequestApproved,
        RunCharge,
        Correction,
    }

    /// Where a minute request stands.
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum RequestStatus {
        Pending,
        Approved,
        Rejected,
    }

    /// Why an owner rejected a minute request: NOT_PAID (the payment was not received),
    /// WRONG_AMOUNT (the payment does not match the minutes asked for), TOO_MANY (ask for fewer
    /// minutes), PUMP_CLOSED (the pump is closed for now).
    #[derive(ToSchema)]
    #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum RejectReason {
        NotPaid,
        WrongAmount,
        TooMany,
        PumpClosed,
    }
}

/// `GET`/`PUT /api/admin/pump/motor`: the pump's restart protection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MotorSettingsView {
    /// The owner's own values; null takes the server's default.
    pub own: MotorOwnView,
    /// The values in force (sent to the device in every poll answer).
    pub effective: MotorRulesView,
}

/// The owner's restart protection; null takes the server's default.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MotorOwnView {
    pub min_off_ms: Option<i64>,
    pub grid_settle_ms: Option<i64>,
    pub max_starts_per_hour: Option<i64>,
}

/// Restart protection in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MotorRulesView {
    /// Least time the motor stays OFF before it may start again.
    pub min_off_ms: i64,
    /// How long the grid must be back (after load shedding or a power cut) before ON.
    pub grid_settle_ms: i64,
    /// Most starts in any hour (0 = no cap).
    pub max_starts_per_hour: i64,
}

impl MotorSettingsView {
    pub fn new(tenant: &Tenant) -> Self {
        let own = tenant.motor_settings;
        let rules = tenant.motor_rules();
        MotorSettingsView {
            own: MotorOwnView {
                min_off_ms: own.min_off_ms,
                grid_settle_ms: own.grid_settle_ms,
                max_starts_per_hour: own.max_starts_per_hour.map(i64::from),
            },
            effective: MotorRulesView {
                min_off_ms: rules.min_off_ms,
                grid_settle_ms: rules.grid_settle_ms,
                max_starts_per_hour: i64::from(rules.max_starts_per_hour),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::device_status;

    #[test]
    fn a_device_has_one_status_and_stale_lights_never_speak() {
        // Never heard from: no "Power on" for a pump without a device.
        assert_eq!(device_status(false, false, false, false, false, "IDLE"), "NO_DEVICE");
        // Silent past its lease: its last relay and grid levels are not shown.
        assert_eq!(device_status(true, false, false, true, true, "RUNNING"), "OFFLINE");
        assert_eq!(device_status(true, true, true, true, true, "HOLD"), "POWER_CUT");
        assert_eq!(device_status(true, true, false, false, false, "HOLD"), "NOT_READY");
        assert_eq!(device_status(true, true, false, true, true, "RUNNING"), "PUMPING");
        // The relay lags the motor by a poll: said as such, never "IDLE" beside "switch ON".
        assert_eq!(device_status(true, true, false, true, true, "IDLE"), "SWITCHING_OFF");
        assert_eq!(device_status(true, true, false, true, false, "RUNNING"), "SWITCHING_ON");
        assert_eq!(device_status(true, true, false, true, false, "IDLE"), "READY");
    }
}

/// One notification in the bell, in the reader's language.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub id: String,
    /// `RUN_STARTED`, `RUN_HELD`, `RUN_RESUMED`, `RUN_ENDED`, `BALANCE_LOW`, `REQUEST_DECIDED`,
    /// `REQUEST_NEW`, `DEVICE_OFFLINE`, `LOAD_SHEDDING_LONG`, `DEVICE_RESET`, `RELAY_NO_FEEDBACK`,
    /// `NO_COMMAND_LONG`, `STORE_TROUBLE`, `SMS_REPLY` (the answer to a text the farmer sent).
    pub kind: String,
    /// When it happened (RFC 3339).
    pub at: String,
    pub title: String,
    pub text: String,
    pub read: bool,
}

impl NotificationView {
    pub fn new(n: &pumppilot_store::Notification, language: pumppilot_alerts::Language) -> Self {
        let (title, text) = pumppilot_alerts::render(n.kind, &n.facts, n.at, language);
        NotificationView {
            id: n.id.to_string(),
            kind: n.kind.as_str().into(),
            at: rfc3339(n.at),
            title,
            text,
            read: n.read,
        }
    }
}

/// The caller's notifications, newest first, and how many are unread.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsView {
    pub unread: u64,
    pub notifications: Vec<NotificationView>,
}

/// A kind of notification the person does not want on a channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MutedView {
    /// A notification kind, e.g. `RUN_HELD`.
    pub kind: String,
    /// `PUSH` or `SMS`.
    pub channel: String,
}

/// Quiet hours: no push or SMS from `from` to `to` (`HH:MM`, may wrap midnight) in the zone
/// `utcOffsetMinutes` from UTC (360 for Bangladesh); the bell still shows everything.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuietHoursView {
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub from: String,
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub to: String,
    #[schema(minimum = -720, maximum = 840)]
    pub utc_offset_minutes: i16,
}

/// How the caller wants to hear: phone (E.164), push tokens, language, muted kinds per channel,
/// quiet hours; and the number waiting to be confirmed from its phone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertProfileView {
    /// The confirmed number, E.164 (e.g. `+8801711000000`), that SMS alerts go to and whose
    /// texts are obeyed; null for none. Sent: the number wanted. A new one waits in
    /// `pendingPhone` until confirmed from that phone, the confirmed one staying meanwhile; null
    /// clears the phone at once; the confirmed or the waiting number changes nothing.
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: Option<String>,
    /// The number set and waiting to be confirmed: its holder texts `phoneCode` from it to
    /// `smsNumber`. Read only (ignored when sent).
    #[serde(default)]
    pub pending_phone: Option<String>,
    /// The six digits to text from `pendingPhone`, while they work (24 hours from
    /// `pendingSince`); null once expired (send the number again for a new code). Read only.
    #[serde(default)]
    pub phone_code: Option<String>,
    /// When `pendingPhone` was set (RFC 3339). Read only.
    #[serde(default)]
    pub pending_since: Option<String>,
    /// A number that waited and was dropped because 5 wrong codes were texted from it: it
    /// confirms nothing now; send it again for a new code. Null otherwise. Read only.
    #[serde(default)]
    pub dropped_phone: Option<String>,
    /// The number to text the code to (`PUMPPILOT_SMS_NUMBER`); null when the server was not
    /// told it ("the pump's SMS number"). Read only.
    #[serde(default)]
    pub sms_number: Option<String>,
    /// Expo push tokens (`ExponentPushToken[…]`), at most 10.
    pub push_tokens: Vec<String>,
    /// `en` or `bn`.
    pub language: String,
    pub muted: Vec<MutedView>,
    pub quiet_hours: Option<QuietHoursView>,
}

/// A farmer's number for SMS as their owner sees it: the confirmed one, the one waiting with the
/// code to text from it, and the language of their messages.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FarmerPhoneView {
    /// The confirmed number, E.164; null for none.
    pub phone: Option<String>,
    /// The number waiting to be confirmed from its phone.
    pub pending_phone: Option<String>,
    /// The six digits to text from `pendingPhone` while they work (24 hours); null once expired.
    pub phone_code: Option<String>,
    /// When `pendingPhone` was set (RFC 3339).
    pub pending_since: Option<String>,
    /// A number that waited and was dropped because 5 wrong codes were texted from it (enrol it
    /// again for a new code); null otherwise.
    pub dropped_phone: Option<String>,
    /// `en` or `bn`: the language of the farmer's messages.
    pub language: String,
    /// The number to text the code to (`PUMPPILOT_SMS_NUMBER`); null when not set.
    pub sms_number: Option<String>,
}
