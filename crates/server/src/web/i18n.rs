//! The dashboard's two languages: every word it shows, in English and Bangla, and numbers, times
//! and durations written for each (Bangla digits, lakh grouping, the part of the day instead of
//! AM/PM). Bangla must have every field English has: the type says so.
//!
//! Templates hold numbered holes (`{0}`, `{1}`) filled by [`fill`], so each language orders its
//! words its own way, and the page script fills the same templates for live updates.

use axum::http::{HeaderMap, header};
use pumppilot_alerts::text::reject_label;
use pumppilot_engine::RejectReason;

mod firmware;
mod owner;
mod password;
pub use firmware::FirmwareText;
pub use owner::OwnerText;
pub use password::PasswordText;

/// A language the dashboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Bn,
}

/// The cookie that remembers the chosen language.
pub const LANG_COOKIE: &str = "pp_lang";

impl Lang {
    /// The remembered choice, else Bangla when the browser prefers it, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        match super::cookie(headers, LANG_COOKIE).as_deref() {
            Some("bn") => return Lang::Bn,
            Some("en") => return Lang::En,
            _ => {}
        }
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let first = accept.split(',').next().unwrap_or("").trim().to_ascii_lowercase();
        if first.starts_with("bn") { Lang::Bn } else { Lang::En }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Bn => "bn",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "bn" => Some(Lang::Bn),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Bn,
            Lang::Bn => Lang::En,
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Bn => &BN,
        }
    }

    /// The same language for the texts sent by SMS and push (`pumppilot_alerts::text`).
    pub fn language(self) -> pumppilot_alerts::Language {
        match self {
            Lang::En => pumppilot_alerts::Language::English,
            Lang::Bn => pumppilot_alerts::Language::Bangla,
        }
    }
}

/// Fills `{0}`, `{1}`, … in a template.
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = template.to_string();
    for (i, arg) in args.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), arg);
    }
    out
}

/// A code's words from a table, or the code itself when the table does not know it.
pub fn lookup(table: &'static [(&'static str, &'static str)], code: &str) -> String {
    table.iter().find(|(c, _)| *c == code).map_or_else(|| code.to_string(), |(_, words)| (*words).to_string())
}

type Table = &'static [(&'static str, &'static str)];

/// Every word of the dashboard in one language.
pub struct Text {
    pub lang: Lang,
    pub lang_name: &'static str,
    pub app_name: &'static str,
    pub tagline: &'static str,

    pub sign_in_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub form_expired: &'static str,
    pub signed_out: &'static str,
    pub api_link: &'static str,

    pub nav_pump: &'static str,
    pub nav_minutes: &'static str,
    pub nav_history: &'static str,
    pub nav_farmers: &'static str,
    pub nav_requests: &'static str,
    pub nav_usage: &'static str,
    pub nav_audit: &'static str,
    pub nav_owners: &'static str,
    pub role_user: &'static str,
    pub role_admin: &'static str,
    pub role_master: &'static str,

    pub state_running: &'static str,
    pub state_hold: &'static str,
    pub state_waiting: &'static str,
    pub state_idle: &'static str,
    pub state_starting: &'static str,
    pub state_stopping: &'static str,
    /// `{0}`: a clock like 12:05.
    pub time_left: &'static str,
    /// `{0}`: the position.
    pub waiting_number: &'static str,
    pub waiting_next: &'static str,
    /// `{0}`: a duration.
    pub wait_about: &'static str,
    pub wait_at_least: &'static str,
    pub wait_paused: &'static str,
    pub your_run: &'static str,
    pub your_run_held: &'static str,
    pub motor_free: &'static str,
    pub you_are_not_in_line: &'static str,
    /// `{0}`: minutes asked for.
    pub up_to: &'static str,
    pub device_statuses: Table,
    pub setup_title: &'static str,
    pub setup_device: &'static str,
    pub setup_farmer: &'static str,
    pub setup_recharge: &'static str,
    pub setup_done: &'static str,
    pub motor_busy: &'static str,
    pub motor_busy_hold: &'static str,
    /// `{0}`: a farmer's name.
    pub running_for: &'static str,
    pub run_of: &'static str,
    pub hold_reasons: Table,
    /// In HOLD for restart protection: "starts in about {0}".
    pub resumes_in: &'static str,

    pub start: &'static str,
    pub join_queue: &'static str,
    pub stop: &'static str,
    pub leave_queue: &'static str,
    pub run_for: &'static str,
    pub until_stopped: &'static str,
    pub your_balance: &'static str,
    pub no_minutes: &'static str,
    pub request_minutes_link: &'static str,

    pub queue_title: &'static str,
    pub now_running: &'static str,
    pub waiting_list: &'static str,
    pub nobody_waiting: &'static str,
    pub nobody_running: &'static str,
    pub you: &'static str,

    pub device_title: &'static str,
    pub pump_connected: &'static str,
    pub pump_not_connected: &'static str,
    pub firmware: &'static str,
    pub last_seen: &'static str,
    pub never_seen: &'static str,
    pub no_device: &'static str,

    pub request_title: &'static str,
    pub request_help: &'static str,
    pub minutes: &'static str,
    pub note: &'static str,
    pub note_placeholder: &'static str,
    pub send_request: &'static str,
    pub my_requests: &'static str,
    pub no_requests: &'static str,
    pub nothing_decided: &'static str,
    pub request_status: Table,

    pub history_title: &'static str,
    pub no_history: &'static str,
    pub col_when: &'static str,
    pub col_ran: &'static str,
    pub col_paused: &'static str,
    pub col_charged: &'static str,
    pub col_why: &'static str,
    pub col_farmer: &'static str,
    pub end_reasons: Table,
    pub ledger_title: &'static str,
    /// The owner's view of a farmer's ledger: "{0}'s minutes, change by change".
    pub ledger_of: &'static str,
    pub col_note: &'static str,
    pub no_ledger: &'static str,
    pub col_change: &'static str,
    pub col_balance_after: &'static str,
    pub ledger_kinds: Table,

    pub pump_title: &'static str,
    pub motor: &'static str,
    pub stop_run: &'static str,
    pub confirm_stop_run: &'static str,
    pub devices_title: &'static str,
    pub register_device: &'static str,
    pub device_name: &'static str,
    pub register: &'static str,
    pub rotate_key: &'static str,
    pub rotate_confirm: &'static str,
    pub key_title: &'static str,
    pub key_help: &'static str,
    pub link_secret_title: &'static str,
    pub setup_values: &'static str,
    pub setup_server: &'static str,
    pub setup_id: &'static str,
    pub setup_key: &'static str,
    pub setup_secret: &'static str,
    pub setup_qr: &'static str,
    pub link: &'static str,
    pub link_signed: &'static str,
    pub link_key_only: &'static str,
    pub copy: &'static str,
    pub copied: &'static str,
    pub done: &'static str,

    pub farmers_title: &'static str,
    pub add_farmer: &'static str,
    pub name: &'static str,
    pub phone_or_username: &'static str,
    pub create: &'static str,
    pub balance: &'static str,
    pub status: &'static str,
    pub active: &'static str,
    pub suspended: &'static str,
    pub manage: &'static str,
    pub recharge: &'static str,
    pub recharge_minutes: &'static str,
    pub suspend: &'static str,
    pub unsuspend: &'static str,
    pub confirm_suspend: &'static str,
    pub confirm_suspend_owner: &'static str,
    pub card_title: &'static str,
    pub card_uid: &'static str,
    pub card_help: &'static str,
    pub bind_card: &'static str,
    pub cards: &'static str,
    pub no_cards: &'static str,
    pub no_farmers: &'static str,
    pub back_to_farmers: &'static str,

    pub requests_title: &'static str,
    pub pending: &'static str,
    pub decided: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    /// The name of the reason's choice beside Reject (said by screen readers).
    pub reject_reason: &'static str,
    /// The reason's first choice: rejected without one.
    pub no_reason: &'static str,
    pub no_pending: &'static str,
    pub unknown_user: &'static str,

    pub usage_title: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub show: &'static str,
    pub export_csv: &'static str,
    pub per_day: &'static str,
    pub per_user: &'static str,
    /// `{0}`: minutes.
    pub total_minutes: &'static str,
    pub no_usage: &'static str,
    pub chart_label_day: &'static str,
    pub chart_label_user: &'static str,
    pub axis_day: &'static str,
    /// The usage spreadsheet's columns: the day a run counts on (the day it ended), its start and
    /// end (each with its date), the farmer, the minutes and why it ended.
    pub csv_columns: [&'static str; 8],

    pub audit_title: &'static str,
    pub col_who: &'static str,
    pub col_action: &'static str,
    pub col_detail: &'static str,
    pub no_audit: &'static str,
    pub audit_actions: Table,

    pub owners_title: &'static str,
    pub add_owner: &'static str,
    pub farmers_count: &'static str,
    pub device_online: &'static str,
    pub device_offline: &'static str,
    pub no_owners: &'static str,

    pub forbidden_title: &'static str,
    pub forbidden_text: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub go_home: &'static str,
    pub live_lost: &'static str,
    pub live_polling: &'static str,
    /// `{0}`: the time of the last state the page got.
    pub live_lost_as_of: &'static str,
    pub back_online: &'static str,
    pub sending: &'static str,

    /// `{0}`: farmer's name, `{1}`: minutes.
    pub flash_recharged: &'static str,
    pub flash_user_created: &'static str,
    pub flash_owner_created: &'static str,
    pub flash_suspended: &'static str,
    pub flash_unsuspended: &'static str,
    pub flash_approved: &'static str,
    pub flash_rejected: &'static str,
    /// `{0}`: card, `{1}`: name.
    pub flash_card_bound: &'static str,
    pub flash_request_sent: &'static str,
    pub nav_alerts: &'static str,
    pub alerts_unread: &'static str,
    pub alerts_none: &'static str,
    pub alerts_mark_read: &'static str,
    pub alerts_settings_title: &'static str,
    pub alerts_phone: &'static str,
    /// `{0}`: the confirmed number.
    pub alerts_phone_confirmed: &'static str,
    pub alerts_phone_none: &'static str,
    /// `{0}`: the number waiting to be confirmed.
    pub alerts_phone_waiting: &'static str,
    /// `{0}`: the number waiting, `{1}`: its code, `{2}`: the number to text (or
    /// `alerts_sms_number_unknown`).
    pub alerts_phone_send: &'static str,
    /// `{0}`: the number whose code expired.
    pub alerts_phone_expired: &'static str,
    /// `{0}`: the number dropped after too many wrong codes were texted from it.
    pub alerts_phone_dropped: &'static str,
    /// Before the list of what one's confirmed phone may text. `{0}`: the number to text (or
    /// `alerts_sms_number_unknown`).
    pub alerts_phone_commands: &'static str,
    /// What a farmer's phone may text, each with what it does (the server's words in
    /// `routes::sms`).
    pub sms_farmer_commands: &'static [(&'static str, &'static str)],
    /// What a pump owner's phone may text, each with what it does.
    pub sms_owner_commands: &'static [(&'static str, &'static str)],
    /// The number to text, when the server was not told it (fits `{2}` of `alerts_phone_send`).
    pub alerts_sms_number_unknown: &'static str,
    pub alerts_language: &'static str,
    pub alerts_quiet_from: &'static str,
    pub alerts_quiet_to: &'static str,
    pub alerts_save: &'static str,
    pub flash_alerts_saved: &'static str,
    pub flash_alerts_read: &'static str,
    pub flash_started: &'static str,
    pub flash_stopped: &'static str,
    pub flash_run_stopped: &'static str,
    /// `{0}`: farmer's name, `{1}`: the new balance.
    pub flash_corrected: &'static str,
    pub flash_made_already: &'static str,
    pub flash_left_queue: &'static str,
    /// `{0}`: card, `{1}`: the farmer it belongs to now.
    pub flash_card_taken: &'static str,
    pub move_card: &'static str,
    /// `{0}`: card.
    pub flash_card_removed: &'static str,
    pub remove_card: &'static str,
    /// `{0}`: card.
    pub confirm_remove_card: &'static str,
    /// `{0}`: farmer.
    pub flash_removed_from_queue: &'static str,
    pub remove_waiting_title: &'static str,
    pub remove_waiting_help: &'static str,
    pub remove_waiting_who: &'static str,
    pub remove_waiting_reason: &'static str,
    pub remove_waiting: &'static str,
    pub confirm_remove_waiting: &'static str,
    pub confirm_leave: &'static str,
    pub correction_title: &'static str,
    pub correction_help: &'static str,
    pub correction_minutes: &'static str,
    pub correction_reason: &'static str,
    pub correct: &'static str,
    pub confirm_correction: &'static str,
    /// `{0}` minutes, `{1}` name, `{2}` balance now, `{3}` balance after.
    pub approve_confirm: &'static str,
    /// `{0}` balance now, `{1}` balance after.
    pub balance_now_after: &'static str,
    /// `{0}`: the most minutes a request may ask for.
    pub request_limits: &'static str,
    pub request_waiting: &'static str,
    pub errors: Table,
    /// A refused field's rule, by the field's name in the API.
    pub field_hints: Table,
    pub password_rule: &'static str,
    /// `{0}`: the status code.
    pub error_other: &'static str,

    pub unit_h: &'static str,
    pub unit_min: &'static str,
    pub unit_s: &'static str,
    pub months: [&'static str; 12],
    /// Short enough for a chart's labels at 360 px.
    pub months_short: [&'static str; 12],
    /// The owner's day: terms, receipts, a farmer's name and password.
    pub owner: &'static OwnerText,
    /// The master's firmware page and a device's update state.
    pub updates: &'static FirmwareText,
    /// Changing one's own password, and the master's new password for an owner.
    pub passwords: &'static PasswordText,
}

impl Text {
    /// Each reason a request may be rejected for, by its code (`NOT_PAID`, …), in the order the
    /// owner is offered them: the owner's choice and what the farmer reads. The words are the
    /// texts' (`pumppilot_alerts::text::reject_label`), so the page says a reason as the bell,
    /// push and SMS do.
    pub fn reject_reasons(&self) -> Vec<(&'static str, String)> {
        RejectReason::ALL.map(|reason| (reason.as_str(), reject_label(reason, self.lang.language()))).into()
    }

    /// A rejection's reason in words, by its code; `None` for a code this server does not know.
    pub fn reject_reason_words(&self, code: &str) -> Option<String> {
        RejectReason::parse(code).map(|reason| reject_label(reason, self.lang.language()))
    }

    /// A rejection's reason in words, by its code, or the code itself when this server does not
    /// know it.
    pub fn reject_reason(&self, code: &str) -> String {
        self.reject_reason_words(code).unwrap_or_else(|| code.to_string())
    }
}

pub static EN: Text = Text {
    lang: Lang::En,
    lang_name: "English",
    app_name: "PumpPilot",
    tagline: "Shared water pumps",

    sign_in_title: "Sign in",
    username: "Username or phone number",
    password: "Password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    form_expired: "The form had expired. Please try again.",
    signed_out: "You are signed out.",
    api_link: "For developers: the API (OpenAPI)",

    nav_pump: "Pump",
    nav_minutes: "Minutes",
    nav_history: "History",
    nav_farmers: "Farmers",
    nav_requests: "Requests",
    nav_usage: "Usage",
    nav_audit: "Log",
    nav_owners: "Pump owners",
    role_user: "Farmer",
    role_admin: "Pump owner",
    role_master: "Master admin",

    state_running: "RUNNING",
    state_hold: "ON HOLD",
    state_waiting: "WAITING",
    state_idle: "IDLE",
    state_starting: "STARTING…",
    state_stopping: "STOPPING…",
    time_left: "{0} left",
    waiting_number: "#{0}",
    waiting_next: "You are next",
    wait_about: "Estimated wait: about {0}",
    wait_at_least: "Estimated wait: at least {0}",
    wait_paused: "The run ahead of you is paused; the wait grows while it is.",
    your_run: "Your pump is running",
    your_run_held: "Paused. It goes on by itself when this is fixed, and your time is kept.",
    motor_free: "The motor is free",
    you_are_not_in_line: "You are not pumping and not in the queue",
    up_to: "up to {0}",
    setup_title: "Set up your pump",
    setup_device: "Register the device at the pump",
    setup_farmer: "Add a farmer",
    setup_recharge: "Recharge a farmer's minutes",
    setup_done: "done",
    device_statuses: &[
        ("NO_DEVICE", "No device at the pump yet"),
        ("OFFLINE", "Not connected"),
        ("POWER_CUT", "Power cut"),
        ("NOT_READY", "Pump not ready"),
        ("PUMPING", "Pumping"),
        ("SWITCHING_ON", "Switching on…"),
        ("SWITCHING_OFF", "Switching off…"),
        ("READY", "Ready"),
    ],
    motor_busy: "Another farmer is pumping",
    motor_busy_hold: "Another farmer’s run is paused",
    running_for: "Running for {0}",
    run_of: "{0}'s run",
    hold_reasons: &[
        ("LOAD_SHEDDING", "Power cut (load shedding)"),
        ("DEVICE_NOT_READY", "The pump is not ready"),
        ("DEVICE_OFFLINE", "The pump controller is not connected"),
        ("GRID_SETTLING", "Power is back; waiting for it to settle"),
        ("RESTART_WAIT", "The motor rests before it starts again"),
        ("NO_FEEDBACK", "The motor did not start; check the pump"),
        ("STORE_UNAVAILABLE", "The server cannot record the run just now"),
    ],
    resumes_in: "starts again in about {0}",

    start: "START",
    join_queue: "JOIN THE QUEUE",
    stop: "STOP",
    leave_queue: "LEAVE THE QUEUE",
    run_for: "Run for",
    until_stopped: "Until I stop",
    your_balance: "Your balance",
    no_minutes: "You have no minutes. Ask your pump owner, or request minutes.",
    request_minutes_link: "Request minutes",

    queue_title: "Queue",
    now_running: "Now",
    waiting_list: "Waiting",
    nobody_waiting: "Nobody is waiting.",
    nobody_running: "Nobody is using the motor.",
    you: "you",

    device_title: "Device at the pump",
    pump_connected: "Pump connected",
    pump_not_connected: "Pump not connected",
    firmware: "Firmware",
    last_seen: "Last seen",
    never_seen: "Never seen",
    no_device: "No device is registered yet.",

    request_title: "Request minutes",
    request_help: "After you pay your pump owner, ask for the minutes here. They approve it.",
    minutes: "Minutes",
    note: "Note (optional)",
    note_placeholder: "e.g. paid 200 taka in cash",
    send_request: "Send request",
    my_requests: "Your requests",
    no_requests: "No requests yet.",
    nothing_decided: "Nothing decided yet.",
    request_status: &[("PENDING", "Waiting for approval"), ("APPROVED", "Approved"), ("REJECTED", "Rejected")],

    history_title: "Usage history",
    no_history: "No runs yet.",
    col_when: "When",
    col_ran: "Ran",
    col_paused: "Paused",
    col_charged: "Charged",
    col_why: "Ended",
    col_farmer: "Farmer",
    end_reasons: &[
        ("USER_STOP", "Stopped by the farmer"),
        ("BALANCE_EXHAUSTED", "Minutes ran out"),
        ("REQUESTED_MINUTES_USED", "Chosen time used"),
        ("ADMIN_STOP", "Stopped by the pump owner"),
        ("SUSPENDED", "Account suspended"),
        ("INSUFFICIENT_BALANCE", "Not enough minutes"),
        ("LEFT_QUEUE", "Left the queue"),
    ],
    ledger_title: "Your minutes, change by change",
    ledger_of: "{0}'s minutes, change by change",
    col_note: "Note",
    no_ledger: "No changes yet.",
    col_change: "Change",
    col_balance_after: "Balance after",
    ledger_kinds: &[
        ("RECHARGE", "Recharge"),
        ("REQUEST_APPROVED", "Request approved"),
        ("RUN_CHARGE", "Pumping"),
        ("CORRECTION", "Correction"),
    ],

    pump_title: "Pump",
    motor: "Motor",
    stop_run: "STOP THIS RUN",
    confirm_stop_run: "Stop this farmer’s run now?",
    devices_title: "Devices",
    register_device: "Register a device",
    device_name: "Device name",
    register: "Register",
    rotate_key: "New key",
    rotate_confirm: "The old key stops working at once",
    key_title: "The device key — shown only this once",
    key_help: "Copy it into the device now. It cannot be shown again; if it is lost, make a new key.",
    link_secret_title: "The link secret — the device signs with it; it never travels again",
    setup_values: "Values to enter on the device's setup page",
    setup_server: "Server",
    setup_id: "Device id",
    setup_key: "Device key",
    setup_secret: "Link secret",
    setup_qr: "The same values for a phone: server, id, key and secret (add the WiFi network on site).",
    link: "Link",
    link_signed: "signed",
    link_key_only: "key only (older firmware)",
    copy: "Copy",
    copied: "Copied",
    done: "Done",

    farmers_title: "Farmers",
    add_farmer: "Add a farmer",
    name: "Name",
    phone_or_username: "Username or phone number",
    create: "Create",
    balance: "Balance",
    status: "Status",
    active: "Active",
    suspended: "SUSPENDED",
    manage: "Open",
    recharge: "Recharge",
    recharge_minutes: "Minutes to add",
    suspend: "Suspend",
    unsuspend: "Let back in",
    confirm_suspend: "Suspend this account? Their run ends and they are signed out.",
    confirm_suspend_owner: "Suspend this pump owner? The owner AND ALL THEIR FARMERS are locked out, and the pump's run ends.",
    card_title: "RFID card",
    card_uid: "Card number (UID)",
    card_help: "Hex, e.g. 04A1B2C3. A card already bound moves to this farmer.",
    bind_card: "Bind card",
    cards: "Cards",
    no_cards: "No card.",
    no_farmers: "No farmers yet. Add the first one below.",
    back_to_farmers: "All farmers",

    requests_title: "Minute requests",
    pending: "Waiting for you",
    decided: "Decided",
    approve: "Approve",
    reject: "Reject",
    reject_reason: "Why",
    no_reason: "No reason",
    no_pending: "No requests are waiting.",
    unknown_user: "Unknown farmer",

    usage_title: "Usage",
    from: "From",
    to: "To",
    show: "Show",
    export_csv: "Download CSV",
    per_day: "Minutes per day",
    per_user: "Minutes per farmer",
    total_minutes: "{0} in total",
    no_usage: "No runs in this period.",
    chart_label_day: "Charged minutes per day",
    chart_label_user: "Charged minutes per farmer",
    axis_day: "Day",
    csv_columns: [
        "Day it ended",
        "Started",
        "Ended",
        "Farmer",
        "Minutes run",
        "Minutes paused",
        "Minutes charged",
        "Why it ended",
    ],

    audit_title: "Audit log",
    col_who: "Who",
    col_action: "What",
    col_detail: "Detail",
    no_audit: "Nothing yet.",
    audit_actions: &[
        ("user.create", "Farmer added"),
        ("user.suspend", "Farmer suspended"),
        ("user.unsuspend", "Farmer let back in"),
        ("admin.create", "Pump owner added"),
        ("admin.suspend", "Pump owner suspended"),
        ("admin.unsuspend", "Pump owner let back in"),
        ("recharge", "Recharge"),
        ("correction", "Correction"),
        ("request.approve", "Request approved"),
        ("request.reject", "Request rejected"),
        ("device.register", "Device registered"),
        ("device.rotate-key", "Device key replaced"),
        ("motor.stop", "Run stopped"),
        ("card.bind", "Card bound"),
        ("card.unbind", "Card removed"),
        ("queue.remove", "Taken out of the queue"),
        ("terms.set", "Price and limits changed"),
        ("queue.move", "Moved in the queue"),
        ("user.edit", "Farmer renamed"),
        ("user.password", "New password made"),
        ("admin.password", "New password made for the pump owner"),
        ("account.password", "Own password changed"),
        ("farmer.phone", "Phone for SMS set"),
        ("receipt.void", "Receipt voided"),
    ],

    owners_title: "Pump owners",
    add_owner: "Add a pump owner",
    farmers_count: "Farmers",
    device_online: "Online",
    device_offline: "Offline",
    no_owners: "No pump owners yet. Add the first one below.",

    forbidden_title: "Not for your account",
    forbidden_text: "This page is for another kind of account.",
    not_found_title: "Not found",
    not_found_text: "There is no such page or object here.",
    go_home: "Go to my page",
    live_lost: "Connection lost. Trying again…",
    live_polling: "Live updates are off; checking every few seconds.",
    live_lost_as_of: "Cannot reach the server. What you see is as of {0}. Trying again…",
    back_online: "Back online. This is the state now.",
    sending: "Sending…",

    flash_recharged: "{0} now has {1}.",
    flash_user_created: "{0} was added.",
    flash_owner_created: "{0} was added.",
    flash_suspended: "{0} is suspended.",
    flash_unsuspended: "{0} can use the pump again.",
    flash_approved: "Approved {1} for {0}.",
    flash_rejected: "Rejected the request of {0}.",
    flash_card_bound: "Card {0} now belongs to {1}.",
    flash_request_sent: "Your request for {0} was sent.",
    nav_alerts: "Notifications",
    alerts_unread: "{0} unread",
    alerts_none: "Nothing yet. You will hear here when your turn comes, when a run holds or ends, and more.",
    alerts_mark_read: "Mark all read",
    alerts_settings_title: "How you hear",
    alerts_phone: "Phone for SMS (like +8801711000000)",
    alerts_phone_confirmed: "Confirmed phone: {0}. SMS alerts go here, and texts from it are obeyed.",
    alerts_phone_none: "No phone confirmed yet: no SMS is sent, and no text is obeyed.",
    alerts_phone_waiting: "{0} is waiting to be confirmed: it gets nothing until then.",
    alerts_phone_send: "From the phone {0}, send {1} to {2}. The code works for 24 hours.",
    alerts_phone_expired: "The code for {0} expired: save the number again for a new one.",
    alerts_phone_dropped: "Too many wrong codes were texted from {0}: it was dropped. Save the number again for a new code.",
    alerts_phone_commands: "From it, text {0}:",
    sms_farmer_commands: &[
        ("START", "pump until you stop; START 30 for 30 min"),
        ("STOP", "stop, or leave the line"),
        ("BAL", "your balance and place in line"),
        ("REQ 60", "ask the owner for 60 min"),
    ],
    sms_owner_commands: &[
        ("STATUS", "the pump at a glance: who pumps, the line, requests, the device"),
        ("STOP 4821", "stop the run STATUS names by that number"),
        ("OK 3817", "approve the request STATUS names by that number; NO 3817 rejects it"),
        ("NO 3817 UNPAID", "reject it and say why: UNPAID, AMOUNT (does not match), LESS (ask for fewer) or CLOSED"),
    ],
    alerts_sms_number_unknown: "the pump's SMS number",
    alerts_language: "Language of messages",
    alerts_quiet_from: "Quiet from (HH:MM)",
    alerts_quiet_to: "Quiet until (HH:MM)",
    alerts_save: "Save",
    flash_alerts_saved: "Saved.",
    flash_alerts_read: "All marked read.",
    flash_started: "Started.",
    flash_stopped: "Stopped. Used {0}. Balance {1}.",
    flash_run_stopped: "The run of {0} was stopped.",
    flash_corrected: "Corrected. {0} now has {1}.",
    flash_made_already: "This was made already (the form was sent twice): nothing was added now. {0} has {1}.",
    flash_left_queue: "You left the queue. Your minutes are not touched.",
    flash_card_taken: "Card {0} belongs to {1}. Tick the box to move it to this farmer.",
    move_card: "Yes, move the card to this farmer (the other farmer can no longer use it)",
    flash_card_removed: "Card {0} was removed. It no longer starts the pump.",
    remove_card: "Remove",
    confirm_remove_card: "Remove card {0}? It will no longer start the pump.",
    flash_removed_from_queue: "{0} was taken out of the queue.",
    remove_waiting_title: "Take someone out of the queue",
    remove_waiting_help: "Their minutes are not touched. The reason is written in the log.",
    remove_waiting_who: "Farmer",
    remove_waiting_reason: "Why",
    remove_waiting: "Take out of the queue",
    confirm_remove_waiting: "Take this farmer out of the queue? They lose their place in line.",
    confirm_leave: "Leave the queue? You lose your place in line.",
    correction_title: "Correct the balance",
    correction_help: "For a mistake: type minutes to add, or minus minutes to take back (like -15), and say why. It is written in the log.",
    correction_minutes: "Minutes (+ or −)",
    correction_reason: "Why",
    correct: "Correct",
    confirm_correction: "Change this farmer's balance? It cannot be undone except by another correction.",
    approve_confirm: "Give {0} to {1}? Balance {2} now, {3} after.",
    balance_now_after: "Balance {0} now → {1} after",
    request_limits: "At most {0} in one request; one request at a time.",
    request_waiting: "Your request is waiting for the pump owner. You can ask again after they decide.",
    errors: &[
        ("INVALID_CREDENTIALS", "Wrong username or password."),
        ("WRONG_PASSWORD", "The current password is wrong. Nothing was changed."),
        ("UNAUTHENTICATED", "You are not signed in."),
        ("TOKEN_EXPIRED", "Your sign-in has expired. Please sign in again."),
        ("FORBIDDEN", "Your account is not allowed to do this."),
        ("ACCOUNT_SUSPENDED", "This account is suspended. Talk to your pump owner."),
        ("INSUFFICIENT_BALANCE", "Not enough minutes. Ask your pump owner to recharge, or request minutes."),
        ("ALREADY_DECIDED", "This request was already decided."),
        ("ALREADY_ENDED", "That run had ended already: nothing was stopped. Look again at who is running now."),
        ("NOT_FOUND", "Not found. It may have just changed."),
        ("CONFLICT", "That is not possible right now."),
        ("USERNAME_TAKEN", "That username is taken."),
        ("RATE_LIMITED", "Too many tries. Wait a few minutes and try again."),
        ("BUSY", "The server is busy checking sign-ins. Try again in a few seconds."),
        ("UNAVAILABLE", "The server has a problem with its storage. Nothing was changed. Try again soon."),
        ("VALIDATION", "Please check what you entered."),
        ("REQUEST_PENDING", "You already have a request waiting. Wait for the pump owner to decide it."),
        (
            "KEY_REUSED",
            "This recharge or correction was already made, with other figures. Check the ledger below before you send it again.",
        ),
        ("BELOW_ZERO", "A balance cannot go below zero: take back at most what is left."),
        ("ALREADY_VOID", "This receipt was voided already. Nothing was changed."),
        ("OFFLINE", "Cannot reach the server."),
    ],
    error_other: "Something went wrong (error {0}).",
    password_rule: "At least 8 characters. Write it down: it is not shown again.",
    field_hints: &[
        ("minutes", "Minutes: type a whole number, like 30."),
        ("minutes/from", "Minutes: a whole number from {0} to {1}."),
        ("name", "Name: 1 to 80 letters."),
        ("name/no", "Name: letters, digits, spaces and punctuation only."),
        ("name/at", "Name: at least one letter or digit."),
        ("note/no", "Note: letters, digits, spaces and punctuation only."),
        ("note/say", "Note: say why the balance is corrected."),
        ("reason/no", "Reason: letters, digits, spaces and punctuation only."),
        ("username", "Username or phone: 3 to 64 letters or digits, no spaces."),
        ("phone", "Phone: with the country code, like +8801711000000."),
        ("password", "Password: at least 8 characters."),
        ("newPassword", "New password: at least 8 characters."),
        ("currentPassword", "Current password: at most 256 characters."),
        ("note", "Note: at most 500 letters."),
        ("reason", "Say why, in a few words."),
        ("reason/choose", "Why: choose one from the list."),
        ("uid", "Card number: the letters and digits on the reader, like 04A1B2C3."),
        ("from", "Dates: pick a day."),
        ("to", "Dates: pick a day."),
        ("maxRequestMinutes", "Most minutes: a whole number from 1 to 10080."),
        ("pricePerHourTaka", "Price: whole taka from 0 to 100000, or empty for no price."),
        ("cashTaka", "Cash: whole taka, like 150, or empty."),
        ("cashTaka/from", "Cash: whole taka from {0} to {1}."),
        ("position", "Place: a whole number, 1 for next."),
    ],

    unit_h: "h",
    unit_min: "min",
    unit_s: "s",
    months: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    months_short: ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    owner: &owner::EN,
    updates: &firmware::EN,
    passwords: &password::EN,
};

pub static BN: Text = Text {
    lang: Lang::Bn,
    lang_name: "বাংলা",
    app_name: "পাম্পপাইলট",
    tagline: "সবার পানির পাম্প",

    sign_in_title: "সাইন ইন",
    username: "ইউজারনেম বা ফোন নম্বর",
    password: "পাসওয়ার্ড",
    sign_in: "সাইন ইন করুন",
    sign_out: "সাইন আউট",
    form_expired: "ফর্মের মেয়াদ শেষ হয়েছিল। আবার চেষ্টা করুন।",
    signed_out: "আপনি সাইন আউট করেছেন।",
    api_link: "ডেভেলপারদের জন্য: API (OpenAPI)",

    nav_pump: "পাম্প",
    nav_minutes: "মিনিট",
    nav_history: "ইতিহাস",
    nav_farmers: "কৃষক",
    nav_requests: "অনুরোধ",
    nav_usage: "ব্যবহার",
    nav_audit: "লগ",
    nav_owners: "পাম্প মালিক",
    role_user: "কৃষক",
    role_admin: "পাম্প মালিক",
    role_master: "প্রধান অ্যাডমিন",

    state_running: "চলছে",
    state_hold: "বিরতিতে",
    state_waiting: "অপেক্ষায়",
    state_idle: "বন্ধ",
    state_starting: "চালু হচ্ছে…",
    state_stopping: "বন্ধ হচ্ছে…",
    time_left: "{0} বাকি",
    waiting_number: "#{0}",
    waiting_next: "এরপর আপনার পালা",
    wait_about: "আনুমানিক অপেক্ষা: প্রায় {0}",
    wait_at_least: "আনুমানিক অপেক্ষা: অন্তত {0}",
    wait_paused: "আগের পাম্প থেমে আছে; যতক্ষণ থেমে থাকবে, অপেক্ষা তত বাড়বে।",
    your_run: "আপনার পাম্প চলছে",
    your_run_held: "থেমে আছে। সমস্যা মিটলে নিজেই আবার চলবে, আপনার সময় কাটা হবে না।",
    motor_free: "মোটর খালি আছে",
    you_are_not_in_line: "আপনি পাম্প চালাচ্ছেন না, সারিতেও নেই",
    up_to: "সর্বোচ্চ {0}",
    setup_title: "আপনার পাম্প চালু করার ধাপ",
    setup_device: "পাম্পের যন্ত্র নিবন্ধন করুন",
    setup_farmer: "একজন কৃষক যোগ করুন",
    setup_recharge: "কৃষকের মিনিট রিচার্জ করুন",
    setup_done: "হয়েছে",
    device_statuses: &[
        ("NO_DEVICE", "পাম্পে এখনো কোনো যন্ত্র নেই"),
        ("OFFLINE", "সংযোগ নেই"),
        ("POWER_CUT", "বিদ্যুৎ নেই"),
        ("NOT_READY", "পাম্প প্রস্তুত নয়"),
        ("PUMPING", "পানি উঠছে"),
        ("SWITCHING_ON", "চালু হচ্ছে…"),
        ("SWITCHING_OFF", "বন্ধ হচ্ছে…"),
        ("READY", "প্রস্তুত"),
    ],
    motor_busy: "অন্য একজন কৃষক পাম্প চালাচ্ছেন",
    motor_busy_hold: "অন্য কৃষকের পাম্প থেমে আছে",
    running_for: "{0}-এর জন্য চলছে",
    run_of: "{0}-এর পালা",
    hold_reasons: &[
        ("LOAD_SHEDDING", "বিদ্যুৎ নেই (লোডশেডিং)"),
        ("DEVICE_NOT_READY", "পাম্প প্রস্তুত নয়"),
        ("DEVICE_OFFLINE", "পাম্পের যন্ত্রের সাথে সংযোগ নেই"),
        ("GRID_SETTLING", "বিদ্যুৎ এসেছে; স্থির হওয়ার অপেক্ষা"),
        ("RESTART_WAIT", "মোটর আবার চালুর আগে বিশ্রাম নিচ্ছে"),
        ("NO_FEEDBACK", "মোটর চালু হয়নি; পাম্পটি দেখুন"),
        ("STORE_UNAVAILABLE", "সার্ভার এখন হিসাব লিখতে পারছে না"),
    ],
    resumes_in: "আনুমানিক {0} পরে আবার চালু হবে",

    start: "চালু করুন",
    join_queue: "সারিতে দাঁড়ান",
    stop: "বন্ধ করুন",
    leave_queue: "সারি ছাড়ুন",
    run_for: "কতক্ষণ চলবে",
    until_stopped: "বন্ধ না করা পর্যন্ত",
    your_balance: "আপনার ব্যালেন্স",
    no_minutes: "আপনার কোনো মিনিট নেই। পাম্প মালিককে বলুন, অথবা মিনিটের অনুরোধ পাঠান।",
    request_minutes_link: "মিনিটের অনুরোধ",

    queue_title: "সারি",
    now_running: "এখন",
    waiting_list: "অপেক্ষায়",
    nobody_waiting: "কেউ অপেক্ষায় নেই।",
    nobody_running: "এখন কেউ মোটর চালাচ্ছেন না।",
    you: "আপনি",

    device_title: "পাম্পের যন্ত্র",
    pump_connected: "পাম্প সংযুক্ত",
    pump_not_connected: "পাম্প সংযুক্ত নয়",
    firmware: "ফার্মওয়্যার",
    last_seen: "শেষ যোগাযোগ",
    never_seen: "কখনো যোগাযোগ হয়নি",
    no_device: "এখনো কোনো যন্ত্র নিবন্ধিত নেই।",

    request_title: "মিনিটের অনুরোধ",
    request_help: "পাম্প মালিককে টাকা দেওয়ার পর এখানে মিনিট চান। তিনি মঞ্জুর করবেন।",
    minutes: "মিনিট",
    note: "মন্তব্য (ইচ্ছা হলে)",
    note_placeholder: "যেমন: নগদ ২০০ টাকা দিয়েছি",
    send_request: "অনুরোধ পাঠান",
    my_requests: "আপনার অনুরোধ",
    no_requests: "এখনো কোনো অনুরোধ নেই।",
    nothing_decided: "এখনো কোনো সিদ্ধান্ত হয়নি।",
    request_status: &[("PENDING", "অনুমোদনের অপেক্ষায়"), ("APPROVED", "মঞ্জুর"), ("REJECTED", "নামঞ্জুর")],

    history_title: "ব্যবহারের ইতিহাস",
    no_history: "এখনো পাম্প চালানো হয়নি।",
    col_when: "কখন",
    col_ran: "চলেছে",
    col_paused: "থেমে ছিল",
    col_charged: "খরচ",
    col_why: "শেষ হলো",
    col_farmer: "কৃষক",
    end_reasons: &[
        ("USER_STOP", "কৃষক বন্ধ করেছেন"),
        ("BALANCE_EXHAUSTED", "মিনিট শেষ"),
        ("REQUESTED_MINUTES_USED", "বেছে নেওয়া সময় শেষ"),
        ("ADMIN_STOP", "পাম্প মালিক বন্ধ করেছেন"),
        ("SUSPENDED", "অ্যাকাউন্ট স্থগিত"),
        ("INSUFFICIENT_BALANCE", "যথেষ্ট মিনিট নেই"),
        ("LEFT_QUEUE", "সারি ছেড়েছেন"),
    ],
    ledger_title: "আপনার মিনিটের হিসাব",
    ledger_of: "{0}-এর মিনিটের হিসাব",
    col_note: "মন্তব্য",
    no_ledger: "এখনো কোনো হিসাব নেই।",
    col_change: "পরিবর্তন",
    col_balance_after: "এরপর ব্যালেন্স",
    ledger_kinds: &[
        ("RECHARGE", "রিচার্জ"),
        ("REQUEST_APPROVED", "অনুরোধ মঞ্জুর"),
        ("RUN_CHARGE", "পাম্প চালানো"),
        ("CORRECTION", "সংশোধন"),
    ],

    pump_title: "পাম্প",
    motor: "মোটর",
    stop_run: "এই পাম্প বন্ধ করুন",
    confirm_stop_run: "এই কৃষকের পাম্প এখনই বন্ধ করবেন?",
    devices_title: "যন্ত্র",
    register_device: "যন্ত্র নিবন্ধন",
    device_name: "যন্ত্রের নাম",
    register: "নিবন্ধন করুন",
    rotate_key: "নতুন চাবি",
    rotate_confirm: "পুরনো চাবি সাথে সাথে অচল হবে",
    key_title: "যন্ত্রের চাবি — শুধু এইবার দেখানো হচ্ছে",
    key_help: "এখনই যন্ত্রে বসিয়ে দিন। এটি আর দেখানো যাবে না; হারালে নতুন চাবি বানান।",
    link_secret_title: "লিংকের গোপন সংকেত — যন্ত্র এটি দিয়ে স্বাক্ষর করে; এটি আর কখনো পাঠানো হয় না",
    setup_values: "যন্ত্রের সেটআপ পাতায় যা লিখতে হবে",
    setup_server: "সার্ভার",
    setup_id: "যন্ত্রের আইডি",
    setup_key: "যন্ত্রের চাবি",
    setup_secret: "লিংকের গোপন সংকেত",
    setup_qr: "ফোনের জন্য একই তথ্য: সার্ভার, আইডি, চাবি ও গোপন সংকেত (ওয়াইফাই সেখানে গিয়ে যোগ করুন)।",
    link: "সংযোগ",
    link_signed: "স্বাক্ষরিত",
    link_key_only: "শুধু চাবি (পুরনো ফার্মওয়্যার)",
    copy: "কপি",
    copied: "কপি হয়েছে",
    done: "হয়ে গেছে",

    farmers_title: "কৃষক",
    add_farmer: "কৃষক যোগ করুন",
    name: "নাম",
    phone_or_username: "ইউজারনেম বা ফোন নম্বর",
    create: "যোগ করুন",
    balance: "ব্যালেন্স",
    status: "অবস্থা",
    active: "সক্রিয়",
    suspended: "স্থগিত",
    manage: "খুলুন",
    recharge: "রিচার্জ",
    recharge_minutes: "কত মিনিট যোগ হবে",
    suspend: "স্থগিত করুন",
    unsuspend: "স্থগিত তুলে নিন",
    confirm_suspend: "এই অ্যাকাউন্ট স্থগিত করবেন? পাম্প বন্ধ হবে এবং সাইন আউট হয়ে যাবে।",
    confirm_suspend_owner: "এই পাম্প মালিককে স্থগিত করবেন? মালিক এবং তাঁর সব কৃষক ঢুকতে পারবেন না, আর পাম্পের চলমান পালা বন্ধ হবে।",
    card_title: "আরএফআইডি কার্ড",
    card_uid: "কার্ড নম্বর (UID)",
    card_help: "হেক্স সংখ্যা, যেমন 04A1B2C3। অন্য কারো কার্ড হলে এই কৃষকের হবে।",
    bind_card: "কার্ড যুক্ত করুন",
    cards: "কার্ড",
    no_cards: "কার্ড নেই।",
    no_farmers: "এখনো কোনো কৃষক নেই। নিচে প্রথমজনকে যোগ করুন।",
    back_to_farmers: "সব কৃষক",

    requests_title: "মিনিটের অনুরোধ",
    pending: "আপনার সিদ্ধান্তের অপেক্ষায়",
    decided: "সিদ্ধান্ত হয়েছে",
    approve: "মঞ্জুর",
    reject: "নামঞ্জুর",
    reject_reason: "কারণ",
    no_reason: "কারণ ছাড়া",
    no_pending: "কোনো অনুরোধ অপেক্ষায় নেই।",
    unknown_user: "অজানা কৃষক",

    usage_title: "ব্যবহার",
    from: "থেকে",
    to: "পর্যন্ত",
    show: "দেখান",
    export_csv: "CSV নামান",
    per_day: "দিনে কত মিনিট",
    per_user: "কৃষকপ্রতি কত মিনিট",
    total_minutes: "মোট {0}",
    no_usage: "এই সময়ে পাম্প চালানো হয়নি।",
    chart_label_day: "দিনপ্রতি খরচ হওয়া মিনিট",
    chart_label_user: "কৃষকপ্রতি খরচ হওয়া মিনিট",
    axis_day: "দিন",
    csv_columns: [
        "শেষ হওয়ার দিন",
        "শুরু",
        "শেষ",
        "কৃষক",
        "চলেছে (মিনিট)",
        "থেমে ছিল (মিনিট)",
        "খরচ (মিনিট)",
        "কেন শেষ হলো",
    ],

    audit_title: "কাজের লগ",
    col_who: "কে",
    col_action: "কী",
    col_detail: "বিস্তারিত",
    no_audit: "এখনো কিছু নেই।",
    audit_actions: &[
        ("user.create", "কৃষক যোগ"),
        ("user.suspend", "কৃষক স্থগিত"),
        ("user.unsuspend", "কৃষকের স্থগিত তোলা"),
        ("admin.create", "পাম্প মালিক যোগ"),
        ("admin.suspend", "পাম্প মালিক স্থগিত"),
        ("admin.unsuspend", "পাম্প মালিকের স্থগিত তোলা"),
        ("recharge", "রিচার্জ"),
        ("correction", "সংশোধন"),
        ("request.approve", "অনুরোধ মঞ্জুর"),
        ("request.reject", "অনুরোধ নামঞ্জুর"),
        ("device.register", "যন্ত্র নিবন্ধন"),
        ("device.rotate-key", "যন্ত্রের নতুন চাবি"),
        ("motor.stop", "পাম্প বন্ধ"),
        ("card.bind", "কার্ড যুক্ত"),
        ("card.unbind", "কার্ড বাদ"),
        ("queue.remove", "সারি থেকে সরানো"),
        ("terms.set", "দাম ও সীমা বদলানো হয়েছে"),
        ("queue.move", "সারিতে সরানো হয়েছে"),
        ("user.edit", "কৃষকের নাম বদলানো হয়েছে"),
        ("user.password", "নতুন পাসওয়ার্ড তৈরি হয়েছে"),
        ("admin.password", "পাম্প মালিকের নতুন পাসওয়ার্ড তৈরি হয়েছে"),
        ("account.password", "নিজের পাসওয়ার্ড বদলানো হয়েছে"),
        ("farmer.phone", "এসএমএসের ফোন দেওয়া হয়েছে"),
        ("receipt.void", "রসিদ বাতিল"),
    ],

    owners_title: "পাম্প মালিক",
    add_owner: "পাম্প মালিক যোগ করুন",
    farmers_count: "কৃষক",
    device_online: "সংযুক্ত",
    device_offline: "সংযোগ নেই",
    no_owners: "এখনো কোনো পাম্প মালিক নেই। নিচে প্রথমজনকে যোগ করুন।",

    forbidden_title: "আপনার অ্যাকাউন্টের জন্য নয়",
    forbidden_text: "এই পাতা অন্য ধরনের অ্যাকাউন্টের জন্য।",
    not_found_title: "পাওয়া যায়নি",
    not_found_text: "এখানে এমন কোনো পাতা বা জিনিস নেই।",
    go_home: "আমার পাতায় যান",
    live_lost: "সংযোগ নেই। আবার চেষ্টা হচ্ছে…",
    live_polling: "সরাসরি খবর বন্ধ; কয়েক সেকেন্ড পরপর দেখা হচ্ছে।",
    live_lost_as_of: "সার্ভারের সাথে যোগাযোগ নেই। যা দেখছেন তা {0}-এর অবস্থা। আবার চেষ্টা হচ্ছে…",
    back_online: "আবার সংযোগ হয়েছে। এটাই এখনকার অবস্থা।",
    sending: "পাঠানো হচ্ছে…",

    flash_recharged: "{0}-এর এখন {1} আছে।",
    flash_user_created: "{0}-কে যোগ করা হয়েছে।",
    flash_owner_created: "{0}-কে যোগ করা হয়েছে।",
    flash_suspended: "{0} স্থগিত হয়েছেন।",
    flash_unsuspended: "{0} আবার পাম্প ব্যবহার করতে পারবেন।",
    flash_approved: "{0}-কে {1} দেওয়া হয়েছে।",
    flash_rejected: "{0}-এর অনুরোধ নামঞ্জুর হয়েছে।",
    flash_card_bound: "কার্ড {0} এখন {1}-এর।",
    flash_request_sent: "{0}-এর অনুরোধ পাঠানো হয়েছে।",
    nav_alerts: "বিজ্ঞপ্তি",
    alerts_unread: "{0}টি অপঠিত",
    alerts_none: "এখনও কিছু নেই। আপনার পালা এলে, সেচ থামলে বা শেষ হলে এখানে জানবেন।",
    alerts_mark_read: "সব পড়া হয়েছে",
    alerts_settings_title: "কীভাবে জানবেন",
    alerts_phone: "এসএমএসের ফোন (যেমন +8801711000000)",
    alerts_phone_confirmed: "নিশ্চিত ফোন: {0}। এসএমএস সতর্কবার্তা এখানে আসে, আর এই ফোনের বার্তা মানা হয়।",
    alerts_phone_none: "এখনও কোনো ফোন নিশ্চিত হয়নি: কোনো এসএমএস যায় না, কোনো বার্তা মানা হয় না।",
    alerts_phone_waiting: "{0} নিশ্চিত হওয়ার অপেক্ষায়: ততক্ষণ এতে কিছু যায় না।",
    alerts_phone_send: "{0} ফোন থেকে {1} লিখে {2} নম্বরে পাঠান। কোডটি ২৪ ঘণ্টা কাজ করবে।",
    alerts_phone_expired: "{0}-এর কোডের মেয়াদ শেষ: নতুন কোডের জন্য নম্বরটি আবার সংরক্ষণ করুন।",
    alerts_phone_dropped: "{0} থেকে অনেকবার ভুল কোড পাঠানো হয়েছে: নম্বরটি বাদ দেওয়া হয়েছে। নতুন কোডের জন্য নম্বরটি আবার সংরক্ষণ করুন।",
    alerts_phone_commands: "এই ফোন থেকে {0} নম্বরে লিখুন:",
    sms_farmer_commands: &[
        ("চালু", "বন্ধ না করা পর্যন্ত পাম্প চলবে; চালু ৩০ লিখলে ৩০ মিনিট"),
        ("বন্ধ", "পাম্প বন্ধ, বা সারি ছাড়া"),
        ("ব্যালেন্স", "আপনার ব্যালেন্স ও সারিতে জায়গা"),
        ("চাই ৬০", "মালিকের কাছে ৬০ মিনিট চাওয়া"),
    ],
    sms_owner_commands: &[
        ("অবস্থা", "পাম্প এক নজরে: কে চালাচ্ছেন, সারি, অনুরোধ, যন্ত্র"),
        ("বন্ধ ৪৮২১", "অবস্থা যে নম্বর বলে, সেই পাম্প চালানো বন্ধ"),
        ("হ্যাঁ ৩৮১৭", "অবস্থা যে নম্বর বলে, সেই অনুরোধ মঞ্জুর; না ৩৮১৭ লিখলে বাতিল"),
        ("না ৩৮১৭ পাইনি", "কারণসহ বাতিল: পাইনি (টাকা), মেলেনি (টাকা ও মিনিট), কম (কম মিনিট চান) বা বন্ধ"),
    ],
    alerts_sms_number_unknown: "পাম্পের এসএমএস",
    alerts_language: "বার্তার ভাষা",
    alerts_quiet_from: "নীরব সময় শুরু (ঘণ্টা:মিনিট)",
    alerts_quiet_to: "নীরব সময় শেষ (ঘণ্টা:মিনিট)",
    alerts_save: "সংরক্ষণ",
    flash_alerts_saved: "সংরক্ষিত হয়েছে।",
    flash_alerts_read: "সব পড়া হয়েছে।",
    flash_started: "চালু হয়েছে।",
    flash_stopped: "বন্ধ হয়েছে। খরচ {0}। ব্যালেন্স {1}।",
    flash_run_stopped: "{0}-এর পাম্প বন্ধ করা হয়েছে।",
    flash_corrected: "ঠিক করা হয়েছে। {0}-এর এখন {1}।",
    flash_made_already: "এটি আগেই করা হয়েছে (ফর্মটি দুবার পাঠানো হয়েছিল): এখন কিছু যোগ হয়নি। {0}-এর আছে {1}।",
    flash_left_queue: "আপনি সারি ছেড়েছেন। আপনার মিনিট কাটা হয়নি।",
    flash_card_taken: "কার্ড {0} এখন {1}-এর। এই কৃষককে দিতে ঘরে টিক দিন।",
    move_card: "হ্যাঁ, কার্ডটি এই কৃষককে দিন (অন্য কৃষক আর এটি ব্যবহার করতে পারবেন না)",
    flash_card_removed: "কার্ড {0} সরানো হয়েছে। এটি দিয়ে আর পাম্প চালু হবে না।",
    remove_card: "সরান",
    confirm_remove_card: "কার্ড {0} সরাবেন? এটি দিয়ে আর পাম্প চালু হবে না।",
    flash_removed_from_queue: "{0}-কে সারি থেকে সরানো হয়েছে।",
    remove_waiting_title: "সারি থেকে কাউকে সরান",
    remove_waiting_help: "তাঁর মিনিট কাটা হবে না। কারণটি লগে লেখা থাকবে।",
    remove_waiting_who: "কৃষক",
    remove_waiting_reason: "কারণ",
    remove_waiting: "সারি থেকে সরান",
    confirm_remove_waiting: "এই কৃষককে সারি থেকে সরাবেন? লাইনে তাঁর জায়গা চলে যাবে।",
    confirm_leave: "সারি ছাড়বেন? লাইনে আপনার জায়গা চলে যাবে।",
    correction_title: "ব্যালেন্স ঠিক করুন",
    correction_help: "ভুল হলে: যোগ করতে মিনিট লিখুন, ফেরত নিতে মাইনাস দিয়ে লিখুন (যেমন -১৫), আর কারণ লিখুন। এটি লগে থাকবে।",
    correction_minutes: "মিনিট (+ বা −)",
    correction_reason: "কারণ",
    correct: "ঠিক করুন",
    confirm_correction: "এই কৃষকের ব্যালেন্স বদলাবেন? আরেকটি সংশোধন ছাড়া এটি ফেরানো যাবে না।",
    approve_confirm: "{1}-কে {0} দেবেন? এখন ব্যালেন্স {2}, পরে {3}।",
    balance_now_after: "এখন ব্যালেন্স {0} → পরে {1}",
    request_limits: "একবারে সর্বোচ্চ {0}; একসাথে একটি অনুরোধ।",
    request_waiting: "আপনার অনুরোধ পাম্প মালিকের কাছে অপেক্ষায়। সিদ্ধান্তের পরে আবার চাইতে পারবেন।",
    errors: &[
        ("INVALID_CREDENTIALS", "ইউজারনেম বা পাসওয়ার্ড ভুল।"),
        ("WRONG_PASSWORD", "বর্তমান পাসওয়ার্ড ভুল। কিছুই বদলানো হয়নি।"),
        ("UNAUTHENTICATED", "আপনি সাইন ইন করেননি।"),
        ("TOKEN_EXPIRED", "সাইন ইনের মেয়াদ শেষ। আবার সাইন ইন করুন।"),
        ("FORBIDDEN", "আপনার অ্যাকাউন্ট দিয়ে এটি করা যায় না।"),
        ("ACCOUNT_SUSPENDED", "এই অ্যাকাউন্ট স্থগিত। পাম্প মালিকের সাথে কথা বলুন।"),
        ("INSUFFICIENT_BALANCE", "যথেষ্ট মিনিট নেই। পাম্প মালিককে রিচার্জ করতে বলুন, অথবা মিনিটের অনুরোধ পাঠান।"),
        ("ALREADY_DECIDED", "এই অনুরোধের সিদ্ধান্ত আগেই হয়ে গেছে।"),
        ("ALREADY_ENDED", "ওই পাম্প চালানো আগেই শেষ হয়ে গেছে: কিছুই বন্ধ করা হয়নি। এখন কে চালাচ্ছেন, আবার দেখে নিন।"),
        ("NOT_FOUND", "পাওয়া যায়নি। হয়তো এইমাত্র বদলেছে।"),
        ("CONFLICT", "এখন এটি করা সম্ভব নয়।"),
        ("USERNAME_TAKEN", "এই ইউজারনেম আগেই নেওয়া হয়েছে।"),
        ("RATE_LIMITED", "অনেকবার চেষ্টা হয়েছে। কয়েক মিনিট পরে আবার চেষ্টা করুন।"),
        ("BUSY", "সার্ভার এখন অনেক সাইন ইন যাচাই করছে। কয়েক সেকেন্ড পরে আবার চেষ্টা করুন।"),
        ("UNAVAILABLE", "সার্ভারের তথ্যভান্ডারে সমস্যা। কিছুই বদলায়নি। একটু পরে আবার চেষ্টা করুন।"),
        ("VALIDATION", "যা লিখেছেন তা আবার দেখুন।"),
        ("REQUEST_PENDING", "আপনার একটি অনুরোধ আগেই অপেক্ষায় আছে। পাম্প মালিকের সিদ্ধান্তের জন্য অপেক্ষা করুন।"),
        ("KEY_REUSED", "এই রিচার্জ বা সংশোধন আগেই অন্য অঙ্কে করা হয়েছে। আবার পাঠানোর আগে নিচের হিসাব দেখে নিন।"),
        ("BELOW_ZERO", "ব্যালান্স শূন্যের নিচে যেতে পারে না: যা বাকি আছে তার বেশি ফেরত নেওয়া যায় না।"),
        ("ALREADY_VOID", "এই রসিদ আগেই বাতিল হয়েছে। কিছু বদলানো হয়নি।"),
        ("OFFLINE", "সার্ভারের সাথে যোগাযোগ নেই।"),
    ],
    error_other: "কিছু একটা ভুল হয়েছে (ত্রুটি {0})।",
    password_rule: "অন্তত ৮ অক্ষর। লিখে রাখুন: এটি আর দেখানো হবে না।",
    field_hints: &[
        ("minutes", "মিনিট: একটি পূর্ণ সংখ্যা লিখুন, যেমন ৩০।"),
        ("minutes/from", "মিনিট: {0} থেকে {1}-এর মধ্যে একটি পূর্ণ সংখ্যা।"),
        ("name", "নাম: ১ থেকে ৮০ অক্ষর।"),
        ("name/no", "নাম: শুধু অক্ষর, সংখ্যা, ফাঁকা ও যতিচিহ্ন।"),
        ("name/at", "নাম: অন্তত একটি অক্ষর বা সংখ্যা।"),
        ("note/no", "নোট: শুধু অক্ষর, সংখ্যা, ফাঁকা ও যতিচিহ্ন।"),
        ("note/say", "নোট: কেন হিসাব ঠিক করছেন, তা লিখুন।"),
        ("reason/no", "কারণ: শুধু অক্ষর, সংখ্যা, ফাঁকা ও যতিচিহ্ন।"),
        ("username", "ইউজারনেম বা ফোন: ৩ থেকে ৬৪টি অক্ষর বা সংখ্যা, ফাঁকা ছাড়া।"),
        ("phone", "ফোন: দেশের কোডসহ, যেমন +8801711000000।"),
        ("password", "পাসওয়ার্ড: অন্তত ৮ অক্ষর।"),
        ("newPassword", "নতুন পাসওয়ার্ড: অন্তত ৮ অক্ষর।"),
        ("currentPassword", "বর্তমান পাসওয়ার্ড: সর্বোচ্চ ২৫৬ অক্ষর।"),
        ("note", "নোট: সর্বোচ্চ ৫০০ অক্ষর।"),
        ("reason", "কেন, তা কয়েক কথায় লিখুন।"),
        ("reason/choose", "কারণ: তালিকা থেকে একটি বেছে নিন।"),
        ("uid", "কার্ড নম্বর: রিডারে দেখানো অক্ষর ও সংখ্যা, যেমন 04A1B2C3।"),
        ("from", "তারিখ: একটি দিন বেছে নিন।"),
        ("to", "তারিখ: একটি দিন বেছে নিন।"),
        ("maxRequestMinutes", "সর্বোচ্চ মিনিট: ১ থেকে ১০০৮০-এর মধ্যে একটি পূর্ণ সংখ্যা।"),
        ("pricePerHourTaka", "দাম: ০ থেকে ১০০০০০ টাকা, অথবা দাম না থাকলে খালি।"),
        ("cashTaka", "টাকা: পূর্ণ সংখ্যায়, যেমন ১৫০, অথবা খালি।"),
        ("cashTaka/from", "টাকা: {0} থেকে {1}-এর মধ্যে পূর্ণ সংখ্যায়।"),
        ("position", "নম্বর: একটি পূর্ণ সংখ্যা, পরের জনের জন্য ১।"),
    ],

    unit_h: "ঘণ্টা",
    unit_min: "মিনিট",
    unit_s: "সেকেন্ড",
    months: ["জানুয়ারি", "ফেব্রুয়ারি", "মার্চ", "এপ্রিল", "মে", "জুন", "জুলাই", "আগস্ট", "সেপ্টেম্বর", "অক্টোবর", "নভেম্বর", "ডিসেম্বর"],
    months_short: ["জানু.", "ফেব্রু.", "মার্চ", "এপ্রি.", "মে", "জুন", "জুলা.", "আগ.", "সেপ্টে.", "অক্টো.", "নভে.", "ডিসে."],
    owner: &owner::BN,
    updates: &firmware::BN,
    passwords: &password::BN,
};

/// ASCII digits in the language's digits (Bangla: ০-৯), as the texts sent by SMS and push write
/// them (`pumppilot_alerts::text::digits`, the one writer of Bangla digits).
pub fn digits(text: &str, lang: Lang) -> String {
    pumppilot_alerts::text::digits(text, lang.language())
}

/// A whole number with grouping: 12,345 in English; ১২,৩৪৫ and lakhs (১,২৩,৪৫৬) in Bangla.
pub fn number(n: i64, lang: Lang) -> String {
    let s = n.unsigned_abs().to_string();
    let grouped = match lang {
        Lang::Bn if s.len() > 3 => {
            let (head, tail) = s.split_at(s.len() - 3);
            format!("{},{tail}", group(head, 2))
        }
        _ => group(&s, 3),
    };
    digits(&format!("{}{grouped}", if n < 0 { "−" } else { "" }), lang)
}

fn group(digits: &str, size: usize) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(size) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in words: "1 h 5 min", "29 min 57 s", "45 s"; "১ ঘণ্টা ৫ মিনিট".
pub fn duration(seconds: i64, lang: Lang) -> String {
    let t = lang.text();
    let total = seconds.unsigned_abs() as i64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{} {}", number(h, lang), t.unit_h));
    }
    if m > 0 {
        parts.push(format!("{} {}", number(m, lang), t.unit_min));
    }
    // Seconds only matter for short spans; past an hour they are noise.
    if s > 0 && h == 0 {
        parts.push(format!("{} {}", number(s, lang), t.unit_s));
    }
    if parts.is_empty() {
        parts.push(format!("{} {}", number(0, lang), t.unit_min));
    }
    format!("{}{}", if seconds < 0 { "−" } else { "" }, parts.join(" "))
}

/// Whole minutes: "30 min" / "৩০ মিনিট".
pub fn minutes(minutes: i64, lang: Lang) -> String {
    format!("{} {}", number(minutes, lang), lang.text().unit_min)
}

/// Bangla names the part of the day instead of AM/PM.
fn bangla_day_part(hour: u8) -> &'static str {
    match hour {
        4..=5 => "ভোর",
        6..=11 => "সকাল",
        12..=14 => "দুপুর",
        15..=17 => "বিকাল",
        18..=19 => "সন্ধ্যা",
        _ => "রাত",
    }
}

/// Where the viewer is: minutes east of UTC (the page script tells it in a cookie; Bangladesh,
/// UTC+6, until it has).
#[derive(Debug, Clone, Copy)]
pub struct Zone(pub i32);

/// The cookie in which the page script keeps the browser's offset from UTC, in minutes.
pub const ZONE_COOKIE: &str = "pp_tz";

impl Zone {
    pub const BANGLADESH: Zone = Zone(360);

    pub fn of(headers: &HeaderMap) -> Zone {
        super::cookie(headers, ZONE_COOKIE)
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|m| (-14 * 60..=14 * 60).contains(m))
            .map_or(Zone::BANGLADESH, Zone)
    }

    /// A time from the API (RFC 3339) in this zone.
    pub fn local(self, rfc3339: &str) -> Option<time::OffsetDateTime> {
        let at = crate::clock::parse_time(rfc3339)?;
        self.at(at.millis())
    }

    /// Milliseconds since the epoch in this zone.
    pub fn at(self, millis: i64) -> Option<time::OffsetDateTime> {
        let offset = time::UtcOffset::from_whole_seconds(self.0 * 60).ok()?;
        let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()?;
        Some(utc.to_offset(offset))
    }
}

/// The time of day: "8:49 PM" / "রাত ৮:৪৯".
pub fn time_of_day(t: time::OffsetDateTime, lang: Lang) -> String {
    let hour = t.hour();
    let h12 = if hour.is_multiple_of(12) { 12 } else { hour % 12 };
    let hm = format!("{h12}:{:02}", t.minute());
    match lang {
        Lang::En => format!("{hm} {}", if hour < 12 { "AM" } else { "PM" }),
        Lang::Bn => format!("{} {}", bangla_day_part(hour), digits(&hm, lang)),
    }
}

/// The date: "27 Nov 2026" / "২৭ নভেম্বর ২০২৬".
pub fn date(t: time::OffsetDateTime, lang: Lang) -> String {
    let month = lang.text().months[usize::from(u8::from(t.month())) - 1];
    digits(&format!("{} {month} {}", t.day(), t.year()), lang)
}

/// A short date for chart labels: "27 Nov" / "২৭ নভে.".
pub fn day_month(d: time::Date, lang: Lang) -> String {
    let month = lang.text().months_short[usize::from(u8::from(d.month())) - 1];
    digits(&format!("{} {month}", d.day()), lang)
}

/// Date and time: "27 Nov 2026, 8:49 PM".
pub fn date_time(rfc3339: &str, zone: Zone, lang: Lang) -> String {
    match zone.local(rfc3339) {
        Some(t) => format!("{}, {}", date(t, lang), time_of_day(t, lang)),
        None => String::new(),
    }
}

/// When a run was, start to end: "27 Nov 2026, 7:00 PM – 7:30 PM"; one that ended on another day
/// carries both dates ("26 Nov 2026, 11:50 PM – 27 Nov 2026, 12:20 AM"), so a night's run is seen
/// on the day it ended too, the day the usage page counts it on.
pub fn span(started: &str, ended: &str, zone: Zone, lang: Lang) -> String {
    match (zone.local(started), zone.local(ended)) {
        (Some(s), Some(e)) if s.date() == e.date() => {
            format!("{}, {} – {}", date(s, lang), time_of_day(s, lang), time_of_day(e, lang))
        }
        (Some(s), Some(e)) => {
            format!("{}, {} – {}, {}", date(s, lang), time_of_day(s, lang), date(e, lang), time_of_day(e, lang))
        }
        _ => date_time(ended, zone, lang),
    }
}

/// A whole number with an optional sign ("-15", "−১৫", "+15").
pub fn parse_signed(text: &str) -> Option<i64> {
    let text = text.trim();
    let (sign, rest) = match text.chars().next() {
        Some('-' | '−') => (-1, &text[text.char_indices().nth(1).map_or(text.len(), |(i, _)| i)..]),
        Some('+') => (1, &text[1..]),
        _ => (1, text),
    };
    parse_whole(rest).map(|n| sign * n)
}

/// Reads digits typed in either script ("১৫" or "15") as a whole number.
pub fn parse_whole(text: &str) -> Option<i64> {
    let ascii = pumppilot_alerts::text::ascii_digits(text.trim());
    if ascii.is_empty() || ascii.len() > 9 || !ascii.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ascii.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_bangla_use_bangla_digits_and_lakhs() {
        assert_eq!(number(123_456, Lang::En), "123,456");
        assert_eq!(number(123_456, Lang::Bn), "১,২৩,৪৫৬");
        assert_eq!(number(12_345_678, Lang::Bn), "১,২৩,৪৫,৬৭৮");
        assert_eq!(number(999, Lang::Bn), "৯৯৯");
        assert_eq!(number(-1_000, Lang::En), "−1,000");
    }

    #[test]
    fn durations_carry_their_units() {
        assert_eq!(duration(3900, Lang::En), "1 h 5 min");
        assert_eq!(duration(1797, Lang::En), "29 min 57 s");
        assert_eq!(duration(0, Lang::En), "0 min");
        assert_eq!(duration(3900, Lang::Bn), "১ ঘণ্টা ৫ মিনিট");
        assert_eq!(duration(175, Lang::En), "2 min 55 s");
        assert_eq!(duration(175, Lang::Bn), "২ মিনিট ৫৫ সেকেন্ড");
        assert_eq!(minutes(30, Lang::Bn), "৩০ মিনিট");
    }

    #[test]
    fn times_in_the_viewers_zone() {
        let zone = Zone::BANGLADESH;
        assert_eq!(date_time("2026-11-27T14:49:00Z", zone, Lang::En), "27 Nov 2026, 8:49 PM");
        assert_eq!(date_time("2026-11-27T14:49:00Z", zone, Lang::Bn), "২৭ নভেম্বর ২০২৬, রাত ৮:৪৯");
        assert_eq!(date_time("2026-11-27T02:05:00Z", Zone(0), Lang::Bn), "২৭ নভেম্বর ২০২৬, রাত ২:০৫");
    }

    /// A run's start and end: one date when it ended the day it started, in the viewer's zone;
    /// both when it ran across midnight there.
    #[test]
    fn a_run_across_midnight_shows_both_days() {
        let (start, end) = ("2026-11-26T17:50:00Z", "2026-11-26T18:20:00Z");
        assert_eq!(span(start, end, Zone::BANGLADESH, Lang::En), "26 Nov 2026, 11:50 PM – 27 Nov 2026, 12:20 AM");
        assert_eq!(span(start, end, Zone::BANGLADESH, Lang::Bn), "২৬ নভেম্বর ২০২৬, রাত ১১:৫০ – ২৭ নভেম্বর ২০২৬, রাত ১২:২০");
        assert_eq!(span(start, end, Zone(0), Lang::En), "26 Nov 2026, 5:50 PM – 6:20 PM");
    }

    #[test]
    fn typed_numbers_in_either_script() {
        assert_eq!(parse_whole("১৫"), Some(15));
        assert_eq!(parse_whole(" 30 "), Some(30));
        assert_eq!(parse_whole("3a"), None);
        assert_eq!(parse_whole(""), None);
        assert_eq!(parse_signed("-15"), Some(-15));
        assert_eq!(parse_signed("−১৫"), Some(-15));
        assert_eq!(parse_signed("+20"), Some(20));
        assert_eq!(parse_signed("--2"), None);
    }

    #[test]
    fn every_hold_reason_has_words_in_both_languages() {
        for lang in [&EN, &BN] {
            for reason in pumppilot_protocol::HoldReason::ALL {
                let code = reason.as_str();
                assert!(lang.hold_reasons.iter().any(|(c, _)| *c == code), "no words for {code}");
            }
        }
    }

    /// The owner is offered every reason the engine knows, in its order, and the farmer reads each
    /// in their language: the words of the texts sent by SMS and push, as a label.
    #[test]
    fn every_reject_reason_has_words_in_both_languages() {
        let codes = pumppilot_engine::RejectReason::ALL.map(pumppilot_engine::RejectReason::as_str);
        for lang in [&EN, &BN] {
            assert_eq!(lang.reject_reasons().iter().map(|(code, _)| *code).collect::<Vec<_>>(), codes);
        }
        assert_eq!(EN.reject_reason("TOO_MANY"), "Ask for fewer minutes");
        assert_eq!(BN.reject_reason("PUMP_CLOSED"), "পাম্প আপাতত বন্ধ");
        assert_eq!((EN.reject_reason("LATER"), EN.reject_reason_words("LATER")), ("LATER".to_string(), None));
    }

    #[test]
    fn templates_fill_in_each_languages_order() {
        assert_eq!(fill(EN.flash_approved, &["Karim", "15 min"]), "Approved 15 min for Karim.");
        assert_eq!(fill(BN.flash_approved, &["করিম", "১৫ মিনিট"]), "করিম-কে ১৫ মিনিট দেওয়া হয়েছে।");
    }
}
