//! The owner's day: terms per pump, receipts written with their recharge, and changes to a
//! farmer's account (name, password) with their audit line in one write.

use pumppilot_engine::{AdminId, Credit, Event, LedgerKind, ReceiptId, UserId};
use pumppilot_store::{
    AccountChange, AuditEntry, Commit, Receipt, ReceiptQuery, ReceiptVoid, Role, Session, SessionId, SessionKind,
    Store, StoreError, Terms,
};

use crate::support::{DAY, Driver, T0, all_good, assert_err, at, copy_back, load, recharge, tenancy};

fn line(admin: AdminId, seconds: i64, action: &str, target: UserId) -> AuditEntry {
    AuditEntry {
        admin_id: Some(admin),
        at: at(seconds),
        actor_id: Some(admin.0),
        action: action.to_owned(),
        target_id: Some(target.to_string()),
        detail: format!("{action} at {seconds}"),
    }
}

/// A tenant has the default terms until its owner sets them; terms are per tenant, written with
/// their audit line; a tenant that does not exist gets neither.
pub async fn terms_are_per_tenant_and_written_with_their_audit_line(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    assert_eq!(store.terms(rahim.admin).await.unwrap(), Terms::default());
    assert_eq!(Terms::default().max_request_minutes, 600);

    let set = Terms { max_request_minutes: 120, price_per_hour_taka: Some(150) };
    store.set_terms(rahim.admin, &set, &line(rahim.admin, 1, "terms.set", rahim.admin.0)).await.expect("set");
    assert_eq!(store.terms(rahim.admin).await.unwrap(), set);
    assert_eq!(store.terms(q.admin).await.unwrap(), Terms::default(), "terms are per tenant");
    let again = Terms { max_request_minutes: 90, price_per_hour_taka: None };
    store.set_terms(rahim.admin, &again, &line(rahim.admin, 2, "terms.set", rahim.admin.0)).await.expect("again");
    assert_eq!(store.terms(rahim.admin).await.unwrap(), again);
    let audit = store.audit(Some(rahim.admin), 10).await.unwrap();
    assert_eq!(audit.iter().map(|e| e.at).collect::<Vec<_>>(), [at(2), at(1)]);

    let nobody = AdminId(UserId::new());
    assert_err!(store.set_terms(nobody, &set, &line(nobody, 3, "terms.set", nobody.0)).await, StoreError::NotFound);
    assert_eq!(store.audit(Some(nobody), 10).await.unwrap(), vec![]);
    assert_eq!(store.audit(None, 10).await.unwrap().len(), 2, "a refused change writes no audit line");
}

/// A receipt lands only with its recharge: a commit that loses its version writes neither, one of
/// another tenant or without a credit is refused; receipts are listed by tenant, farmer and time.
pub async fn a_receipt_is_written_with_its_recharge(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (a, b) = (rahim.users[0], rahim.users[1]);
    let receipt = |admin: AdminId, user: UserId, seconds: i64, minutes: i64, cash: i64| Receipt {
        id: ReceiptId::new(),
        admin_id: admin,
        user_id: user,
        at: at(seconds),
        minutes,
        cash_taka: cash,
        recorded_by: admin.0,
        priced: false,
        void: None,
    };

    let mut tenant = load(store, rahim.admin).await;
    let first = receipt(rahim.admin, a, 10, 60, 150);
    let records = tenant.apply(recharge(rahim.admin, a, 3600), at(10)).records;
    // Another tenant's receipt, or a receipt with no credit, is refused with the whole commit.
    let theirs = receipt(q.admin, q.users[0], 10, 60, 150);
    let commit = |receipt| Commit {
        tenant: &tenant,
        records: &records,
        audit: &[],
        decision: None,
        suspension: None,
        receipt: Some(receipt),
    };
    assert_err!(store.commit(commit(&theirs)).await, StoreError::Invariant(_));
    let none = pumppilot_engine::Records::default();
    let empty = Commit { records: &none, ..commit(&first) };
    assert_err!(store.commit(empty).await, StoreError::Invariant(_));
    assert_eq!(load(store, rahim.admin).await.version, 0);

    store.commit(commit(&first)).await.expect("recharge with receipt");
    // The same recharge again from the old version: a conflict, and no second receipt.
    let stale = receipt(rahim.admin, a, 11, 60, 150);
    assert_err!(store.commit(commit(&stale)).await, StoreError::VersionConflict);
    assert_eq!(store.receipt(rahim.admin, stale.id).await.unwrap(), None);

    tenant = load(store, rahim.admin).await;
    // At the pump's price (the recharge gave no cash): read back so.
    let second = Receipt { priced: true, ..receipt(rahim.admin, b, 20 + DAY / 1000, 30, 0) };
    let records = tenant.apply(recharge(rahim.admin, b, 1800), second.at).records;
    let commit = Commit {
        tenant: &tenant,
        records: &records,
        audit: &[],
        decision: None,
        suspension: None,
        receipt: Some(&second),
    };
    store.commit(commit).await.expect("a free recharge has a receipt too");

    assert_eq!(store.receipt(rahim.admin, first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.receipt(q.admin, first.id).await.unwrap(), None, "receipts stay in their tenant");
    let query = |user, from, to| ReceiptQuery { admin: rahim.admin, user, from, to, limit: 10 };
    assert_eq!(store.receipts(&query(None, None, None)).await.unwrap(), [second.clone(), first.clone()]);
    assert_eq!(store.receipts(&query(Some(a), None, None)).await.unwrap(), std::slice::from_ref(&first));
    assert_eq!(store.receipts(&query(None, Some(at(11)), None)).await.unwrap(), std::slice::from_ref(&second));
    assert_eq!(store.receipts(&query(None, None, Some(at(11)))).await.unwrap(), std::slice::from_ref(&first));
    assert_eq!(store.receipts(&ReceiptQuery { limit: 1, ..query(None, None, None) }).await.unwrap(), [second]);
    let theirs = ReceiptQuery { admin: q.admin, user: None, from: None, to: None, limit: 10 };
    assert_eq!(store.receipts(&theirs).await.unwrap(), vec![]);
}

/// A recharge sent again with its key is not made again: the commit that carries a ledger entry
/// with a key the tenant's ledger has is refused `AlreadyMade`, whole (no wallet moved, no receipt,
/// no version), also when built on the newest state; the first is found by its key, receipt and
/// all. Keys are the tenant's own (another pump may use the same), and entries without one are
/// never held to it.
pub async fn a_change_sent_again_with_its_key_is_made_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (a, b) = (rahim.users[0], rahim.users[1]);
    let keyed = |admin: AdminId, user: UserId, seconds: i64, key: Option<&str>, receipt: Option<ReceiptId>| {
        Event::Credit(Credit {
            user,
            seconds,
            kind: LedgerKind::Recharge,
            actor: admin.0,
            note: "cash".to_owned(),
            request_id: None,
            once_key: key.map(str::to_owned),
            receipt_id: receipt,
        })
    };
    let receipt = |user: UserId, seconds: i64| Receipt {
        id: ReceiptId::new(),
        admin_id: rahim.admin,
        user_id: user,
        at: at(seconds),
        minutes: 60,
        cash_taka: 150,
        recorded_by: rahim.admin.0,
        priced: false,
        void: None,
    };
    // Writes the credit on the tenant as stored now, with its receipt.
    let send = async |credit: Event, receipt: Option<&Receipt>, seconds: i64| {
        let mut tenant = load(store, rahim.admin).await;
        let records = tenant.apply(credit, at(seconds)).records;
        let commit =
            Commit { tenant: &tenant, records: &records, audit: &[], decision: None, suspension: None, receipt };
        store.commit(commit).await
    };

    let first = receipt(a, 10);
    send(keyed(rahim.admin, a, 3600, Some("k-1"), Some(first.id)), Some(&first), 10).await.expect("the first");
    let again = receipt(a, 11);
    assert_err!(
        send(keyed(rahim.admin, a, 3600, Some("k-1"), Some(again.id)), Some(&again), 11).await,
        StoreError::AlreadyMade
    );
    // Another change under the same key is refused alike (the server tells them apart).
    assert_err!(send(keyed(rahim.admin, b, 60, Some("k-1"), None), None, 12).await, StoreError::AlreadyMade);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.version, tenant.wallet(a), tenant.wallet(b)), (1, 3600, 0), "nothing of the second");
    assert_eq!(store.receipt(rahim.admin, again.id).await.unwrap(), None, "no second receipt");
    assert_eq!(store.ledger(a, 10).await.unwrap().len(), 1);

    let made = store.ledger_entry_with_key(rahim.admin, "k-1").await.unwrap().expect("found by its key");
    assert_eq!((made.user_id, made.delta_seconds, made.receipt_id), (a, 3600, Some(first.id)));
    assert_eq!(made.once_key.as_deref(), Some("k-1"));
    assert_eq!(store.ledger(a, 1).await.unwrap(), [made], "the ledger reads the key and the receipt back");
    assert_eq!(store.ledger_entry_with_key(rahim.admin, "k-2").await.unwrap(), None);
    assert_eq!(store.ledger_entry_with_key(q.admin, "k-1").await.unwrap(), None, "keys stay in their tenant");

    // Another pump's key, and changes without a key, are each their own.
    let mut theirs = load(store, q.admin).await;
    let records = theirs.apply(keyed(q.admin, q.users[0], 60, Some("k-1"), None), at(13)).records;
    let commit =
        Commit { tenant: &theirs, records: &records, audit: &[], decision: None, suspension: None, receipt: None };
    store.commit(commit).await.expect("another pump may use the same key");
    send(keyed(rahim.admin, b, 60, None, None), None, 14).await.expect("no key");
    send(keyed(rahim.admin, b, 60, None, None), None, 15).await.expect("no key again");
    send(keyed(rahim.admin, b, 60, Some("k-2"), None), None, 16).await.expect("a new key");
    assert_eq!(load(store, rahim.admin).await.wallet(b), 180);
}

/// A receipt is voided once, with the correction that takes its minutes back, in one commit: the
/// receipt reads back void (listed still), and counts for no cash in the master's totals. A void
/// without that correction, of another tenant's receipt, or of one the tenant does not have (or
/// not with those minutes) is refused whole; a second void of the same receipt, built on the
/// newest state (a retry after a timeout), is refused `AlreadyMade` and takes no minutes. An
/// export imported again keeps the void, and its once.
pub async fn a_receipt_is_voided_once_and_counts_for_no_cash(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (a, b) = (rahim.users[0], rahim.users[1]);
    // Meant 30 min for 60 taka: 300 min for 600 taka written.
    let mut pump = Driver::load(store, rahim.admin).await;
    let mistake = pump.recharge_with_receipt(a, 300 * 60, 600, at(10)).await;
    let other = pump.recharge_with_receipt(b, 30 * 60, 60, at(20)).await;
    let theirs = Driver::load(store, q.admin).await.recharge_with_receipt(q.users[0], 60 * 60, 120, at(30)).await;
    let (version, audit_lines) = (load(store, rahim.admin).await.version, store.audit(None, 100).await.unwrap().len());

    // The correction that takes `receipt`'s minutes back, built on the tenant as stored now, and
    // committed with `void` (the receipt as the commit names it) and its audit line.
    let void = async |receipt: &Receipt, seconds: i64, void: &Receipt| {
        let mut tenant = load(store, rahim.admin).await;
        let take_back = Event::Credit(Credit {
            user: receipt.user_id,
            seconds,
            kind: LedgerKind::Correction,
            actor: rahim.admin.0,
            note: String::new(),
            request_id: None,
            once_key: None,
            receipt_id: Some(receipt.id),
        });
        let records = tenant.apply(take_back, at(40)).records;
        let audit = [line(rahim.admin, 40, "receipt.void", receipt.user_id)];
        let commit = Commit {
            tenant: &tenant,
            records: &records,
            audit: &audit,
            decision: None,
            suspension: None,
            receipt: Some(void),
        };
        store.commit(commit).await
    };
    let voided =
        |receipt: &Receipt| Receipt { void: Some(ReceiptVoid { at: at(40), by: rahim.admin.0 }), ..receipt.clone() };
    // Refused whole: a void that takes back other minutes than the receipt gave, another tenant's
    // receipt, a receipt this tenant does not have, one named with other minutes than it has.
    assert_err!(void(&mistake, -270 * 60, &voided(&mistake)).await, StoreError::Invariant(_));
    let q_void = Receipt { user_id: a, ..voided(&theirs) };
    assert_err!(void(&q_void, -60 * 60, &q_void).await, StoreError::Invariant(_));
    let unknown = Receipt { id: ReceiptId::new(), ..mistake.clone() };
    assert_err!(void(&unknown, -300 * 60, &voided(&unknown)).await, StoreError::NotFound);
    let fewer = Receipt { minutes: 10, ..other.clone() };
    assert_err!(void(&fewer, -10 * 60, &voided(&fewer)).await, StoreError::NotFound);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.version, tenant.wallet(a), tenant.wallet(b)), (version, 300 * 60, 30 * 60), "nothing written");
    assert_eq!(store.audit(None, 100).await.unwrap().len(), audit_lines, "no audit line either");
    assert_eq!(store.receipt(rahim.admin, other.id).await.unwrap(), Some(other.clone()));

    // Voided: the minutes and the receipt together.
    void(&mistake, -300 * 60, &voided(&mistake)).await.expect("void");
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.version, tenant.wallet(a)), (version + 1, 0));
    let taken_back = &store.ledger(a, 1).await.unwrap()[0];
    assert_eq!(
        (taken_back.kind, taken_back.delta_seconds, taken_back.receipt_id),
        (LedgerKind::Correction, -300 * 60, Some(mistake.id)),
        "the ledger line names the receipt it takes back"
    );
    assert_eq!(store.receipt(rahim.admin, mistake.id).await.unwrap(), Some(voided(&mistake)));
    let listed = store
        .receipts(&ReceiptQuery { admin: rahim.admin, user: None, from: None, to: None, limit: 10 })
        .await
        .unwrap();
    assert_eq!(listed, [other.clone(), voided(&mistake)], "a void receipt stays listed, marked void");
    assert_eq!(listed.iter().map(Receipt::cash_counted).sum::<i64>(), 60);
    assert_eq!(store.audit(None, 100).await.unwrap().len(), audit_lines + 1);

    // The same void again on the newest state (the farmer has minutes again): refused, nothing
    // taken; and one racing the first from its version loses on the version.
    pump.tenant = load(store, rahim.admin).await;
    pump.recharge_with_receipt(a, 300 * 60, 0, at(41)).await;
    let version = load(store, rahim.admin).await.version;
    assert_err!(void(&mistake, -300 * 60, &voided(&mistake)).await, StoreError::AlreadyMade);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.version, tenant.wallet(a)), (version, 300 * 60), "no minutes taken twice");
    assert_eq!(store.audit(None, 100).await.unwrap().len(), audit_lines + 1);

    // The master's totals leave the void receipt out, as each pump's receipts counted do.
    let totals = store.fleet_totals(T0).await.unwrap();
    assert_eq!(totals.cash_taka, 60 + 120);

    // An export imported again keeps the void, and voiding it again is still refused.
    let before = store.export().await.unwrap();
    copy_back(store, &before).await;
    assert_eq!(store.receipt(rahim.admin, mistake.id).await.unwrap(), Some(voided(&mistake)));
    assert_eq!(store.fleet_totals(T0).await.unwrap().cash_taka, 60 + 120);
    assert_err!(void(&mistake, -300 * 60, &voided(&mistake)).await, StoreError::AlreadyMade);
    void(&other, -30 * 60, &voided(&other)).await.expect("another receipt is voided on its own");
    assert_eq!(store.fleet_totals(T0).await.unwrap().cash_taka, 120);
}

/// A session of `user` signed in at `at(0)` with `token` (a phone's has a refresh token too).
fn signed_in(user: UserId, kind: SessionKind, token: &[u8]) -> Session {
    Session {
        id: SessionId::new(),
        kind,
        user_id: user,
        access_hash: token.to_vec(),
        access_expires_at: at(0) + DAY,
        refresh_hash: (kind == SessionKind::Mobile).then(|| [token, b"-r"].concat()),
        previous_refresh_hash: None,
        refresh_expires_at: (kind == SessionKind::Mobile).then(|| at(0) + 30 * DAY),
        device_name: None,
        created_at: at(0),
        revoked_at: None,
    }
}

/// An owner renames a farmer or gives them a new password with its audit line in one write; a
/// new password revokes every session of the farmer (and only theirs); an account that is not a
/// farmer of the tenant is not found and nothing changes.
pub async fn changing_a_farmer_renames_resets_and_revokes_at_once(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (a, b) = (rahim.users[0], rahim.users[1]);
    let (web_a, phone_a, web_b) = (
        signed_in(a, SessionKind::Web, b"a-web"),
        signed_in(a, SessionKind::Mobile, b"a-phone"),
        signed_in(b, SessionKind::Web, b"b-web"),
    );
    for s in [&web_a, &phone_a, &web_b] {
        store.create_session(s).await.unwrap();
    }
    let change = |id, name: Option<&str>, hash: Option<&str>, seconds| AccountChange {
        id,
        role: Role::User,
        admin_id: Some(rahim.admin),
        name: name.map(str::to_owned),
        password_hash: hash.map(str::to_owned),
        keep_session: None,
        at: at(seconds),
    };

    let renamed =
        store.change_account(&change(a, Some("Karim Mia"), None, 1), &line(rahim.admin, 1, "user.edit", a)).await;
    assert_eq!(renamed.expect("rename"), vec![], "a new name signs nobody out");
    let stored = store.account(a).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.role), ("Karim Mia", Role::User));
    let old_hash = stored.password_hash.clone();

    let reset = change(a, None, Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3$new"), 2);
    let mut revoked = store.change_account(&reset, &line(rahim.admin, 2, "user.password", a)).await.expect("reset");
    revoked.sort();
    let mut expected = vec![web_a.id, phone_a.id];
    expected.sort();
    assert_eq!(revoked, expected);
    let stored = store.account(a).await.unwrap().unwrap();
    assert_ne!(stored.password_hash, old_hash);
    assert_eq!(stored.name, "Karim Mia", "a reset keeps the name");
    let revoked_at = |kind, hash: &'static [u8]| async move {
        store.session_by_access_hash(kind, hash).await.unwrap().unwrap().revoked_at
    };
    assert_eq!(revoked_at(SessionKind::Web, b"a-web").await, Some(at(2)));
    assert_eq!(revoked_at(SessionKind::Mobile, b"a-phone").await, Some(at(2)));
    assert_eq!(revoked_at(SessionKind::Web, b"b-web").await, None, "other farmers stay signed in");

    // Another tenant's farmer, the owner, and nobody: not found, no audit line, nothing changed.
    for stranger in [q.users[0], rahim.admin.0, UserId::new()] {
        let attempt = change(stranger, Some("Taken"), Some("$argon2id$x"), 3);
        assert_err!(
            store.change_account(&attempt, &line(rahim.admin, 3, "user.edit", stranger)).await,
            StoreError::NotFound
        );
    }
    assert_ne!(store.account(q.users[0]).await.unwrap().unwrap().name, "Taken");
    let audit = store.audit(Some(rahim.admin), 10).await.unwrap();
    assert_eq!(audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["user.password", "user.edit"]);
}

/// An owner or the master changes their own password: every other session of the account ends
/// in the same write, the one that asked stays signed in; the master gives an owner a new
/// password; a change names the account's role and tenant, or finds nothing and changes nothing.
pub async fn changing_ones_own_password_keeps_the_session_that_asked(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let master = crate::support::master_account("master", at(0));
    store.create_account(&master).await.expect("create master");
    let owner = rahim.admin.0;
    let (owner_web, owner_phone, owner_other_web) = (
        signed_in(owner, SessionKind::Web, b"o-web"),
        signed_in(owner, SessionKind::Mobile, b"o-phone"),
        signed_in(owner, SessionKind::Web, b"o-web-2"),
    );
    let (master_web, master_phone) =
        (signed_in(master.id, SessionKind::Web, b"m-web"), signed_in(master.id, SessionKind::Mobile, b"m-phone"));
    let farmer_web = signed_in(rahim.users[0], SessionKind::Web, b"f-web");
    for s in [&owner_web, &owner_phone, &owner_other_web, &master_web, &master_phone, &farmer_web] {
        store.create_session(s).await.unwrap();
    }
    let revoked_at = |kind, hash: &'static [u8]| async move {
        store.session_by_access_hash(kind, hash).await.unwrap().unwrap().revoked_at
    };
    let new_hash = |n: u8| Some(format!("$argon2id$v=19$m=19456,t=2,p=1$bmV3${n}"));

    // The owner, from their phone: the phone stays signed in, both browsers are signed out.
    let own = AccountChange {
        id: owner,
        role: Role::Admin,
        admin_id: Some(rahim.admin),
        name: None,
        password_hash: new_hash(1),
        keep_session: Some(owner_phone.id),
        at: at(1),
    };
    let mut revoked = store.change_account(&own, &line(rahim.admin, 1, "account.password", owner)).await.unwrap();
    revoked.sort();
    let mut expected = vec![owner_web.id, owner_other_web.id];
    expected.sort();
    assert_eq!(revoked, expected);
    assert_eq!(revoked_at(SessionKind::Mobile, b"o-phone").await, None, "the session that asked is kept");
    assert_eq!(revoked_at(SessionKind::Web, b"o-web").await, Some(at(1)));
    assert_eq!(revoked_at(SessionKind::Web, b"f-web").await, None, "the farmers stay signed in");
    assert_eq!(store.account(owner).await.unwrap().unwrap().password_hash, new_hash(1).unwrap());

    // The master, from the web; then the master gives the owner a new password, which signs the
    // owner out everywhere.
    let master_own = AccountChange {
        id: master.id,
        role: Role::Master,
        admin_id: None,
        keep_session: Some(master_web.id),
        password_hash: new_hash(2),
        at: at(2),
        ..own.clone()
    };
    let audit = |n, target| AuditEntry {
        admin_id: None,
        actor_id: Some(master.id),
        ..line(rahim.admin, n, "account.password", target)
    };
    let revoked = store.change_account(&master_own, &audit(2, master.id)).await.unwrap();
    assert_eq!(revoked, vec![master_phone.id]);
    assert_eq!(revoked_at(SessionKind::Web, b"m-web").await, None);
    assert_eq!(store.account(master.id).await.unwrap().unwrap().password_hash, new_hash(2).unwrap());
    let reset = AccountChange { keep_session: None, password_hash: new_hash(3), at: at(3), ..own.clone() };
    let revoked = store.change_account(&reset, &audit(3, owner)).await.unwrap();
    assert_eq!(revoked, vec![owner_phone.id]);
    assert_eq!(revoked_at(SessionKind::Mobile, b"o-phone").await, Some(at(3)));

    // The wrong role or tenant finds nothing, and nothing changes.
    let wrong = [
        AccountChange { role: Role::User, ..reset.clone() },
        AccountChange { role: Role::Master, admin_id: None, ..reset.clone() },
        AccountChange { id: master.id, role: Role::Master, ..reset.clone() },
        AccountChange { id: rahim.users[0], role: Role::Admin, ..reset.clone() },
    ];
    for attempt in wrong {
        let attempt = AccountChange { password_hash: new_hash(4), at: at(4), ..attempt };
        assert_err!(store.change_account(&attempt, &audit(4, attempt.id)).await, StoreError::NotFound);
    }
    assert_eq!(store.account(owner).await.unwrap().unwrap().password_hash, new_hash(3).unwrap());
    assert_eq!(store.account(master.id).await.unwrap().unwrap().password_hash, new_hash(2).unwrap());
    assert_eq!(revoked_at(SessionKind::Web, b"m-web").await, None);
    assert_eq!(revoked_at(SessionKind::Web, b"f-web").await, None);
    let lines = store.audit(Some(rahim.admin), 10).await.unwrap();
    assert_eq!(lines.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["account.password"]);
}

/// The owner moves a waiting farmer up or down the line: the entries pass each other's places
/// within one write, the store keeps one entry per place, and the line reloads in the new order.
pub async fn a_waiting_farmer_moved_in_line_passes_the_others(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 4).await;
    let admin = rahim.admin;
    let mut pump = Driver::load(store, admin).await;
    for user in &rahim.users {
        pump.step(recharge(admin, *user, 600), at(0)).await;
    }
    pump.step(all_good(), at(1)).await;
    for (n, user) in rahim.users.iter().enumerate() {
        let start = pumppilot_engine::Event::Start {
            user: *user,
            requested_minutes: None,
            entry_id: pumppilot_engine::EntryId::new(),
        };
        pump.step(start, at(2 + n as i64)).await;
    }
    let line = |pump: &Driver<'_>| pump.tenant.waiting.iter().map(|e| e.user_id).collect::<Vec<_>>();
    let [_, b, c, d] = rahim.users[..] else { panic!("four farmers") };
    assert_eq!(line(&pump), [b, c, d]);
    // The last to the front: every entry passes another's place (Driver checks the reload).
    pump.step(pumppilot_engine::Event::MoveWaiting { user: d, to: 1 }, at(10)).await;
    assert_eq!(line(&pump), [d, b, c]);
    pump.step(pumppilot_engine::Event::MoveWaiting { user: d, to: 3 }, at(11)).await;
    assert_eq!(line(&pump), [b, c, d]);
    let stored = load(store, admin).await;
    assert_eq!(stored.waiting.iter().map(|e| e.user_id).collect::<Vec<_>>(), [b, c, d]);
}
