//! Faults: when the store cannot be reached, every change answers 503 and changes nothing, the
//! device gets no ON command, and all is well again once the store is back; and a write that lands
//! between a profile's read and its save.

mod common;

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use common::{assert_error, spawn_app_with};
use pumppilot_engine::{AdminId, DeviceId, LedgerEntry, Notice, RequestId, Tenant, Timestamp, UsageRow, UserId};
use pumppilot_server::clock::Clock;
use pumppilot_store::{
    Account, AlertProfile, AuditEntry, AuditedWrite, Card, Commit, Decision, Delivery, Device, FirmwareRelease,
    MinuteRequest, Notification, NotificationId, OutboxItem, PendingPhone, RefreshMatch, RequestQuery, Reserved, Role,
    Rollout, Rotation, Session, SessionId, SessionKind, SessionScope, Store, StoreError, StoreResult, Telemetry,
    UsageQuery,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The real store (SQLite, or MongoDB with `PUMPPILOT_TEST_STORE=mongodb`) behind three switches:
/// `down` makes every call fail as if the disk were gone; `full` makes every write fail while
/// reads still work, as a full disk does; `swamped` makes the owners' page (and so their count)
/// never come, as from a store too busy to answer it.
/// And `meddles`: each save of an alert profile (the person's own, or their owner's enrolment of
/// their phone) first runs the next one queued, on the real store, as another request landing
/// between the save's read and its write would.
/// And `forgets_taps`: a card tap's claim is taken but its answer is not recorded, nor is the
/// claim given up, as from a store that falters between the claim and the record. With `feed`,
/// the store's change feed is passed on too: on MongoDB, the server is one of a fleet.
struct Unplugged {
    inner: Arc<dyn Store>,
    down: Arc<AtomicBool>,
    full: Arc<AtomicBool>,
    swamped: Arc<AtomicBool>,
    meddles: Meddles,
    forgets_taps: Arc<AtomicBool>,
    feed: bool,
}

/// Writes made by another hand, one before each save of an alert profile ([`Unplugged::meddle`]).
type Meddles = Arc<Mutex<VecDeque<Meddle>>>;
type Meddle = Box<dyn FnOnce(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

impl Unplugged {
    fn check(&self) -> StoreResult<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("unplugged by the test".into()))
        } else {
            Ok(())
        }
    }

    fn check_write(&self) -> StoreResult<()> {
        self.check()?;
        if self.full.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("disk full (the test)".into()))
        } else {
            Ok(())
        }
    }

    fn check_tap_record(&self) -> StoreResult<()> {
        self.check_write()?;
        if self.forgets_taps.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("the tap's record lost (the test)".into()))
        } else {
            Ok(())
        }
    }

    /// Runs the next write queued by another hand, if any, on the real store.
    async fn meddle(&self) {
        let meddle = self.meddles.lock().unwrap().pop_front();
        if let Some(meddle) = meddle {
            meddle(Arc::clone(&self.inner)).await;
        }
    }
}

#[async_trait]
impl Store for Unplugged {
    async fn ping(&self) -> StoreResult<()> {
        self.check()?;
        self.inner.ping().await
    }

    async fn probe_write(&self) -> StoreResult<()> {
        self.check_write()?;
        self.inner.probe_write().await
    }

    async fn change_account(
        &self,
        change: &pumppilot_store::AccountChange,
        audit: &AuditEntry,
    ) -> StoreResult<Vec<SessionId>> {
        self.check_write()?;
        self.inner.change_account(change, audit).await
    }

    async fn terms(&self, admin: AdminId) -> StoreResult<pumppilot_store::Terms> {
        self.check()?;
        self.inner.terms(admin).await
    }

    async fn set_terms(&self, admin: AdminId, terms: &pumppilot_store::Terms, audit: &AuditEntry) -> StoreResult<()> {
        self.check_write()?;
        self.inner.set_terms(admin, terms, audit).await
    }

    async fn receipt(
        &self,
        admin: AdminId,
        id: pumppilot_engine::ReceiptId,
    ) -> StoreResult<Option<pumppilot_store::Receipt>> {
        self.check()?;
        self.inner.receipt(admin, id).await
    }

    async fn receipts(&self, query: &pumppilot_store::ReceiptQuery) -> StoreResult<Vec<pumppilot_store::Receipt>> {
        self.check()?;
        self.inner.receipts(query).await
    }

    async fn delete_device(&self, admin: AdminId, device: DeviceId) -> StoreResult<()> {
        self.check_write()?;
        self.inner.delete_device(admin, device).await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        self.check_write()?;
        self.inner.create_account(account).await
    }

    async fn account(&self, id: UserId) -> StoreResult<Option<Account>> {
        self.check()?;
        self.inner.account(id).await
    }

    async fn account_by_username(&self, username: &str) -> StoreResult<Option<Account>> {
        self.check()?;
        self.inner.account_by_username(username).await
    }

    async fn accounts(&self, role: Role, admin: Option<AdminId>) -> StoreResult<Vec<Account>> {
        self.check()?;
        self.inner.accounts(role, admin).await
    }

    async fn owner_page(&self, query: &pumppilot_store::OwnerQuery) -> StoreResult<pumppilot_store::OwnerPage> {
        self.check()?;
        if self.swamped.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.owner_page(query).await
    }

    async fn farmer_counts(&self, admins: &[AdminId]) -> StoreResult<Vec<u64>> {
        self.check()?;
        self.inner.farmer_counts(admins).await
    }

    async fn fleet_totals(&self, since: Timestamp) -> StoreResult<pumppilot_store::FleetTotals> {
        self.check()?;
        self.inner.fleet_totals(since).await
    }

    async fn set_suspended(&self, id: UserId, suspended: bool) -> StoreResult<()> {
        self.check_write()?;
        self.inner.set_suspended(id, suspended).await
    }

    async fn tenant_ids(&self) -> StoreResult<Vec<AdminId>> {
        self.check()?;
        self.inner.tenant_ids().await
    }

    async fn load_tenant(&self, admin: AdminId, lease_ms: i64) -> StoreResult<Option<Tenant>> {
        self.check()?;
        self.inner.load_tenant(admin, lease_ms).await
    }

    async fn commit(&self, commit: Commit<'_>) -> StoreResult<()> {
        self.check_write()?;
        self.inner.commit(commit).await
    }

    async fn add_notices(&self, notices: &[Notice]) -> StoreResult<Vec<Notification>> {
        self.check_write()?;
        self.inner.add_notices(notices).await
    }

    async fn notifications(&self, user: UserId, limit: usize) -> StoreResult<Vec<Notification>> {
        self.check()?;
        self.inner.notifications(user, limit).await
    }

    async fn unread_notifications(&self, user: UserId) -> StoreResult<u64> {
        self.check()?;
        self.inner.unread_notifications(user).await
    }

    async fn mark_notifications_read(&self, user: UserId, ids: Option<&[NotificationId]>) -> StoreResult<u64> {
        self.check_write()?;
        self.inner.mark_notifications_read(user, ids).await
    }

    async fn alert_profile(&self, user: UserId) -> StoreResult<Option<AlertProfile>> {
        self.check()?;
        self.inner.alert_profile(user).await
    }

    async fn alert_profile_by_phone(&self, phone: &str) -> StoreResult<Option<AlertProfile>> {
        self.check()?;
        self.inner.alert_profile_by_phone(phone).await
    }

    async fn alert_profiles_pending_phone(&self, phone: &str) -> StoreResult<Vec<AlertProfile>> {
        self.check()?;
        self.inner.alert_profiles_pending_phone(phone).await
    }

    async fn set_alert_profile(&self, profile: &AlertProfile, read: Option<&AlertProfile>) -> StoreResult<()> {
        self.check_write()?;
        self.meddle().await;
        self.inner.set_alert_profile(profile, read).await
    }

    async fn register_push_token(
        &self,
        user: UserId,
        token: &str,
        session: SessionId,
        keep: usize,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.check_write()?;
        self.inner.register_push_token(user, token, session, keep, now).await
    }

    async fn confirm_phone(&self, user: UserId, pending: &PendingPhone) -> StoreResult<()> {
        self.check_write()?;
        self.inner.confirm_phone(user, pending).await
    }

    async fn count_wrong_code(&self, user: UserId, pending: &PendingPhone) -> StoreResult<u32> {
        self.check_write()?;
        self.inner.count_wrong_code(user, pending).await
    }

    async fn remove_push_token(&self, user: UserId, token: &str) -> StoreResult<bool> {
        self.check_write()?;
        self.inner.remove_push_token(user, token).await
    }

    async fn claim_text(&self, key: &str, now: Timestamp, keep_ms: i64) -> StoreResult<bool> {
        self.check_write()?;
        self.inner.claim_text(key, now, keep_ms).await
    }

    async fn release_text(&self, key: &str) -> StoreResult<()> {
        self.check_write()?;
        self.inner.release_text(key).await
    }

    async fn claim_outbox(
        &self,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.check_write()?;
        self.inner.claim_outbox(sender, now, until, limit).await
    }

    async fn finish_outbox(&self, id: NotificationId, sender: &str, delivery: &Delivery) -> StoreResult<()> {
        self.check_write()?;
        self.inner.finish_outbox(id, sender, delivery).await
    }

    async fn outbox_of(&self, user: UserId, since: Timestamp) -> StoreResult<Vec<OutboxItem>> {
        self.check()?;
        self.inner.outbox_of(user, since).await
    }

    async fn claim_outbox_item(
        &self,
        id: NotificationId,
        sender: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Option<OutboxItem>> {
        self.check_write()?;
        self.inner.claim_outbox_item(id, sender, now, until).await
    }

    async fn admit_send(
        &self,
        windows: &[pumppilot_store::SendWindow],
        now: Timestamp,
    ) -> StoreResult<pumppilot_store::Admission> {
        self.check_write()?;
        self.inner.admit_send(windows, now).await
    }

    async fn purge_notifications(&self, read_before: Timestamp, all_before: Timestamp) -> StoreResult<u64> {
        self.check_write()?;
        self.inner.purge_notifications(read_before, all_before).await
    }

    async fn add_push_tickets(&self, tickets: &[pumppilot_store::PushTicket]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.add_push_tickets(tickets).await
    }

    async fn claim_push_tickets(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<pumppilot_store::PushTicket>> {
        self.check_write()?;
        self.inner.claim_push_tickets(now, until, limit).await
    }

    async fn settle_push_tickets(&self, read: &[String], again: &[String], ask_at: Timestamp) -> StoreResult<()> {
        self.check_write()?;
        self.inner.settle_push_tickets(read, again, ask_at).await
    }

    async fn purge_push_tickets(&self, now: Timestamp) -> StoreResult<u64> {
        self.check_write()?;
        self.inner.purge_push_tickets(now).await
    }

    async fn record_firmware_download(&self, download: &pumppilot_store::FirmwareDownload) -> StoreResult<()> {
        self.check_write()?;
        self.inner.record_firmware_download(download).await
    }

    async fn firmware_downloads(&self, admin: AdminId) -> StoreResult<Vec<pumppilot_store::FirmwareDownload>> {
        self.check()?;
        self.inner.firmware_downloads(admin).await
    }

    async fn purge_firmware_downloads(&self, before: Timestamp) -> StoreResult<u64> {
        self.check_write()?;
        self.inner.purge_firmware_downloads(before).await
    }

    async fn create_device(&self, device: &Device) -> StoreResult<()> {
        self.check_write()?;
        self.inner.create_device(device).await
    }

    async fn devices(&self, admin: AdminId) -> StoreResult<Vec<Device>> {
        self.check()?;
        self.inner.devices(admin).await
    }

    async fn device_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<Device>> {
        self.check()?;
        self.inner.device_with_key(admin, once_key).await
    }

    async fn record_telemetry(&self, batch: &[Telemetry]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.record_telemetry(batch).await
    }

    async fn put_firmware(&self, release: &FirmwareRelease, bytes: &[u8]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.put_firmware(release, bytes).await
    }

    async fn firmware_releases(&self) -> StoreResult<Vec<FirmwareRelease>> {
        self.check()?;
        self.inner.firmware_releases().await
    }

    async fn firmware_bytes(&self, version: &str) -> StoreResult<Option<Vec<u8>>> {
        self.check()?;
        self.inner.firmware_bytes(version).await
    }

    async fn set_firmware_rollout(&self, version: &str, rollout: Rollout) -> StoreResult<()> {
        self.check_write()?;
        self.inner.set_firmware_rollout(version, rollout).await
    }

    async fn reserve_device_counters(
        &self,
        admin: AdminId,
        device: DeviceId,
        at_least: u64,
        block: u64,
    ) -> StoreResult<Reserved> {
        self.check_write()?;
        self.inner.reserve_device_counters(admin, device, at_least, block).await
    }

    async fn device_counters(&self, admin: Option<AdminId>) -> StoreResult<Vec<(DeviceId, u64)>> {
        self.check()?;
        self.inner.device_counters(admin).await
    }

    async fn record_last_polls(&self, polls: &[(AdminId, DeviceId, Timestamp)]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.record_last_polls(polls).await
    }

    async fn tenants_with_runs(&self) -> StoreResult<Vec<AdminId>> {
        self.check()?;
        self.inner.tenants_with_runs().await
    }

    async fn pump_links(
        &self,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<pumppilot_store::PumpLink>> {
        self.check()?;
        self.inner.pump_links(wanted).await
    }

    async fn device_keys(&self) -> StoreResult<Vec<pumppilot_store::DeviceKey>> {
        self.check()?;
        self.inner.device_keys().await
    }

    async fn reported_firmware(&self) -> StoreResult<Vec<pumppilot_store::ReportedFirmware>> {
        self.check()?;
        self.inner.reported_firmware().await
    }

    async fn load_tenants(
        &self,
        lease_ms: i64,
        wanted: Option<&std::collections::HashSet<AdminId>>,
    ) -> StoreResult<Vec<pumppilot_engine::Tenant>> {
        self.check()?;
        self.inner.load_tenants(lease_ms, wanted).await
    }

    async fn record_presence(
        &self,
        server: &str,
        joined: &[(AdminId, DeviceId, Timestamp)],
        left: &[(AdminId, DeviceId, Timestamp)],
    ) -> StoreResult<()> {
        self.check_write()?;
        self.inner.record_presence(server, joined, left).await
    }

    async fn presences(&self) -> StoreResult<Vec<pumppilot_store::Presence>> {
        self.check()?;
        self.inner.presences().await
    }

    async fn set_device_key(&self, admin: AdminId, device: DeviceId, key_hash: &[u8]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.set_device_key(admin, device, key_hash).await
    }

    async fn bind_card(&self, card: &Card) -> StoreResult<()> {
        self.check_write()?;
        self.inner.bind_card(card).await
    }

    async fn unbind_card(&self, admin: AdminId, uid: &str) -> StoreResult<()> {
        self.check_write()?;
        self.inner.unbind_card(admin, uid).await
    }

    async fn card(&self, admin: AdminId, uid: &str) -> StoreResult<Option<Card>> {
        self.check()?;
        self.inner.card(admin, uid).await
    }

    async fn cards(&self, admin: AdminId) -> StoreResult<Vec<Card>> {
        self.check()?;
        self.inner.cards(admin).await
    }

    async fn ledger(&self, user: UserId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        self.check()?;
        self.inner.ledger(user, limit).await
    }

    async fn ledger_entry_with_key(&self, admin: AdminId, once_key: &str) -> StoreResult<Option<LedgerEntry>> {
        self.check()?;
        self.inner.ledger_entry_with_key(admin, once_key).await
    }

    async fn usage(&self, query: &UsageQuery) -> StoreResult<Vec<UsageRow>> {
        self.check()?;
        self.inner.usage(query).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.check_write()?;
        self.inner.append_audit(entry).await
    }
    async fn write_audited(&self, write: &AuditedWrite, entry: &AuditEntry) -> StoreResult<()> {
        self.check_write()?;
        if matches!(write, AuditedWrite::SetAlertProfile { .. }) {
            self.meddle().await;
        }
        self.inner.write_audited(write, entry).await
    }

    async fn audit(&self, admin: Option<AdminId>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.check()?;
        self.inner.audit(admin, limit).await
    }

    async fn audit_lines(&self, query: &pumppilot_store::AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.check()?;
        self.inner.audit_lines(query).await
    }

    async fn create_minute_request(&self, request: &MinuteRequest, notices: &[Notice]) -> StoreResult<()> {
        self.check_write()?;
        self.inner.create_minute_request(request, notices).await
    }

    async fn minute_request(&self, id: RequestId) -> StoreResult<Option<MinuteRequest>> {
        self.check()?;
        self.inner.minute_request(id).await
    }

    async fn minute_requests(&self, query: &RequestQuery) -> StoreResult<Vec<MinuteRequest>> {
        self.check()?;
        self.inner.minute_requests(query).await
    }

    async fn decide_minute_request(&self, decision: &Decision) -> StoreResult<()> {
        self.check_write()?;
        self.inner.decide_minute_request(decision).await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        self.check_write()?;
        self.inner.create_session(session).await
    }

    async fn session_by_access_hash(&self, kind: SessionKind, hash: &[u8]) -> StoreResult<Option<Session>> {
        self.check()?;
        self.inner.session_by_access_hash(kind, hash).await
    }

    async fn session_by_refresh_hash(&self, hash: &[u8]) -> StoreResult<Option<(Session, RefreshMatch)>> {
        self.check()?;
        self.inner.session_by_refresh_hash(hash).await
    }

    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<()> {
        self.check_write()?;
        self.inner.rotate_session(rotation).await
    }

    async fn revoke_session(&self, kind: SessionKind, id: SessionId, at: Timestamp) -> StoreResult<()> {
        self.check_write()?;
        self.inner.revoke_session(kind, id, at).await
    }

    async fn revoke_sessions(&self, scope: SessionScope, at: Timestamp) -> StoreResult<Vec<SessionId>> {
        self.check_write()?;
        self.inner.revoke_sessions(scope, at).await
    }

    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<usize> {
        self.check_write()?;
        self.inner.purge_sessions(before).await
    }

    // What a server of a fleet uses (never called on a store of one process).
    fn changes(&self) -> Option<tokio::sync::mpsc::Receiver<pumppilot_store::Change>> {
        if self.feed { self.inner.changes() } else { None }
    }

    async fn heartbeat(
        &self,
        server: &str,
        now: Timestamp,
        ttl_ms: i64,
        polled_since: Timestamp,
    ) -> StoreResult<Vec<String>> {
        self.check_write()?;
        self.inner.heartbeat(server, now, ttl_ms, polled_since).await
    }

    async fn add_login_failure(&self, keys: &[String], now: Timestamp, window_ms: i64) -> StoreResult<()> {
        self.check_write()?;
        self.inner.add_login_failure(keys, now, window_ms).await
    }

    async fn login_failures(
        &self,
        keys: &[String],
        now: Timestamp,
        window_ms: i64,
    ) -> StoreResult<Vec<(String, Timestamp, u32)>> {
        self.check()?;
        self.inner.login_failures(keys, now, window_ms).await
    }

    async fn claim_tap(
        &self,
        admin: AdminId,
        uid: &str,
        now: Timestamp,
        window_ms: i64,
    ) -> StoreResult<pumppilot_store::TapClaim> {
        self.check_write()?;
        self.inner.claim_tap(admin, uid, now, window_ms).await
    }

    async fn answer_tap(&self, admin: AdminId, uid: &str, answer: &str) -> StoreResult<()> {
        self.check_tap_record()?;
        self.inner.answer_tap(admin, uid, answer).await
    }

    async fn release_tap(&self, admin: AdminId, uid: &str) -> StoreResult<()> {
        self.check_tap_record()?;
        self.inner.release_tap(admin, uid).await
    }
}

/// The switches of an [`Unplugged`] store: `down`, nothing answers; `full`, reads work and writes
/// fail; `swamped`, the owners' page never comes; `meddles`, writes landing before profiles' saves;
/// `forgets_taps`, a tap's answer is not recorded.
struct Switches {
    down: Arc<AtomicBool>,
    full: Arc<AtomicBool>,
    swamped: Arc<AtomicBool>,
    meddles: Meddles,
    forgets_taps: Arc<AtomicBool>,
}

/// A server whose store can be unplugged, fill its disk or be swamped, all off to begin with.
async fn spawn_unpluggable() -> (common::TestApp, Switches) {
    let (switches, wrap) = unpluggable(false);
    (spawn_app_with(wrap).await, switches)
}

/// The switches, all off, and the wrapper of a store behind them (passing its change feed on
/// with `feed`).
fn unpluggable(feed: bool) -> (Switches, impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) {
    let off = || Arc::new(AtomicBool::new(false));
    let switches =
        Switches { down: off(), full: off(), swamped: off(), meddles: Meddles::default(), forgets_taps: off() };
    let (down, full, swamped) = (Arc::clone(&switches.down), Arc::clone(&switches.full), Arc::clone(&switches.swamped));
    let (meddles, forgets_taps) = (Arc::clone(&switches.meddles), Arc::clone(&switches.forgets_taps));
    let wrap = move |inner| -> Arc<dyn Store> {
        Arc::new(Unplugged { inner, down, full, swamped, meddles, forgets_taps, feed })
    };
    (switches, wrap)
}

/// A profile's save lands on the profile it was made from. The app saves its settings while its
/// number is confirmed from that phone and it registers the phone's token, both landing between the
/// save's read and its write: the save is made again from what is stored then, and keeps both (it
/// used to put the number back to waiting and drop the token). Changed between every read and
/// write, the save gives up after three tries: 409 `CONFLICT`, saying to try again, and nothing of
/// its own is written.
#[tokio::test]
async fn a_profile_saved_while_it_changes_is_made_again_from_what_is_stored() {
    let (app, Switches { meddles, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 0).await;
    let user: UserId = t.user_ids[0].parse().unwrap();
    let phone = app_on_a_phone(&app, "rahim-farmer-0").await;
    let number = "+8801711000005";
    let settings = |language: &str| json!({"phone": number, "pushTokens": [], "language": language, "muted": [], "quietHours": null});
    let (status, asked) = phone.request(Method::PUT, "/api/alerts/profile", Some(settings("en"))).await;
    assert_eq!((status, &asked["pendingPhone"]), (StatusCode::OK, &json!(number)), "{asked}");
    let register = |name: &'static str| register_token(&phone, name);

    // Between the save's read and its write: the number confirmed, the phone's token registered.
    let started = register("started");
    let confirm_and_start: Meddle = Box::new(move |store| {
        Box::pin(async move {
            let pending = store.alert_profile(user).await.unwrap().unwrap().pending_phone.unwrap();
            store.confirm_phone(user, &pending).await.unwrap();
            started(store).await;
        })
    });
    meddles.lock().unwrap().push_back(confirm_and_start);
    let (status, saved) = phone.request(Method::PUT, "/api/alerts/profile", Some(settings("bn"))).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(
        (&saved["phone"], &saved["pendingPhone"], &saved["pushTokens"], &saved["language"]),
        (&json!(number), &json!(null), &json!(["ExponentPushToken[started]"]), &json!("bn")),
        "the number confirmed and the token registered meanwhile stay, with the save's language: {saved}"
    );

    // Changed at every try: after the third, 409, and the language stays.
    for name in ["again-1", "again-2", "again-3"] {
        meddles.lock().unwrap().push_back(register(name));
    }
    let refused = phone.request(Method::PUT, "/api/alerts/profile", Some(settings("en"))).await;
    assert_error(&refused, StatusCode::CONFLICT, "CONFLICT");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("try again"), "{}", refused.1);
    let (_, now) = phone.get("/api/alerts/profile").await;
    assert_eq!(now["language"], "bn", "nothing of the save written: {now}");
    assert_eq!(now["pushTokens"].as_array().map(Vec::len), Some(4), "each token registered stays: {now}");
    let (status, saved) = phone.request(Method::PUT, "/api/alerts/profile", Some(settings("en"))).await;
    assert_eq!((status, &saved["language"]), (StatusCode::OK, &json!("en")), "sent again, it lands: {saved}");
}

/// The app signed in on a farmer's phone.
async fn app_on_a_phone(app: &common::TestApp, username: &str) -> common::Client {
    let login = json!({"username": username, "password": common::PASSWORD, "deviceName": "phone"});
    let pair = app.anonymous().ok("/api/mobile/login", login).await;
    common::Client { token: Some(pair["accessToken"].as_str().unwrap().to_owned()), ..app.anonymous() }
}

/// The app on `phone` registering the phone's token `name`, as it does at every start.
fn register_token(phone: &common::Client, name: &'static str) -> Meddle {
    let phone = phone.clone();
    Box::new(move |_| {
        Box::pin(async move {
            let path = format!("/api/alerts/push-tokens/ExponentPushToken%5B{name}%5D");
            let (status, body) = phone.request(Method::PUT, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        })
    })
}

/// The owner's enrolment of a farmer's phone lands on the profile it was made from: the farmer's
/// phone registering its token between the enrolment's read and its write, the enrolment is made
/// again from what is stored then and keeps the token (it used to drop it), with its audit line.
/// Changed between every read and write, the enrolment gives up after three tries: 409
/// `CONFLICT`, and neither the enrolment nor an audit line of it is written.
#[tokio::test]
async fn an_owners_enrolment_made_while_the_farmers_profile_changes_keeps_the_change() {
    let (app, Switches { meddles, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 0).await;
    let phone = app_on_a_phone(&app, "rahim-farmer-0").await;
    let path = format!("/api/admin/users/{}/phone", t.user_ids[0]);
    let number = "+8801711000006";

    meddles.lock().unwrap().push_back(register_token(&phone, "started"));
    let (status, enrolled) =
        t.admin.request(Method::PUT, &path, Some(json!({"phone": number, "language": "bn"}))).await;
    assert_eq!((status, &enrolled["pendingPhone"]), (StatusCode::OK, &json!(number)), "{enrolled}");
    assert!(meddles.lock().unwrap().is_empty(), "the token was registered between the read and the write");
    let (_, profile) = phone.get("/api/alerts/profile").await;
    assert_eq!(
        (&profile["pushTokens"], &profile["pendingPhone"], &profile["language"], &profile["phoneCode"]),
        (&json!(["ExponentPushToken[started]"]), &json!(number), &json!("bn"), &enrolled["phoneCode"]),
        "the token registered meanwhile stays, with the enrolment: {profile}"
    );
    let lines = || async { t.admin.get("/api/admin/audit?action=farmer.phone").await.1 };
    assert_eq!(lines().await.as_array().map(Vec::len), Some(1), "{}", lines().await);

    // Changed at every try: after the third, 409, and nothing of the enrolment is written.
    for name in ["again-1", "again-2", "again-3"] {
        meddles.lock().unwrap().push_back(register_token(&phone, name));
    }
    let other = json!({"phone": "+8801711000007", "language": "en"});
    let refused = t.admin.request(Method::PUT, &path, Some(other)).await;
    assert_error(&refused, StatusCode::CONFLICT, "CONFLICT");
    let (_, now) = phone.get("/api/alerts/profile").await;
    assert_eq!((&now["pendingPhone"], &now["language"]), (&json!(number), &json!("bn")), "{now}");
    assert_eq!(now["pushTokens"].as_array().map(Vec::len), Some(4), "each token registered stays: {now}");
    assert_eq!(lines().await.as_array().map(Vec::len), Some(1), "no line: {}", lines().await);
}

/// A scrape of `/metrics` answers in bounded time whatever the store does: with the owners' count
/// not coming, the page comes once the scrape's wait for the store is over (5 s), without the
/// series the store did not give (unknown, not zero) and with the rest.
#[tokio::test]
async fn a_scrape_answers_in_time_without_what_a_swamped_store_did_not_give() {
    let (app, Switches { swamped, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    let token = app.master().await.token.unwrap();
    swamped.store(true, Ordering::SeqCst);
    let asked = std::time::Instant::now();
    let answer = reqwest::Client::new()
        .get(format!("{}/metrics", app.base))
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    let took = asked.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "the page took {took:?}");
    let has = |line: &str| page.lines().any(|l| l == line);
    assert!(has("pumppilot_store_up 1") && has("pumppilot_devices_online 1"), "{page}");
    assert!(!page.lines().any(|l| l.starts_with("pumppilot_tenants ")), "no owners' count without the list: {page}");
}

#[tokio::test]
async fn store_down_answers_503_changes_nothing_and_never_commands_the_motor_on() {
    let (app, Switches { down, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 2, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(t.device.poll(false, true).await["motor"], "ON");

    down.store(true, Ordering::SeqCst);
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_error(
        &t.admin.post("/api/admin/recharge", json!({"userId": t.user_ids[1], "minutes": 5})).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    );
    assert_error(&t.users[1].post("/api/motor/start", json!({})).await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    // Every poll is answered OFF, held for the store, whether it changes something or not.
    for path in ["/api/esp32/poll?loadShedding=1&ready=1&relay=1", "/api/esp32/poll?loadShedding=0&ready=1&relay=1"] {
        let (status, answer) = t.device.client.get(path).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_store_hold(&answer);
    }

    down.store(false, Ordering::SeqCst);
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::OK);
    let (_, queue) = t.admin.get("/api/queue").await;
    assert_eq!(queue["waiting"], json!([]), "the start refused while the store was down left no entry");
    let (_, users) = t.admin.get("/api/admin/users").await;
    let second = users.as_array().unwrap().iter().find(|u| u["id"] == t.user_ids[1]).unwrap();
    assert_eq!(second["availableSeconds"], 600, "the refused recharge left no trace");
    assert_eq!(t.device.poll(true, true).await["state"], "HOLD", "reports are accepted again");
    assert_eq!(t.device.poll(false, true).await["motor"], "ON");
}

#[tokio::test]
async fn a_long_poll_held_when_the_store_fails_is_answered_off_not_with_the_on_it_held() {
    let (app, Switches { full, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let (_, on) = t.device.client.get("/api/esp32/poll?loadShedding=0&ready=1&relay=1").await;
    assert_eq!(on["motor"], "ON", "{on}");
    let seq = on["seq"].as_u64().unwrap();
    let client = t.device.client.clone();
    let path = format!("/api/esp32/poll?loadShedding=0&ready=1&relay=1&wait=500&seq={seq}");
    let held = app.held(500, async move { client.get(&path).await }).await;

    // The disk fills while the answer is held: the farmer's Stop cannot be recorded.
    full.store(true, Ordering::SeqCst);
    assert_error(&t.users[0].post("/api/motor/stop", json!({})).await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    app.clock.advance(std::time::Duration::from_millis(500));
    let (status, answer) = held.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_store_hold(&answer);
}

/// A card tap the store could not record (the disk full) leaves nothing claimed: the device's retry
/// once the store is back is acted on, once, and not left waiting for the first's answer.
#[tokio::test]
async fn a_tap_that_failed_is_acted_on_when_sent_again() {
    let (app, Switches { full, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    let tap = || t.device.client.post("/api/esp32/rfid", json!({"uid": "04A1B2C3"}));

    full.store(true, Ordering::SeqCst);
    assert_error(&tap().await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(t.users[0].status().await["me"]["state"], "IDLE");
    full.store(false, Ordering::SeqCst);
    let (status, retried) = tokio::time::timeout(std::time::Duration::from_secs(10), tap())
        .await
        .expect("the retry is not left waiting for a tap given up");
    assert_eq!((status, retried["action"].as_str()), (StatusCode::OK, Some("STARTED")), "{retried}");
    assert_eq!(t.users[0].status().await["me"]["state"], "RUNNING");
    // Its answer is the one repeated now: the tap was acted on once.
    assert_eq!(tap().await.1, retried);
}

/// Two servers A and B of a fleet on one MongoDB (SecantusDB) and one manual clock, A's store able
/// to forget card taps' answers (`forgets_taps`): a pump owner with a farmer whose card is bound,
/// the pump's device polled once, and its client at B once B knows its key.
struct TapServers {
    clock: Arc<pumppilot_server::clock::ManualClock>,
    a: common::TestApp,
    b: common::TestApp,
    t: common::Tenant,
    at_b: common::Client,
    forgets_taps: Arc<AtomicBool>,
}

impl TapServers {
    async fn start() -> TapServers {
        use pumppilot_server::{clock::ManualClock, config::Secret};
        let url = pumppilot_store_mongodb::testing::server().fresh_url();
        let secret = || Some(Secret("a-test-secret-of-at-least-32-characters".into()));
        let clock = ManualClock::starting_now();
        let (Switches { forgets_taps, .. }, wrap) = unpluggable(true);
        let a = common::spawn_app_at_with(&url, secret(), clock.clone(), wrap).await;
        let b = common::spawn_app_at(&url, secret(), clock.clone()).await;
        assert!(a.running.app.runtime.is_shared() && b.running.app.runtime.is_shared());
        let t = a.tenant("rahim", 1, 10).await;
        t.device.poll(false, true).await;
        t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
        let at_b = common::Client { base: b.base.clone(), ..t.device.client.clone() };
        // B hears of the device's key through the store's feed, on real time.
        let mut tries = 0;
        while at_b.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await.0 != StatusCode::OK {
            tries += 1;
            assert!(tries < 2000, "B never took the device's key");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        TapServers { clock, a, b, t, at_b, forgets_taps }
    }
}

/// Two servers of a fleet on one MongoDB (SecantusDB): a card tap acted on at A, whose answer A's
/// store then fails to record, still answers the board with what the tap did (it was 503 over a
/// run that had started, and the farmer's next tap stopped it). The same tap again at A gets that
/// answer; at B, which cannot know it, it waits for it and is refused UNAVAILABLE, acting on
/// nothing. A denial A's store fails to give up is answered too.
#[tokio::test]
async fn a_tap_acted_on_is_answered_when_the_shared_store_fails_to_record_its_answer() {
    let TapServers { clock, a: _a, b, t, at_b, forgets_taps } = TapServers::start().await;

    forgets_taps.store(true, Ordering::SeqCst);
    let tap = json!({"uid": "04A1B2C3", "tap": 7});
    let (status, started) = t.device.client.post("/api/esp32/rfid", tap.clone()).await;
    assert_eq!((status, started["action"].as_str()), (StatusCode::OK, Some("STARTED")), "{started}");
    let entry = started["entry"]["id"].clone();
    assert_eq!(t.users[0].status().await["me"]["entry"]["id"], entry, "the run started");
    assert_eq!(t.device.client.post("/api/esp32/rfid", tap.clone()).await, (StatusCode::OK, started.clone()));

    let retry = b.held(50, async move { at_b.post("/api/esp32/rfid", tap).await }).await;
    clock.advance(std::time::Duration::from_millis(2_000));
    assert_error(&retry.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(t.users[0].status().await["me"]["entry"]["id"], entry, "the run goes on: not tapped again");

    let (status, denied) = t.device.client.post("/api/esp32/rfid", json!({"uid": "DEADBEEF"})).await;
    assert_eq!((status, &denied), (StatusCode::OK, &json!({"action": "DENIED", "reason": "UNKNOWN_CARD"})));
}

/// The same fault for a tap without an id (older firmware), whose claim on the shared store holds
/// 2 s only: the retry at B sees A's claim unanswered, then lapse. It gives up instead of taking
/// the claim over: acting, it stopped the run the tap had started.
#[tokio::test]
async fn a_retry_without_an_id_that_sees_the_claim_lapse_unanswered_acts_on_nothing() {
    let TapServers { clock, a: _a, b, t, at_b, forgets_taps } = TapServers::start().await;

    forgets_taps.store(true, Ordering::SeqCst);
    let tap = json!({"uid": "04A1B2C3"});
    let (status, started) = t.device.client.post("/api/esp32/rfid", tap.clone()).await;
    assert_eq!((status, started["action"].as_str()), (StatusCode::OK, Some("STARTED")), "{started}");
    let entry = started["entry"]["id"].clone();
    // The board's retry reaches B half a second later; A's claim lapses while B waits.
    clock.advance(std::time::Duration::from_millis(500));
    let retry = b.held(50, async move { at_b.post("/api/esp32/rfid", tap).await }).await;
    clock.advance(std::time::Duration::from_millis(2_000));
    assert_error(&retry.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(t.users[0].status().await["me"]["entry"]["id"], entry, "the run goes on: not tapped again");
    // The claim was given up: the card's next tap, later, is decided afresh (it stops the run).
    forgets_taps.store(false, Ordering::SeqCst);
    clock.advance(std::time::Duration::from_millis(3_000));
    let (status, stopped) = t.device.client.post("/api/esp32/rfid", json!({"uid": "04A1B2C3"})).await;
    assert_eq!((status, stopped["action"].as_str()), (StatusCode::OK, Some("STOPPED")), "{stopped}");
}

/// OFF, held because the store cannot record the run.
fn assert_store_hold(answer: &serde_json::Value) {
    assert_eq!(
        (&answer["motor"], &answer["state"], &answer["holdReason"]),
        (&json!("OFF"), &json!("HOLD"), &json!("STORE_UNAVAILABLE")),
        "{answer}"
    );
}

/// The disk is full: reads work, writes fail. A Stop answers 503, and from that moment the device's
/// quiet polls get OFF (not the ON still cached) and `/readyz` says 503; the run is charged only up to
/// the failure. When writes work again, everything comes back by itself: the run holds
/// STORE_UNAVAILABLE from the failure, resumes with the next poll, and the ledger still adds up.
#[tokio::test]
async fn a_store_that_cannot_commit_tells_the_device_off_and_recovers_by_itself() {
    let (app, Switches { full, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(t.device.poll(false, true).await["motor"], "ON");

    full.store(true, Ordering::SeqCst);
    assert_error(&t.users[0].post("/api/motor/stop", json!({})).await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    let (status, answer) = t.device.client.get("/api/esp32/poll?loadShedding=0&ready=1&relay=1").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_store_hold(&answer);
    // A long-poll is not held on such an answer: the store may be back in a moment.
    let seq = answer["seq"].as_u64().unwrap();
    let started = std::time::Instant::now();
    let (_, answer) =
        t.device.client.get(&format!("/api/esp32/poll?loadShedding=0&ready=1&relay=0&wait=500&seq={seq}")).await;
    assert_store_hold(&answer);
    assert!(started.elapsed() < std::time::Duration::from_millis(400), "answered at once");
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);

    full.store(false, Ordering::SeqCst);
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::OK);
    let answer = t.device.poll(false, true).await;
    assert_eq!((&answer["motor"], &answer["state"]), (&json!("ON"), &json!("RUNNING")), "{answer}");
    let (_, ended) = t.users[0].post("/api/motor/stop", json!({})).await;
    assert_eq!(ended["status"], "COMPLETED", "{ended}");
    let (_, usage) = t.admin.get("/api/admin/usage").await;
    let row = &usage.as_array().unwrap()[0];
    assert!(row["heldSeconds"].as_i64().is_some(), "{row}");
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{}/wallet", t.user_ids[0])).await;
    let balance = wallet["availableSeconds"].as_i64().unwrap();
    let ledger: i64 = wallet["ledger"].as_array().unwrap().iter().map(|e| e["deltaSeconds"].as_i64().unwrap()).sum();
    assert_eq!(balance, ledger, "balance = ledger: {wallet}");
}

/// What one board heard: when (ms since the campaign began, on the server's clock) and whether the
/// answer let its relay be ON, and for how long.
#[derive(Debug, Clone, Copy)]
struct Heard {
    at_ms: i64,
    on: bool,
    lease_ms: i64,
}

/// Milliseconds in which a board that heard `answers` (in order) could have had its relay ON.
fn relay_possible_ms(answers: &[Heard]) -> i64 {
    let mut total = 0;
    for (i, heard) in answers.iter().enumerate().filter(|(_, h)| h.on) {
        let until = answers.get(i + 1).map_or(heard.at_ms + heard.lease_ms, |next| next.at_ms);
        total += (until.min(heard.at_ms + heard.lease_ms) - heard.at_ms).max(0);
    }
    total
}

/// One pump of the campaign: its farmers and board, a spare board that must never hear ON, and
/// what the board heard.
struct CampaignPump {
    t: common::Tenant,
    spare: common::Client,
    shedding: bool,
    heard: Vec<Heard>,
    held_for_store: u32,
    spare_on: u32,
}

/// The fault campaign's short version over real HTTP, on the server's fake clock: three pumps,
/// each with its board and a spare, farmers pressing Start and Stop at random, load shedding, and
/// the disk filling up twice, over 30 s. Time moves 200 to 600 ms between rounds (the lease is 1.5 s), and only when the test moves
/// it, so the same campaign runs however loaded the machine is. No farmer is charged more than the
/// board could have run (to a second per run for the rounding and the round trips), every answer
/// held for the store is OFF, and every balance is its ledger.
#[tokio::test]
async fn campaign_over_http_charges_nothing_a_relay_could_not_run() {
    let (app, Switches { full, .. }) = spawn_unpluggable().await;
    let began = app.clock.now();
    let mut pumps = Vec::new();
    for name in ["amin", "bashir", "chandra"] {
        let t = app.tenant(name, 2, 10).await;
        let spare = t.admin.ok("/api/admin/devices", json!({"name": "spare"})).await;
        let spare =
            common::Client { token: Some(spare["deviceKey"].as_str().unwrap().to_owned()), ..t.device.client.clone() };
        t.device.poll(false, true).await;
        pumps.push(CampaignPump { t, spare, shedding: false, heard: Vec::new(), held_for_store: 0, spare_on: 0 });
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // The disk is full from 8 s to 11 s and from 19 s to 22 s of the campaign's 30 s.
    let disk_full = |ms: i64| (8000..11_000).contains(&ms) || (19_000..22_000).contains(&ms);
    let mut full_rounds = 0;
    loop {
        let at_ms = app.clock.now().millis() - began.millis();
        if at_ms >= 30_000 {
            break;
        }
        if disk_full(at_ms) != full.load(Ordering::SeqCst) {
            full.store(disk_full(at_ms), Ordering::SeqCst);
            let expected = if disk_full(at_ms) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            assert_eq!(app.anonymous().get("/readyz").await.0, expected, "at {at_ms} ms");
        }
        full_rounds += u32::from(disk_full(at_ms));
        for pump in &mut pumps {
            if next() % 12 == 0 {
                pump.shedding = !pump.shedding;
            }
            let path = format!("/api/esp32/poll?loadShedding={}&ready=1&relay=0", u8::from(pump.shedding));
            let (status, answer) = pump.t.device.client.get(&path).await;
            assert_eq!(status, StatusCode::OK, "at {at_ms} ms: {answer}");
            let on = answer["motor"] == "ON" && answer["state"] == "RUNNING";
            assert!(!(on && pump.shedding), "ON while the board reports load shedding, at {at_ms} ms: {answer}");
            pump.heard.push(Heard { at_ms, on, lease_ms: answer["leaseMs"].as_i64().unwrap() });
            if answer["holdReason"] == "STORE_UNAVAILABLE" {
                assert_eq!(answer["motor"], "OFF", "{answer}");
                pump.held_for_store += 1;
            }
            let (_, spare_answer) = pump.spare.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await;
            pump.spare_on += u32::from(spare_answer["motor"] == "ON");
            let user = &pump.t.users[(next() % 2) as usize];
            match next() % 6 {
                0 => drop(user.post("/api/motor/start", json!({})).await),
                1 => drop(user.post("/api/motor/stop", json!({})).await),
                _ => {}
            }
        }
        app.clock.advance(std::time::Duration::from_millis(200 + next() % 400));
    }
    full.store(false, Ordering::SeqCst);
    let (mut total_held, mut runs, mut charged_in_all) = (0, 0, 0);
    for CampaignPump { t, heard, held_for_store, spare_on, .. } in pumps {
        assert_eq!(spare_on, 0, "a spare board is never told ON");
        total_held += held_for_store;
        for user in &t.users {
            drop(user.post("/api/motor/stop", json!({})).await);
        }
        let (_, usage) = t.admin.get("/api/admin/usage").await;
        let rows = usage.as_array().unwrap();
        runs += rows.len();
        let charged: i64 = rows.iter().map(|r| r["chargedSeconds"].as_i64().unwrap()).sum();
        charged_in_all += charged;
        let possible = relay_possible_ms(&heard);
        assert!(
            charged * 1000 <= possible + 1000 * rows.len() as i64,
            "charged {charged} s, a relay could run {possible} ms"
        );
        for id in &t.user_ids {
            let (_, wallet) = t.admin.get(&format!("/api/admin/users/{id}/wallet")).await;
            let ledger: i64 =
                wallet["ledger"].as_array().unwrap().iter().map(|e| e["deltaSeconds"].as_i64().unwrap()).sum();
            assert_eq!(wallet["availableSeconds"].as_i64().unwrap(), ledger, "balance = ledger: {wallet}");
        }
    }
    assert!(full_rounds > 0, "the disk was full for some rounds");
    assert!(
        total_held > 0 && runs > 3 && charged_in_all > 0,
        "the campaign saw {total_held} answers held for the store, {runs} runs and {charged_in_all} s charged"
    );
}

#[tokio::test]
async fn a_store_error_during_token_lookup_or_rotation_is_503_never_401() {
    let (app, Switches { down, full, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    let anon = app.anonymous();
    let pair = anon.ok("/api/mobile/login", json!({"username": "rahim-farmer-0", "password": common::PASSWORD})).await;
    let refresh = json!({"refreshToken": pair["refreshToken"]});

    // Reads work, writes fail (a full disk): the rotation cannot be written.
    full.store(true, Ordering::SeqCst);
    assert_error(
        &anon.post("/api/mobile/refresh", refresh.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    );
    full.store(false, Ordering::SeqCst);

    // Nothing answers: looking a token up fails.
    down.store(true, Ordering::SeqCst);
    assert_error(
        &anon.post("/api/mobile/refresh", refresh.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    );
    let unknown = common::Client { token: Some("m_not-in-memory".into()), ..anon.clone() };
    assert_error(&unknown.get("/api/auth/me").await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    down.store(false, Ordering::SeqCst);

    // The refresh token was never spent by the outage.
    let again = anon.ok("/api/mobile/refresh", refresh).await;
    assert!(again["accessToken"].as_str().is_some_and(|t| t.starts_with("m_")), "{again}");
    drop(t);
}

#[tokio::test]
async fn owners_hear_of_a_long_store_outage_once_it_is_over() {
    let (app, Switches { full, .. }) = spawn_unpluggable().await;
    let t = app.tenant("rahim", 1, 10).await;
    full.store(true, Ordering::SeqCst);
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    // The watch looks every 30 s and sees the outage; nothing can be written meanwhile.
    for _ in 0..3 {
        app.clock.advance(std::time::Duration::from_secs(30));
    }
    common::until("the watch saw the outage", || app.waits_for(30_000) > 0).await;
    full.store(false, Ordering::SeqCst);
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::OK);
    let mut told = serde_json::Value::Null;
    for _ in 0..2000 {
        app.clock.advance(std::time::Duration::from_secs(30));
        told = t.admin.get("/api/notifications").await.1;
        if told["unread"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(told["notifications"][0]["kind"], "STORE_TROUBLE", "{told}");
    assert_eq!(t.users[0].get("/api/notifications").await.1["unread"], 0, "owners only");
    for _ in 0..4 {
        app.clock.advance(std::time::Duration::from_secs(30));
    }
    app.until_waiting_for(30_000).await;
    assert_eq!(t.admin.get("/api/notifications").await.1["unread"], 1, "told once");
}

/// Deleting the database under the running server (with its `-wal` and `-shm`) used to go
/// unnoticed: writes answered 200 into unlinked files and were gone at the next start.
#[tokio::test]
async fn a_deleted_database_turns_writes_into_503_and_readyz_says_so() {
    if std::env::var("PUMPPILOT_TEST_STORE").as_deref() == Ok("mongodb") {
        return; // files are SQLite's
    }
    let app = common::spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    assert_eq!(app.anonymous().get("/readyz").await.0, StatusCode::OK);
    let db = app.database();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).unwrap();
    }
    assert_error(&app.anonymous().get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_error(
        &t.admin.post("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 5})).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    );
    // The process lives on and says what it can.
    assert_eq!(app.anonymous().get("/healthz").await.0, StatusCode::OK);
    assert_error(&app.anonymous().get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
}

/// `/readyz` used to answer 200 before the first master admin existed.
#[tokio::test]
async fn not_ready_until_the_first_master_exists() {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, secret) = common::test_store(dir.path());
    let settings = pumppilot_server::Settings {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url,
        secret,
        ..pumppilot_server::Settings::default()
    };
    let secret = pumppilot::store::load_secret(&settings).unwrap();
    let store = pumppilot::store::open_store(&settings).await.unwrap();
    let running = pumppilot_server::app::spawn(settings, store, secret).await.unwrap();
    let readyz = format!("http://{}/readyz", running.addr);
    let answer = reqwest::get(&readyz).await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("master"), "{body}");
    pumppilot_server::app::create_master(running.app.store.as_ref(), "master", "master-password", running.app.now())
        .await
        .unwrap();
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), StatusCode::OK);
    running.shutdown().await.unwrap();
}
