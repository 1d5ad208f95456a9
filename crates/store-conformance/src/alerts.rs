//! Alerts: notifications written with the change that caused them, read flags, keyed notices told
//! once, outbox claims held by one sender at a time, and alert profiles.

use std::collections::BTreeSet;

use pumppilot_engine::{EntryId, Event, Facts, Notice, NoticeKind, Records, RequestId, UserId};
use pumppilot_store::{
    Admission, AlertProfile, AuditEntry, AuditedWrite, Channel, Commit, Decision, Delivery, MinuteRequest,
    NotificationId, PendingPhone, QuietHours, RequestStatus, SendWindow, Store, StoreError,
};

use crate::support::{Driver, all_good, assert_err, at, recharge, save_profile, tenancy};

/// A run's notices are in the store exactly when its commit is: the farmer's bell lists them
/// newest first, unread, and marks them read (theirs only); a commit refused for its version
/// writes none.
pub async fn notices_are_written_with_their_commit(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let (admin, karim, jamal, salma) = (rahim.admin, rahim.users[0], rahim.users[1], rahim.users[2]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, karim, 600), at(0)).await;
    pump.step(recharge(admin, salma, 600), at(0)).await;
    pump.step(all_good(), at(1)).await;
    // Karim waits behind Salma: his turn comes when she stops.
    let start = |user| Event::Start { user, requested_minutes: None, entry_id: EntryId::new() };
    pump.step(start(salma), at(1)).await;
    pump.step(start(karim), at(2)).await;
    pump.step(Event::Stop { user: salma }, at(2)).await;
    pump.step(Event::DeviceReport { load_shedding: true, ready: true, relay: false }, at(30)).await;

    let bell = store.notifications(karim, 10).await.unwrap();
    let kinds: Vec<_> = bell.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, [NoticeKind::RunHeld, NoticeKind::RunStarted], "newest first");
    assert_eq!(bell[0].at, at(30));
    assert_eq!(bell[0].facts.hold_reason, Some(pumppilot_engine::HoldReason::LoadShedding));
    assert!(bell.iter().all(|n| !n.read && n.user_id == karim && n.admin_id == admin));
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 2);
    assert_eq!(store.notifications(karim, 1).await.unwrap().len(), 1, "the limit holds");
    assert_eq!(store.notifications(jamal, 10).await.unwrap(), []);

    // A stale commit carrying a notice writes nothing.
    let mut stale = pump.tenant.clone();
    stale.version -= 1;
    let notice = Notice::new(karim, admin, NoticeKind::BalanceLow, at(40), Facts::default());
    let records = Records { notices: vec![notice], changed: true, ..Records::default() };
    let commit =
        Commit { tenant: &stale, records: &records, audit: &[], decision: None, suspension: None, receipt: None };
    assert_err!(store.commit(commit).await, StoreError::VersionConflict);
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 2);

    // Someone else's ids mark nothing; the farmer's own ids mark theirs; then all.
    assert_eq!(store.mark_notifications_read(jamal, Some(&[bell[0].id])).await.unwrap(), 0);
    assert_eq!(store.mark_notifications_read(karim, Some(&[bell[0].id, NotificationId::new()])).await.unwrap(), 1);
    let bell = store.notifications(karim, 10).await.unwrap();
    assert_eq!(bell.iter().map(|n| n.read).collect::<Vec<_>>(), [true, false]);
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 1);
    assert_eq!(store.mark_notifications_read(karim, None).await.unwrap(), 1);
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 0);
}

/// Notices from outside a commit: a keyed notice is written once, whoever adds it and however
/// often; each written notice has one outbox item.
pub async fn keyed_notices_are_told_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let owner = rahim.admin.0;
    let offline = |at| Notice {
        key: Some(format!("offline:{}:{}", rahim.admin, 1000)),
        ..Notice::new(owner, rahim.admin, NoticeKind::DeviceOffline, at, Facts { since: Some(at), ..Facts::default() })
    };
    let written = store.add_notices(&[offline(at(10)), offline(at(11))]).await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].at, at(10));
    assert_eq!(store.add_notices(&[offline(at(20))]).await.unwrap(), []);
    let other = Notice::new(owner, rahim.admin, NoticeKind::StoreTrouble, at(21), Facts::default());
    assert_eq!(store.add_notices(&[other.clone(), other]).await.unwrap().len(), 2, "no key, no dedupe");
    assert_eq!(store.unread_notifications(owner).await.unwrap(), 3);
    let items = store.claim_outbox("a", at(30), at(60), 10).await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].notification, written[0], "oldest first, the notification as stored");
}

/// A request's notice is stored with the request, and a rejection's with the rejection (and its
/// audit entry): each as a notification with its outbox item, a keyed one once. A refused write
/// (a second pending request, a second decision) stores no notice.
pub async fn request_notices_are_written_with_the_request(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let (admin, owner, karim) = (rahim.admin, rahim.admin.0, rahim.users[0]);
    let asked = MinuteRequest {
        id: RequestId::new(),
        user_id: karim,
        admin_id: admin,
        minutes: 10,
        note: String::new(),
        status: RequestStatus::Pending,
        created_at: at(5),
        decided_at: None,
        decided_by: None,
        reject_reason: None,
    };
    let facts = Facts { seconds: Some(600), who: Some("karim".into()), ..Facts::default() };
    let new = Notice {
        key: Some(format!("asked:{}", asked.id)),
        ..Notice::new(owner, admin, NoticeKind::RequestNew, at(5), facts)
    };
    store.create_minute_request(&asked, &[new.clone(), new.clone()]).await.expect("ask");
    let bell = store.notifications(owner, 10).await.unwrap();
    assert_eq!(bell.iter().map(|n| n.kind).collect::<Vec<_>>(), [NoticeKind::RequestNew], "a keyed notice once");
    assert_eq!(bell[0].facts, new.facts);

    let again = MinuteRequest { id: RequestId::new(), created_at: at(6), ..asked.clone() };
    let refused = Notice::new(owner, admin, NoticeKind::RequestNew, at(6), Facts::default());
    assert_err!(store.create_minute_request(&again, &[refused]).await, StoreError::RequestPending);
    assert_eq!(store.unread_notifications(owner).await.unwrap(), 1, "a refused request tells no one");

    let reject = Decision {
        request_id: asked.id,
        admin_id: admin,
        status: RequestStatus::Rejected,
        decided_by: owner,
        at: at(7),
        reason: None,
    };
    let decided = Facts { seconds: Some(600), approved: Some(false), ..Facts::default() };
    let told = Notice::new(karim, admin, NoticeKind::RequestDecided, at(7), decided);
    let entry = |seconds| AuditEntry {
        admin_id: Some(admin),
        at: at(seconds),
        actor_id: Some(owner),
        action: "request.reject".into(),
        target_id: Some(asked.id.to_string()),
        detail: String::new(),
    };
    let write = AuditedWrite::Decide { decision: reject.clone(), notices: vec![told.clone()] };
    store.write_audited(&write, &entry(7)).await.expect("reject");
    let bell = store.notifications(karim, 10).await.unwrap();
    assert_eq!(bell.iter().map(|n| (n.kind, n.at)).collect::<Vec<_>>(), [(NoticeKind::RequestDecided, at(7))]);
    let twice = AuditedWrite::Decide { decision: Decision { at: at(8), ..reject }, notices: vec![told] };
    assert_err!(store.write_audited(&twice, &entry(8)).await, StoreError::AlreadyDecided);
    assert_eq!(store.unread_notifications(karim).await.unwrap(), 1, "a refused decision tells no one");
    assert_eq!(store.audit(Some(admin), 10).await.unwrap().len(), 1);

    // Each stored notice has exactly one outbox item, the notification as stored.
    let items = store.claim_outbox("a", at(30), at(60), 10).await.unwrap();
    let mut outbox: Vec<_> = items.into_iter().map(|i| i.notification).collect();
    outbox.sort_by_key(|n| n.at);
    let mut stored = store.notifications(owner, 10).await.unwrap();
    stored.extend(store.notifications(karim, 10).await.unwrap());
    stored.sort_by_key(|n| n.at);
    assert_eq!(outbox, stored);
}

/// One sender at a time holds an item: a second sender gets nothing while the claim runs and
/// cannot finish it; after the claim runs out another may take it and the first has lost it; a
/// retry waits for its time and remembers the channels already delivered; a delivered or failed
/// item is never claimed again.
pub async fn outbox_claims_are_held_by_one_sender(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let notice = |n: i64| Notice::new(karim, rahim.admin, NoticeKind::RunStarted, at(n), Facts::default());
    store.add_notices(&[notice(1), notice(2), notice(3)]).await.unwrap();

    assert_eq!(store.claim_outbox("a", at(0), at(30), 10).await.unwrap(), [], "nothing is due before its time");
    let a = store.claim_outbox("a", at(5), at(35), 2).await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|item| item.attempts == 0 && item.delivered.is_empty()));
    let b = store.claim_outbox("b", at(5), at(50), 10).await.unwrap();
    assert_eq!(b.len(), 1, "b gets only what a did not claim");
    assert!(a.iter().all(|item| item.notification.id != b[0].notification.id));
    let first = a[0].notification.id;
    let done = Delivery::Done { at: at(6) };
    assert_err!(store.finish_outbox(first, "b", &done).await, StoreError::ClaimLost);

    // a's claim runs out at 35: b takes the item, and a's late answer is refused.
    assert_eq!(store.claim_outbox("b", at(34), at(64), 10).await.unwrap(), []);
    let taken = store.claim_outbox("b", at(35), at(65), 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    assert_err!(store.finish_outbox(first, "a", &done).await, StoreError::ClaimLost);

    let retry = Delivery::Retry { at: at(100), delivered: BTreeSet::from([Channel::Push]), error: "503".into() };
    store.finish_outbox(first, "b", &retry).await.unwrap();
    let second = taken.iter().map(|i| i.notification.id).find(|id| *id != first).unwrap();
    store.finish_outbox(second, "b", &Delivery::Failed { at: at(40), error: "gave up".into() }).await.unwrap();
    store.finish_outbox(b[0].notification.id, "b", &done).await.unwrap();
    assert_err!(store.finish_outbox(b[0].notification.id, "b", &done).await, StoreError::ClaimLost);

    assert_eq!(store.claim_outbox("c", at(99), at(129), 10).await.unwrap(), [], "the retry waits for its time");
    let again = store.claim_outbox("c", at(100), at(130), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].notification.id, again[0].attempts), (first, 1));
    assert_eq!(again[0].delivered, BTreeSet::from([Channel::Push]));
    // Deferred (quiet hours, the SMS gateway's window full once the push went): due later, not
    // counted as a try, with the channels reached so far.
    let both = BTreeSet::from([Channel::Push, Channel::Sms]);
    store.finish_outbox(first, "c", &Delivery::Defer { at: at(200), delivered: both.clone() }).await.unwrap();
    assert_eq!(store.claim_outbox("c", at(199), at(229), 10).await.unwrap(), []);
    let later = store.claim_outbox("c", at(200), at(230), 10).await.unwrap();
    assert_eq!((later[0].attempts, &later[0].delivered), (1, &both));
    store.finish_outbox(first, "c", &Delivery::Done { at: at(201) }).await.unwrap();
    assert_eq!(store.claim_outbox("d", at(10_000), at(10_030), 10).await.unwrap(), [], "nothing is sent twice");
}

/// What is still to tell a person is found whatever its due time or claim, from a moment on, and
/// one item is claimed by one sender at a time, whenever it is due: a sender holding a hold whose
/// resume also waits takes that resume to drop both.
pub async fn a_persons_items_are_found_and_claimed_one_by_one(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (karim, jamal) = (rahim.users[0], rahim.users[1]);
    let told = |to, kind, n: i64| Notice::new(to, rahim.admin, kind, at(n), Facts::default());
    let written = store
        .add_notices(&[
            told(karim, NoticeKind::RunStarted, 1),
            told(karim, NoticeKind::RunHeld, 2),
            told(jamal, NoticeKind::RunEnded, 3),
            told(karim, NoticeKind::RunResumed, 500),
        ])
        .await
        .unwrap();
    let [started, held, jamals, resumed] = [0, 1, 2, 3].map(|i| written[i].id);
    let ids = |items: Vec<pumppilot_store::OutboxItem>| items.iter().map(|i| i.notification.id).collect::<Vec<_>>();
    // Nothing is due yet at 0, and the resume not before 500: all are still to tell.
    assert_eq!(ids(store.outbox_of(karim, at(0)).await.unwrap()), [started, held, resumed], "oldest first");
    assert_eq!(ids(store.outbox_of(karim, at(2)).await.unwrap()), [held, resumed], "from a moment on");
    store.claim_outbox("a", at(1), at(31), 1).await.unwrap();
    store.finish_outbox(started, "a", &Delivery::Done { at: at(1) }).await.unwrap();
    assert_eq!(ids(store.outbox_of(karim, at(0)).await.unwrap()), [held, resumed], "what was told is not");

    // The resume, not due until 500, is claimed by "a" alone, and renewed by "a" only.
    let claimed = store.claim_outbox_item(resumed, "a", at(10), at(1000)).await.unwrap().expect("still to tell");
    assert_eq!((claimed.notification.id, claimed.notification.kind), (resumed, NoticeKind::RunResumed));
    assert_err!(store.claim_outbox_item(resumed, "b", at(999), at(1029)).await, StoreError::ClaimLost);
    let due = store.claim_outbox("b", at(600), at(630), 10).await.unwrap();
    assert_eq!(ids(due), [held, jamals], "b gets what is due, but the resume a holds");
    assert!(store.claim_outbox_item(resumed, "a", at(620), at(1000)).await.unwrap().is_some());
    assert_eq!(ids(store.outbox_of(karim, at(0)).await.unwrap()), [held, resumed], "claimed, still to tell");
    store.finish_outbox(resumed, "a", &Delivery::Done { at: at(621) }).await.unwrap();
    // Told, it is nobody's to claim; once b's claim runs out the hold is anyone's.
    assert_eq!(store.claim_outbox_item(resumed, "b", at(700), at(730)).await.unwrap(), None);
    assert_err!(store.claim_outbox_item(held, "c", at(629), at(659)).await, StoreError::ClaimLost);
    assert!(store.claim_outbox_item(held, "c", at(630), at(660)).await.unwrap().is_some());
    assert_err!(store.finish_outbox(held, "b", &Delivery::Done { at: at(631) }).await, StoreError::ClaimLost);
}

/// Many senders claiming at once share the items without overlap.
pub async fn racing_claims_never_share_an_item(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let notices: Vec<_> =
        (0..20).map(|n| Notice::new(karim, rahim.admin, NoticeKind::RunEnded, at(n), Facts::default())).collect();
    store.add_notices(&notices).await.unwrap();
    let senders = ["s1", "s2", "s3", "s4"];
    let claims = futures_join(store, &senders).await;
    let mut seen = BTreeSet::new();
    for items in &claims {
        for item in items {
            assert!(seen.insert(item.notification.id), "an item was claimed twice");
        }
    }
    assert_eq!(seen.len(), 20);
}

async fn futures_join(store: &dyn Store, senders: &[&str]) -> Vec<Vec<pumppilot_store::OutboxItem>> {
    let (a, b, c, d) = tokio::join!(
        store.claim_outbox(senders[0], at(100), at(130), 8),
        store.claim_outbox(senders[1], at(100), at(130), 8),
        store.claim_outbox(senders[2], at(100), at(130), 8),
        store.claim_outbox(senders[3], at(100), at(130), 8),
    );
    vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()]
}

/// A profile reads back as written, is found by its phone, and a phone belongs to one person.
pub async fn alert_profiles_round_trip_and_phones_are_unique(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (karim, jamal) = (rahim.users[0], rahim.users[1]);
    assert_eq!(store.alert_profile(karim).await.unwrap(), None);
    let profile = AlertProfile {
        phone: Some("+8801711000001".into()),
        push_tokens: vec!["ExponentPushToken[aaa]".into(), "ExponentPushToken[bbb]".into()],
        language: "bn".into(),
        muted: BTreeSet::from([(NoticeKind::RunHeld, Channel::Sms), (NoticeKind::BalanceLow, Channel::Push)]),
        quiet_hours: Some(QuietHours { from_minute: 22 * 60, to_minute: 6 * 60, utc_offset_minutes: 360 }),
        ..AlertProfile::empty(karim)
    };
    save_profile(store, &profile).await.unwrap();
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(profile.clone()));
    assert_eq!(store.alert_profile_by_phone("+8801711000001").await.unwrap(), Some(profile.clone()));
    assert_eq!(store.alert_profile_by_phone("+8801711000002").await.unwrap(), None);

    let taken = AlertProfile { phone: Some("+8801711000001".into()), ..AlertProfile::empty(jamal) };
    assert_err!(save_profile(store, &taken).await, StoreError::PhoneTaken);
    assert_eq!(store.alert_profile(jamal).await.unwrap(), None);

    // A new phone frees the old one; no phone at all is fine for many.
    let moved = AlertProfile { phone: Some("+8801711000009".into()), quiet_hours: None, ..profile };
    save_profile(store, &moved).await.unwrap();
    save_profile(store, &taken).await.unwrap();
    assert_eq!(store.alert_profile_by_phone("+8801711000001").await.unwrap().map(|p| p.user_id), Some(jamal));
    save_profile(store, &AlertProfile::empty(karim)).await.unwrap();
    save_profile(store, &AlertProfile { phone: None, ..AlertProfile::empty(jamal) }).await.unwrap();
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(AlertProfile::empty(karim)));
    assert_eq!(store.alert_profile_by_phone("+8801711000001").await.unwrap(), None);

    let nobody = AlertProfile::empty(UserId::new());
    assert_err!(save_profile(store, &nobody).await, StoreError::NotFound);
}

/// A number set for a person waits, pending, until its holder confirms it: it is no one's phone
/// meanwhile (not found by phone, not refused for being another's), several people may wait for
/// one number, and confirming moves it to the phone only while it is the pending number read and
/// no one else has it.
pub async fn a_pending_number_is_no_ones_until_confirmed(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let (karim, jamal, salma) = (rahim.users[0], rahim.users[1], rahim.users[2]);
    let number = "+8801711000005";
    let waiting = |code: &str, since| PendingPhone::new(number.into(), code.into(), since);
    let karims = AlertProfile {
        phone: Some("+8801711000001".into()),
        pending_phone: Some(waiting("482106", at(10))),
        language: "bn".into(),
        ..AlertProfile::empty(karim)
    };
    let jamals = AlertProfile { pending_phone: Some(waiting("000917", at(20))), ..AlertProfile::empty(jamal) };
    save_profile(store, &karims).await.unwrap();
    save_profile(store, &jamals).await.unwrap();
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(karims.clone()));
    assert_eq!(store.alert_profile_by_phone(number).await.unwrap(), None, "pending is no one's phone");
    let mut both = store.alert_profiles_pending_phone(number).await.unwrap();
    both.sort_by_key(|p| p.user_id);
    let mut expected = vec![karims.clone(), jamals.clone()];
    expected.sort_by_key(|p| p.user_id);
    assert_eq!(both, expected);
    assert_eq!(store.alert_profiles_pending_phone("+8801711000001").await.unwrap(), []);

    // Only the pending number as read is confirmed: another code, or one replaced since, is not.
    assert_err!(store.confirm_phone(karim, &waiting("482107", at(10))).await, StoreError::VersionConflict);
    assert_err!(store.confirm_phone(salma, &waiting("482106", at(10))).await, StoreError::VersionConflict);
    store.confirm_phone(karim, &waiting("482106", at(10))).await.unwrap();
    let confirmed = AlertProfile { phone: Some(number.into()), pending_phone: None, ..karims.clone() };
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(confirmed.clone()));
    assert_eq!(store.alert_profile_by_phone(number).await.unwrap(), Some(confirmed));
    assert_eq!(store.alert_profile_by_phone("+8801711000001").await.unwrap(), None, "the old phone is freed");
    assert_err!(store.confirm_phone(karim, &waiting("482106", at(10))).await, StoreError::VersionConflict);

    // Jamal's wait for the same number ends in nothing: Karim has it now.
    assert_err!(store.confirm_phone(jamal, &waiting("000917", at(20))).await, StoreError::PhoneTaken);
    assert_eq!(store.alert_profile(jamal).await.unwrap(), Some(jamals));
    assert_eq!(store.alert_profiles_pending_phone(number).await.unwrap().len(), 1);
    // The freed number can be Jamal's.
    let freed = PendingPhone::new("+8801711000001".into(), "555123".into(), at(30));
    let jamals = AlertProfile { pending_phone: Some(freed.clone()), ..AlertProfile::empty(jamal) };
    save_profile(store, &jamals).await.unwrap();
    store.confirm_phone(jamal, &freed).await.unwrap();
    assert_eq!(store.alert_profile_by_phone("+8801711000001").await.unwrap().map(|p| p.user_id), Some(jamal));
}

/// Wrong codes texted for a number waiting are counted with it, atomically: callers counting at
/// once each get their own count (one alone the fifth, which drops the number); a count is made
/// only while the number waiting is the one read (a code or time since replaced is a conflict);
/// a dropped number is never confirmed, even with its code; the count reads back and travels
/// with the profile, and a number set again starts from none.
pub async fn wrong_codes_are_counted_with_the_number_waiting(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (karim, jamal) = (rahim.users[0], rahim.users[1]);
    let number = "+8801711000005";
    let waiting = PendingPhone::new(number.into(), "482106".into(), at(10));
    let karims = AlertProfile { pending_phone: Some(waiting.clone()), ..AlertProfile::empty(karim) };
    save_profile(store, &karims).await.unwrap();
    let jamals = AlertProfile { pending_phone: Some(waiting.clone()), ..AlertProfile::empty(jamal) };
    save_profile(store, &jamals).await.unwrap();

    assert_eq!(store.count_wrong_code(karim, &waiting).await.unwrap(), 1);
    let counted = |n| Some(PendingPhone { wrong_codes: n, ..waiting.clone() });
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().pending_phone, counted(1));
    assert_eq!(store.alert_profile(jamal).await.unwrap().unwrap().pending_phone, counted(0), "each its own");
    let replaced = [
        PendingPhone::new(number.into(), "482107".into(), at(10)),
        PendingPhone::new(number.into(), "482106".into(), at(11)),
        PendingPhone::new("+8801711000006".into(), "482106".into(), at(10)),
    ];
    for other in &replaced {
        assert_err!(store.count_wrong_code(karim, other).await, StoreError::VersionConflict);
    }
    assert_err!(store.count_wrong_code(UserId::new(), &waiting).await, StoreError::VersionConflict);
    // A count read before the last one was made still names the same number waiting.
    let read_before = PendingPhone { wrong_codes: 0, ..waiting.clone() };
    assert_eq!(store.count_wrong_code(karim, &read_before).await.unwrap(), 2);

    // Four servers count at once: 3, 4, 5 and 6, each once.
    let count = || store.count_wrong_code(karim, &waiting);
    let (a, b, c, d) = tokio::join!(count(), count(), count(), count());
    let mut counts = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    counts.sort_unstable();
    assert_eq!(counts, [3, 4, 5, 6]);
    let dropped = store.alert_profile(karim).await.unwrap().unwrap().pending_phone.unwrap();
    assert!(dropped.dropped() && dropped.is_same_wait(&waiting), "{dropped:?}");
    assert_err!(store.confirm_phone(karim, &waiting).await, StoreError::VersionConflict);
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().phone, None, "a dropped number is no one's");
    // Jamal's wait for the same number is his own: his code still confirms it.
    store.count_wrong_code(jamal, &waiting).await.unwrap();
    store.confirm_phone(jamal, &waiting).await.unwrap();
    let confirmed = store.alert_profile(jamal).await.unwrap().unwrap();
    assert_eq!((confirmed.phone.as_deref(), confirmed.pending_phone), (Some(number), None));

    // Written whole (a profile sent back, read before it was dropped), the number stays dropped;
    // a number set again starts at 0.
    let kept = AlertProfile { pending_phone: Some(PendingPhone { wrong_codes: 3, ..waiting.clone() }), ..karims };
    save_profile(store, &kept).await.unwrap();
    let still = AlertProfile { pending_phone: counted(6), ..kept.clone() };
    assert_eq!(store.alert_profile(karim).await.unwrap(), Some(still));
    let again = PendingPhone::new(number.into(), "900117".into(), at(20));
    save_profile(store, &AlertProfile { pending_phone: Some(again.clone()), ..kept }).await.unwrap();
    assert_eq!(store.count_wrong_code(karim, &again).await.unwrap(), 1);
}

/// A profile saved from a read made before wrong codes were counted (the person changed their
/// language, or their owner saved their settings) keeps the count: the same number waiting keeps
/// the larger of the stored and the written count, so a guesser cannot have it reset, and a
/// number dropped meanwhile stays dropped. A number waiting anew (another number, code or time
/// set) starts from the count written.
pub async fn a_profile_saved_keeps_the_wrong_codes_counted_since_it_was_read(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let number = "+8801711000005";
    let waiting = PendingPhone::new(number.into(), "482106".into(), at(10));
    let set =
        AlertProfile { pending_phone: Some(waiting.clone()), language: "en".into(), ..AlertProfile::empty(karim) };
    save_profile(store, &set).await.unwrap();
    let counted = |n| Some(PendingPhone { wrong_codes: n, ..waiting.clone() });

    let read = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!(store.count_wrong_code(karim, &waiting).await.unwrap(), 1);
    assert_eq!(store.count_wrong_code(karim, &waiting).await.unwrap(), 2);
    let saved = AlertProfile { language: "bn".into(), ..read.clone() };
    store.set_alert_profile(&saved, Some(&read)).await.expect("a wrong code counted meanwhile is no change");
    let stored = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!(
        stored,
        AlertProfile { pending_phone: counted(2), ..saved.clone() },
        "the language changed, the count stayed"
    );

    for n in 3..=PendingPhone::MAX_WRONG_CODES {
        assert_eq!(store.count_wrong_code(karim, &waiting).await.unwrap(), n);
    }
    assert!(
        store.alert_profile(karim).await.unwrap().unwrap().pending_phone.unwrap().dropped(),
        "dropped at the fifth"
    );
    // Saved from the read after two counts, or written whole with none: still dropped.
    let english = AlertProfile { language: "en".into(), ..stored.clone() };
    store.set_alert_profile(&english, Some(&stored)).await.expect("the number dropped meanwhile is no change");
    save_profile(store, &read).await.unwrap();
    let after = store.alert_profile(karim).await.unwrap().unwrap();
    assert_eq!(after.pending_phone, counted(PendingPhone::MAX_WRONG_CODES), "a save brings no dropped number back");
    assert_err!(store.confirm_phone(karim, &waiting).await, StoreError::VersionConflict);
    assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().phone, None);

    // A number waiting anew starts from what is written, whichever of its number, code or time
    // set is new; written with more than stored (a copy), the same number keeps the larger.
    let anew = [
        PendingPhone::new(number.into(), "900117".into(), at(10)),
        PendingPhone::new(number.into(), "900117".into(), at(20)),
        PendingPhone::new("+8801711000006".into(), "900117".into(), at(20)),
    ];
    for pending in anew {
        save_profile(store, &AlertProfile { pending_phone: Some(pending.clone()), ..saved.clone() }).await.unwrap();
        let stored = store.alert_profile(karim).await.unwrap().unwrap();
        assert_eq!(stored.pending_phone, Some(pending.clone()), "{pending:?} starts at 0");
        assert_eq!(store.count_wrong_code(karim, &pending).await.unwrap(), 1);
        let more = PendingPhone { wrong_codes: 3, ..pending };
        save_profile(store, &AlertProfile { pending_phone: Some(more.clone()), ..saved.clone() }).await.unwrap();
        assert_eq!(store.alert_profile(karim).await.unwrap().unwrap().pending_phone, Some(more));
    }
}

/// A profile's save lands only on the profile it was made from (`Store::set_alert_profile`'s
/// `read`): one made before a number was confirmed or taken off, a phone's token registered or
/// taken out, or another number set is refused with `VersionConflict` and changes nothing, where
/// it would have put back what it read; made from the profile read again, it lands. A wrong code counted
/// meanwhile is no change (the save keeps the count), and a save made from no profile is refused
/// once there is one.
pub async fn a_profile_saved_lands_only_on_the_profile_it_was_made_from(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let phone = crate::sessions::mobile(karim, b"k-access", b"k-refresh", at(0));
    store.create_session(&phone).await.unwrap();
    let token = |name: &str| format!("ExponentPushToken[{name}]");
    let register = |name: &str| {
        let (token, session) = (token(name), phone.id);
        async move { store.register_push_token(karim, &token, session, 10, at(1)).await.unwrap() }
    };
    let stored = || async move { store.alert_profile(karim).await.unwrap() };
    // A save in another language, made from `read`.
    let bangla = |read: &AlertProfile| {
        let language = if read.language == "bn" { "en" } else { "bn" };
        AlertProfile { language: language.into(), ..read.clone() }
    };

    // Made from no profile: it lands while there is none, and is refused once there is one.
    let waiting = PendingPhone::new("+8801711000005".into(), "482106".into(), at(10));
    let set = AlertProfile { pending_phone: Some(waiting.clone()), ..AlertProfile::empty(karim) };
    store.set_alert_profile(&set, None).await.unwrap();
    assert_err!(store.set_alert_profile(&bangla(&set), None).await, StoreError::VersionConflict);
    assert_eq!(stored().await, Some(set.clone()), "nothing written");
    register("one").await;

    // Each change made between a read and the save made from it.
    let read = stored().await.unwrap();
    store.confirm_phone(karim, &waiting).await.unwrap();
    let confirmed = stored().await;
    assert_eq!(confirmed.as_ref().and_then(|p| p.phone.as_deref()), Some("+8801711000005"));
    assert_err!(store.set_alert_profile(&bangla(&read), Some(&read)).await, StoreError::VersionConflict);
    assert_eq!(stored().await, confirmed, "a number confirmed meanwhile stays confirmed");

    let read = stored().await.unwrap();
    register("two").await;
    let registered = stored().await;
    assert_err!(store.set_alert_profile(&bangla(&read), Some(&read)).await, StoreError::VersionConflict);
    assert_eq!(stored().await, registered, "a token registered meanwhile stays");

    let read = stored().await.unwrap();
    assert!(store.remove_push_token(karim, &token("one")).await.unwrap());
    let removed = stored().await;
    assert_err!(store.set_alert_profile(&bangla(&read), Some(&read)).await, StoreError::VersionConflict);
    assert_eq!(stored().await, removed, "a token taken out meanwhile does not come back");

    let read = stored().await.unwrap();
    let taken_off = AlertProfile { phone: None, ..read.clone() };
    store.set_alert_profile(&taken_off, Some(&read)).await.unwrap();
    assert_err!(store.set_alert_profile(&bangla(&read), Some(&read)).await, StoreError::VersionConflict);
    assert_eq!(stored().await, Some(taken_off), "a number taken off meanwhile does not come back");

    let read = stored().await.unwrap();
    let another = PendingPhone::new("+8801711000006".into(), "900117".into(), at(20));
    let asked = AlertProfile { pending_phone: Some(another.clone()), ..read.clone() };
    store.set_alert_profile(&asked, Some(&read)).await.unwrap();
    assert_err!(store.set_alert_profile(&bangla(&read), Some(&read)).await, StoreError::VersionConflict);
    assert_eq!(stored().await, Some(asked.clone()), "a number set meanwhile still waits");

    // Made from the profile read now, it lands; a wrong code counted meanwhile is no change.
    let read = stored().await.unwrap();
    assert_eq!(store.count_wrong_code(karim, &another).await.unwrap(), 1);
    store.set_alert_profile(&bangla(&read), Some(&read)).await.expect("a wrong code counted meanwhile");
    let counted = PendingPhone { wrong_codes: 1, ..another };
    let saved = AlertProfile { pending_phone: Some(counted), ..bangla(&read) };
    assert_eq!(stored().await, Some(saved.clone()), "saved, with the count");
    assert_eq!(saved.push_tokens, [token("two")]);
    assert_eq!(saved.phone, None);
}

/// A phone's Expo push token belongs to one account at a time across the store: set for another
/// person, it leaves whoever had it (in the same write), the others' tokens and order staying as
/// they were; people setting one token at once leave it with one of them; a token is taken out of
/// its own person's profile alone, and the export lists each token once.
pub async fn a_push_token_belongs_to_one_account_at_a_time(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let jamila = tenancy(store, "jamila", 1).await;
    let (karim, jamal, salma) = (rahim.users[0], rahim.users[1], jamila.users[0]);
    let token = |name: &str| format!("ExponentPushToken[{name}]");
    let with = |user, tokens: &[&str]| AlertProfile {
        push_tokens: tokens.iter().map(|t| token(t)).collect(),
        ..AlertProfile::empty(user)
    };
    let tokens_of = |user| async move { store.alert_profile(user).await.unwrap().map(|p| p.push_tokens) };
    save_profile(store, &with(karim, &["c", "a", "b"])).await.unwrap();
    assert_eq!(tokens_of(karim).await, Some(vec![token("c"), token("a"), token("b")]), "in their order");
    // Jamal's phone was Karim's ("a"); Salma, at another pump, has Karim's old phone ("b").
    save_profile(store, &with(jamal, &["a", "d"])).await.unwrap();
    save_profile(store, &with(salma, &["b"])).await.unwrap();
    assert_eq!(tokens_of(karim).await, Some(vec![token("c")]), "the phones passed on left him");
    assert_eq!(tokens_of(jamal).await, Some(vec![token("a"), token("d")]));
    assert_eq!(tokens_of(salma).await, Some(vec![token("b")]));
    // Writing his profile again keeps what is his and takes nothing back.
    save_profile(store, &with(karim, &["c"])).await.unwrap();
    assert_eq!(tokens_of(jamal).await, Some(vec![token("a"), token("d")]));

    // Taken out: by its own person only.
    assert!(!store.remove_push_token(karim, &token("a")).await.unwrap(), "Jamal's");
    assert_eq!(tokens_of(jamal).await, Some(vec![token("a"), token("d")]));
    assert!(store.remove_push_token(jamal, &token("a")).await.unwrap());
    assert!(!store.remove_push_token(jamal, &token("a")).await.unwrap(), "gone already");
    assert!(!store.remove_push_token(UserId::new(), &token("d")).await.unwrap());
    assert_eq!(tokens_of(jamal).await, Some(vec![token("d")]));
    // A token taken out is free: another person may have it, and the first one's write moves
    // nothing back.
    save_profile(store, &with(karim, &["c", "a"])).await.unwrap();
    assert_eq!(tokens_of(karim).await, Some(vec![token("c"), token("a")]));

    // Three people set one phone's token at once: it is one person's.
    let race = [with(karim, &["c", "x"]), with(jamal, &["d", "x"]), with(salma, &["s", "x"])];
    let (a, b, c) =
        tokio::join!(save_profile(store, &race[0]), save_profile(store, &race[1]), save_profile(store, &race[2]));
    for result in [a, b, c] {
        result.unwrap();
    }
    let mut holders = Vec::new();
    for user in [karim, jamal, salma] {
        let tokens = tokens_of(user).await.unwrap();
        if tokens.contains(&token("x")) {
            holders.push(user);
        }
        let own = [(karim, "c"), (jamal, "d"), (salma, "s")].into_iter().find(|(u, _)| *u == user).unwrap().1;
        assert!(tokens.contains(&token(own)), "their own token stays: {tokens:?}");
    }
    assert_eq!(holders.len(), 1, "one account has the phone's token");
    let exported = store.export().await.unwrap();
    let mut listed: Vec<&String> = exported.alert_profiles.iter().flat_map(|p| &p.push_tokens).collect();
    let all = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), all, "each token once in the export: {listed:?}");
}

/// A text the SMS webhook takes is claimed in the store: once, by one of any number of servers
/// claiming it at once, until its claim is over (then it is taken afresh); a text given up is
/// taken afresh at once; keys are independent. The webhook's memory outlives a restart with it.
pub async fn a_text_is_taken_once_while_its_claim_lasts(store: &dyn Store) {
    let keep = 601_000;
    let t = at(1_000);
    assert!(store.claim_text("sms:aa", t, keep).await.unwrap());
    assert!(!store.claim_text("sms:aa", t + keep - 1, keep).await.unwrap(), "sent again");
    assert!(store.claim_text("sms-id:aa", t + 1, keep).await.unwrap(), "another key");
    assert!(store.claim_text("sms:bb", t + keep - 1, keep).await.unwrap());
    store.release_text("sms:bb").await.unwrap();
    store.release_text("sms:never-taken").await.unwrap();
    assert!(store.claim_text("sms:bb", t + keep - 1, keep).await.unwrap(), "given up: taken afresh");
    assert!(store.claim_text("sms:aa", t + keep, keep).await.unwrap(), "its claim is over");
    assert!(!store.claim_text("sms:aa", t + keep + 1, keep).await.unwrap(), "claimed again from then");

    let claim = || store.claim_text("help:+8801711000001", t, keep);
    let (a, b, c, d) = tokio::join!(claim(), claim(), claim(), claim());
    let taken = [a, b, c, d].into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(taken, 1, "one server takes it");
}

/// Rate limits are counted in the store: a window takes `max` sends, then says when it ends;
/// a send limited by two windows is counted in both or in neither; a new window starts empty;
/// sends raced from several servers at once are admitted exactly `max` times.
pub async fn send_windows_count_across_senders(store: &dyn Store) {
    let person = |max| SendWindow { key: "person:karim".into(), span_ms: 3_600_000, max };
    let sms = SendWindow { key: "sms".into(), span_ms: 60_000, max: 3 };
    let hour = at(3_600 * 100);
    for n in 0..3 {
        assert_eq!(store.admit_send(&[person(5), sms.clone()], hour + n).await.unwrap(), Admission::Admitted);
    }
    // The gateway's minute is full: nothing is counted for the person either.
    assert_eq!(
        store.admit_send(&[person(5), sms.clone()], hour + 10).await.unwrap(),
        Admission::Full { until: hour + 60_000 }
    );
    assert_eq!(store.admit_send(&[person(5)], hour + 20).await.unwrap(), Admission::Admitted, "4th of 5");
    assert_eq!(store.admit_send(&[person(5)], hour + 30).await.unwrap(), Admission::Admitted, "5th of 5");
    assert_eq!(store.admit_send(&[person(5)], hour + 40).await.unwrap(), Admission::Full { until: hour + 3_600_000 });
    // The next minute has room for SMS, but the person's hour is still full.
    assert_eq!(
        store.admit_send(&[person(5), sms.clone()], hour + 60_000).await.unwrap(),
        Admission::Full { until: hour + 3_600_000 }
    );
    assert_eq!(store.admit_send(std::slice::from_ref(&sms), hour + 60_000).await.unwrap(), Admission::Admitted);
    // The next hour starts empty.
    assert_eq!(store.admit_send(&[person(5)], hour + 3_600_000).await.unwrap(), Admission::Admitted);

    // Eight senders race for a window of three.
    let race = SendWindow { key: "sms:race".into(), span_ms: 60_000, max: 3 };
    let windows = [race];
    let admit = || store.admit_send(&windows, hour);
    let (a, b, c, d, e, f, g, h) = tokio::join!(admit(), admit(), admit(), admit(), admit(), admit(), admit(), admit());
    let results = [a, b, c, d, e, f, g, h];
    let admitted = results.into_iter().filter(|r| *r.as_ref().unwrap() == Admission::Admitted).count();
    assert_eq!(admitted, 3, "one limit for every sender");
}

/// Old notifications are purged: read ones before the first moment, every one before the second
/// (with its outbox item); newer ones and unread ones newer than the second stay.
pub async fn old_notifications_are_purged(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let notice = |seconds| Notice::new(karim, rahim.admin, NoticeKind::RunEnded, at(seconds), Facts::default());
    // 10: ancient and unread; 20: old and read; 30: old, unread; 40: recent and read.
    let written = store.add_notices(&[notice(10), notice(20), notice(30), notice(40)]).await.unwrap();
    let ids: Vec<_> = written.iter().map(|n| n.id).collect();
    store.mark_notifications_read(karim, Some(&[ids[1], ids[3]])).await.unwrap();
    assert_eq!(store.purge_notifications(at(35), at(15)).await.unwrap(), 2);
    let left: Vec<_> = store.notifications(karim, 10).await.unwrap().iter().map(|n| n.id).collect();
    assert_eq!(left, [ids[3], ids[2]]);
    let claimed: BTreeSet<_> =
        store.claim_outbox("a", at(100), at(200), 10).await.unwrap().iter().map(|i| i.notification.id).collect();
    assert_eq!(claimed, BTreeSet::from([ids[2], ids[3]]), "the purged ones' outbox items are gone");
    assert_eq!(store.purge_notifications(at(35), at(15)).await.unwrap(), 0);
}

/// Push tickets wait in the store for their receipts: a claim takes those due (not before their
/// time, not expired) and holds them until its end, so another sender gets none of them meanwhile
/// and any sender gets them once the claim has run out; tickets read are deleted, the others asked
/// for again when told; an id stored already is left as it is; the purge drops the expired.
pub async fn push_tickets_wait_for_their_receipts_in_the_store(store: &dyn Store) {
    use pumppilot_store::PushTicket;
    let rahim = tenancy(store, "rahim", 1).await;
    let karim = rahim.users[0];
    let ticket = |id: &str, sent: i64| PushTicket {
        id: id.to_owned(),
        user: karim,
        token: format!("ExponentPushToken[{id}]"),
        sent_at: at(sent),
        ask_at: at(sent + 900),
        expires_at: at(sent + 86_400),
    };
    let ids = |tickets: &[PushTicket]| tickets.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    store.add_push_tickets(&[ticket("a", 0), ticket("b", 10)]).await.unwrap();
    store.add_push_tickets(&[ticket("c", 20)]).await.unwrap();
    // The same ticket again (a retried write) changes nothing.
    store.add_push_tickets(&[PushTicket { ask_at: at(0), ..ticket("c", 20) }]).await.unwrap();
    assert_eq!(store.claim_push_tickets(at(899), at(1_019), 10).await.unwrap(), [], "not before their time");
    let first = store.claim_push_tickets(at(915), at(1_035), 10).await.unwrap();
    assert_eq!(first, [ticket("a", 0), ticket("b", 10)], "as stored, oldest first");
    assert_eq!(ids(&store.claim_push_tickets(at(920), at(1_040), 10).await.unwrap()), ["c"], "the claimed are held");
    // The first claimer read a's receipt; b's is not ready: asked for again at 1,815.
    store.settle_push_tickets(&["a".to_owned()], &["b".to_owned()], at(1_815)).await.unwrap();
    // c's claimer died: c is free again once its claim ran out, a is gone, b waits.
    assert_eq!(store.claim_push_tickets(at(1_039), at(1_100), 10).await.unwrap(), []);
    let again = store.claim_push_tickets(at(1_040), at(1_160), 10).await.unwrap();
    assert_eq!(again, [PushTicket { ask_at: at(1_040), ..ticket("c", 20) }]);
    assert_eq!(
        ids(&store.claim_push_tickets(at(1_815), at(1_935), 10).await.unwrap()),
        ["c", "b"],
        "c's second claim ran out at 1,160: the oldest due first"
    );
    // A limit takes the oldest due first; unknown ids settle nothing.
    store.settle_push_tickets(&["nope".to_owned()], &["b".to_owned(), "c".to_owned()], at(2_000)).await.unwrap();
    assert_eq!(ids(&store.claim_push_tickets(at(2_000), at(2_120), 1).await.unwrap()).len(), 1);
    assert_eq!(store.claim_push_tickets(at(2_000), at(2_120), 1).await.unwrap().len(), 1);
    assert_eq!(store.claim_push_tickets(at(2_000), at(2_120), 1).await.unwrap(), []);
    // b and c are next asked for after they expire.
    store.settle_push_tickets(&[], &["b".to_owned(), "c".to_owned()], at(90_000)).await.unwrap();
    // Racing claims share none.
    let many: Vec<PushTicket> = (0..40).map(|n| ticket(&format!("t{n:02}"), 3_000)).collect();
    store.add_push_tickets(&many).await.unwrap();
    let (x, y, z) = tokio::join!(
        store.claim_push_tickets(at(3_900), at(4_020), 16),
        store.claim_push_tickets(at(3_900), at(4_020), 16),
        store.claim_push_tickets(at(3_900), at(4_020), 16),
    );
    let mut seen = BTreeSet::new();
    for claimed in [x.unwrap(), y.unwrap(), z.unwrap()] {
        for t in claimed {
            assert!(seen.insert(t.id), "a ticket was claimed twice");
        }
    }
    assert_eq!(seen.len(), 40);
    // Expired: never claimed, and purged.
    assert_eq!(store.claim_push_tickets(at(90_000), at(90_120), 100).await.unwrap(), [], "all expired");
    assert_eq!(store.purge_push_tickets(at(86_420)).await.unwrap(), 2, "b and c (a was read)");
    assert_eq!(store.purge_push_tickets(at(86_420)).await.unwrap(), 0);
    assert_eq!(store.claim_push_tickets(at(86_430), at(86_550), 100).await.unwrap().len(), 40, "the others stay");
    assert_eq!(store.purge_push_tickets(at(89_400)).await.unwrap(), 40);
}
