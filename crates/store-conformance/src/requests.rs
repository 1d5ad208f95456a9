//! Minute requests: decided once, approved together with their recharge.

use pumppilot_engine::{
    AdminId, Credit, Event, Facts, LedgerKind, Notice, NoticeKind, RejectReason, RequestId, Timestamp, UserId,
    request_rejected,
};
use pumppilot_store::{
    AuditEntry, AuditedWrite, Commit, Decision, Delivery, MinuteRequest, RequestQuery, RequestStatus, Store,
    StoreError, request_notice_key,
};

use crate::support::{Driver, assert_err, at, load, tenancy};

fn request(user: UserId, admin: AdminId, minutes: i64, created_at: Timestamp) -> MinuteRequest {
    MinuteRequest {
        id: RequestId::new(),
        user_id: user,
        admin_id: admin,
        minutes,
        note: format!("paid for {minutes} minutes"),
        status: RequestStatus::Pending,
        created_at,
        decided_at: None,
        decided_by: None,
        reject_reason: None,
    }
}

fn decision(request: &MinuteRequest, status: RequestStatus, at: Timestamp) -> Decision {
    Decision {
        request_id: request.id,
        admin_id: request.admin_id,
        status,
        decided_by: request.admin_id.0,
        at,
        reason: None,
    }
}

/// The recharge of an approved request.
fn approval(request: &MinuteRequest) -> Event {
    Event::Credit(Credit {
        user: request.user_id,
        seconds: request.minutes * 60,
        kind: LedgerKind::RequestApproved,
        actor: request.admin_id.0,
        note: request.note.clone(),
        request_id: Some(request.id),
        once_key: None,
        receipt_id: None,
    })
}

/// The request as stored after `decision`.
fn decided(request: &MinuteRequest, decision: &Decision) -> MinuteRequest {
    MinuteRequest {
        status: decision.status,
        decided_at: Some(decision.at),
        decided_by: Some(decision.decided_by),
        reject_reason: decision.reason,
        ..request.clone()
    }
}

/// Approval commits the recharge, the decision and the audit line together; a second decision
/// is refused, and a refused approval leaves no ledger entry behind.
pub async fn approving_with_a_commit_decides_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let q = tenancy(store, "q", 1).await;
    let (admin, u1) = (rahim.admin, rahim.users[0]);
    let asked = request(u1, admin, 10, at(0));
    store.create_minute_request(&asked, &[]).await.expect("create request");
    assert_eq!(store.minute_request(asked.id).await.unwrap(), Some(asked.clone()));

    let mut pump = Driver::load(store, admin).await;
    let records = pump.tenant.apply(approval(&asked), at(10)).records;
    let approve = decision(&asked, RequestStatus::Approved, at(10));
    let audit = [AuditEntry {
        admin_id: Some(admin),
        at: at(10),
        actor_id: Some(admin.0),
        action: "request.approve".to_owned(),
        target_id: Some(asked.id.to_string()),
        detail: "10 minutes".to_owned(),
    }];
    pump.commit(&records, &audit, Some(&approve), None).await.expect("approve");
    pump.assert_stored().await;
    assert_eq!(store.minute_request(asked.id).await.unwrap(), Some(decided(&asked, &approve)));
    let ledger = store.ledger(u1, 10).await.unwrap();
    assert_eq!(ledger, records.ledger);
    assert_eq!((ledger[0].kind, ledger[0].request_id), (LedgerKind::RequestApproved, Some(asked.id)));
    assert_eq!(store.audit(Some(admin), 10).await.unwrap(), audit);
    assert_eq!(load(store, admin).await.wallet(u1), 600);

    // A second approval (a double click, a second server) is refused with its recharge.
    let mut again = pump.tenant.clone();
    let records = again.apply(approval(&asked), at(20)).records;
    let approve_again = decision(&asked, RequestStatus::Approved, at(20));
    let commit = Commit {
        tenant: &again,
        records: &records,
        audit: &[],
        decision: Some(&approve_again),
        suspension: None,
        receipt: None,
    };
    assert_err!(store.commit(commit).await, StoreError::AlreadyDecided);
    pump.assert_stored().await;
    assert_eq!(store.ledger(u1, 10).await.unwrap().len(), 1, "the refused recharge was rolled back");
    assert_eq!(store.audit(Some(admin), 10).await.unwrap().len(), 1);

    let reject = decision(&asked, RequestStatus::Rejected, at(30));
    assert_err!(store.decide_minute_request(&reject).await, StoreError::AlreadyDecided);
    assert_eq!(store.minute_request(asked.id).await.unwrap(), Some(decided(&asked, &approve)));

    // Unknown requests, and other tenants' requests, are not found.
    let unknown = request(u1, admin, 5, at(40));
    assert_err!(
        store.decide_minute_request(&decision(&unknown, RequestStatus::Rejected, at(40))).await,
        StoreError::NotFound
    );
    let theirs = request(q.users[0], q.admin, 5, at(41));
    store.create_minute_request(&theirs, &[]).await.unwrap();
    let mut crossed = decision(&theirs, RequestStatus::Rejected, at(42));
    crossed.admin_id = admin;
    assert_err!(store.decide_minute_request(&crossed).await, StoreError::NotFound);
    assert_eq!(store.minute_request(theirs.id).await.unwrap(), Some(theirs));
}

/// One request of a user waits at a time, also when two arrive at once; once it is decided, the
/// user may ask again. Other users' requests are not in the way.
pub async fn one_pending_request_per_user(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let asked = [request(u1, admin, 10, at(0)), request(u1, admin, 20, at(0))];
    let (a, b) = tokio::join!(store.create_minute_request(&asked[0], &[]), store.create_minute_request(&asked[1], &[]));
    let created: Vec<&MinuteRequest> = [(a, &asked[0]), (b, &asked[1])]
        .into_iter()
        .filter_map(|(result, asked)| match result {
            Ok(()) => Some(asked),
            Err(StoreError::RequestPending) => None,
            Err(other) => panic!("expected Ok or RequestPending, got {other:?}"),
        })
        .collect();
    assert_eq!(created.len(), 1, "exactly one of two requests at once waits");
    let waiting = created[0].clone();
    assert_err!(store.create_minute_request(&request(u1, admin, 30, at(1)), &[]).await, StoreError::RequestPending);
    store.create_minute_request(&request(u2, admin, 30, at(1)), &[]).await.expect("another user asks");
    let pending = RequestQuery { admin, user: Some(u1), status: Some(RequestStatus::Pending) };
    assert_eq!(store.minute_requests(&pending).await.unwrap(), std::slice::from_ref(&waiting));

    store.decide_minute_request(&decision(&waiting, RequestStatus::Rejected, at(2))).await.expect("reject");
    store.create_minute_request(&request(u1, admin, 40, at(3)), &[]).await.expect("asks again after the decision");
}

/// A rejection is final; requests list by tenant, user and status, newest first.
pub async fn rejecting_decides_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let first = request(u1, admin, 10, at(0));
    let second = request(u2, admin, 20, at(1));
    let third = request(u1, admin, 30, at(2));
    let theirs = request(q.users[0], q.admin, 40, at(3));
    for asked in [&first, &second, &theirs] {
        store.create_minute_request(asked, &[]).await.unwrap();
    }

    let reject = decision(&first, RequestStatus::Rejected, at(5));
    store.decide_minute_request(&reject).await.expect("reject");
    // u1 may ask again once their first request is decided.
    store.create_minute_request(&third, &[]).await.unwrap();
    let rejected = decided(&first, &reject);
    assert_eq!(store.minute_request(first.id).await.unwrap(), Some(rejected.clone()));
    assert_err!(
        store.decide_minute_request(&decision(&first, RequestStatus::Rejected, at(6))).await,
        StoreError::AlreadyDecided
    );

    // Approving a rejected request is refused, with its recharge.
    let mut tenant = load(store, admin).await;
    let records = tenant.apply(approval(&first), at(7)).records;
    let approve = decision(&first, RequestStatus::Approved, at(7));
    let commit = Commit {
        tenant: &tenant,
        records: &records,
        audit: &[],
        decision: Some(&approve),
        suspension: None,
        receipt: None,
    };
    assert_err!(store.commit(commit).await, StoreError::AlreadyDecided);
    assert_eq!(store.ledger(u1, 10).await.unwrap(), vec![]);
    assert_eq!(load(store, admin).await.version, 0);
    assert_eq!(store.minute_request(first.id).await.unwrap(), Some(rejected.clone()));

    let query = |user, status| RequestQuery { admin, user, status };
    let listed = |query: RequestQuery| async move { store.minute_requests(&query).await.unwrap() };
    assert_eq!(listed(query(None, None)).await, [third.clone(), second.clone(), rejected.clone()]);
    assert_eq!(listed(query(Some(u1), None)).await, [third.clone(), rejected.clone()]);
    assert_eq!(listed(query(None, Some(RequestStatus::Pending))).await, [third.clone(), second.clone()]);
    assert_eq!(listed(query(Some(u1), Some(RequestStatus::Pending))).await, std::slice::from_ref(&third));
    assert_eq!(listed(query(None, Some(RequestStatus::Rejected))).await, [rejected]);
    assert_eq!(listed(query(None, Some(RequestStatus::Approved))).await, vec![]);
    assert_eq!(listed(RequestQuery { admin: q.admin, user: None, status: None }).await, [theirs]);
}

/// Deciding a request settles the owner's notice of it (keyed [`request_notice_key`]), in the
/// decision's own write, whichever way it is written: an approval's commit, a rejection with its
/// audit line, a rejection alone. The notification is read, and its delivery done, never sent: one
/// a sender holds right then is done too (its finish finds it so), one already sent stays as it
/// was. A decision refused settles nothing, and the owner's other notices stay unread.
pub async fn deciding_a_request_settles_the_owners_notice_of_it(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let q = tenancy(store, "q", 0).await;
    let (admin, owner) = (rahim.admin, rahim.admin.0);
    let asked: Vec<MinuteRequest> =
        (0..3).map(|n| request(rahim.users[n], admin, 10 * (n as i64 + 1), at(n as i64))).collect();
    for request in &asked {
        let facts = Facts { seconds: Some(request.minutes * 60), ..Facts::default() };
        let new = Notice {
            key: Some(request_notice_key(request.id)),
            ..Notice::new(owner, admin, NoticeKind::RequestNew, request.created_at, facts)
        };
        store.create_minute_request(request, &[new]).await.expect("ask");
    }
    let silent = Notice::new(owner, admin, NoticeKind::DeviceOffline, at(4), Facts::default());
    store.add_notices(&[silent]).await.unwrap();
    assert_eq!(store.unread_notifications(owner).await.unwrap(), 4);
    let bell = store.notifications(owner, 10).await.unwrap();
    let notice_of = |request: &MinuteRequest| {
        bell.iter().find(|n| n.facts.seconds == Some(request.minutes * 60)).expect("the request's notice").id
    };
    // The second's notice is being sent right now; the third's went already.
    let being_sent = notice_of(&asked[1]);
    assert!(store.claim_outbox_item(being_sent, "server-1", at(5), at(300)).await.unwrap().is_some());
    let sent = notice_of(&asked[2]);
    store.claim_outbox_item(sent, "server-1", at(5), at(300)).await.unwrap().expect("claimed");
    store.finish_outbox(sent, "server-1", &Delivery::Done { at: at(5) }).await.unwrap();

    // Approved with its recharge.
    let mut pump = Driver::load(store, admin).await;
    let records = pump.tenant.apply(approval(&asked[0]), at(10)).records;
    pump.commit(&records, &[], Some(&decision(&asked[0], RequestStatus::Approved, at(10))), None).await.unwrap();
    // Rejected with its audit line.
    let reject = decision(&asked[1], RequestStatus::Rejected, at(11));
    let entry = AuditEntry {
        admin_id: Some(admin),
        at: at(11),
        actor_id: Some(owner),
        action: "request.reject".to_owned(),
        target_id: Some(asked[1].id.to_string()),
        detail: String::new(),
    };
    store.write_audited(&AuditedWrite::Decide { decision: reject, notices: Vec::new() }, &entry).await.unwrap();
    // Refused (another tenant's decision of it): nothing is settled.
    let crossed = Decision { admin_id: q.admin, ..decision(&asked[2], RequestStatus::Rejected, at(12)) };
    assert_err!(store.decide_minute_request(&crossed).await, StoreError::NotFound);
    assert_eq!(store.unread_notifications(owner).await.unwrap(), 2, "the third's and the silent device's");
    // Rejected alone.
    store.decide_minute_request(&decision(&asked[2], RequestStatus::Rejected, at(13))).await.unwrap();

    let bell = store.notifications(owner, 10).await.unwrap();
    let unread: Vec<NoticeKind> = bell.iter().filter(|n| !n.read).map(|n| n.kind).collect();
    assert_eq!(unread, [NoticeKind::DeviceOffline], "every request's notice is read");
    assert_eq!(store.unread_notifications(owner).await.unwrap(), 1);
    let due = store.claim_outbox("server-2", at(600), at(700), 10).await.unwrap();
    let owners: Vec<NoticeKind> =
        due.iter().map(|item| &item.notification).filter(|n| n.user_id == owner).map(|n| n.kind).collect();
    assert_eq!(owners, [NoticeKind::DeviceOffline], "no request's notice is left to send");
    assert_err!(
        store.finish_outbox(being_sent, "server-1", &Delivery::Done { at: at(14) }).await,
        StoreError::ClaimLost
    );
    assert!(store.outbox_of(owner, at(0)).await.unwrap().iter().all(|item| item.notification.id != being_sent));
}

/// A rejection keeps the owner's reason with it, whichever way it is written (with its audit line
/// and the farmer's notice, as the server writes it, or alone), and a rejection without one reads
/// back without one: one by one, in the lists, and in a copy made by an export and an import. A
/// second decision, refused, leaves the first reason as it was.
pub async fn a_rejection_keeps_its_reason(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 5).await;
    let (admin, owner) = (rahim.admin, rahim.admin.0);
    let asked: Vec<MinuteRequest> =
        (0..5).map(|n| request(rahim.users[n], admin, 10 * (n as i64 + 1), at(n as i64))).collect();
    for request in &asked {
        store.create_minute_request(request, &[]).await.expect("ask");
    }
    // Every reason, and none.
    let reasons = [RejectReason::ALL.map(Some).as_slice(), &[None]].concat();
    let mut rejected = Vec::new();
    for (n, (request, reason)) in asked.iter().zip(reasons.iter().copied()).enumerate() {
        let decided_at = at(10 + n as i64);
        let reject = Decision { reason, ..decision(request, RequestStatus::Rejected, decided_at) };
        if n % 2 == 0 {
            let told = request_rejected(admin, request.user_id, request.minutes * 60, reason, decided_at);
            let entry = AuditEntry {
                admin_id: Some(admin),
                at: decided_at,
                actor_id: Some(owner),
                action: "request.reject".to_owned(),
                target_id: Some(request.id.to_string()),
                detail: String::new(),
            };
            store.write_audited(&AuditedWrite::Decide { decision: reject.clone(), notices: vec![told] }, &entry).await
        } else {
            store.decide_minute_request(&reject).await
        }
        .expect("reject");
        rejected.push(decided(request, &reject));
    }
    for (request, reason) in rejected.iter().zip(&reasons) {
        let read = store.minute_request(request.id).await.unwrap().expect("the request");
        assert_eq!(read.reject_reason, *reason);
        assert_eq!(read, *request);
    }
    let listed = store.minute_requests(&RequestQuery { admin, user: None, status: None }).await.unwrap();
    assert_eq!(listed, rejected.iter().rev().cloned().collect::<Vec<_>>(), "newest first, each with its reason");
    let farmers = RequestQuery { admin, user: Some(rahim.users[4]), status: Some(RequestStatus::Rejected) };
    assert_eq!(store.minute_requests(&farmers).await.unwrap(), [rejected[4].clone()], "the one without a reason");
    // The farmer's notice says the reason too.
    let bell = store.notifications(rahim.users[0], 10).await.unwrap();
    assert_eq!(bell.iter().map(|n| n.facts.reject_reason).collect::<Vec<_>>(), [Some(RejectReason::NotPaid)]);

    // Decided again, with another reason: refused, the first reason kept.
    let again =
        Decision { reason: Some(RejectReason::TooMany), ..decision(&asked[0], RequestStatus::Rejected, at(20)) };
    assert_err!(store.decide_minute_request(&again).await, StoreError::AlreadyDecided);
    assert_eq!(store.minute_request(asked[0].id).await.unwrap().as_ref(), Some(&rejected[0]));

    // A copy keeps every reason, and the one without.
    let before = store.export().await.unwrap();
    assert_eq!(before.minute_requests, rejected, "oldest first");
    crate::support::copy_back(store, &before).await;
    for (request, reason) in rejected.iter().zip(&reasons) {
        assert_eq!(store.minute_request(request.id).await.unwrap().and_then(|r| r.reject_reason), *reason);
    }
}
