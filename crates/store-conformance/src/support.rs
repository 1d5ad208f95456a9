//! What the stories share: fixed times, accounts, and a driver that applies engine events and
//! commits them the way the server does.

use pumppilot_engine::{
    AdminId, Credit, EntryStatus, Event, LedgerKind, Outcome, ReceiptId, Records, Tenant, Timestamp, UserId,
};
use pumppilot_store::{
    Account, AlertProfile, AuditEntry, Commit, Decision, Receipt, Role, Snapshot, Store, StoreResult,
};

/// The lease the stories load tenants with.
pub(crate) const LEASE_MS: i64 = 60_000;
/// 2026-01-01T00:00:00Z: the stories' clock starts here.
pub(crate) const T0: Timestamp = Timestamp(1_767_225_600_000);
pub(crate) const SECOND: i64 = 1_000;
pub(crate) const MINUTE: i64 = 60 * SECOND;
pub(crate) const DAY: i64 = 24 * 60 * MINUTE;

/// `T0` plus some seconds.
pub(crate) fn at(seconds: i64) -> Timestamp {
    T0 + seconds * SECOND
}

/// An account with a made-up password hash.
pub(crate) fn account(
    id: UserId,
    username: &str,
    role: Role,
    admin_id: Option<AdminId>,
    created_at: Timestamp,
) -> Account {
    Account {
        id,
        username: username.to_owned(),
        name: format!("{username} (name)"),
        role,
        admin_id,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${username}"),
        suspended: false,
        created_at,
    }
}

/// A new master's account.
pub(crate) fn master_account(username: &str, created_at: Timestamp) -> Account {
    account(UserId::new(), username, Role::Master, None, created_at)
}

/// A new admin's account (its admin id is its own id).
pub(crate) fn admin_account(username: &str, created_at: Timestamp) -> Account {
    let id = UserId::new();
    account(id, username, Role::Admin, Some(AdminId(id)), created_at)
}

/// A new user of `admin`.
pub(crate) fn user_account(admin: AdminId, username: &str, created_at: Timestamp) -> Account {
    account(UserId::new(), username, Role::User, Some(admin), created_at)
}

/// One admin and its users, all stored.
pub(crate) struct Tenancy {
    pub admin: AdminId,
    pub users: Vec<UserId>,
}

/// Stores an admin named `name` and `users` users named `name-1`, `name-2`, …
pub(crate) async fn tenancy(store: &dyn Store, name: &str, users: usize) -> Tenancy {
    let admin = admin_account(name, T0);
    store.create_account(&admin).await.expect("create admin");
    let admin = AdminId(admin.id);
    let mut ids = Vec::new();
    for n in 1..=users {
        let user = user_account(admin, &format!("{name}-{n}"), T0 + n as i64);
        store.create_account(&user).await.expect("create user");
        ids.push(user.id);
    }
    Tenancy { admin, users: ids }
}

/// A recharge by the admin.
pub(crate) fn recharge(admin: AdminId, user: UserId, seconds: i64) -> Event {
    credit(admin, user, seconds, LedgerKind::Recharge)
}

/// A change of a wallet by the admin.
pub(crate) fn credit(admin: AdminId, user: UserId, seconds: i64, kind: LedgerKind) -> Event {
    Event::Credit(Credit { note: format!("{seconds} s"), ..Credit::new(user, seconds, kind, admin.0) })
}

/// A device report with the grid up and the pump ready.
pub(crate) fn all_good() -> Event {
    Event::DeviceReport { load_shedding: false, ready: true, relay: false }
}

/// The tenant as a store must return it (the engine never keeps a wallet at zero).
pub(crate) fn as_stored(tenant: &Tenant) -> Tenant {
    assert!(tenant.wallets.values().all(|seconds| *seconds != 0), "the engine keeps no zero wallets");
    tenant.clone()
}

/// Loads a tenant that must exist.
pub(crate) async fn load(store: &dyn Store, admin: AdminId) -> Tenant {
    store.load_tenant(admin, LEASE_MS).await.expect("load tenant").expect("the tenant exists")
}

/// Applies engine events to one tenant and commits each, as the server does.
pub(crate) struct Driver<'a> {
    pub store: &'a dyn Store,
    pub tenant: Tenant,
    /// Every record committed so far, in order.
    pub committed: Records,
}

impl<'a> Driver<'a> {
    /// Starts from the stored state.
    pub async fn load(store: &'a dyn Store, admin: AdminId) -> Driver<'a> {
        Driver { store, tenant: load(store, admin).await, committed: Records::default() }
    }

    /// Applies one event at `now`, commits it and checks the store now holds the same state.
    pub async fn step(&mut self, event: Event, now: Timestamp) -> Outcome {
        let mut outcome = self.tenant.apply(event, now);
        // A run that is RUNNING but not yet charged waits for the device to hear of it: the
        // stories' device long-polls with unchanged inputs and hears at once.
        let untold =
            self.tenant.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_none());
        if untold {
            let d = self.tenant.device;
            let heard = Event::DeviceReport { load_shedding: d.load_shedding, ready: d.ready, relay: d.relay };
            outcome.records.extend(self.tenant.apply(heard, now).records);
        }
        self.commit(&outcome.records, &[], None, None).await.expect("commit");
        self.assert_stored().await;
        outcome
    }

    /// Commits the current state with `records`; on success the state's version moves on.
    pub async fn commit(
        &mut self,
        records: &Records,
        audit: &[AuditEntry],
        decision: Option<&Decision>,
        suspension: Option<(UserId, bool)>,
    ) -> StoreResult<()> {
        let commit = Commit { tenant: &self.tenant, records, audit, decision, suspension, receipt: None };
        self.store.commit(commit).await?;
        self.tenant.version += 1;
        self.committed.extend(records.clone());
        Ok(())
    }

    /// Recharges `user` with `seconds` at `now` and commits it with its receipt of `cash` taka,
    /// written by the owner, as the server does when cash is taken; the receipt.
    pub async fn recharge_with_receipt(&mut self, user: UserId, seconds: i64, cash: i64, now: Timestamp) -> Receipt {
        let admin = self.tenant.admin_id;
        let receipt = Receipt {
            id: ReceiptId::new(),
            admin_id: admin,
            user_id: user,
            at: now,
            minutes: seconds / 60,
            cash_taka: cash,
            recorded_by: admin.0,
            priced: false,
            void: None,
        };
        let records = self.tenant.apply(recharge(admin, user, seconds), now).records;
        let commit = Commit {
            tenant: &self.tenant,
            records: &records,
            audit: &[],
            decision: None,
            suspension: None,
            receipt: Some(&receipt),
        };
        self.store.commit(commit).await.expect("a recharge with its receipt");
        self.tenant.version += 1;
        self.committed.extend(records);
        receipt
    }

    /// The store holds exactly this driver's state.
    pub async fn assert_stored(&self) {
        let stored = load(self.store, self.tenant.admin_id).await;
        assert_eq!(stored, as_stored(&self.tenant), "the reloaded tenant differs from the committed one");
    }
}

/// Saves `profile` as made from the profile stored now (`Store::set_alert_profile` lands only on
/// the profile a save was made from): what a story sets up, with no write in between.
pub(crate) async fn save_profile(store: &dyn Store, profile: &AlertProfile) -> StoreResult<()> {
    let read = store.alert_profile(profile.user_id).await?;
    store.set_alert_profile(profile, read.as_ref()).await
}

/// Panics unless `$result` is an `Err` matching `$pattern` (a `StoreError` pattern).
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {:?}", stringify!($pattern), other),
        }
    };
}
pub(crate) use assert_err;

/// Erases the store (asserting that nothing is left) and imports `before` back in three parts, as
/// a migration does (the accounts, then the tenants, then the rest), and asserts that the export
/// reads `before` again.
pub(crate) async fn copy_back(store: &dyn Store, before: &Snapshot) {
    store.erase().await.unwrap();
    assert!(store.export().await.unwrap().is_empty(), "nothing is left");
    let accounts = Snapshot { accounts: before.accounts.clone(), ..Snapshot::default() };
    let tenants = Snapshot { tenants: before.tenants.clone(), ..Snapshot::default() };
    let rest = Snapshot { accounts: vec![], tenants: vec![], ..before.clone() };
    for part in [accounts, tenants, rest] {
        store.import(&part).await.unwrap();
    }
    assert_eq!(&store.export().await.unwrap(), before);
}
