//! The books: ledger and wallets, usage history and the audit log.

use pumppilot_engine::{AdminId, EntryId, Event, LedgerKind, UsageRow, UserId};
use pumppilot_store::{AuditEntry, AuditQuery, Store, UsageQuery};

use crate::support::{DAY, Driver, SECOND, T0, all_good, at, credit, load, recharge, tenancy};

/// Every change to a wallet is a ledger entry; the wallet is their sum and survives a reload.
pub async fn ledger_and_wallets_survive_reload(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let (admin, u1, u2, u3) = (rahim.admin, rahim.users[0], rahim.users[1], rahim.users[2]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 600), at(0)).await;
    pump.step(recharge(admin, u2, 30), at(1)).await;
    pump.step(all_good(), at(2)).await;
    pump.step(Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() }, at(3)).await;
    pump.step(all_good(), at(50)).await;
    pump.step(all_good(), at(90)).await;
    pump.step(Event::Stop { user: u1 }, at(93)).await;
    pump.step(credit(admin, u1, -100, LedgerKind::Correction), at(100)).await;
    pump.step(recharge(admin, u1, 50), at(110)).await;
    // u2 spends everything: a wallet at zero.
    pump.step(Event::Start { user: u2, requested_minutes: None, entry_id: EntryId::new() }, at(111)).await;
    pump.step(all_good(), at(130)).await;
    pump.step(Event::Tick, at(150)).await;

    let reloaded = load(store, admin).await;
    assert_eq!(reloaded.wallet(u1), 600 - 90 - 100 + 50);
    assert_eq!(reloaded.wallet(u2), 0);
    assert!(!reloaded.wallets.contains_key(&u2), "a wallet at zero is not loaded");
    assert_eq!(reloaded.wallet(u3), 0);

    let ledger = store.ledger(u1, 100).await.unwrap();
    let mut expected: Vec<_> = pump.committed.ledger.iter().filter(|e| e.user_id == u1).cloned().collect();
    expected.reverse();
    assert_eq!(ledger, expected, "newest first, every field kept");
    assert_eq!(
        ledger.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [LedgerKind::Recharge, LedgerKind::Correction, LedgerKind::RunCharge, LedgerKind::Recharge]
    );
    assert_eq!(ledger[0].balance_after, reloaded.wallet(u1));
    assert_eq!(ledger.iter().map(|e| e.delta_seconds).sum::<i64>(), reloaded.wallet(u1));
    for user in [u1, u2] {
        let entries = store.ledger(user, 100).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.delta_seconds).sum::<i64>(), reloaded.wallet(user), "balance = ledger sum");
    }
    assert_eq!(store.ledger(u1, 2).await.unwrap(), ledger[..2], "the limit keeps the newest");
    assert_eq!(store.ledger(u3, 100).await.unwrap(), vec![]);
}

/// Usage rows by tenant, by user and by date range (`from` inclusive, `to` exclusive), newest first.
pub async fn usage_by_tenant_user_and_date_range(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);

    // One run a day for four days, u1 and u2 taking turns; and one run at Q's pump.
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 3_600), at(0)).await;
    pump.step(recharge(admin, u2, 3_600), at(0)).await;
    for day in 0..4 {
        let start = T0 + day * DAY;
        let user = if day % 2 == 0 { u1 } else { u2 };
        pump.step(all_good(), start).await;
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, start + SECOND).await;
        pump.step(Event::Stop { user }, start + (11 + day) * SECOND).await;
    }
    let mut other = Driver::load(store, q.admin).await;
    other.step(recharge(q.admin, q.users[0], 600), at(0)).await;
    other.step(all_good(), at(0)).await;
    other.step(Event::Start { user: q.users[0], requested_minutes: None, entry_id: EntryId::new() }, at(1)).await;
    other.step(Event::Stop { user: q.users[0] }, at(5)).await;

    let rows: Vec<UsageRow> = pump.committed.usage.iter().rev().cloned().collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().map(|row| row.charged_seconds).collect::<Vec<_>>(), [13, 12, 11, 10]);
    let query = |user: Option<UserId>, from, to, limit| UsageQuery { admin, user, from, to, limit };

    assert_eq!(store.usage(&query(None, None, None, 100)).await.unwrap(), rows, "the tenant's, newest first");
    assert_eq!(store.usage(&query(Some(u1), None, None, 100)).await.unwrap(), [rows[1].clone(), rows[3].clone()]);
    assert_eq!(store.usage(&query(Some(u2), None, None, 100)).await.unwrap(), [rows[0].clone(), rows[2].clone()]);
    let (day1, day3) = (rows[2].ended_at, rows[0].ended_at);
    assert_eq!(store.usage(&query(None, Some(day1), None, 100)).await.unwrap(), rows[..3], "from is inclusive");
    assert_eq!(store.usage(&query(None, None, Some(day3), 100)).await.unwrap(), rows[1..], "to is exclusive");
    assert_eq!(store.usage(&query(None, Some(day1), Some(day3), 100)).await.unwrap(), rows[1..3]);
    assert_eq!(store.usage(&query(Some(u2), Some(day1), Some(day3), 100)).await.unwrap(), rows[2..3]);
    assert_eq!(store.usage(&query(None, None, None, 2)).await.unwrap(), rows[..2], "the limit keeps the newest");
    assert_eq!(store.usage(&query(None, Some(day3 + 1), None, 100)).await.unwrap(), vec![]);

    let theirs =
        store.usage(&UsageQuery { admin: q.admin, user: None, from: None, to: None, limit: 100 }).await.unwrap();
    assert_eq!(theirs, other.committed.usage, "each tenant sees only its own runs");
    let query = UsageQuery { admin, user: Some(q.users[0]), from: None, to: None, limit: 100 };
    assert_eq!(store.usage(&query).await.unwrap(), vec![], "another tenant's user is not in this tenant");
}

/// Audit lines come back by tenant or all together, newest first, up to the limit.
pub async fn audit_newest_first_with_limit(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let q = tenancy(store, "q", 0).await;
    let line = |admin: Option<AdminId>, seconds: i64, action: &str| AuditEntry {
        admin_id: admin,
        at: at(seconds),
        actor_id: admin.map(|admin| admin.0),
        action: action.to_owned(),
        target_id: Some(format!("target-{seconds}")),
        detail: format!("{action} at {seconds}"),
    };
    let lines = [
        line(Some(rahim.admin), 1, "user.create"),
        line(None, 2, "admin.create"),
        line(Some(q.admin), 3, "device.create"),
        line(Some(rahim.admin), 4, "recharge"),
        line(Some(rahim.admin), 5, "motor.stop"),
    ];
    for entry in &lines {
        store.append_audit(entry).await.expect("append audit");
    }
    let mut no_target = line(Some(rahim.admin), 6, "user.suspend");
    no_target.target_id = None;
    no_target.actor_id = None;
    store.append_audit(&no_target).await.unwrap();

    let rahims = store.audit(Some(rahim.admin), 100).await.unwrap();
    assert_eq!(rahims, [no_target.clone(), lines[4].clone(), lines[3].clone(), lines[0].clone()]);
    assert_eq!(store.audit(Some(rahim.admin), 2).await.unwrap(), rahims[..2]);
    assert_eq!(store.audit(Some(q.admin), 100).await.unwrap(), [lines[2].clone()]);
    let everything = store.audit(None, 100).await.unwrap();
    assert_eq!(
        everything,
        [no_target, lines[4].clone(), lines[3].clone(), lines[2].clone(), lines[1].clone(), lines[0].clone()]
    );
    assert_eq!(store.audit(None, 3).await.unwrap(), everything[..3]);
    assert_eq!(store.audit(Some(AdminId(UserId::new())), 100).await.unwrap(), vec![]);
}

/// The audit log is filtered over the whole log in the store: by action, by a person the line is
/// about (as actor or target), by time (from inclusive, to exclusive), a page at a time, newest
/// first, one tenant's only.
pub async fn audit_lines_are_filtered_over_the_whole_log_a_page_at_a_time(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 0).await;
    let (karim, jamal) = (rahim.users[0].to_string(), rahim.users[1].to_string());
    // 600 lines: more than the 500 the page once read; every tenth a recharge of karim, every seventh about jamal.
    for n in 0..600_i64 {
        let (action, target) = match n {
            n if n % 10 == 0 => ("recharge", karim.clone()),
            n if n % 7 == 0 => ("user.suspend", jamal.clone()),
            _ => ("device.rotate-key", format!("device-{n}")),
        };
        let entry = AuditEntry {
            admin_id: Some(rahim.admin),
            at: at(n),
            actor_id: Some(rahim.admin.0),
            action: action.to_owned(),
            target_id: Some(target),
            detail: format!("line {n}"),
        };
        store.append_audit(&entry).await.unwrap();
    }
    let other = AuditEntry {
        admin_id: Some(q.admin),
        at: at(5),
        actor_id: Some(q.admin.0),
        action: "recharge".into(),
        target_id: Some(karim.clone()),
        detail: "another pump".into(),
    };
    store.append_audit(&other).await.unwrap();
    let query =
        AuditQuery { admin: rahim.admin, action: None, about: None, from: None, to: None, offset: 0, limit: 50 };
    let details = |lines: Vec<AuditEntry>| lines.into_iter().map(|l| l.detail).collect::<Vec<_>>();

    // The oldest recharge is found though 599 lines are newer.
    let recharges = AuditQuery { action: Some("recharge".into()), limit: 500, ..query.clone() };
    let recharges = details(store.audit_lines(&recharges).await.unwrap());
    assert_eq!(recharges.len(), 60);
    assert_eq!((recharges[0].as_str(), recharges[59].as_str()), ("line 590", "line 0"));

    // A person's lines, a page at a time.
    let about = |offset| AuditQuery { about: Some(jamal.clone()), offset, limit: 50, ..query.clone() };
    let first = details(store.audit_lines(&about(0)).await.unwrap());
    let second = details(store.audit_lines(&about(50)).await.unwrap());
    let jamals: Vec<String> =
        (0..600).rev().filter(|n| n % 10 != 0 && n % 7 == 0).map(|n| format!("line {n}")).collect();
    assert_eq!(jamals.len(), 77);
    assert_eq!(first, jamals[..50]);
    assert_eq!(second, jamals[50..]);
    // The actor counts too.
    let owners = AuditQuery { about: Some(rahim.admin.0.to_string()), limit: 2000, ..query.clone() };
    assert_eq!(store.audit_lines(&owners).await.unwrap().len(), 600);

    // A time range (from inclusive, to exclusive) with an action.
    let range = AuditQuery { action: Some("recharge".into()), from: Some(at(100)), to: Some(at(130)), ..query.clone() };
    assert_eq!(details(store.audit_lines(&range).await.unwrap()), ["line 120", "line 110", "line 100"]);
    let paged = store.audit_lines(&AuditQuery { offset: 1, limit: 1, ..range }).await.unwrap();
    assert_eq!(details(paged), ["line 110"]);

    // Only this tenant's.
    let qs = AuditQuery { admin: q.admin, about: Some(karim.clone()), ..query.clone() };
    assert_eq!(details(store.audit_lines(&qs).await.unwrap()), ["another pump"]);
}
