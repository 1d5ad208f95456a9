//! What a change tells people: the notices `Tenant::apply` leaves in its records, in fake time.

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EndReason, EntryId, Event, HoldReason, LedgerKind, NoticeKind, Records,
    ResetReason, Tenant, Timestamp, UserId,
};
use uuid::Uuid;

const OWNER: UserId = UserId(Uuid::from_u128(0xAD));
const A: UserId = UserId(Uuid::from_u128(0xA));
const B: UserId = UserId(Uuid::from_u128(0xB));
const T0: i64 = 1_700_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp(T0 + seconds * 1000)
}

fn report(load_shedding: bool) -> Event {
    Event::DeviceReport { load_shedding, ready: true, relay: !load_shedding }
}

fn credit(user: UserId, seconds: i64) -> Event {
    Event::Credit(Credit::new(user, seconds, LedgerKind::Recharge, OWNER))
}

fn start(user: UserId) -> Event {
    Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }
}

fn pump(wallets: &[(UserId, i64)]) -> Tenant {
    let mut tenant = Tenant::new(AdminId(OWNER), 3_600_000);
    tenant.apply(report(false), at(0));
    for &(user, seconds) in wallets {
        tenant.apply(credit(user, seconds), at(0)).reply.expect("recharge");
    }
    tenant
}

/// (recipient, kind) of each notice, in order.
fn told(records: &Records) -> Vec<(UserId, NoticeKind)> {
    records.notices.iter().map(|n| (n.to, n.kind)).collect()
}

fn apply(tenant: &mut Tenant, event: Event, seconds: i64) -> Records {
    tenant.apply(event, at(seconds)).records
}

#[test]
fn a_run_tells_its_farmer_when_it_starts_holds_resumes_and_ends_and_the_next_farmer_when_their_turn_comes() {
    let mut pump = pump(&[(A, 3600), (B, 3600)]);
    let records = apply(&mut pump, start(A), 1);
    assert_eq!(told(&records), [(A, NoticeKind::RunStarted)]);
    assert_eq!(records.notices[0].at, at(1));
    // The device learns of it: charging starts, nobody is told again.
    assert_eq!(told(&apply(&mut pump, report(false), 2)), []);
    assert_eq!(told(&apply(&mut pump, start(B), 3)), [], "joining the line tells nobody");

    let held = apply(&mut pump, report(true), 62);
    assert_eq!(told(&held), [(A, NoticeKind::RunHeld)]);
    assert_eq!(held.notices[0].facts.hold_reason, Some(HoldReason::LoadShedding));
    assert_eq!(held.notices[0].at, at(62));
    assert_eq!(told(&apply(&mut pump, report(true), 70)), [], "a hold that goes on is told once");

    let resumed = apply(&mut pump, report(false), 100);
    assert_eq!(told(&resumed), [(A, NoticeKind::RunResumed)]);

    let ended = apply(&mut pump, Event::Stop { user: A }, 160);
    assert_eq!(told(&ended), [(A, NoticeKind::RunEnded), (B, NoticeKind::RunStarted)]);
    let facts = &ended.notices[0].facts;
    assert_eq!(facts.end_reason, Some(EndReason::UserStop));
    assert_eq!(facts.seconds, Some(120), "60 s before the hold and 60 s after it");
    assert_eq!(facts.balance_seconds, Some(3600 - 120));
}

#[test]
fn a_run_that_ends_by_itself_is_told_at_the_moment_it_ended_with_a_low_balance_once() {
    let mut pump = pump(&[(A, 700)]);
    apply(&mut pump, Event::Start { user: A, requested_minutes: Some(2), entry_id: EntryId::new() }, 0);
    apply(&mut pump, report(false), 0);
    let records = apply(&mut pump, Event::Tick, 500);
    assert_eq!(told(&records), [(A, NoticeKind::RunEnded), (A, NoticeKind::BalanceLow)]);
    assert_eq!(records.notices[0].at, at(120));
    assert_eq!(records.notices[0].facts.end_reason, Some(EndReason::RequestedMinutesUsed));
    assert_eq!(records.notices[1].facts.balance_seconds, Some(580));

    // Already low: the next charge tells of the run's end only.
    apply(&mut pump, start(A), 600);
    apply(&mut pump, report(false), 600);
    let records = apply(&mut pump, Event::Stop { user: A }, 610);
    assert_eq!(told(&records), [(A, NoticeKind::RunEnded)]);
}

#[test]
fn a_turn_that_comes_during_load_shedding_starts_held_with_its_reason() {
    let mut pump = pump(&[(A, 3600)]);
    apply(&mut pump, report(true), 1);
    let records = apply(&mut pump, start(A), 2);
    assert_eq!(told(&records), [(A, NoticeKind::RunStarted), (A, NoticeKind::RunHeld)]);
    assert_eq!(records.notices[1].facts.hold_reason, Some(HoldReason::LoadShedding));
}

#[test]
fn a_controller_that_restarted_from_a_hang_tells_the_owner_and_is_not_a_quiet_poll() {
    let mut pump = pump(&[]);
    let device = DeviceId(Uuid::from_u128(0xDE));
    let poll = |reset| DevicePoll {
        device,
        load_shedding: false,
        ready: true,
        relay: false,
        feedback: None,
        reset,
        relay_off: None,
    };
    apply(&mut pump, Event::Poll(poll(None)), 1);
    assert!(pump.is_quiet_poll(&poll(None), at(2)));
    let watchdog = poll(Some(ResetReason::Watchdog));
    assert!(!pump.is_quiet_poll(&watchdog, at(2)), "a reset the owner must hear of is committed");
    let records = apply(&mut pump, Event::Poll(watchdog), 2);
    assert_eq!(told(&records), [(OWNER, NoticeKind::DeviceReset)]);
    assert_eq!(records.notices[0].facts.reset, Some(ResetReason::Watchdog));
    assert!(records.changed);
    // A plain power-on or the firmware's own restart is nothing to tell.
    assert_eq!(told(&apply(&mut pump, Event::Poll(poll(Some(ResetReason::Software))), 3)), []);
}

#[test]
fn kinds_have_one_name_each_way() {
    for kind in NoticeKind::ALL {
        assert_eq!(NoticeKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(NoticeKind::parse("RUN"), None);
}
