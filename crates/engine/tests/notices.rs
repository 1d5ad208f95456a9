//! What a change tells people: the notices `Tenant::apply` leaves in its records, in fake time.

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EndReason, EntryId, EntryStatus, Event, HoldReason, LedgerKind, NoticeKind,
    Records, RejectReason, RelayOff, Reply, ResetReason, Tenant, Timestamp, UserId, request_rejected,
};
use uuid::Uuid;

const OWNER: UserId = UserId(Uuid::from_u128(0xAD));
const A: UserId = UserId(Uuid::from_u128(0xA));
const B: UserId = UserId(Uuid::from_u128(0xB));
const BOARD: DeviceId = DeviceId(Uuid::from_u128(0xDE));
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
fn a_run_tells_its_farmer_when_it_holds_resumes_and_ends_and_the_next_farmer_when_their_turn_comes() {
    let mut pump = pump(&[(A, 3600), (B, 3600)]);
    assert_eq!(told(&apply(&mut pump, start(A), 1)), [], "A saw it start: they pressed Start");
    // The device learns of it: charging starts, nobody is told.
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
    assert_eq!(ended.notices[1].at, at(160), "B's turn came when A stopped");
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
    let mut alone = pump(&[(A, 3600)]);
    let mut pump = pump(&[(A, 3600), (B, 3600)]);
    apply(&mut pump, start(B), 1);
    apply(&mut pump, start(A), 2);
    apply(&mut pump, report(true), 3);
    let records = apply(&mut pump, Event::Stop { user: B }, 4);
    assert_eq!(told(&records), [(B, NoticeKind::RunEnded), (A, NoticeKind::RunStarted), (A, NoticeKind::RunHeld)]);
    assert_eq!(records.notices[2].facts.hold_reason, Some(HoldReason::LoadShedding));

    // Pressing Start during load shedding: the farmer sees it start held; only the hold is news
    // (the worker tells it if it lasts).
    apply(&mut alone, report(true), 1);
    assert_eq!(told(&apply(&mut alone, start(A), 2)), [(A, NoticeKind::RunHeld)]);
}

/// The audit's farmers paid an SMS for "your turn came" each time they pressed Start (in the app
/// or by text) with the pump free: they know, they just pressed it. Only a farmer whose turn came
/// after a wait in line hears it.
#[test]
fn a_farmer_who_starts_the_free_pump_is_not_told_their_turn_came_and_one_who_waited_is() {
    let mut pump = pump(&[(A, 3600), (B, 3600)]);
    assert_eq!(told(&apply(&mut pump, start(A), 1)), []);
    assert_eq!(told(&apply(&mut pump, start(B), 2)), [], "B waits in line");
    let handover = apply(&mut pump, Event::Stop { user: A }, 30);
    assert_eq!(told(&handover), [(A, NoticeKind::RunEnded), (B, NoticeKind::RunStarted)]);
    apply(&mut pump, Event::Stop { user: B }, 40);
    // A card held to the reader with the pump free is the farmer's own Start too.
    let tapped = apply(&mut pump, Event::CardTap { user: A, entry_id: EntryId::new() }, 50);
    assert!(pump.active.as_ref().is_some_and(|e| e.user_id == A));
    assert_eq!(told(&tapped), []);
    // A turn that comes the very moment the farmer joined the line is still news to them.
    assert_eq!(told(&apply(&mut pump, start(B), 70)), []);
    let at_once = apply(&mut pump, Event::Stop { user: A }, 70);
    assert_eq!(told(&at_once), [(A, NoticeKind::RunEnded), (B, NoticeKind::RunStarted)]);
}

/// The audit's farmers paid two SMS for a STOP they texted: its answer, then the run's end. The
/// answer says the run's end (minutes used, balance), so the end of a run its farmer stopped by
/// text, and the low balance its charge leaves, are not worth an SMS; the bell and push still get
/// them. A run stopped any other way, or the next farmer's turn, is news by SMS as before.
#[test]
fn a_run_stopped_by_text_is_answered_by_that_sms_and_its_end_is_not_sent_again() {
    let sms = |records: &Records| -> Vec<(UserId, NoticeKind, bool)> {
        records.notices.iter().map(|n| (n.to, n.kind, n.facts.worth_an_sms())).collect()
    };
    let mut pump = pump(&[(A, 700), (B, 3600)]);
    apply(&mut pump, start(A), 0);
    apply(&mut pump, report(false), 0);
    apply(&mut pump, start(B), 1);
    let stopped = apply(&mut pump, Event::StopByText { user: A }, 120);
    assert_eq!(
        sms(&stopped),
        [(A, NoticeKind::RunEnded, false), (A, NoticeKind::BalanceLow, false), (B, NoticeKind::RunStarted, true)]
    );
    assert_eq!(stopped.notices[0].facts.seconds, Some(120), "the bell still says what it used");
    assert_eq!(stopped.notices[0].facts.end_reason, Some(EndReason::UserStop));

    // B stops from the app: the run's end goes by SMS as ever.
    assert_eq!(sms(&apply(&mut pump, Event::Stop { user: B }, 130)), [(B, NoticeKind::RunEnded, true)]);

    // A farmer still in line who texts STOP leaves it: no run ended, nothing to tell.
    apply(&mut pump, start(B), 140);
    apply(&mut pump, start(A), 141);
    assert_eq!(sms(&apply(&mut pump, Event::StopByText { user: A }, 142)), []);
    // A run that ran out before the text came was not stopped by it ("Nothing to stop"): its end
    // is news by SMS.
    apply(&mut pump, Event::Stop { user: B }, 143);
    apply(&mut pump, Event::Start { user: A, requested_minutes: Some(1), entry_id: EntryId::new() }, 150);
    apply(&mut pump, report(false), 150);
    let late = pump.apply(Event::StopByText { user: A }, at(300));
    assert!(late.reply.is_err(), "nothing to stop");
    assert_eq!(sms(&late.records), [(A, NoticeKind::RunEnded, true)]);
}

/// A farmer who texts START when the pump is on hold (load shedding, the grid settling) is
/// answered "your turn, but the pump is on hold: …" by SMS: the hold their run starts with is not
/// worth a second SMS (the bell and push still get it). A later hold of that run (it ran, then
/// load shedding came) is news, and so is a hold the same press in the app started with. A START
/// texted with the pump free is answered "your pump is running": no notice at all.
#[test]
fn a_start_texted_onto_a_held_pump_is_answered_by_that_sms_and_only_a_later_hold_is_sent() {
    let sms = |records: &Records| -> Vec<(UserId, NoticeKind, bool)> {
        records.notices.iter().map(|n| (n.to, n.kind, n.facts.worth_an_sms())).collect()
    };
    let texted = |user| Event::StartByText { user, requested_minutes: None, entry_id: EntryId::new() };
    let mut pump = pump(&[(A, 3600), (B, 3600)]);
    apply(&mut pump, report(true), 1);
    let started = apply(&mut pump, texted(A), 2);
    assert_eq!(sms(&started), [(A, NoticeKind::RunHeld, false)]);
    assert_eq!(started.notices[0].facts.hold_reason, Some(HoldReason::LoadShedding), "the bell still says why");
    assert_eq!(sms(&apply(&mut pump, texted(A), 3)), [], "texted again: the same run, nothing new");

    // It runs, then load shedding comes: that hold is news by SMS.
    assert_eq!(sms(&apply(&mut pump, report(false), 30)), [(A, NoticeKind::RunResumed, true)]);
    assert_eq!(sms(&apply(&mut pump, report(true), 90)), [(A, NoticeKind::RunHeld, true)]);

    // B texts START and waits in line; their turn comes on hold when A stops: news by SMS, as any
    // turn that came after a wait.
    assert_eq!(sms(&apply(&mut pump, texted(B), 91)), []);
    let handover = apply(&mut pump, Event::Stop { user: A }, 100);
    assert_eq!(
        sms(&handover),
        [(A, NoticeKind::RunEnded, true), (B, NoticeKind::RunStarted, true), (B, NoticeKind::RunHeld, true)]
    );
    apply(&mut pump, Event::Stop { user: B }, 110);

    // Pressed in the app on a held pump: no SMS answered it, so its hold is worth one.
    assert_eq!(sms(&apply(&mut pump, start(A), 120)), [(A, NoticeKind::RunHeld, true)]);
    apply(&mut pump, Event::Stop { user: A }, 121);

    // Texted with the pump free: it runs at once, and the answer says so; no "your turn came".
    apply(&mut pump, report(false), 130);
    let running = pump.apply(texted(A), at(131));
    assert!(matches!(running.reply, Ok(Reply::Entry(ref e)) if e.status == EntryStatus::Running));
    assert_eq!(sms(&running.records), []);
}

/// An approved request tells the farmer their balance with it, the minutes they may pump now: a
/// farmer whose run is using minutes hears what is left of them.
#[test]
fn an_approval_tells_the_farmer_the_minutes_they_may_pump_now() {
    let mut pump = pump(&[(A, 600)]);
    let approved = |seconds| {
        Event::Credit(Credit {
            request_id: Some(pumppilot_engine::RequestId::new()),
            ..Credit::new(A, seconds, LedgerKind::RequestApproved, OWNER)
        })
    };
    let records = apply(&mut pump, approved(1800), 10);
    assert_eq!(told(&records), [(A, NoticeKind::RequestDecided)]);
    let facts = &records.notices[0].facts;
    assert_eq!((facts.approved, facts.seconds, facts.balance_seconds), (Some(true), Some(1800), Some(2400)));
    assert_eq!(records.notices[0].at, at(10));

    apply(&mut pump, start(A), 20);
    apply(&mut pump, report(false), 20);
    let records = apply(&mut pump, approved(600), 80);
    assert_eq!(records.notices[0].facts.balance_seconds, Some(2400 + 600 - 60), "60 s used by the run");
    // A recharge taken in cash is no request: the owner gives the receipt.
    assert_eq!(told(&apply(&mut pump, credit(A, 600), 90)), []);
}

/// A rejection tells the farmer the minutes they asked for and, when the owner gave one, why; one
/// without a reason has none.
#[test]
fn a_rejection_tells_the_farmer_the_owners_reason() {
    let told = request_rejected(AdminId(OWNER), A, 1800, Some(RejectReason::WrongAmount), at(10));
    assert_eq!(
        (told.to, told.admin_id, told.kind, told.at, told.key),
        (A, AdminId(OWNER), NoticeKind::RequestDecided, at(10), None)
    );
    let facts = &told.facts;
    assert_eq!((facts.approved, facts.seconds, facts.balance_seconds), (Some(false), Some(1800), None));
    assert_eq!(facts.reject_reason, Some(RejectReason::WrongAmount));

    let plain = request_rejected(AdminId(OWNER), A, 1800, None, at(11));
    assert_eq!((plain.facts.approved, plain.facts.reject_reason), (Some(false), None));
    // Each reason goes by its wire and store name, and back.
    let names = RejectReason::ALL.map(RejectReason::as_str);
    assert_eq!(names, ["NOT_PAID", "WRONG_AMOUNT", "TOO_MANY", "PUMP_CLOSED"]);
    assert!(RejectReason::ALL.into_iter().all(|reason| RejectReason::parse(reason.as_str()) == Some(reason)));
    assert_eq!(RejectReason::parse("not_paid"), None);
}

/// A run held by load shedding and resumed while the board still rests its relay (it holds its
/// ON command while the power settles) has no phase start until the device is told: its resume
/// was dated at the run's start, sorted to the bottom of the bell and was due at once.
#[test]
fn a_resume_is_dated_when_the_run_resumed_even_before_the_device_is_told() {
    let mut pump = pump(&[(A, 3600)]);
    apply(&mut pump, Event::Poll(DevicePoll::ready(BOARD)), 1);
    apply(&mut pump, start(A), 1);
    apply(&mut pump, Event::Poll(DevicePoll { relay: true, ..DevicePoll::ready(BOARD) }), 2);
    let cut = DevicePoll { load_shedding: true, relay_off: Some(RelayOff::LoadShedding), ..DevicePoll::ready(BOARD) };
    assert_eq!(told(&apply(&mut pump, Event::Poll(cut), 60)), [(A, NoticeKind::RunHeld)]);
    let settling = DevicePoll { relay_off: Some(RelayOff::GridSettling), ..DevicePoll::ready(BOARD) };
    let resumed = apply(&mut pump, Event::Poll(settling), 100);
    assert_eq!(told(&resumed), [(A, NoticeKind::RunResumed)]);
    assert_eq!(resumed.notices[0].at, at(100), "when it resumed, not when the run started");
}

/// Found by the audit: the firmware repeats `reset` until an answer reaches it, so an answer
/// lost told the owner of one restart twice. The board's uptime says whether it is the same boot.
#[test]
fn a_reset_said_again_after_a_lost_answer_is_told_once_and_a_new_boot_again() {
    let mut pump = pump(&[]);
    let poll =
        |reset, uptime_s: u64| DevicePoll { reset, uptime_ms: Some(uptime_s * 1000), ..DevicePoll::ready(BOARD) };
    apply(&mut pump, Event::Poll(poll(None, 600)), 100);
    // The board hangs and its watchdog restarts it: its first poll, 4 s after boot, says why.
    let hung = poll(Some(ResetReason::Watchdog), 4);
    assert_eq!(told(&apply(&mut pump, Event::Poll(hung), 130)), [(OWNER, NoticeKind::DeviceReset)]);
    // The answer is lost: the board says it again 2 s later, up 6 s, and again 4 s after that.
    assert_eq!(told(&apply(&mut pump, Event::Poll(poll(Some(ResetReason::Watchdog), 6)), 132)), []);
    assert_eq!(told(&apply(&mut pump, Event::Poll(poll(Some(ResetReason::Watchdog), 10)), 136)), []);
    // Answered at last, it polls as ever; then a sag restarts it: a new boot, told.
    apply(&mut pump, Event::Poll(poll(None, 70)), 196);
    let sagged = apply(&mut pump, Event::Poll(poll(Some(ResetReason::BrownOut), 3)), 300);
    assert_eq!(told(&sagged), [(OWNER, NoticeKind::DeviceReset)]);
    assert_eq!(sagged.notices[0].facts.reset, Some(ResetReason::BrownOut));
    // A board that does not say its uptime has each reset told, as before.
    let unsaid = DevicePoll { reset: Some(ResetReason::Panic), ..DevicePoll::ready(BOARD) };
    assert_eq!(told(&apply(&mut pump, Event::Poll(unsaid), 301)), [(OWNER, NoticeKind::DeviceReset)]);
    assert_eq!(told(&apply(&mut pump, Event::Poll(unsaid), 302)), [(OWNER, NoticeKind::DeviceReset)]);
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
        uptime_ms: None,
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
