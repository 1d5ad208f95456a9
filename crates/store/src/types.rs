//! The stored records that are not engine state.

use pumppilot_engine::{
    AdminId, DeviceId, LedgerEntry, Notice, QueueEntry, ReaderState, ReceiptId, RejectReason, RequestId, ResetReason,
    Tenant, Timestamp, UsageRow, UserId,
};
use uuid::Uuid;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Admin,
    User,
}

impl Role {
    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "master" => Role::Master,
            "admin" => Role::Admin,
            "user" => Role::User,
            _ => return None,
        })
    }
}

/// A person who signs in: the master, an admin (a tenant) or a user of one admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: UserId,
    /// Unique system-wide; a phone number works as one.
    pub username: String,
    pub name: String,
    pub role: Role,
    /// The tenant: the admin's own id for an admin, the owner's for a user, `None` for the master.
    pub admin_id: Option<AdminId>,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub suspended: bool,
    pub created_at: Timestamp,
}

/// A device at a pump. Its key is stored only as a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub admin_id: AdminId,
    pub name: String,
    pub key_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub telemetry: Option<Telemetry>,
}

/// The counters of a device's authenticated link a server has accepted inside its reserved
/// [`CounterWindow`] (kept in that server's memory): the highest, and which of the
/// [`LinkCounters::WINDOW`] counters below it came in too (requests of one device may arrive out
/// of order: a card tap beside a long-poll). A counter is accepted once, only when it is above
/// the highest, or within the window below it and not seen yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// The highest counter accepted (0: none yet, the device has never signed a request).
    pub highest: u64,
    /// Bit `i` set: counter `highest - 1 - i` was accepted.
    pub below: u64,
}

impl LinkCounters {
    /// How many counters below the highest may still come in late.
    pub const WINDOW: u64 = 64;

    /// The counters after accepting `counter`, or `None` when it must be refused (0, seen
    /// already, or older than the window).
    pub const fn accept(self, counter: u64) -> Option<LinkCounters> {
        if counter == 0 {
            return None;
        }
        if counter > self.highest {
            let shift = counter - self.highest;
            // The old highest becomes bit `shift - 1`; older bits move up with it.
            let below = if shift > Self::WINDOW {
                0
            } else if shift == Self::WINDOW {
                1 << (Self::WINDOW - 1)
            } else {
                (self.below << shift) | (1 << (shift - 1))
            };
            // No highest yet: nothing below it was accepted.
            let below = if self.highest == 0 { 0 } else { below };
            return Some(LinkCounters { highest: counter, below });
        }
        let back = self.highest - counter;
        if back == 0 || back > Self::WINDOW {
            return None;
        }
        let bit = 1u64 << (back - 1);
        if self.below & bit != 0 {
            return None;
        }
        Some(LinkCounters { highest: self.highest, below: self.below | bit })
    }
}

/// Which devices a firmware release is meant for: every device of one tenant, or else this share
/// of all devices (chosen by device id, so the same devices stay in as the share grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollout {
    /// 0 to 100.
    pub percent: u8,
    /// One tenant first: all of its devices, and no other's (the percentage then does not count).
    pub tenant: Option<AdminId>,
}

/// A published firmware image, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareRelease {
    /// Unique (`pumppilot_protocol::firmware::valid_version`).
    pub version: String,
    pub size: u32,
    pub sha256: [u8; 32],
    /// Ed25519 over the signed description (`pumppilot_protocol::firmware::signed_message`).
    pub signature: [u8; 64],
    pub published_at: Timestamp,
    pub rollout: Rollout,
}

/// How far a device has downloaded a firmware image, as the servers that served it wrote it
/// (`Store::record_firmware_download`): one record per device, for the last version it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareDownload {
    pub device: DeviceId,
    pub admin: AdminId,
    pub version: String,
    /// The end of the furthest range served (bytes from the start of the image).
    pub received: u32,
    /// The image's size in bytes.
    pub size: u32,
    /// When the latest range written was served.
    pub at: Timestamp,
}

/// A block of a device's link counters reserved for one server (`Store::reserve_device_counters`):
/// the counters above `after` up to `through`, both as stored, are this server's to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterWindow {
    /// The floor before the reservation: no counter at or below it may be accepted by the holder.
    pub after: u64,
    /// The floor after it, the window's last counter.
    pub through: u64,
}

impl CounterWindow {
    /// Whether `counter` is inside the window.
    pub const fn holds(&self, counter: u64) -> bool {
        counter > self.after && counter <= self.through
    }

    /// The floor a reservation moves to from the stored floor `floor`: a block beyond it, or
    /// beyond `at_least - 1` when that is higher, up to the largest counter a store keeps (a
    /// signed 64-bit integer); `None` when the floor is there already.
    pub fn next_floor(floor: u64, at_least: u64, block: u64) -> Option<u64> {
        const LARGEST: u64 = i64::MAX as u64;
        let start = floor.max(at_least.saturating_sub(1));
        (start < LARGEST).then(|| start.saturating_add(block.max(1)).min(LARGEST))
    }
}

/// A reservation of a device's link counters (`Store::reserve_device_counters`): the window, and
/// the device's report as the store held it when the floor was read (`None` before its first).
/// A server that takes a device over (its first signed request there) so knows what the device's
/// document says, and writes it only when the device's report differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub window: CounterWindow,
    pub stored: Option<Telemetry>,
}

/// What a device last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    pub device_id: DeviceId,
    pub admin_id: AdminId,
    pub last_seen_at: Timestamp,
    pub load_shedding: bool,
    pub ready: bool,
    pub relay: bool,
    pub firmware: Option<String>,
    pub uptime_ms: Option<u64>,
    pub rssi: Option<i16>,
    /// Why the board last started, once it has said so; a report without one keeps the stored one.
    pub last_reset: Option<ResetReason>,
    /// When the board last started (the report's time less its uptime).
    pub last_reset_at: Option<Timestamp>,
    /// Whether its RFID reader answers, on boards that have one.
    pub reader: Option<ReaderState>,
    /// Its motor-running feedback input, on boards that have one.
    pub feedback: Option<bool>,
}

impl Telemetry {
    /// What a board on a live grid with its pump ready and its relay off reports at `at`, saying
    /// nothing else (no firmware, signal, reset, reader or feedback).
    pub fn ready(admin: AdminId, device: DeviceId, at: Timestamp) -> Telemetry {
        Telemetry {
            device_id: device,
            admin_id: admin,
            last_seen_at: at,
            load_shedding: false,
            ready: true,
            relay: false,
            firmware: None,
            uptime_ms: None,
            rssi: None,
            last_reset: None,
            last_reset_at: None,
            reader: None,
            feedback: None,
        }
    }
}

/// The store name of a reset reason.
pub const fn reset_reason_name(reason: ResetReason) -> &'static str {
    match reason {
        ResetReason::PowerOn => "POWER_ON",
        ResetReason::BrownOut => "BROWN_OUT",
        ResetReason::Watchdog => "WATCHDOG",
        ResetReason::Panic => "PANIC",
        ResetReason::Software => "SOFTWARE",
        ResetReason::Other => "OTHER",
    }
}

/// A reset reason from its store name.
pub fn parse_reset_reason(name: &str) -> Option<ResetReason> {
    Some(match name {
        "POWER_ON" => ResetReason::PowerOn,
        "BROWN_OUT" => ResetReason::BrownOut,
        "WATCHDOG" => ResetReason::Watchdog,
        "PANIC" => ResetReason::Panic,
        "SOFTWARE" => ResetReason::Software,
        "OTHER" => ResetReason::Other,
        _ => return None,
    })
}

/// The store name of a reader state.
pub const fn reader_state_name(state: ReaderState) -> &'static str {
    match state {
        ReaderState::Ok => "OK",
        ReaderState::Absent => "ABSENT",
    }
}

/// A reader state from its store name.
pub fn parse_reader_state(name: &str) -> Option<ReaderState> {
    Some(match name {
        "OK" => ReaderState::Ok,
        "ABSENT" => ReaderState::Absent,
        _ => return None,
    })
}

/// An RFID card bound to a user of a tenant. A card's UID is unique within its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub admin_id: AdminId,
    /// Upper-case hex, as the device reports it.
    pub uid: String,
    pub user_id: UserId,
    pub bound_at: Timestamp,
}

/// A line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The tenant it concerns; `None` for system-wide actions.
    pub admin_id: Option<AdminId>,
    pub at: Timestamp,
    pub actor_id: Option<UserId>,
    /// A short verb such as `user.create`, `recharge`, `motor.stop`.
    pub action: String,
    pub target_id: Option<String>,
    pub detail: String,
}

/// What a pump owner sets for the farmers of their pump (not a pump rule): the most minutes one
/// request may ask for, and the price of an hour of pumping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// 1 to [`Terms::MAX_REQUEST_MINUTES_LIMIT`].
    pub max_request_minutes: i64,
    /// Taka for one hour of pumping; `None` until the owner sets one.
    pub price_per_hour_taka: Option<i64>,
}

impl Terms {
    /// The most minutes one request may ask for until the owner says otherwise.
    pub const DEFAULT_MAX_REQUEST_MINUTES: i64 = 600;
    /// The highest maximum an owner may set (a week of pumping).
    pub const MAX_REQUEST_MINUTES_LIMIT: i64 = 10_080;
    /// The highest price of an hour an owner may set.
    pub const MAX_PRICE_PER_HOUR_TAKA: i64 = 100_000;
}

impl Default for Terms {
    fn default() -> Self {
        Terms { max_request_minutes: Terms::DEFAULT_MAX_REQUEST_MINUTES, price_per_hour_taka: None }
    }
}

/// The receipt of a recharge: the minutes a farmer got and the cash the owner took for them.
/// Written in the same commit as the recharge's ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: ReceiptId,
    pub admin_id: AdminId,
    pub user_id: UserId,
    pub at: Timestamp,
    pub minutes: i64,
    /// Whole taka, 0 or more.
    pub cash_taka: i64,
    /// Who took the cash (the owner, or the master for them).
    pub recorded_by: UserId,
    /// True when the recharge gave no cash and this is the pump's price of its minutes as it was
    /// then: what was asked, so that the same recharge sent again after the price changed is
    /// still the same one.
    pub priced: bool,
    /// Set once the owner took the receipt back (a mistaken recharge): its minutes were taken
    /// from the farmer in the same write, and it counts for no cash anywhere. `None` while it
    /// stands.
    pub void: Option<ReceiptVoid>,
}

impl Receipt {
    /// The cash this receipt counts for: what it says, or nothing once void.
    pub fn cash_counted(&self) -> i64 {
        if self.void.is_some() { 0 } else { self.cash_taka }
    }
}

/// When a receipt was voided, and by whom (the owner, or the master for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptVoid {
    pub at: Timestamp,
    pub by: UserId,
}

/// Filter for receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptQuery {
    pub admin: AdminId,
    pub user: Option<UserId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
}

/// A change to one account: an owner's to a farmer's (a new name, a new password, or both), the
/// master's to an owner's (a new password), or anyone's to their own (a new password). A new
/// password ends every session of the account in the same write but `keep_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub id: UserId,
    /// The role the account must have, else [`StoreError::NotFound`](crate::StoreError::NotFound).
    pub role: Role,
    /// The tenant the account must belong to (`None`: the master, who has none), else
    /// [`StoreError::NotFound`](crate::StoreError::NotFound).
    pub admin_id: Option<AdminId>,
    pub name: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: Option<String>,
    /// With a new password: the session that stays signed in (the one that asked to change its
    /// own password); `None` ends them all.
    pub keep_session: Option<SessionId>,
    pub at: Timestamp,
}

/// Filter for usage rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub admin: AdminId,
    pub user: Option<UserId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
}

/// A page of one tenant's audit log, filtered over the whole log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub admin: AdminId,
    /// One action (`recharge`, `user.suspend`, …).
    pub action: Option<String>,
    /// Lines whose actor or target is this id (a farmer's lines).
    pub about: Option<String>,
    /// From this moment (inclusive) …
    pub from: Option<Timestamp>,
    /// … to this one (exclusive).
    pub to: Option<Timestamp>,
    /// Lines skipped (the pages before).
    pub offset: usize,
    pub limit: usize,
}

/// One page of the master's list of pump owners (admins), in username order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerQuery {
    /// Owners whose username comes after this one (the last username of the page before).
    pub after: Option<String>,
    /// Only owners whose username starts with this.
    pub prefix: Option<String>,
    /// At most this many owners.
    pub limit: usize,
}

impl OwnerQuery {
    /// The usernames `prefix` matches, as a range `low <= username < high` in byte order (SQLite's
    /// and MongoDB's): the prefix, and the prefix followed by the greatest character.
    pub fn prefix_range(&self) -> Option<(&str, String)> {
        self.prefix.as_deref().map(|prefix| (prefix, format!("{prefix}\u{10FFFF}")))
    }
}

/// A pump owner on a page of [`OwnerQuery`], with how many farmers their tenant has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRow {
    pub account: Account,
    pub farmers: u64,
}

/// What [`OwnerQuery`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnerPage {
    /// At most `limit` owners, by username (byte order).
    pub owners: Vec<OwnerRow>,
    /// Whether owners come after the last of `owners` (with the same `prefix`).
    pub more: bool,
    /// Every owner with the query's `prefix` (all pages).
    pub total: u64,
}

/// Every pump's figures together, for the master: each counted in the store, whatever the
/// number of owners ([`Store::fleet_totals`](crate::Store::fleet_totals)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FleetTotals {
    /// Pump owners (admins), suspended or not.
    pub owners: u64,
    /// Farmers (users) of every pump, suspended or not.
    pub farmers: u64,
    /// The charged seconds of every usage row that ended at or after `since`: the sum of every
    /// tenant's [`UsageQuery`] from `since`.
    pub charged_seconds: i64,
    /// The cash of every receipt written at or after `since` and not void: the sum of every
    /// tenant's [`ReceiptQuery`] from `since`, each receipt's [`Receipt::cash_counted`].
    pub cash_taka: i64,
}

/// Where a minute request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
}

impl RequestStatus {
    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Approved => "APPROVED",
            RequestStatus::Rejected => "REJECTED",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => RequestStatus::Pending,
            "APPROVED" => RequestStatus::Approved,
            "REJECTED" => RequestStatus::Rejected,
            _ => return None,
        })
    }
}

/// A user's request for more minutes (for example after paying the owner in cash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRequest {
    pub id: RequestId,
    pub user_id: UserId,
    pub admin_id: AdminId,
    pub minutes: i64,
    pub note: String,
    pub status: RequestStatus,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    pub decided_by: Option<UserId>,
    /// Why the owner rejected it, when they said (a rejected request only).
    pub reject_reason: Option<RejectReason>,
}

/// Filter for minute requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestQuery {
    pub admin: AdminId,
    pub user: Option<UserId>,
    pub status: Option<RequestStatus>,
}

/// A write that an owner or the master makes, kept with its audit entry by
/// [`crate::Store::write_audited`]: both or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditedWrite {
    /// As [`crate::Store::create_account`].
    CreateAccount(Account),
    /// As [`crate::Store::create_device`] (a device without telemetry). With `once_key` (the
    /// `Idempotency-Key` it was asked with), one device per key in a tenant: a second is refused
    /// with [`StoreError::AlreadyMade`](crate::StoreError::AlreadyMade), nothing of it written,
    /// and [`crate::Store::device_with_key`] finds the first.
    CreateDevice { device: Device, once_key: Option<String> },
    /// As [`crate::Store::decide_minute_request`], with the notices it causes (the farmer's
    /// `REQUEST_DECIDED` on a rejection), written as [`crate::Store::add_notices`] writes them.
    Decide { decision: Decision, notices: Vec<Notice> },
    /// As [`crate::Store::set_device_key`].
    SetDeviceKey { admin: AdminId, device: DeviceId, key_hash: Vec<u8> },
    /// As [`crate::Store::bind_card`].
    BindCard(Card),
    /// As [`crate::Store::unbind_card`].
    UnbindCard { admin: AdminId, uid: String },
    /// As [`crate::Store::set_alert_profile`] (an owner enrolling a farmer's phone): `profile`,
    /// made from `read` (the profile stored when it was read; `None`: there was none), is written
    /// only while the stored one is still `read` but for the pending number's wrong-code count,
    /// else [`StoreError::VersionConflict`](crate::StoreError::VersionConflict) and neither the
    /// profile nor the audit entry is written.
    SetAlertProfile { profile: crate::AlertProfile, read: Option<crate::AlertProfile> },
}

/// Deciding a PENDING request once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub request_id: RequestId,
    pub admin_id: AdminId,
    pub status: RequestStatus,
    pub decided_by: UserId,
    pub at: Timestamp,
    /// Why the owner rejects it, when they say (a rejection only), stored with the decision.
    pub reason: Option<RejectReason>,
}

/// A signed-in session's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub Uuid);

impl SessionId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        SessionId(Uuid::now_v7())
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

/// Web sessions (cookie) and mobile sessions (bearer + refresh) live in separate collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    Web,
    Mobile,
}

/// A signed-in session. Tokens are stored only as keyed hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub kind: SessionKind,
    pub user_id: UserId,
    pub access_hash: Vec<u8>,
    pub access_expires_at: Timestamp,
    /// Mobile only.
    pub refresh_hash: Option<Vec<u8>>,
    /// The refresh hash before the last rotation, kept to detect reuse.
    pub previous_refresh_hash: Option<Vec<u8>>,
    pub refresh_expires_at: Option<Timestamp>,
    pub device_name: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Session {
    /// A new web session (no refresh token) for `user_id`, known by the hash of its access token.
    pub fn web(user_id: UserId, access_hash: Vec<u8>, now: Timestamp, expires_at: Timestamp) -> Session {
        Session {
            id: SessionId::new(),
            kind: SessionKind::Web,
            user_id,
            access_hash,
            access_expires_at: expires_at,
            refresh_hash: None,
            previous_refresh_hash: None,
            refresh_expires_at: None,
            device_name: None,
            created_at: now,
            revoked_at: None,
        }
    }
}

/// A session with the accounts that checking a request made with it needs
/// ([`crate::Store::signed_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub session: Session,
    /// The session's account; `None` when it is gone.
    pub account: Option<Account>,
    /// For a farmer (`Role::User`), the pump owner's account (a suspended owner suspends the
    /// farmer); `None` for the others, or when it is gone.
    pub owner: Option<Account>,
}

/// Which refresh token of a session was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMatch {
    Current,
    /// An already rotated token: a sign of theft.
    Previous,
}

/// New tokens for a mobile session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub id: SessionId,
    pub expected_refresh_hash: Vec<u8>,
    pub access_hash: Vec<u8>,
    pub access_expires_at: Timestamp,
    pub refresh_hash: Vec<u8>,
    pub refresh_expires_at: Timestamp,
}

/// Whose sessions to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionScope {
    User(UserId),
    Tenant(AdminId),
}

/// Everything an installation holds, to move it to another store (`pumppilot migrate`).
///
/// [`Store::export`](crate::Store::export) fills every part; [`Store::import`](crate::Store::import)
/// writes any part of one as it is, so a migration can go in pieces: `accounts` first (admins
/// before their users), then `tenants`, then the rest in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The master, admins and users; admins come before users.
    pub accounts: Vec<Account>,
    /// Each tenant's whole state: version, device link, live entries and wallets (the lease is
    /// not stored and reads as 0).
    pub tenants: Vec<Tenant>,
    /// Queue entries that ended (COMPLETED or CANCELLED).
    pub ended_entries: Vec<QueueEntry>,
    /// Oldest first.
    pub ledger: Vec<LedgerEntry>,
    pub usage: Vec<UsageRow>,
    /// Oldest first.
    pub audit: Vec<AuditEntry>,
    pub minute_requests: Vec<MinuteRequest>,
    /// Web and mobile sessions.
    pub sessions: Vec<Session>,
    pub devices: Vec<Device>,
    pub cards: Vec<Card>,
    /// The owners' terms, for the tenants that set them.
    pub terms: Vec<(AdminId, Terms)>,
    /// Oldest first.
    pub receipts: Vec<Receipt>,
    /// The reserved link counter floor of the devices that have signed a request (after
    /// `devices`): without it a copy would accept captured requests again.
    pub device_links: Vec<(DeviceId, u64)>,
    /// Firmware releases with their bytes.
    pub firmware: Vec<(FirmwareRelease, Vec<u8>)>,
    /// How each person who set one wants to hear: their phone (SMS, control by SMS), their
    /// phones' push tokens, language, what they muted, quiet hours.
    pub alert_profiles: Vec<crate::AlertProfile>,
    /// Every person's notifications (the bell, read or not), oldest first, each with its notice's
    /// key and its delivery still to come. Left out on purpose, as they matter for minutes or
    /// hours only: the sends counted against the rate limits, pushes waiting for their receipts,
    /// firmware download progress, failed sign-ins and card taps.
    pub notifications: Vec<crate::KeptNotification>,
}

impl Snapshot {
    /// How many records of each kind it holds, by the kind's name.
    pub fn counts(&self) -> [(&'static str, usize); 16] {
        [
            ("accounts", self.accounts.len()),
            ("tenants", self.tenants.len()),
            ("ended queue entries", self.ended_entries.len()),
            ("ledger entries", self.ledger.len()),
            ("usage rows", self.usage.len()),
            ("audit lines", self.audit.len()),
            ("minute requests", self.minute_requests.len()),
            ("sessions", self.sessions.len()),
            ("devices", self.devices.len()),
            ("cards", self.cards.len()),
            ("owners' terms", self.terms.len()),
            ("receipts", self.receipts.len()),
            ("device link counters", self.device_links.len()),
            ("firmware releases", self.firmware.len()),
            ("alert profiles", self.alert_profiles.len()),
            ("notifications", self.notifications.len()),
        ]
    }

    /// The number of records in it.
    pub fn len(&self) -> usize {
        self.counts().iter().map(|(_, n)| n).sum()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod link_counter_tests {
    use std::collections::BTreeSet;

    use super::LinkCounters;

    /// The rule written plainly: a counter is accepted when it is not 0, was never accepted, and is
    /// above the highest or at most `WINDOW` below it.
    fn model(seen: &BTreeSet<u64>, counter: u64) -> bool {
        let highest = seen.last().copied().unwrap_or(0);
        counter != 0 && !seen.contains(&counter) && (counter > highest || highest - counter <= LinkCounters::WINDOW)
    }

    #[test]
    fn the_window_agrees_with_the_plain_rule() {
        // Deterministic pseudo-random walks: mostly forward, some late, some replays, some jumps.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let (mut counters, mut seen) = (LinkCounters::default(), BTreeSet::new());
            for _ in 0..300 {
                let highest = counters.highest;
                let counter = match next() % 6 {
                    0 => highest + 1,
                    1 => highest + next() % 3 + 1,
                    2 => highest.saturating_sub(next() % 70),
                    3 => highest + next() % 130,
                    4 => next() % (highest + 2),
                    _ => highest.saturating_sub(LinkCounters::WINDOW) + next() % 2,
                };
                let expected = model(&seen, counter);
                match counters.accept(counter) {
                    Some(after) => {
                        assert!(expected, "{counter} accepted after {seen:?}");
                        seen.insert(counter);
                        counters = after;
                        assert_eq!(counters.highest, *seen.last().unwrap());
                    }
                    None => assert!(!expected, "{counter} refused after {seen:?}"),
                }
            }
        }
    }

    #[test]
    fn a_jump_of_exactly_the_window_keeps_the_old_highest() {
        let c = LinkCounters::default().accept(10).unwrap().accept(10 + LinkCounters::WINDOW).unwrap();
        assert!(c.accept(10).is_none(), "the old highest is remembered");
        assert!(c.accept(11).is_some());
        assert!(c.accept(9).is_none(), "older than the window");
        let far = c.accept(10 + 2 * LinkCounters::WINDOW + 1).unwrap();
        assert_eq!(far.below, 0);
    }
}
