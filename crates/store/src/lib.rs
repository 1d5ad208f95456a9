//! The storage contract: domain-level operations that every backend (SQLite, MongoDB) provides.
//!
//! A backend stores the collections of `PRODUCT.md` (admins and users as accounts, queues,
//! usage_history, minute_requests, mobile_sessions, devices, ledger, audit_logs) and must:
//! - commit a tenant transition (state + ledger + usage + ended entries + audit) atomically, and
//!   only when the stored version is the one the transition started from;
//! - reject, by its own index, a second active (RUNNING or HOLD) entry for one admin;
//! - keep usernames unique system-wide.
//!
//! `pumppilot-store-conformance` checks all of this against any backend.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use pumppilot_engine::{
    AdminId, DeviceId, EntryStatus, LedgerEntry, LedgerKind, Notice, ReceiptId, Records, RequestId, Tenant, Timestamp,
    UsageRow, UserId,
};

mod alerts;
mod group;
mod types;
pub use alerts::*;
pub use group::Group;
pub use types::*;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("username is taken")]
    UsernameTaken,
    #[error("the tenant changed since it was read")]
    VersionConflict,
    #[error("the minute request was already decided")]
    AlreadyDecided,
    /// A change to a wallet with this key was already made in this tenant (see
    /// [`LedgerEntry::once_key`]), a device registered with it
    /// ([`AuditedWrite::CreateDevice`]), or the receipt a commit voids is void already
    /// ([`Commit::receipt`]); nothing of the second was written.
    #[error("a change with this key was already made")]
    AlreadyMade,
    /// The user already has a PENDING minute request (one may wait at a time).
    #[error("a minute request of this user is already waiting")]
    RequestPending,
    #[error("not found")]
    NotFound,
    /// Another account already has this phone number.
    #[error("phone number is taken")]
    PhoneTaken,
    /// The outbox item is no longer claimed by this sender (its claim ran out and another took it).
    #[error("the outbox item is not claimed by this sender")]
    ClaimLost,
    /// A rule the store enforces itself (for example one active entry per admin) was broken.
    #[error("the store refused an invalid change: {0}")]
    Invariant(String),
    /// The store could not be reached or failed; nothing was changed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// What moved in a store shared by several servers, as its change feed tells every one of them
/// (see [`Store::changes`]). A server drops or refreshes what it keeps in memory accordingly.
///
/// A change says what its write changed and nothing more (a MongoDB change stream's update event
/// carries the fields it set and removed, not the document: looking the document up for every
/// event would cost the store one read per event per server). A field a write left as it was is
/// `None` or `Unchanged` here, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A tenant's stored state moved: its version (`Some` when it moved: a commit), its device's
    /// last poll (`Some` when it moved: telemetry or a presence flushed by any server), which
    /// server vouches for that device ([`Store::record_presence`]), and whether it has a run
    /// ([`Store::tenants_with_runs`]; `Some` when the write set it, `Some(true)` for a whole
    /// document from before the field, so that no server misses a run whose deadlines it must
    /// fire).
    ///
    /// A commit also carries the state it committed, whole (`state`, its version the new one), so
    /// a server that keeps the tenant takes it from the feed instead of reading the tenant again:
    /// a farmer's Start reaches the device's server without a read on its way. `None` for any
    /// other write, and for a store that does not send it (the server then reads the tenant).
    Tenant {
        admin: AdminId,
        version: Option<u64>,
        last_poll_at: Option<Timestamp>,
        presence: PresenceNews,
        has_run: Option<bool>,
        state: Option<Box<Tenant>>,
    },
    /// A server's heartbeat ([`Store::heartbeat`]): every device present at `server` has polled
    /// it at or after `polled_since`. It comes in the feed's order with the presences it vouches
    /// for, so a device let go before this beat is never vouched for by it.
    Beat { server: String, polled_since: Timestamp },
    /// A device was added, its key set or rotated, or it was retired (`key`), or it signed a
    /// request (`signs`: its link counter was reserved; from then on an unsigned one is refused,
    /// at every server). Its telemetry moving is no change: nobody keeps it.
    Device { id: DeviceId, key: KeyNews, signs: bool },
    /// A firmware release was published or its rollout changed.
    Firmware,
    /// A session changed (revoked, rotated, deleted).
    Session { id: SessionId },
    /// An account changed (suspended, renamed, its wallet moved, deleted).
    Account { id: UserId },
    /// Nothing changed, and the feed is known to be live at this moment (a heartbeat).
    Live,
    /// The feed may have missed changes (it was restarted without a place to resume from): forget
    /// everything kept in memory.
    Reset,
}

/// What a [`Change::Tenant`] says of the device present for the tenant ([`Store::record_presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceNews {
    /// The write left it as it was.
    Unchanged,
    /// No device of the tenant is present at any server now.
    Gone,
    /// A device of the tenant is present at a server. A part that is `None` is as it was: MongoDB
    /// may tell a sub-document's change by its changed fields alone (`presence.server` when the
    /// same device moved to another server).
    Present { device: Option<DeviceId>, server: Option<String> },
}

/// What a [`Change::Device`] says of the device's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyNews {
    /// The write left it as it was.
    Unchanged,
    /// A device of `admin` answers to this key (a device added).
    Added { admin: AdminId, key_hash: Vec<u8> },
    /// The device answers to this key now (set or rotated; a device stays with its tenant).
    Rotated { key_hash: Vec<u8> },
    /// The device answers to no key (retired).
    Retired,
}

/// Who acts on a card tap at a pump (see [`Store::claim_tap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapClaim {
    /// This caller acts on the tap, then records its answer ([`Store::answer_tap`]).
    Act,
    /// The same card tapped at the same pump within the window: its answer (JSON), once recorded.
    Repeat(Option<String>),
}

/// A device a server vouches for: it is the tenant's controller and polls that server (see
/// [`Store::record_presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub admin: AdminId,
    pub device: DeviceId,
    pub server: String,
}

/// What a tenant's own record says of its device and grid (see [`Store::pump_links`]): its
/// controller, the last poll written (a device present at a server polls it later: that server's
/// heartbeats vouch for it, [`Store::record_presence`]), whether the grid was down at the last
/// report, since when it has been up, and since when the controller has said it holds no command
/// although told ON ([`pumppilot_engine::DeviceLink::without_command_since`]), as of the tenant's
/// `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpLink {
    pub admin: AdminId,
    pub version: u64,
    pub controller: Option<DeviceId>,
    pub last_poll_at: Option<Timestamp>,
    pub load_shedding: bool,
    pub grid_up_since: Option<Timestamp>,
    pub without_command_since: Option<Timestamp>,
}

impl PumpLink {
    /// What a tenant's record says of its device and grid when it holds `tenant`.
    pub fn of(tenant: &Tenant) -> PumpLink {
        PumpLink {
            admin: tenant.admin_id,
            version: tenant.version,
            controller: tenant.controller,
            last_poll_at: tenant.device.last_poll_at,
            load_shedding: tenant.device.load_shedding,
            grid_up_since: tenant.motor.grid_up_since,
            without_command_since: tenant.device.without_command_since,
        }
    }
}

/// A device's key hash with the device and its tenant (see [`Store::device_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    pub device: DeviceId,
    pub admin: AdminId,
    pub key_hash: Vec<u8>,
}

/// The firmware a device's stored report names, with the device and its tenant (see
/// [`Store::reported_firmware`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedFirmware {
    pub device: DeviceId,
    pub admin: AdminId,
    /// `None` before the device's first report, or when its reports name none.
    pub version: Option<String>,
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// How often a live change feed says so when nothing changes (see [`Store::changes`]).
pub const FEED_HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(250);

/// One tenant transition to write atomically.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The new state. Its `version` is the version it was read at; the store writes `version + 1`
    /// and fails with [`StoreError::VersionConflict`] when the stored version differs.
    pub tenant: &'a Tenant,
    pub records: &'a Records,
    pub audit: &'a [AuditEntry],
    /// A minute request decided in the same write (approve); fails with
    /// [`StoreError::AlreadyDecided`] unless it is still PENDING. Settles the owner's notice of
    /// the request ([`request_notice_key`]).
    pub decision: Option<&'a Decision>,
    /// An account suspended or unsuspended in the same write.
    pub suspension: Option<(UserId, bool)>,
    /// The receipt of a recharge written in the same write; or, with its `void` set, the stored
    /// receipt voided in it (its minutes taken back by the commit's correction that names it).
    /// Voiding is once per receipt: refused [`StoreError::AlreadyMade`] when the stored receipt is
    /// void already, [`StoreError::NotFound`] when the tenant has no such receipt (of that farmer
    /// and those minutes); nothing of the commit is written then.
    pub receipt: Option<&'a Receipt>,
}

/// A [`Commit`] that owns its parts, for a backend that moves the write to another thread or
/// runs it again (a retried transaction).
#[derive(Debug, Clone)]
pub struct OwnedCommit {
    pub tenant: Tenant,
    pub records: Records,
    pub audit: Vec<AuditEntry>,
    pub decision: Option<Decision>,
    pub suspension: Option<(UserId, bool)>,
    pub receipt: Option<Receipt>,
}

impl From<Commit<'_>> for OwnedCommit {
    fn from(commit: Commit<'_>) -> Self {
        OwnedCommit {
            tenant: commit.tenant.clone(),
            records: commit.records.clone(),
            audit: commit.audit.to_vec(),
            decision: commit.decision.cloned(),
            suspension: commit.suspension,
            receipt: commit.receipt.cloned(),
        }
    }
}

/// An enum a backend keeps under its store name (written with its `as_str`, read back with this).
pub trait StoreName: Sized {
    /// The value of a store name, if it is one.
    fn from_store_name(name: &str) -> Option<Self>;
}

macro_rules! store_name {
    ($($ty:ty),*) => {$(
        impl StoreName for $ty {
            fn from_store_name(name: &str) -> Option<Self> {
                <$ty>::parse(name)
            }
        }
    )*};
}

store_name!(
    pumppilot_engine::EntryStatus,
    pumppilot_engine::EndReason,
    pumppilot_engine::HoldReason,
    pumppilot_engine::LedgerKind,
    pumppilot_engine::NoticeKind,
    pumppilot_engine::RejectReason,
    Channel,
    Role,
    RequestStatus
);

impl Commit<'_> {
    /// Refuses, before anything is written, a commit whose parts do not belong together: entries
    /// of another tenant or twice in one commit, an active entry that is not RUNNING or HOLD, a
    /// waiting one that is not WAITING, an ended one that is live, books of another tenant, or
    /// wallets that are not the balances the ledger leaves behind. Every backend calls it first.
    pub fn check(&self) -> StoreResult<()> {
        let invariant = |message: String| Err(StoreError::Invariant(message));
        let tenant = self.tenant;
        let admin = tenant.admin_id;
        let mut seen = HashSet::new();
        for entry in self.records.ended.iter().chain(tenant.active.as_deref()).chain(&tenant.waiting) {
            if entry.admin_id != admin {
                return invariant(format!("queue entry {} belongs to another tenant", entry.id));
            }
            if !seen.insert(entry.id) {
                return invariant(format!("queue entry {} appears twice in one commit", entry.id));
            }
        }
        if let Some(active) =
            tenant.active.as_ref().filter(|e| !matches!(e.status, EntryStatus::Running | EntryStatus::Hold))
        {
            return invariant(format!("the active entry {} is {}", active.id, active.status.as_str()));
        }
        if let Some(entry) = tenant.waiting.iter().find(|e| e.status != EntryStatus::Waiting) {
            return invariant(format!("the waiting entry {} is {}", entry.id, entry.status.as_str()));
        }
        if let Some(entry) = self.records.ended.iter().find(|e| e.status.is_live()) {
            return invariant(format!("the ended entry {} is {}", entry.id, entry.status.as_str()));
        }
        if self.records.ledger.iter().any(|e| e.admin_id != admin)
            || self.records.usage.iter().any(|u| u.admin_id != admin)
        {
            return invariant("a ledger entry or usage row belongs to another tenant".to_owned());
        }
        // The wallets the state carries are the balances the ledger leaves behind.
        let mut last_balance = BTreeMap::new();
        for entry in &self.records.ledger {
            last_balance.insert(entry.user_id, entry.balance_after);
        }
        if let Some((user, balance)) = last_balance.iter().find(|(user, balance)| tenant.wallet(**user) != **balance) {
            return invariant(format!("the ledger leaves user {user} at {balance} s but the state says otherwise"));
        }
        if self.records.notices.iter().any(|n| n.admin_id != admin) {
            return invariant("a notice belongs to another tenant".to_owned());
        }
        if self.decision.is_some_and(|d| d.admin_id != admin) {
            return invariant("the decided minute request belongs to another tenant".to_owned());
        }
        if let Some(receipt) = self.receipt {
            if receipt.admin_id != admin {
                return invariant("the receipt belongs to another tenant".to_owned());
            }
            if receipt.minutes <= 0 || receipt.cash_taka < 0 {
                return invariant(format!(
                    "the receipt {} is for {} min and {} taka",
                    receipt.id, receipt.minutes, receipt.cash_taka
                ));
            }
            if receipt.void.is_none()
                && !self.records.ledger.iter().any(|entry| entry.user_id == receipt.user_id && entry.delta_seconds > 0)
            {
                return invariant(format!("the receipt {} goes with no credit to its farmer", receipt.id));
            }
            // A receipt voided goes with the correction that takes its minutes back.
            let taken_back = |entry: &LedgerEntry| {
                entry.user_id == receipt.user_id
                    && entry.kind == LedgerKind::Correction
                    && entry.receipt_id == Some(receipt.id)
                    && receipt.minutes.checked_mul(-60) == Some(entry.delta_seconds)
            };
            if receipt.void.is_some() && !self.records.ledger.iter().any(taken_back) {
                return invariant(format!("the receipt {} is voided without taking its minutes back", receipt.id));
            }
        }
        Ok(())
    }
}

/// The storage backend. Every method is one atomic operation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the store is reachable.
    async fn ping(&self) -> StoreResult<()>;
    /// Answers when the store can commit a write now (a disk that is full or read-only fails
    /// here while reads still work); writes nothing a reader would see.
    async fn probe_write(&self) -> StoreResult<()>;

    // --- accounts ---
    /// Creates an account; for an admin also its tenant (version 0). Usernames are unique.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn account(&self, id: UserId) -> StoreResult<Option<Account>>;
    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>>;
    /// Accounts of one role, optionally of one tenant, oldest first.
    async fn accounts(&self, role: Role, admin: Option<AdminId>) -> StoreResult<Vec<Account>>;
    /// One page of pump owners (admins, suspended or not) in username order, each with their
    /// farmer count, and how many owners the query's prefix matches: work in proportion to the
    /// page, never to every owner's accounts (the usernames are read through an index by role).
    async fn owner_page(&self, query: &OwnerQuery) -> StoreResult<OwnerPage>;
    /// How many farmers (users) each of these tenants has, in the order asked (0 for a tenant
    /// with none, or no such tenant), counted in the store without reading the farmers.
    async fn farmer_counts(&self, admins: &[AdminId]) -> StoreResult<Vec<u64>>;
    /// Every pump's owners and farmers, and the time charged and the cash taken since `since`
    /// (`since` inclusive, as [`Store::usage`] and [`Store::receipts`] count it from `from`; a
    /// void receipt counts for none), over every tenant: a few counts and sums in the store, never
    /// a read per owner.
    async fn fleet_totals(&self, since: Timestamp) -> StoreResult<FleetTotals>;
    /// Sets the suspended flag of an account that no engine state depends on (the master).
    async fn set_suspended(&self, id: UserId, suspended: bool) -> StoreResult<()>;
    /// Renames an account and/or gives it a new password, with its audit line, in one write; a
    /// new password also revokes every session of the account but `change.keep_session` (their
    /// ids are returned), and the push tokens they registered leave with them, as
    /// [`Store::revoke_session`] takes them. [`StoreError::NotFound`] when the account does not
    /// have `change.role` in `change.admin_id`.
    async fn change_account(&self, change: &AccountChange, audit: &AuditEntry) -> StoreResult<Vec<SessionId>>;

    // --- tenants ---
    /// Every tenant's admin id.
    async fn tenant_ids(&self) -> StoreResult<Vec<AdminId>>;
    /// The tenant's runtime state: device link, live entries and its users' wallets.
    async fn load_tenant(&self, admin: AdminId, lease_ms: i64) -> StoreResult<Option<Tenant>>;
    /// Every tenant's runtime state (or only those `wanted` names), each as
    /// [`Store::load_tenant`] reads it, for a server that starts or takes over its share: a store
    /// may read them together, and reads alone a tenant it could not read whole that way
    /// (committed to meanwhile). A tenant not wanted is never held in memory, not even while the
    /// others are read (a server that owns a seventh of 100,000 tenants must not hold all of them
    /// for a moment: the allocator keeps what they took).
    async fn load_tenants(&self, lease_ms: i64, wanted: Option<&HashSet<AdminId>>) -> StoreResult<Vec<Tenant>>;
    /// Every tenant that has a run (a RUNNING or HOLD entry), in no order: the only tenants whose
    /// state time alone changes (`Tenant::next_deadline`), so the only ones the server owning a
    /// tenant's timer must hold in memory (a server taking over its share reads these alone).
    async fn tenants_with_runs(&self) -> StoreResult<Vec<AdminId>>;
    /// What every tenant's own record says of its device and grid ([`PumpLink`]), or only those
    /// `wanted` (a tenant not stored is left out), in no order, read together without the
    /// tenants' entries and wallets (for the alerts watch, which must not hold every tenant it
    /// watches in memory, and on a shared store reads them all once, then only those the change
    /// feed did not tell it of).
    async fn pump_links(&self, wanted: Option<&HashSet<AdminId>>) -> StoreResult<Vec<PumpLink>>;
    /// Writes one transition; see [`Commit`].
    async fn commit(&self, commit: Commit<'_>) -> StoreResult<()>;
    /// The owner's terms for a tenant ([`Terms::default`] until set).
    async fn terms(&self, admin: AdminId) -> StoreResult<Terms>;
    /// Sets a tenant's terms and writes its audit line in one write ([`StoreError::NotFound`]
    /// when there is no such tenant; nothing is written then).
    async fn set_terms(&self, admin: AdminId, terms: &Terms, audit: &AuditEntry) -> StoreResult<()>;

    // --- devices ---
    async fn create_device(&self, device: &Device) -> StoreResult<()>;
    /// Devices of one tenant, oldest first.
    async fn devices(&self, admin: AdminId) -> StoreResult<Vec<Device>>;
    /// The device a tenant's registration with `once_key` made, if one did and it is not retired
    /// ([`AuditedWrite::CreateDevice`]).
    async fn device_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<Device>>;
    /// The firmware every device's stored report names, with its tenant, in no order: the fleet's
    /// count by release reads three fields of each device, not whole devices (100,000 of them).
    async fn reported_firmware(&self) -> StoreResult<Vec<ReportedFirmware>>;
    /// Every device's key hash, with the device and its tenant, in no order: what a server keeps in
    /// memory to know a device by its key (read without the devices' names and telemetry: 100,000
    /// devices read whole took more than 100 MB a server, which the allocator kept).
    async fn device_keys(&self) -> StoreResult<Vec<DeviceKey>>;
    /// Writes the latest telemetry of devices (batched; last-seen times only move forward).
    async fn record_telemetry(&self, batch: &[Telemetry]) -> StoreResult<()>;
    /// Moves the tenants' last poll forward for these polls (tenant, device, when) without writing
    /// the devices' telemetry: the lease of a quiet device, whose report did not change, kept as
    /// [`Store::record_telemetry`] keeps it (only the controller's, or any device's before there is
    /// one; never backwards; an unknown device moves nothing).
    async fn record_last_polls(&self, polls: &[(AdminId, DeviceId, Timestamp)]) -> StoreResult<()>;
    /// Replaces a device's key hash (rotation).
    async fn set_device_key(&self, admin: AdminId, device: DeviceId, key_hash: &[u8]) -> StoreResult<()>;
    /// Reserves a block of a device's link counters for one server, in one atomic conditional
    /// write: the stored floor `f` (every counter at or below it may have been accepted by some
    /// server) moves to `max(f, at_least - 1) + block`, and the window `(f, that]` is the caller's
    /// alone: it accepts counters inside it from memory, each once, and no other server, nor this
    /// one after a restart, is ever given any of them again. [`StoreError::NotFound`] when the
    /// tenant has no such device. `block` is at least 1. The device's stored report is read with
    /// the floor ([`Reserved::stored`]).
    async fn reserve_device_counters(
        &self,
        admin: AdminId,
        device: DeviceId,
        at_least: u64,
        block: u64,
    ) -> StoreResult<Reserved>;
    /// The reserved floor of each device that has signed a request (of one tenant, or of all): no
    /// counter at or below it is accepted again.
    async fn device_counters(&self, admin: Option<AdminId>) -> StoreResult<Vec<(DeviceId, u64)>>;
    /// Retires a device of a tenant: it and its key are gone ([`StoreError::NotFound`] when the
    /// tenant has no such device). The tenant's controller is the engine's, changed by a commit.
    async fn delete_device(&self, admin: AdminId, device: DeviceId) -> StoreResult<()>;

    // --- firmware ---
    /// Keeps a firmware image (its rollout starts at nobody). A version published already is
    /// [`StoreError::Invariant`]; the bytes are `release.size` long.
    async fn put_firmware(&self, release: &FirmwareRelease, bytes: &[u8]) -> StoreResult<()>;
    /// Every release, without bytes, newest first.
    async fn firmware_releases(&self) -> StoreResult<Vec<FirmwareRelease>>;
    /// The bytes of a release, or `None` for no such version.
    async fn firmware_bytes(&self, version: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Sets a release's rollout ([`StoreError::NotFound`] for no such version).
    async fn set_firmware_rollout(&self, version: &str, rollout: Rollout) -> StoreResult<()>;
    /// Notes how far a device has downloaded an image, for every server to show its owner. A
    /// device has one record: for the version it holds, `received` and `at` only move forward
    /// (two servers serving one download write in either order); another version replaces it,
    /// unless the record is newer (`at` later) than the write.
    async fn record_firmware_download(&self, download: &FirmwareDownload) -> StoreResult<()>;
    /// The download records of a tenant's devices, in no order.
    async fn firmware_downloads(&self, admin: AdminId) -> StoreResult<Vec<FirmwareDownload>>;
    /// Deletes the download records last written before `before` (finished or abandoned).
    /// Returns how many were deleted.
    async fn purge_firmware_downloads(&self, before: Timestamp) -> StoreResult<u64>;

    // --- cards ---
    /// Binds a card to a user of its tenant; a card already bound in that tenant moves to the
    /// new user. The user must be an account of the tenant (else [`StoreError::NotFound`]).
    async fn bind_card(&self, card: &Card) -> StoreResult<()>;
    /// Unbinds a card of a tenant ([`StoreError::NotFound`] when it is not bound there).
    async fn unbind_card(&self, admin: AdminId, uid: &str) -> StoreResult<()>;
    /// The card of a tenant with this UID.
    async fn card(&self, admin: AdminId, uid: &str) -> StoreResult<Option<Card>>;
    /// The cards of a tenant, oldest binding first.
    async fn cards(&self, admin: AdminId) -> StoreResult<Vec<Card>>;

    // --- books ---
    /// A user's ledger, newest first.
    async fn ledger(&self, user: UserId, limit: usize) -> StoreResult<Vec<LedgerEntry>>;
    /// The ledger entry a tenant's change with `once_key` wrote, if one did. A commit with a
    /// ledger entry whose `once_key` the tenant already has fails with [`StoreError::AlreadyMade`].
    async fn ledger_entry_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<LedgerEntry>>;
    /// Usage rows of a tenant (or one user of it) that ended in `[from, to)`, newest first.
    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageRow>>;
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// A receipt of a tenant.
    async fn receipt(&self, admin: AdminId, id: ReceiptId) -> StoreResult<Option<Receipt>>;
    /// Receipts of a tenant (or one user of it) written in `[from, to)`, newest first, void ones
    /// too (marked so).
    async fn receipts(&self, query: &ReceiptQuery) -> StoreResult<Vec<Receipt>>;
    /// `write` and its audit `entry` in one atomic write: if either is refused (or the store
    /// fails), neither is stored. Each write keeps the rules of its own method.
    async fn write_audited(&self, write: &AuditedWrite, entry: &AuditEntry) -> StoreResult<()>;
    /// Audit entries of a tenant (or all, for `None`), newest first.
    async fn audit(&self, admin: Option<AdminId>, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// A page of a tenant's audit lines that match `query` (over the whole log), newest first.
    async fn audit_lines(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    // --- minute requests ---
    /// Stores a new request. A user has at most one PENDING request: another PENDING one is refused
    /// with [`StoreError::RequestPending`], also when two arrive at once. `notices` (the owner's
    /// `REQUEST_NEW`) are written in the same atomic write, as [`Store::add_notices`] writes them:
    /// a refused request stores none of them.
    async fn create_minute_request(&self, request: &MinuteRequest, notices: &[Notice]) -> StoreResult<()>;
    async fn minute_request(&self, id: RequestId) -> StoreResult<Option<MinuteRequest>>;
    /// Requests of a tenant, optionally filtered, newest first.
    async fn minute_requests(&self, query: &RequestQuery) -> StoreResult<Vec<MinuteRequest>>;
    /// Rejects a request (approval goes through [`Store::commit`] with its recharge). Every
    /// decision, whichever way it is written, settles the owner's notice of the request in the
    /// same write ([`request_notice_key`]).
    async fn decide_minute_request(&self, decision: &Decision) -> StoreResult<()>;

    // --- sessions (web_sessions and mobile_sessions) ---
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn session_by_access_hash(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<Session>>;
    /// The session whose access token hashes to `hash`, with its account and, for a farmer, the
    /// account of the farmer's pump owner: all that checking a signed-in request reads, at once
    /// (a farmer's first request on a server, a Start, waits for it). Each part is what
    /// [`Store::session_by_access_hash`] and [`Store::account`] answer; a store with round trips
    /// to spare reads them one by one, as here.
    async fn signed_in(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<SignedIn>> {
        let Some(session) = self.session_by_access_hash(kind, hash).await? else { return Ok(None) };
        let account = self.account(session.user_id).await?;
        let owner = match account.as_ref().filter(|a| a.role == Role::User).and_then(|a| a.admin_id) {
            Some(admin) => self.account(admin.0).await?,
            None => None,
        };
        Ok(Some(SignedIn { session, account, owner }))
    }
    /// The mobile session whose current or previous refresh token hashes to `hash`.
    async fn session_by_refresh_hash(&self, hash: &[u8]) -> StoreResult<Option<(Session, RefreshMatch)>>;
    /// Rotates a mobile session's tokens if its refresh hash is still `expected_refresh_hash`
    /// (else [`StoreError::VersionConflict`]); the old refresh hash becomes the previous one.
    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<()>;
    /// Revokes one session. The push tokens it registered ([`AlertProfile::push_sessions`]) leave
    /// their profiles in the same atomic write: once it returns, no profile lists a token of a
    /// session that ended.
    async fn revoke_session(&self, kind: SessionKind, id: SessionId, at: Timestamp) -> StoreResult<()>;
    /// Revokes every session of one user, or of every account of a tenant (admin included), with
    /// the push tokens they registered, as [`Store::revoke_session`] does.
    /// Returns the revoked sessions' ids.
    async fn revoke_sessions(&self, scope: SessionScope, at: Timestamp) -> StoreResult<Vec<SessionId>>;
    /// Deletes sessions that can never be used again: revoked before `before`, or whose last token
    /// (the refresh token for mobile, the access token for web) expired before `before`; the push
    /// tokens they registered leave with them, as [`Store::revoke_session`] takes them.
    /// Returns how many were deleted.
    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<usize>;

    // --- alerts ---
    /// Writes notices that come from outside a tenant commit (a device silent too long; a
    /// request made or rejected carries its notices in its own write): each becomes a notification and an outbox item in one write; a
    /// notice whose `key` is already stored is skipped. Returns the notifications written.
    async fn add_notices(&self, notices: &[Notice]) -> StoreResult<Vec<Notification>>;
    /// A person's notifications, newest first.
    async fn notifications(&self, user: UserId, limit: usize) -> StoreResult<Vec<Notification>>;
    /// How many of a person's notifications are unread.
    async fn unread_notifications(&self, user: UserId) -> StoreResult<u64>;
    /// Marks a person's notifications read: all of them (`None`) or those of `ids` that are
    /// theirs. Returns how many changed.
    async fn mark_notifications_read(&self, user: UserId, ids: Option<&[NotificationId]>) -> StoreResult<u64>;
    /// A person's alert profile, if they set one.
    async fn alert_profile(&self, user: UserId) -> StoreResult<Option<AlertProfile>>;
    /// The alert profile with this phone number (confirmed: a pending number is no one's yet).
    async fn alert_profile_by_phone(&self, phone: &str) -> StoreResult<Option<AlertProfile>>;
    /// The alert profiles waiting for this number to be confirmed (several people may have set
    /// the same number; the code its holder texts says which one it joins).
    async fn alert_profiles_pending_phone(&self, phone: &str) -> StoreResult<Vec<AlertProfile>>;
    /// Writes a person's alert profile, made from `read` (the profile stored when it was read;
    /// `None`: there was none), only while the stored one is still `read` in everything but the
    /// pending number's wrong-code count ([`AlertProfile::unchanged_since`]), compared in the same
    /// atomic write: else [`StoreError::VersionConflict`] and nothing is written (a number
    /// confirmed, a token registered or removed, a number set meanwhile), for the caller to read
    /// again. [`StoreError::PhoneTaken`] when another has the phone (the pending number is not
    /// checked). A push token another person has moves to this one in the same write: a phone's
    /// token belongs to one account at a time. Each token is written with its session from
    /// `profile.push_sessions`; a token whose session is no longer a live mobile session is not
    /// written. A pending number that is the one stored (the same number, code and time set, see
    /// [`PendingPhone::is_same_wait`]) keeps the larger of the stored and the written
    /// `wrong_codes`: a profile read before a wrong code was counted ([`Store::count_wrong_code`])
    /// and saved after takes no count back, and a number dropped meanwhile stays dropped. Any
    /// other pending number starts from the count written.
    async fn set_alert_profile(&self, profile: &AlertProfile, read: Option<&AlertProfile>) -> StoreResult<()>;
    /// Registers a phone's push token with `session`, a mobile session of `user`'s, in one atomic
    /// write that touches push tokens alone (a number confirmed or a wrong code counted meanwhile
    /// stays as it is): the token leaves whoever had it (another person, or another session of
    /// `user`'s), joins `user`'s profile last with `session` ([`AlertProfile::register_token`]),
    /// and the oldest of `user`'s tokens leave past `keep`. A person without a profile gets the
    /// empty one ([`AlertProfile::empty`]) with the token. [`StoreError::NotFound`], and nothing
    /// is written, unless `session` is live at `now` (stored, not revoked, and its last token,
    /// the refresh token, not expired: one expired but not purged yet is refused too): a session
    /// that ends while the token is registered gets none, as [`Store::set_alert_profile`] writes
    /// none for it.
    async fn register_push_token(
        &self,
        user: UserId,
        token: &str,
        session: SessionId,
        keep: usize,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Makes a person's pending number their phone, in one atomic write, if their pending number
    /// is still `pending` (the same number, code and time set) and not dropped (else
    /// [`StoreError::VersionConflict`]: it was replaced, confirmed or dropped meanwhile);
    /// [`StoreError::PhoneTaken`] when another person has that number, and nothing changes.
    async fn confirm_phone(&self, user: UserId, pending: &PendingPhone) -> StoreResult<()>;
    /// Counts one wrong code texted for a person's pending number, in one atomic write, if it is
    /// still `pending` (the same number, code and time set; else [`StoreError::VersionConflict`]).
    /// Returns the count after it: of callers counting at once (several servers), one alone gets
    /// [`PendingPhone::MAX_WRONG_CODES`], the count that drops the number.
    async fn count_wrong_code(&self, user: UserId, pending: &PendingPhone) -> StoreResult<u32>;
    /// Takes one push token out of a person's profile (the phone signed out, or Expo says it is
    /// gone). Whether it was theirs; another person's token is left as it is.
    async fn remove_push_token(&self, user: UserId, token: &str) -> StoreResult<bool>;
    /// Takes the inbound text (or the answer to a phone) `key` at `now` for `keep_ms`: true when
    /// this caller takes it, false when it was taken less than `keep_ms` before, by any server of
    /// the store, before a restart too. One atomic claim; claims over are deleted.
    async fn claim_text(&self, key: &str, now: Timestamp, keep_ms: i64) -> StoreResult<bool>;
    /// Gives a taken text up (it was not carried out): the next with its key is taken afresh.
    async fn release_text(&self, key: &str) -> StoreResult<()>;
    /// Claims up to `limit` outbox items due at `now` (oldest first) for `sender` until
    /// `until`: items neither delivered nor given up, not claimed by a sender whose claim still
    /// runs. Each item is claimed by one sender at a time, also across servers on one store.
    async fn claim_outbox(
        &self,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Records what became of an item `sender` claimed ([`StoreError::ClaimLost`] when it no
    /// longer holds the claim).
    async fn finish_outbox(&self, id: NotificationId, sender: &str, delivery: &Delivery) -> StoreResult<()>;
    /// A person's outbox items still to deliver (neither delivered nor given up) whose
    /// notifications are from `since` on, oldest notification first, whatever their due time and
    /// whoever has claimed them: what is still to tell them (a hold whose resume is waiting too).
    async fn outbox_of(&self, user: UserId, since: Timestamp) -> StoreResult<Vec<OutboxItem>>;
    /// Claims one outbox item for `sender` until `until`, whatever its due time: `Some` when it is
    /// still to deliver and no other sender's claim runs at `now` (a claim of `sender`'s own is
    /// renewed), `None` when it was delivered, given up or is gone, and
    /// [`StoreError::ClaimLost`] while another sender's claim on it runs (it is being sent).
    async fn claim_outbox_item(
        &self,
        id: NotificationId,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<OutboxItem>>;
    /// Counts one send in every window of `windows` at `now` if each has room for it, in one
    /// atomic write (several servers on one store keep one limit); when one is full nothing is
    /// counted and [`Admission::Full`] says when all have room again.
    async fn admit_send(&self, windows: &[SendWindow], now: Timestamp) -> StoreResult<Admission>;
    /// Deletes notifications read before `read_before` and every one from before `all_before`
    /// (with their outbox items and keys). Returns how many were deleted.
    async fn purge_notifications(&self, read_before: Timestamp, all_before: Timestamp) -> StoreResult<u64>;
    /// Keeps pushes Expo accepted until their receipts are read (a ticket id stored already is
    /// left as it is).
    async fn add_push_tickets(&self, tickets: &[PushTicket]) -> StoreResult<()>;
    /// Claims up to `limit` tickets whose receipts are due at `now` (`ask_at` at or before it,
    /// not expired), oldest `ask_at` first, by moving their `ask_at` to `until`: a sender that
    /// dies holding them leaves them to any sender (another server, or this one restarted) once
    /// `until` has passed, and two senders claiming at once get different tickets.
    async fn claim_push_tickets(&self, now: Timestamp, until: Timestamp, limit: usize) -> StoreResult<Vec<PushTicket>>;
    /// After a read of receipts: the tickets `read` are deleted (their receipts are known) and
    /// those `again` asked for at `ask_at`. Ids not stored are skipped.
    async fn settle_push_tickets(&self, read: &[String], again: &[String], ask_at: Timestamp) -> StoreResult<()>;
    /// Deletes the tickets expired at `now`. Returns how many were deleted.
    async fn purge_push_tickets(&self, now: Timestamp) -> StoreResult<u64>;

    // --- several servers on one store ---
    /// The feed of changes made by any server, live or not, for a store that several servers may
    /// share; `None` for a store of one process (SQLite: a lock file refuses a second server),
    /// where nothing changes behind the server's back. The feed sends [`Change::Live`] at least
    /// every [`FEED_HEARTBEAT`] while it is live, and [`Change::Reset`] first and after any gap.
    /// It ends when the receiver is dropped.
    fn changes(&self) -> Option<tokio::sync::mpsc::Receiver<Change>> {
        None
    }

    /// Notes that server `server` is alive at `now` (for `ttl_ms`), and answers the servers alive
    /// at `now`, this one included: each tenant's timer belongs to one of them. The beat also
    /// vouches that every device present at `server` ([`Store::record_presence`]) polled it at or
    /// after `polled_since` (the feed tells it: [`Change::Beat`]). A store of one process has only
    /// its own server (this default).
    async fn heartbeat(
        &self,
        server: &str,
        _now: Timestamp,
        _ttl_ms: i64,
        _polled_since: Timestamp,
    ) -> StoreResult<Vec<String>> {
        Ok(vec![server.to_owned()])
    }

    /// Which controllers a server of a shared store vouches for, instead of writing each quiet
    /// device's last poll every few seconds. `joined` (tenant, device, when) polled `server`:
    /// from now on the tenant names the device and the server as its presence, and the server's
    /// heartbeats vouch for it ([`Store::heartbeat`]'s `polled_since`). `left` fell silent there
    /// (when each polled last): the tenant's presence is cleared only if it still names this
    /// server and device (the device may have moved to another server since). Both move the
    /// tenant's last poll forward as [`Store::record_last_polls`] does; only the controller's (or,
    /// before there is one, any device's) poll joins, and an unknown device changes nothing. No
    /// version moves.
    async fn record_presence(
        &self,
        server: &str,
        joined: &[(AdminId, DeviceId, Timestamp)],
        left: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()>;
    /// Devices arriving at `server`: their telemetry written as [`Store::record_telemetry`] writes
    /// it, and then `joining` (devices of the batch) joined to `server` as
    /// [`Store::record_presence`] joins them. The tenants' last polls end where those two calls
    /// leave them; a store where each write costs much moves a joining tenant's last poll with
    /// its join, once, instead of once with the telemetry and again with the join (a fleet coming
    /// online writes each tenant once, not twice). An error may leave part of it written; the
    /// caller writes it all again (each part is idempotent).
    async fn record_arrivals(
        &self,
        server: &str,
        batch: &[Telemetry],
        joining: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        if !batch.is_empty() {
            self.record_telemetry(batch).await?;
        }
        self.record_presence(server, joining, &[]).await
    }
    /// Every tenant's presence: its tenant, device and server, in no order.
    async fn presences(&self) -> StoreResult<Vec<Presence>>;

    /// Counts one failed sign-in under each of `keys` at `now`, for every server alike: a key's
    /// count starts again at 1 once `window_ms` passed since its window began. A store of one
    /// process need not (its server counts in memory): this default keeps nothing.
    async fn add_login_failure(&self, _keys: &[String], _now: Timestamp, _window_ms: i64) -> StoreResult<()> {
        Ok(())
    }
    /// For each of `keys` with failures in a window that still holds at `now`: the key, when
    /// its window began and how many failed. The default (a store of one process) knows none.
    async fn login_failures(
        &self,
        _keys: &[String],
        _now: Timestamp,
        _window_ms: i64,
    ) -> StoreResult<Vec<(String, Timestamp, u32)>> {
        Ok(Vec::new())
    }

    /// Claims a tap of card `uid` at a tenant's pump at `now`, so that one server acts on it: a tap
    /// of the same card claimed within `window_ms` before is a [`TapClaim::Repeat`]. `uid` is any
    /// text naming the tap (a tap that names its id is claimed as `{device}#{id}`, for longer). A store of one
    /// process need not (its server remembers taps in memory): this default always says `Act`.
    async fn claim_tap(&self, _admin: AdminId, _uid: &str, _now: Timestamp, _window_ms: i64) -> StoreResult<TapClaim> {
        Ok(TapClaim::Act)
    }
    /// Records the answer (JSON) of a tap this caller claimed.
    async fn answer_tap(&self, _admin: AdminId, _uid: &str, _answer: &str) -> StoreResult<()> {
        Ok(())
    }
    /// Gives a claimed tap up (it was refused and changed nothing): the next tap is decided afresh.
    async fn release_tap(&self, _admin: AdminId, _uid: &str) -> StoreResult<()> {
        Ok(())
    }

    // --- moving an installation (`pumppilot migrate`); a wrapper store need not offer it ---
    /// Everything stored, as one [`Snapshot`].
    async fn export(&self) -> StoreResult<Snapshot> {
        Err(StoreError::Unavailable("this store cannot export".into()))
    }
    /// Writes records exactly as they are (versions, balances and ids kept, no rule applied) into a
    /// store being filled by a migration; see [`Snapshot`] for the order of parts.
    async fn import(&self, _part: &Snapshot) -> StoreResult<()> {
        Err(StoreError::Unavailable("this store cannot import".into()))
    }
    /// Deletes everything stored (for a migration told to replace what the target holds).
    async fn erase(&self) -> StoreResult<()> {
        Err(StoreError::Unavailable("this store cannot erase".into()))
    }
}
