//! What a store refuses by itself, whatever the caller hands it: an entry dropped without ending,
//! an ended entry brought back, a ledger entry that does not follow the stored balance, an account
//! of no tenant; and an installation that leaves and comes back through export and import whole,
//! its alert profiles and notifications too.

use std::collections::BTreeSet;

use pumppilot_engine::{DeviceLink, EntryId, EntryStatus, Event, Facts, Notice, NoticeKind, Records, Tenant};
use pumppilot_store::{
    AlertProfile, Card, Channel, Commit, Delivery, DueDelivery, PendingPhone, QuietHours, Role, Snapshot, Store,
    StoreError,
};

use crate::support::{
    Driver, LEASE_MS, account, admin_account, all_good, assert_err, at, recharge, save_profile, tenancy,
};

/// Commits `tenant` with `records` and nothing else.
async fn try_commit(store: &dyn Store, tenant: &Tenant, records: &Records) -> Result<(), StoreError> {
    store.commit(Commit { tenant, records, audit: &[], decision: None, suspension: None, receipt: None }).await
}

/// A pump of `farmers` with 10 minutes each and the grid up, where each farmer pressed Start in
/// turn from the second second on: the first runs, the others wait.
async fn started<'a>(store: &'a dyn Store, farmers: usize) -> (Driver<'a>, Vec<pumppilot_engine::UserId>) {
    let tenant = tenancy(store, "rahim", farmers).await;
    let mut pump = Driver::load(store, tenant.admin).await;
    for user in &tenant.users {
        pump.step(recharge(tenant.admin, *user, 600), at(0)).await;
    }
    pump.step(all_good(), at(1)).await;
    for (i, user) in tenant.users.iter().enumerate() {
        pump.step(Event::Start { user: *user, requested_minutes: None, entry_id: EntryId::new() }, at(2 + i as i64))
            .await;
    }
    (pump, tenant.users)
}

/// The refusal's message, or a panic naming what came instead.
fn refusal(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Invariant(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A state that drops the active entry or the line without ending them, or that calls a waiting
/// entry RUNNING, is refused and changes nothing.
pub async fn an_entry_left_out_of_the_state_without_ending_is_refused(store: &dyn Store) {
    let (pump, _) = started(store, 2).await;

    let mut no_active = pump.tenant.clone();
    no_active.active = None;
    assert_err!(try_commit(store, &no_active, &Records::default()).await, StoreError::Invariant(_));
    let mut no_line = pump.tenant.clone();
    no_line.waiting.clear();
    assert_err!(try_commit(store, &no_line, &Records::default()).await, StoreError::Invariant(_));
    let mut wrong_status = pump.tenant.clone();
    wrong_status.waiting[0].status = EntryStatus::Running;
    assert_err!(try_commit(store, &wrong_status, &Records::default()).await, StoreError::Invariant(_));
    pump.assert_stored().await;
}

/// A run that ended stays ended: a state that brings it back, even at the right version, is
/// refused and changes nothing.
pub async fn an_ended_entry_is_final(store: &dyn Store) {
    let (mut pump, users) = started(store, 1).await;
    let u1 = users[0];
    let before = pump.tenant.clone();
    pump.step(Event::Stop { user: u1 }, at(10)).await;

    let mut revived = before;
    revived.version = pump.tenant.version;
    let message = refusal(try_commit(store, &revived, &Records::default()).await);
    assert!(message.contains("already ended"), "{message}");
    pump.assert_stored().await;
}

/// A state and a ledger entry that agree with each other but not with the stored balance are
/// refused: the balance stays the sum of the ledger, and the entry is not written.
pub async fn a_ledger_entry_must_follow_the_stored_balance(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let (admin, u1) = (rahim.admin, rahim.users[0]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 600), at(0)).await;

    let mut forged = pump.tenant.clone();
    forged.wallets.insert(u1, 1_000);
    let mut entry = store.ledger(u1, 1).await.unwrap().remove(0);
    entry.delta_seconds = 100;
    entry.balance_after = 1_000;
    let records = Records { ledger: vec![entry], ..Records::default() };
    let message = refusal(try_commit(store, &forged, &records).await);
    assert!(message.contains("does not follow"), "{message}");
    pump.assert_stored().await;
    assert_eq!(store.ledger(u1, 10).await.unwrap().len(), 1, "the refused entry was not written");
}

/// A user of no tenant, an admin of another tenant and a master of one are refused, and nothing of
/// them is kept: no tenant, no account, and their usernames are still free.
pub async fn accounts_must_name_a_real_tenant(store: &dyn Store) {
    let nobody = pumppilot_engine::AdminId(pumppilot_engine::UserId::new());
    let orphan = account(pumppilot_engine::UserId::new(), "karim", Role::User, Some(nobody), at(0));
    assert_err!(store.create_account(&orphan).await, StoreError::Invariant(_));
    let mut admin = admin_account("rahim", at(0));
    admin.admin_id = Some(nobody);
    assert_err!(store.create_account(&admin).await, StoreError::Invariant(_));
    let master = account(pumppilot_engine::UserId::new(), "master", Role::Master, Some(nobody), at(0));
    assert_err!(store.create_account(&master).await, StoreError::Invariant(_));
    assert_eq!(store.tenant_ids().await.unwrap(), vec![]);
    for username in ["karim", "rahim", "master"] {
        assert_eq!(store.account_by_username(username).await.unwrap(), None, "{username} was not stored");
    }
    let free = account(pumppilot_engine::UserId::new(), "karim", Role::Master, None, at(0));
    store.create_account(&free).await.expect("the refused name is still free");
}

/// Everything exported, erased, and imported again in the order `pumppilot migrate` uses
/// (accounts, tenants, the rest) is the same installation: the same export, the same tenant, and
/// the usernames taken again.
pub async fn an_export_erased_and_imported_again_is_the_same_installation(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 600), at(0)).await;
    pump.step(recharge(admin, u2, 600), at(0)).await;
    pump.step(all_good(), at(1)).await;
    for (user, second) in [(u1, 2), (u2, 3)] {
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, at(second)).await;
    }
    let card = Card { admin_id: admin, uid: "04A1".into(), user_id: u2, bound_at: at(4) };
    store.bind_card(&card).await.unwrap();
    let terms = pumppilot_store::Terms { max_request_minutes: 45, price_per_hour_taka: Some(120) };
    let line = pumppilot_store::AuditEntry {
        admin_id: Some(admin),
        at: at(4),
        actor_id: Some(admin.0),
        action: "terms.set".into(),
        target_id: None,
        detail: String::new(),
    };
    store.set_terms(admin, &terms, &line).await.unwrap();
    let receipt = pump.recharge_with_receipt(u1, 600, 20, at(5)).await;
    // A device that signs, with counters reserved, and a firmware release: a copy
    // that lost them would take captured requests again, or forget the image.
    let device = pumppilot_store::Device {
        id: pumppilot_engine::DeviceId::new(),
        admin_id: admin,
        name: "well".into(),
        key_hash: b"key".to_vec(),
        created_at: at(4),
        telemetry: None,
    };
    store.create_device(&device).await.unwrap();
    for at_least in [3, 9] {
        store.reserve_device_counters(admin, device.id, at_least, 1).await.unwrap();
    }
    let release = pumppilot_store::FirmwareRelease {
        version: "1.0.0".into(),
        size: 3,
        sha256: [1; 32],
        signature: [2; 64],
        published_at: at(4),
        rollout: pumppilot_store::Rollout { percent: 10, tenant: Some(admin) },
    };
    store.put_firmware(&release, &[7, 8, 9]).await.unwrap();
    let before = store.export().await.unwrap();
    assert_eq!(before.cards, vec![card]);
    assert_eq!((before.terms.clone(), before.receipts.clone()), (vec![(admin, terms)], vec![receipt]));
    assert_eq!(before.device_links, vec![(device.id, 9)]);
    assert_eq!(before.firmware, vec![(release, vec![7, 8, 9])]);
    // The lease is the server's setting, not stored: it exports as 0.
    let tenant = &pump.tenant;
    assert_eq!(before.tenants, vec![Tenant { device: DeviceLink { lease_ms: 0, ..tenant.device }, ..tenant.clone() }]);

    store.erase().await.unwrap();
    assert!(store.export().await.unwrap().is_empty(), "nothing is left");
    let accounts = Snapshot { accounts: before.accounts.clone(), ..Snapshot::default() };
    let tenants = Snapshot { tenants: before.tenants.clone(), ..Snapshot::default() };
    let rest = Snapshot { accounts: vec![], tenants: vec![], ..before.clone() };
    for part in [accounts, tenants, rest.clone()] {
        store.import(&part).await.unwrap();
    }
    assert_eq!(store.export().await.unwrap(), before);
    // The accounts and their tenants in one part (a fleet imported in chunks): the same copy.
    store.erase().await.unwrap();
    let together =
        Snapshot { accounts: before.accounts.clone(), tenants: before.tenants.clone(), ..Snapshot::default() };
    for part in [together, rest] {
        store.import(&part).await.unwrap();
    }
    assert_eq!(store.export().await.unwrap(), before);
    assert_eq!(store.load_tenant(admin, LEASE_MS).await.unwrap().as_ref(), Some(tenant));
    assert_eq!(
        store.reserve_device_counters(admin, device.id, 3, 1).await.unwrap().window,
        pumppilot_store::CounterWindow { after: 9, through: 10 },
        "no counter given before is given again in the copy"
    );
    let again = account(pumppilot_engine::UserId::new(), "rahim-1", Role::Master, None, at(5));
    assert_err!(store.create_account(&again).await, StoreError::UsernameTaken);
}

/// An erased store keeps nothing of the installation that was there, also none of the short-lived
/// counts several servers share: a full SMS window, failed sign-ins, a claimed card tap, a text
/// taken, a server's heartbeat. Left behind, a migration's copy would refuse a farmer's card tap
/// or an SMS, or slow a sign-in, for the rest of a window the old installation started, and list
/// servers of it.
pub async fn erase_leaves_no_passing_count_behind(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let now = at(10);
    let sms = pumppilot_store::SendWindow { key: "sms".into(), span_ms: 60_000, max: 1 };
    let admitted = |admission| matches!(admission, pumppilot_store::Admission::Admitted);
    assert!(admitted(store.admit_send(std::slice::from_ref(&sms), now).await.unwrap()));
    assert!(!admitted(store.admit_send(std::slice::from_ref(&sms), now).await.unwrap()), "the window is full");
    let keys = ["user:rahim".to_owned()];
    store.add_login_failure(&keys, now, 60_000).await.unwrap();
    let failures_before = store.login_failures(&keys, now, 60_000).await.unwrap();
    let tap = store.claim_tap(rahim.admin, "04A1", now, 60_000).await.unwrap();
    assert_eq!(tap, pumppilot_store::TapClaim::Act);
    store.answer_tap(rahim.admin, "04A1", "{}").await.unwrap();
    assert!(store.claim_text("sms:aa", now, 60_000).await.unwrap());
    let fleet = store.heartbeat("old", now, 60_000, now).await.unwrap();
    assert_eq!(fleet, vec!["old".to_owned()]);

    store.erase().await.unwrap();
    assert!(store.export().await.unwrap().is_empty(), "nothing is left");
    assert!(admitted(store.admit_send(&[sms], now).await.unwrap()), "the SMS window starts empty");
    assert!(
        store.login_failures(&keys, now, 60_000).await.unwrap().is_empty(),
        "no failed sign-in is left (before: {failures_before:?})"
    );
    assert_eq!(store.claim_tap(rahim.admin, "04A1", now, 60_000).await.unwrap(), pumppilot_store::TapClaim::Act);
    assert!(store.claim_text("sms:aa", now, 60_000).await.unwrap(), "no text taken is left");
    assert_eq!(store.heartbeat("new", now, 60_000, now).await.unwrap(), vec!["new".to_owned()], "no old server");
}

/// What a person set and what the bell holds comes through export, erase and import: each alert
/// profile (the phone still finds its person and is still theirs alone), each notification with
/// its read state, a keyed notice still told once, and only the deliveries still to come are sent
/// in the copy (one claimed when the export was taken is due again; one retried keeps its tries and
/// the channels it reached; one delivered or given up is never sent again).
pub async fn alert_profiles_and_the_bell_come_through_an_export_whole(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (admin, owner, karim, jamal) = (rahim.admin, rahim.admin.0, rahim.users[0], rahim.users[1]);
    let phone = "+8801711000001";
    let farmer = AlertProfile {
        phone: Some(phone.into()),
        push_tokens: vec!["ExponentPushToken[karim]".into()],
        language: "bn".into(),
        muted: BTreeSet::from([(NoticeKind::RunStarted, Channel::Sms)]),
        quiet_hours: Some(QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 }),
        ..AlertProfile::empty(karim)
    };
    let the_owner = AlertProfile {
        phone: Some("+8801711000002".into()),
        pending_phone: Some(PendingPhone {
            wrong_codes: 2,
            ..PendingPhone::new("+8801711000003".into(), "482106".into(), at(5))
        }),
        ..AlertProfile::empty(owner)
    };
    for profile in [&farmer, &the_owner] {
        save_profile(store, profile).await.unwrap();
    }
    let offline = |seconds| Notice {
        key: Some(format!("offline:{admin}:1000")),
        ..Notice::new(owner, admin, NoticeKind::DeviceOffline, at(seconds), Facts::default())
    };
    let told = |to, kind, seconds| Notice::new(to, admin, kind, at(seconds), Facts::default());
    let written = store
        .add_notices(&[
            offline(1),
            told(karim, NoticeKind::RunStarted, 2),
            told(karim, NoticeKind::BalanceLow, 3),
            told(jamal, NoticeKind::RunEnded, 4),
        ])
        .await
        .unwrap();
    let [told_owner, started, low, ended] = [0, 1, 2, 3].map(|i| written[i].id);
    store.mark_notifications_read(karim, Some(&[started])).await.unwrap();
    // The owner's was delivered, jamal's given up, karim's "started" retried after reaching the
    // app, and karim's "low" claimed by a sender when the export is taken.
    assert_eq!(store.claim_outbox("a", at(10), at(60), 10).await.unwrap().len(), 4);
    store.finish_outbox(told_owner, "a", &Delivery::Done { at: at(11) }).await.unwrap();
    store.finish_outbox(ended, "a", &Delivery::Failed { at: at(11), error: "no way".into() }).await.unwrap();
    let retry = Delivery::Retry { at: at(100), delivered: BTreeSet::from([Channel::Push]), error: "503".into() };
    store.finish_outbox(started, "a", &retry).await.unwrap();

    let before = store.export().await.unwrap();
    assert_eq!(before.alert_profiles.len(), 2);
    let kept: Vec<_> = before
        .notifications
        .iter()
        .map(|kept| (kept.notification.id, kept.notification.read, kept.key.is_some(), kept.due.clone()))
        .collect();
    let due = |seconds, attempts, delivered: &[Channel]| {
        Some(DueDelivery { at: at(seconds), attempts, delivered: delivered.iter().copied().collect() })
    };
    assert_eq!(
        kept,
        [
            (told_owner, false, true, None),
            (started, true, false, due(100, 1, &[Channel::Push])),
            (low, false, false, due(3, 0, &[])),
            (ended, false, false, None),
        ],
        "oldest first, each with its read state, key and delivery to come"
    );

    crate::support::copy_back(store, &before).await;

    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(farmer.clone()));
    assert_eq!(store.alert_profile_by_phone(phone).await.unwrap(), Some(farmer.clone()));
    let taken = AlertProfile { phone: Some(phone.into()), ..AlertProfile::empty(jamal) };
    assert_err!(save_profile(store, &taken).await, StoreError::PhoneTaken);
    // Karim's phone's token is still his alone: set for Jamal, it moves.
    let phone_passed_on = AlertProfile { push_tokens: farmer.push_tokens.clone(), ..AlertProfile::empty(jamal) };
    save_profile(store, &phone_passed_on).await.unwrap();
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().push_tokens, Vec::<String>::new());
    save_profile(store, &farmer).await.unwrap();
    let bell = store.notifications(karim, 10).await.unwrap();
    assert_eq!(bell.iter().map(|n| (n.id, n.read)).collect::<Vec<_>>(), [(low, false), (started, true)]);
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 1);
    assert_eq!(store.add_notices(&[offline(50)]).await.unwrap(), [], "the owner is not told twice");
    let now = store.claim_outbox("b", at(20), at(80), 10).await.unwrap();
    assert_eq!(now.iter().map(|item| item.notification.id).collect::<Vec<_>>(), [low], "only the claimed one");
    store.finish_outbox(low, "b", &Delivery::Done { at: at(21) }).await.unwrap();
    let later = store.claim_outbox("b", at(100), at(130), 10).await.unwrap();
    assert_eq!(later.iter().map(|i| (i.notification.id, i.attempts)).collect::<Vec<_>>(), [(started, 1)]);
    assert_eq!(later[0].delivered, BTreeSet::from([Channel::Push]), "the app is not told again");
    store.finish_outbox(started, "b", &Delivery::Done { at: at(101) }).await.unwrap();
    assert_eq!(store.claim_outbox("b", at(10_000), at(10_030), 10).await.unwrap(), [], "nothing else is sent");
}
