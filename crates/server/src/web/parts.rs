//! Pieces that several pages show: the big state panel, the queue, the device's lights. The page
//! script (`assets/web/app.js`) redraws the same elements, by the same ids, from live state.

use maud::{Markup, html};

use super::{
    api::{DeviceState, Ledger, Motor, Queue, Status},
    i18n::{Lang, Text, Zone, date_time, duration, fill},
    words,
};

/// What the big panel says: a colour (class) and words, never the colour alone.
pub struct Panel {
    pub class: &'static str,
    pub word: String,
    pub detail: String,
    pub extra: String,
    pub note: String,
}

fn state_class(state: &str) -> &'static str {
    match state {
        "RUNNING" => "running",
        "HOLD" => "hold",
        "WAITING" => "waiting",
        _ => "idle",
    }
}

/// "12 min 5 s left": a remaining time, with its units.
pub fn left(t: &Text, seconds: i64, lang: Lang) -> String {
    fill(t.time_left, &[&duration(seconds.max(0), lang)])
}

/// Why a run holds, in words, and in HOLD for restart protection when it starts again.
fn held(t: &Text, lang: Lang, reason: Option<&str>, motor: &Motor) -> String {
    let reason = reason.map(|c| words(t.hold_reasons, c)).unwrap_or_default();
    match motor.resume_in_seconds.filter(|_| motor.state == "HOLD") {
        Some(seconds) => format!("{reason} · {}", fill(t.resumes_in, &[&duration(seconds, lang)])),
        None => reason,
    }
}

/// The farmer's panel: their own state first (`me.state`, from the API), the motor second. A
/// farmer who is neither running nor in line sees IDLE in grey, whatever the motor does.
pub fn farmer_panel(t: &Text, lang: Lang, status: &Status) -> Panel {
    let motor = &status.motor;
    let reason = |code: &Option<String>| held(t, lang, code.as_deref(), motor);
    let entry = status.me.entry.as_ref();
    let remaining = entry.and_then(|e| e.remaining_seconds).unwrap_or(0);
    match (status.me.state.as_str(), entry) {
        ("RUNNING", _) => Panel {
            class: "running",
            word: t.state_running.into(),
            detail: left(t, remaining, lang),
            extra: t.your_run.into(),
            note: String::new(),
        },
        ("HOLD", Some(entry)) => Panel {
            class: "hold",
            word: t.state_hold.into(),
            detail: reason(&entry.hold_reason),
            extra: left(t, remaining, lang),
            note: t.your_run_held.into(),
        },
        ("WAITING", Some(entry)) => {
            let position = entry.position.unwrap_or(1);
            // The server's estimate assumes no load shedding: while the run ahead is paused it
            // is only a lower bound. A wait is told in whole minutes (rounded up).
            let wait = entry.estimated_wait_seconds.unwrap_or(0);
            let wait = if wait >= 60 { (wait + 59) / 60 * 60 } else { wait };
            let exact = motor.state != "HOLD";
            let wait = fill(if exact { t.wait_about } else { t.wait_at_least }, &[&duration(wait, lang)]);
            Panel {
                class: "waiting",
                word: format!(
                    "{} {}",
                    t.state_waiting,
                    fill(t.waiting_number, &[&super::i18n::number(position as i64, lang)])
                ),
                detail: if position == 1 { t.waiting_next.into() } else { String::new() },
                extra: wait,
                note: if motor.state == "HOLD" { t.wait_paused.into() } else { String::new() },
            }
        }
        _ => Panel {
            class: "idle",
            word: t.state_idle.into(),
            detail: t.you_are_not_in_line.into(),
            extra: match motor.state.as_str() {
                "RUNNING" => format!("{} · {}", t.motor_busy, left(t, motor.remaining_seconds.unwrap_or(0), lang)),
                "HOLD" => format!("{} · {}", t.motor_busy_hold, reason(&motor.hold_reason)),
                _ => t.motor_free.into(),
            },
            note: String::new(),
        },
    }
}

/// The pump owner's panel: the motor, and whose run it is.
pub fn owner_panel(t: &Text, lang: Lang, motor: &Motor, queue: &Queue) -> Panel {
    let name = queue.active.as_ref().map(|e| e.user_name.as_str()).unwrap_or_default();
    let left = left(t, motor.remaining_seconds.unwrap_or(0), lang);
    match motor.state.as_str() {
        "RUNNING" => Panel {
            class: "running",
            word: t.state_running.into(),
            detail: fill(t.running_for, &[name]),
            extra: left,
            note: String::new(),
        },
        "HOLD" => Panel {
            class: "hold",
            word: t.state_hold.into(),
            detail: held(t, lang, motor.hold_reason.as_deref(), motor),
            extra: format!("{} · {left}", fill(t.run_of, &[name])),
            note: String::new(),
        },
        _ => Panel {
            class: "idle",
            word: t.state_idle.into(),
            detail: t.nobody_running.into(),
            extra: String::new(),
            note: String::new(),
        },
    }
}

pub fn panel(panel: &Panel) -> Markup {
    html! {
        section #state .state.(format!("state-{}", panel.class)) aria-live="polite" {
            div #state-word .state-word { (panel.word) }
            div #state-detail .state-detail { (panel.detail) }
            div #state-extra .state-extra { (panel.extra) }
            div #state-note .state-note { (panel.note) }
        }
    }
}

/// The queue: who runs now and who waits, in order; `me` is marked.
pub fn queue(t: &Text, lang: Lang, queue: &Queue, me: &str) -> Markup {
    html! {
        div #queue-body {
            h3 { (t.now_running) }
            @match &queue.active {
                Some(active) => {
                    p.q-active {
                        span.q-name { (active.user_name) @if active.user_id == me { " (" (t.you) ")" } }
                        " "
                        (tag(t, &active.status))
                        @if let Some(left) = active.remaining_seconds {
                            " " span.q-left { (self::left(t, left, lang)) }
                        }
                    }
                }
                None => { p.muted { (t.nobody_running) } }
            }
            h3 { (t.waiting_list) }
            @if queue.waiting.is_empty() {
                p.muted { (t.nobody_waiting) }
            } @else {
                ol.q-wait {
                    @for entry in &queue.waiting {
                        li.(if entry.user_id == me { "me" } else { "" }) {
                            span.pos { "#" (super::i18n::number(entry.position.unwrap_or(0) as i64, lang)) }
                            " "
                            span.q-name { (entry.user_name) @if entry.user_id == me { " (" (t.you) ")" } }
                            @if let Some(m) = entry.requested_minutes {
                                " " span.muted { (fill(t.up_to, &[&super::i18n::minutes(m, lang)])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A state word in its colour.
pub fn tag(t: &Text, status: &str) -> Markup {
    let word = match status {
        "RUNNING" => t.state_running,
        "HOLD" => t.state_hold,
        "WAITING" => t.state_waiting,
        _ => t.state_idle,
    };
    html! { span.tag.(state_class(status)) { (word) } }
}

/// The device in one word (`device.status`, derived by the API), in a colour.
pub fn device_status(t: &Text, device: &DeviceState) -> Markup {
    html! {
        p.device-line {
            span.label { (t.device_title) ": " }
            span #device-status .chip.(device_class(&device.status)) data-status=(device.status) {
                (words(t.device_statuses, &device.status))
            }
        }
    }
}

/// The colour of a device status (the same in `app.js`).
pub fn device_class(status: &str) -> &'static str {
    match status {
        "PUMPING" | "READY" => "good",
        "SWITCHING_ON" | "SWITCHING_OFF" => "warn",
        _ => "bad",
    }
}

/// A wallet's ledger under `title`, newest first: every change with its kind, the balance after
/// it, and the note. A recharge taken in cash names its receipt's number, a link to the receipt's
/// page (`receipt_path`, before the receipt's id: the owner's, or the farmer's copy); the
/// correction that voided a receipt names it as voided.
pub fn ledger(t: &Text, lang: Lang, zone: Zone, title: &str, ledger: &[Ledger], receipt_path: &str) -> Markup {
    html! {
        section.card {
            h2 { (title) }
            @if ledger.is_empty() { p.muted { (t.no_ledger) } }
            @else {
                table.table {
                    thead { tr { th { (t.col_when) } th { (t.col_change) } th { (t.col_balance_after) } th { (t.col_note) } } }
                    tbody {
                        @for l in ledger {
                            tr {
                                td data-label=(t.col_when) { (date_time(&l.at, zone, lang)) br; small { (words(t.ledger_kinds, &l.kind)) } }
                                td data-label=(t.col_change) .(if l.delta_seconds < 0 { "minus" } else { "plus" }) {
                                    (if l.delta_seconds < 0 { "−" } else { "+" }) (duration(l.delta_seconds.abs(), lang))
                                }
                                td data-label=(t.col_balance_after) { (duration(l.balance_after, lang)) }
                                td data-label=(t.col_note) {
                                    (l.note)
                                    @if let (Some(id), Some(number)) = (&l.receipt_id, &l.receipt_number) {
                                        @if !l.note.is_empty() { br; }
                                        small.receipt-no {
                                            (if l.kind == "CORRECTION" { t.owner.voided_receipt_no } else { t.owner.receipt_no }) " "
                                            a href={(receipt_path) (id)} { (number) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that creates an account (a farmer, or a pump owner): name, username or phone number,
/// password. `prefix` keeps the field ids apart from the page's others.
pub fn new_account_form(t: &Text, page: &super::Page, title: &str, action: &str, prefix: &str) -> Markup {
    let id = |field: &str| format!("{prefix}-{field}");
    html! {
        section.card {
            h2 { (title) }
            form method="post" action=(action) {
                (page.csrf_field())
                label for=(id("name")) { (t.name) }
                input id=(id("name")) type="text" name="name" required maxlength="80" value=(page.visit.kept("name"));
                label for=(id("username")) { (t.phone_or_username) }
                input id=(id("username")) type="text" name="username" required maxlength="64" autocapitalize="none" autocomplete="off" value=(page.visit.kept("username"));
                label for=(id("password")) { (t.password) }
                input id=(id("password")) type="password" name="password" required minlength="8" maxlength="256" autocomplete="new-password"
                    aria-describedby=(id("password-rule"));
                p.hint id=(id("password-rule")) { (t.password_rule) }
                button.big.go type="submit" { (t.create) }
            }
        }
    }
}

/// Where a device stands with the firmware meant for it (`updateState`), as a chip: the version
/// offered, how much it has downloaded, whether it failed or runs it. Nothing when none is meant for it.
pub fn update_state(t: &Text, lang: Lang, device: &super::api::Device) -> Markup {
    let Some(state) = device.update_state.as_deref() else { return html! {} };
    // The release meant for it, while it does not run it (UPDATED needs none: it runs it).
    let version = device.update_to.as_deref().unwrap_or_default();
    let percent = super::i18n::number(i64::from(device.update_percent.unwrap_or(0)), lang);
    let class = match state {
        "UPDATED" => "good",
        "FAILED" => "bad",
        _ => "warn",
    };
    html! {
        " " span.chip.update.(class) data-update=(state) { (fill(&words(t.updates.states, state), &[version, &percent])) }
    }
}

/// What a confirmed phone may text, after `intro`: each word in bold, then what it does, one to
/// a line, to be found at a glance (and read out by an owner standing with the farmer).
pub fn sms_commands(intro: &str, commands: &[(&str, &str)]) -> Markup {
    html! {
        div.phone-commands {
            p.hint { (intro) }
            ul.commands {
                @for (word, does) in commands { li { strong { (word) } " — " (does) } }
            }
        }
    }
}
