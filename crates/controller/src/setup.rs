//! The device's own settings, set up on site: read from the setup page's form (captive portal),
//! kept in flash as a checked record, validated the same way both times, so one image serves
//! every board. A setting that does not pass is never saved, settings that pass are saved only
//! after a press of the board's button ([`PendingSave`]), and a record that does not read back
//! (erased, cut, corrupt) means setup mode with the outputs OFF.

use pumppilot_protocol::link::LinkSecret;

use crate::{Millis, Settings};

/// The setup page the device serves in setup mode (English and Bangla), blank: no level chosen
/// ([`page`] serves it, with a board's stored levels chosen). Its fields are the form
/// [`DeviceSettings::from_form`] reads; it posts them and shows the answer: [`Sent`] (press the
/// button on the board to save; the page counts the time down, its Send button disabled, and at
/// zero asks the board [`PendingSave::write_json`] and says the button was pressed, or that it is
/// too late: nothing was saved, do not press, send again), or the error of
/// [`SettingError::write_json`] or [`SendRefused::write_json`].
pub const PAGE: &str = include_str!("setup_page.html");

/// The active levels of a board's relay and inputs, as its stored settings have them: the only
/// settings the setup page may show. They are not secret (anyone at the board can follow its
/// wires), and showing them lets a technician who only types a new WiFi password keep the wiring
/// as it was. Nothing else of the settings (the WiFi password, the key, the link secret) has a way
/// back to the page: [`page`] takes only this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub relay_active_high: bool,
    pub load_shedding_active_high: bool,
    pub ready_active_high: bool,
}

/// Each level's choice on [`PAGE`], in the page's order: the select's opening and its placeholder
/// option ("choose"), the one selected on a blank page.
const LEVEL_CHOICES: [&str; 3] = [
    r#"name="relay" required><option value="" selected disabled>"#,
    r#"name="shedding" required><option value="" selected disabled>"#,
    r#"name="ready" required><option value="" selected disabled>"#,
];
/// The attribute that chooses an option.
const SELECTED: &str = " selected";
/// [`PAGE`] cut where a level is chosen: three pieces for each level, and the rest.
const PAGE_PIECES: usize = 3 * LEVEL_CHOICES.len() + 1;

/// Where [`PAGE`] is cut to choose one level: at the placeholder's ` selected` (left out), and
/// before the `>` of the active-high and of the active-low option (` selected` put in).
#[derive(Clone, Copy)]
struct LevelCut {
    placeholder: usize,
    high: usize,
    low: usize,
}

/// The cuts of the three levels, found once, at compile time: a page without a level's choice
/// where [`page`] expects it does not build, so it is never served half chosen.
const LEVEL_CUTS: [LevelCut; 3] = {
    let mut cuts = [LevelCut { placeholder: 0, high: 0, low: 0 }; 3];
    let mut from = 0;
    let mut i = 0;
    while i < LEVEL_CHOICES.len() {
        let choice = find(PAGE, LEVEL_CHOICES[i], from);
        let end = find(PAGE, "</select>", choice);
        let placeholder = find(PAGE, SELECTED, choice);
        let high = find(PAGE, r#"<option value="1">"#, choice) + r#"<option value="1""#.len();
        let low = find(PAGE, r#"<option value="0">"#, choice) + r#"<option value="0""#.len();
        assert!(placeholder < choice + LEVEL_CHOICES[i].len(), "a level's placeholder is not the one selected");
        assert!(high < end && low < end, "the setup page lacks a level's option");
        cuts[i] = LevelCut { placeholder, high, low };
        from = end;
        i += 1;
    }
    cuts
};

/// Where `needle` first occurs in `hay` at or after `from`; for [`LEVEL_CUTS`], at build time.
const fn find(hay: &str, needle: &str, from: usize) -> usize {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let mut at = from;
    while at + needle.len() <= hay.len() {
        let mut i = 0;
        while i < needle.len() && hay[at + i] == needle[i] {
            i += 1;
        }
        if i == needle.len() {
            return at;
        }
        at += 1;
    }
    panic!("the setup page lacks a level's choice where `page` expects it")
}

/// The setup page to serve. Without stored levels (a new board, a damaged record, values only
/// built into the image) it is [`PAGE`] itself: each level must be chosen, none is assumed, since
/// a relay level assumed for a board wired the other way would run its motor where the device
/// means OFF. With the levels of the record a technician saved on this board, those options are
/// chosen already (still `required`, and still free to change).
pub fn page(stored: Option<Levels>) -> Page {
    let mut pieces = [""; PAGE_PIECES];
    let Some(levels) = stored else {
        pieces[0] = PAGE;
        return Page { pieces };
    };
    let chosen = [levels.relay_active_high, levels.load_shedding_active_high, levels.ready_active_high];
    let mut from = 0;
    for (i, (cut, high)) in LEVEL_CUTS.iter().zip(chosen).enumerate() {
        let option = if high { cut.high } else { cut.low };
        pieces[3 * i] = &PAGE[from..cut.placeholder];
        pieces[3 * i + 1] = &PAGE[cut.placeholder + SELECTED.len()..option];
        pieces[3 * i + 2] = SELECTED;
        from = option;
    }
    pieces[PAGE_PIECES - 1] = &PAGE[from..];
    Page { pieces }
}

/// The setup page as [`page`] made it: consecutive pieces of static text, to be sent one after
/// another (the firmware writes them straight to the connection, with no buffer for the page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pieces: [&'static str; PAGE_PIECES],
}

impl Page {
    /// The pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.pieces.iter().copied().filter(|piece| !piece.is_empty())
    }

    /// The page's length in bytes (its `Content-Length`).
    pub fn byte_len(&self) -> usize {
        self.pieces.iter().map(|piece| piece.len()).sum()
    }
}

impl core::fmt::Display for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.pieces().try_for_each(|piece| f.write_str(piece))
    }
}

/// A short text setting kept by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    const EMPTY: Self = Text { bytes: [0; N], len: 0 };

    fn new(value: &[u8]) -> Option<Self> {
        if value.len() > N || core::str::from_utf8(value).is_err() {
            return None;
        }
        let mut text = Self::EMPTY;
        text.bytes[..value.len()].copy_from_slice(value);
        text.len = value.len();
        Some(text)
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> core::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Why a setting was refused: which field, and what it must be (shown on the setup page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingError {
    pub field: &'static str,
    pub problem: &'static str,
}

impl SettingError {
    /// The answer to a refused form: `{"error":{"code":"BAD_SETTING","field":…,"message":…}}`
    /// (the field name and the problem, e.g. `ssid must be 1 to 32 bytes`).
    pub fn write_json(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        // Field names and problems are this module's own texts: no quote or backslash in them.
        write!(
            out,
            r#"{{"error":{{"code":"BAD_SETTING","field":"{}","message":"{} {}"}}}}"#,
            self.field, self.field, self.problem
        )
    }
}

/// How long the setup button must be held for the device to open its setup page.
pub const SETUP_HOLD_MS: u64 = 5_000;

/// The setup button (a long press opens setup mode). It counts only after it has been seen
/// released since boot, so a button stuck down (or held while the board powers up) never sends
/// the device into setup mode over and over.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupButton {
    armed: bool,
    pressed_since: Option<Millis>,
}

impl SetupButton {
    pub const fn new() -> SetupButton {
        SetupButton { armed: false, pressed_since: None }
    }

    /// Takes one sample of the button (`pressed`: held down). True once the button has been held
    /// without a break for [`SETUP_HOLD_MS`] (then not again until it is released). A clock that
    /// goes backwards starts the count over.
    pub fn sample(&mut self, now: Millis, pressed: bool) -> bool {
        if !pressed {
            self.armed = true;
            self.pressed_since = None;
            return false;
        }
        if !self.armed {
            return false;
        }
        match self.pressed_since {
            Some(since) if now.0 < since.0 => {
                self.pressed_since = Some(now);
                false
            }
            Some(since) if now.0 - since.0 >= SETUP_HOLD_MS => {
                self.armed = false;
                self.pressed_since = None;
                true
            }
            Some(_) => false,
            None => {
                self.pressed_since = Some(now);
                false
            }
        }
    }
}

/// Where the setup page asks what became of the settings sent ([`PendingSave::write_json`]).
pub const PENDING_PATH: &str = "/pending";

/// How long settings sent from the setup page wait for a press of the board's button: pressed
/// within this time they are saved, else they are discarded.
pub const PRESS_WITHIN_MS: u64 = 60_000;

/// How long the button must be seen held (in samples at least this far apart) for a press to
/// count: one stray sample is no press.
pub const PRESS_MS: u64 = 50;

/// How long no form is taken after settings were discarded (and after each sample of the button
/// held meanwhile): a technician who presses a little late finds nothing to save, never a
/// stranger's form sent the moment theirs was discarded.
pub const QUIET_MS: u64 = 10_000;

/// Settings sent from the setup page, waiting for a hand on the board. The access point of setup
/// mode is open, so anyone within WiFi range can send settings; they are saved only when someone
/// presses the board's button within [`PRESS_WITHIN_MS`] of sending them, and discarded when
/// nobody does. Someone out of reach of the board can change nothing.
///
/// A press counts only when it starts after the settings were sent (the button seen released
/// since, then held for [`PRESS_MS`]): a button held down from before, or stuck, saves nothing.
///
/// One form waits at a time: another one sent while it waits is refused, with the time left, and
/// never takes its place. So a press within the time saves exactly the settings whose sender was
/// told to press: a stranger's form sent after the technician's is refused, and the technician's
/// own form sent after a stranger's is refused too, which tells the technician not to press (and
/// to send again once the stranger's is discarded). The same settings sent again while they wait
/// (a double tap, a browser sending the form again) are answered as the first time, with the time
/// left: the sender was told to press for exactly these already. A technician who sent a mistake
/// waits for it to be discarded and sends again.
///
/// Discarded settings are followed by [`QUIET_MS`] in which no form is taken, a press finds
/// nothing and the LED shows setup mode's own pattern; each sample of the button held in that
/// time starts it again. So a technician who presses just after the time ran out (their page
/// counts it down, and at zero says nothing was saved and not to press) saves nothing, rather
/// than a stranger's form sent the moment theirs was discarded. What remains: a technician who
/// presses later still, after leaving the button alone for [`QUIET_MS`] and against their page,
/// while a stranger's form sent after the quiet time waits (the LED blinking fast again), saves
/// the stranger's.
///
/// After a press nothing more is taken: the board writes the settings and restarts. Nor after the
/// board gave up on setup mode ([`PendingSave::give_up`], which it may only while nothing waits
/// and nothing was pressed).
///
/// Nothing here touches the relay: it stays OFF throughout setup mode, waiting or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingSave {
    state: Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::large_enum_variant, reason = "no heap to box the settings into; one per board")]
enum Pending {
    /// Nothing waits.
    #[default]
    Empty,
    /// `settings` wait for a press since `sent`; `released`: the button was seen released since
    /// then; `pressed_since`: the current press began then.
    Waiting { settings: DeviceSettings, sent: Millis, released: bool, pressed_since: Option<Millis> },
    /// Settings were discarded: no form is taken before `until`, and a press finds nothing.
    Quiet { until: Millis },
    /// A press took the settings; the board is saving them and restarting.
    Pressed,
    /// The board gave up on setup mode and restarts with the settings it had.
    GaveUp,
}

/// What the button decided about the settings waiting ([`PendingSave::sample`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "no heap to box the settings into; returned once")]
pub enum Confirmed {
    /// Pressed in time: write these settings and restart into them.
    Save(DeviceSettings),
    /// Nobody pressed in time: the settings are forgotten, nothing is written.
    Discarded,
}

/// The answer to settings taken to wait for the button: `{"pressWithinMs":60000}`, or the time
/// left when the same settings were sent again while they wait (the setup page then tells the
/// technician to press the button on the board, and counts the time down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub press_within_ms: u64,
}

impl Sent {
    pub fn write_json(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(out, r#"{{"pressWithinMs":{}}}"#, self.press_within_ms)
    }
}

/// Why settings that passed every check were not taken to wait ([`PendingSave::send`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    /// Other settings are waiting for the button, for `ms_left` more.
    OtherWaiting { ms_left: u64 },
    /// Settings were discarded just now: no form is taken for `ms_left` more ([`QUIET_MS`]).
    JustDiscarded { ms_left: u64 },
    /// The button was pressed for settings sent before: the board is saving them and restarting.
    Pressed,
    /// The board gave up on setup mode: it restarts with the settings it had.
    Closing,
}

impl SendRefused {
    /// The answer: `{"error":{"code":"OTHER_WAITING","field":"form","message":…,"retryInMs":…}}`,
    /// the same with `JUST_DISCARDED`, or `{"error":{"code":"PRESSED","field":"form","message":…}}`
    /// (`CLOSING` likewise).
    pub fn write_json(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        match self {
            SendRefused::OtherWaiting { ms_left } => write!(
                out,
                r#"{{"error":{{"code":"OTHER_WAITING","field":"form","message":"other settings are waiting for the button on the board: do not press it; send again in {} s","retryInMs":{}}}}}"#,
                ms_left.div_ceil(1_000),
                ms_left
            ),
            SendRefused::JustDiscarded { ms_left } => write!(
                out,
                r#"{{"error":{{"code":"JUST_DISCARDED","field":"form","message":"settings sent before were just discarded and nothing waits: do not press the button; send again in {} s","retryInMs":{}}}}}"#,
                ms_left.div_ceil(1_000),
                ms_left
            ),
            SendRefused::Pressed => out.write_str(
                r#"{"error":{"code":"PRESSED","field":"form","message":"the button was pressed for settings sent before: the board is saving them and restarting"}}"#,
            ),
            SendRefused::Closing => out.write_str(
                r#"{"error":{"code":"CLOSING","field":"form","message":"setup mode is closing: the board restarts with the settings it had"}}"#,
            ),
        }
    }
}

impl PendingSave {
    pub const fn new() -> PendingSave {
        PendingSave { state: Pending::Empty }
    }

    /// Settings sent from the setup page at `now`, already checked ([`DeviceSettings::from_form`]):
    /// they wait for the button, unless others wait already, settings were just discarded, or a
    /// press took settings. The same settings as those waiting are answered as the first time,
    /// with the time left, and change nothing.
    pub fn send(&mut self, now: Millis, settings: DeviceSettings) -> Result<Sent, SendRefused> {
        match self.state {
            Pending::Pressed => return Err(SendRefused::Pressed),
            Pending::GaveUp => return Err(SendRefused::Closing),
            Pending::Waiting { settings: waiting, sent, .. } if !expired(now, sent) => {
                let ms_left = sent.0.saturating_add(PRESS_WITHIN_MS).saturating_sub(now.0).min(PRESS_WITHIN_MS);
                return if waiting == settings {
                    Ok(Sent { press_within_ms: ms_left })
                } else {
                    Err(SendRefused::OtherWaiting { ms_left })
                };
            }
            // Discarded, though no sample of the button has seen it yet.
            Pending::Waiting { sent, .. } if now.0 < quiet_after(sent).0 => {
                return Err(SendRefused::JustDiscarded { ms_left: ms_until(now, quiet_after(sent), QUIET_MS) });
            }
            Pending::Quiet { until } if now.0 < until.0 => {
                return Err(SendRefused::JustDiscarded { ms_left: ms_until(now, until, QUIET_MS) });
            }
            Pending::Empty | Pending::Waiting { .. } | Pending::Quiet { .. } => {}
        }
        self.state = Pending::Waiting { settings, sent: now, released: false, pressed_since: None };
        Ok(Sent { press_within_ms: PRESS_WITHIN_MS })
    }

    /// Takes one sample of the board's button (`pressed`: held down) at `now`; the firmware's
    /// control loop samples it every tick in setup mode. A press in time gives the settings to
    /// save; the deadline passing gives [`Confirmed::Discarded`], and the quiet time
    /// ([`QUIET_MS`]) begins, which each sample of the button held starts again. A sample older
    /// than the settings' sending is no evidence of a press after it and is ignored; a clock that
    /// goes back during a press starts the press over.
    pub fn sample(&mut self, now: Millis, pressed: bool) -> Option<Confirmed> {
        if let Pending::Quiet { until } = &mut self.state {
            if pressed && now.0 < until.0 {
                *until = Millis(until.0.max(now.0.saturating_add(QUIET_MS)));
            }
            return None;
        }
        let Pending::Waiting { settings, sent, released, pressed_since } = &mut self.state else { return None };
        if now.0 < sent.0 {
            return None;
        }
        if expired(now, *sent) {
            let until = quiet_after(*sent);
            self.state = Pending::Quiet { until };
            // A hand on the button as the time runs out starts the quiet time from here.
            self.sample(now, pressed);
            return Some(Confirmed::Discarded);
        }
        if !pressed {
            *released = true;
            *pressed_since = None;
            return None;
        }
        if !*released {
            return None;
        }
        match *pressed_since {
            Some(since) if now.0 >= since.0 && now.0 - since.0 >= PRESS_MS => {
                let settings = *settings;
                self.state = Pending::Pressed;
                Some(Confirmed::Save(settings))
            }
            Some(since) if now.0 >= since.0 => None,
            _ => {
                *pressed_since = Some(now);
                None
            }
        }
    }

    /// True while settings wait for the button at `now`.
    pub fn waiting(&self, now: Millis) -> bool {
        matches!(self.state, Pending::Waiting { sent, .. } if !expired(now, sent))
    }

    /// Whether the board may give up on setup mode at `now` and restart with the settings it had
    /// (the firmware asks once its 15 minutes have passed, and again each second until it may):
    /// never while settings wait for the button or after a press took them, so a form sent in
    /// the last minute keeps its whole time and a press is never lost to the restart. True once
    /// it may; from then on no form is taken and the button does nothing.
    pub fn give_up(&mut self, now: Millis) -> bool {
        match self.state {
            Pending::Pressed => false,
            Pending::Waiting { sent, .. } if !expired(now, sent) => false,
            Pending::Empty | Pending::Waiting { .. } | Pending::Quiet { .. } | Pending::GaveUp => {
                self.state = Pending::GaveUp;
                true
            }
        }
    }

    /// What the status LED shows in setup mode at `now`: [`status::PRESS_TO_SAVE`] while settings
    /// wait for the button, else [`status::SETUP`] (also in the quiet time after a discard).
    ///
    /// [`status::PRESS_TO_SAVE`]: crate::status::PRESS_TO_SAVE
    /// [`status::SETUP`]: crate::status::SETUP
    pub fn blink(&self, now: Millis) -> crate::status::Blink {
        if self.waiting(now) { crate::status::PRESS_TO_SAVE } else { crate::status::SETUP }
    }

    /// What became of the settings sent, for the setup page to ask once its count reaches zero:
    /// `{"state":"pressed"}` (a press took settings: the board is saving them and restarting),
    /// `{"state":"waiting"}` (settings wait for the button, not necessarily the asker's),
    /// `{"state":"discarded"}` (within the quiet time after a discard), `{"state":"closing"}` (the
    /// board gave up on setup mode) or `{"state":"none"}`. Nothing in it tells whose settings.
    pub fn write_json(&self, now: Millis, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let state = match self.state {
            Pending::Pressed => "pressed",
            Pending::GaveUp => "closing",
            Pending::Waiting { sent, .. } if !expired(now, sent) => "waiting",
            Pending::Waiting { sent, .. } if now.0 < quiet_after(sent).0 => "discarded",
            Pending::Quiet { until } if now.0 < until.0 => "discarded",
            Pending::Empty | Pending::Waiting { .. } | Pending::Quiet { .. } => "none",
        };
        write!(out, r#"{{"state":"{state}"}}"#)
    }
}

/// True once [`PRESS_WITHIN_MS`] have passed since `sent`.
fn expired(now: Millis, sent: Millis) -> bool {
    now.0 >= sent.0.saturating_add(PRESS_WITHIN_MS)
}

/// When the quiet time after settings sent at `sent` ends, unless a press starts it again.
fn quiet_after(sent: Millis) -> Millis {
    Millis(sent.0.saturating_add(PRESS_WITHIN_MS).saturating_add(QUIET_MS))
}

/// The milliseconds from `now` to `end`, at most `most` (a clock that went back gives no more).
fn ms_until(now: Millis, end: Millis, most: u64) -> u64 {
    end.0.saturating_sub(now.0).min(most)
}

const fn refuse(field: &'static str, problem: &'static str) -> SettingError {
    SettingError { field, problem }
}

/// Everything a board needs to work at its pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSettings {
    pub wifi_ssid: Text<32>,
    /// Empty for an open network.
    pub wifi_password: Text<63>,
    /// `host[:port]` (plain HTTP).
    pub server: Text<96>,
    pub device_key: Text<64>,
    pub link_secret: Option<LinkSecret>,
    /// The device's id on the server (the MQTT user name); empty when not given (HTTP needs none).
    pub device_id: Text<64>,
    /// How the device talks to the server.
    pub transport: Transport,
    /// The MQTT broker, `host[:port]` (port 1883 when left out); empty: the server's host.
    pub broker: Text<96>,
    pub relay_active_high: bool,
    pub load_shedding_active_high: bool,
    pub ready_active_high: bool,
}

/// How the device talks to the server: HTTP polls (the default) or an MQTT session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Mqtt,
}

/// The MQTT port when the broker's address names none.
pub const MQTT_PORT: u16 = 1883;

/// The largest record [`DeviceSettings::to_record`] writes.
pub const RECORD_BYTES: usize = 1024;
const MAGIC: &[u8; 4] = b"PPS1";

impl DeviceSettings {
    /// Reads the setup page's form (`application/x-www-form-urlencoded`: `ssid`, `password`,
    /// `server`, `key`, `secret`, `id`, `transport` (`http`, the default, or `mqtt`, which needs
    /// `id`), `broker`, and `relay`, `shedding`, `ready` as `1`/`0`). The first field that does
    /// not pass is the error; unknown fields are refused. The three levels must be chosen: a level
    /// assumed for a board wired the other way would drive its relay ON where the device means
    /// OFF (at boot, in setup mode, after a panic), past every rule.
    pub fn from_form(body: &[u8]) -> Result<DeviceSettings, SettingError> {
        let mut error = None;
        let mut buf = [0u8; 128];
        let mut pairs = body.split(|&b| b == b'&').filter(|p| !p.is_empty());
        let fields = core::iter::from_fn(|| {
            let pair = pairs.next()?;
            let (name, raw) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[..0]),
            };
            match decode(raw, &mut buf) {
                // Each value is checked (and copied) before the next one is decoded.
                Some(value) => Some((name, Value::new(value))),
                None => {
                    error = Some(refuse("form", "a value is not correctly encoded"));
                    None
                }
            }
        });
        let settings = Self::read(fields, None);
        match error {
            Some(error) => Err(error),
            None => settings,
        }
    }

    /// The same settings from values that are not form-encoded (the build-time ones): each
    /// `(name, value)` checked exactly as a field of the form; a level left out is active high.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<DeviceSettings, SettingError> {
        Self::read(fields.into_iter().map(|(name, value)| (name.as_bytes(), Value::new(value))), Some(true))
    }

    /// `level`: the active level of a level left out, or `None` when each must be given.
    fn read<'n>(
        fields: impl Iterator<Item = (&'n [u8], Value)>,
        level: Option<bool>,
    ) -> Result<DeviceSettings, SettingError> {
        let mut ssid = None;
        let mut password = Text::EMPTY;
        let mut server = None;
        let mut key = None;
        let mut secret = None;
        let mut id = Text::EMPTY;
        let mut transport = Transport::Http;
        let mut broker = Text::EMPTY;
        let (mut relay, mut shedding, mut ready) = (level, level, level);
        for (name, value) in fields {
            let value = value.as_slice();
            match name {
                b"ssid" => ssid = Some(wifi_ssid(value)?),
                b"password" => password = wifi_password(value)?,
                b"server" => server = Some(address(value, "server")?),
                b"key" => key = Some(device_key(value)?),
                b"secret" if value.is_empty() => secret = None,
                b"secret" => {
                    let text =
                        core::str::from_utf8(value).map_err(|_| refuse("secret", "must be the pp_link_… secret"))?;
                    secret = Some(
                        LinkSecret::parse(text)
                            .ok_or(refuse("secret", "must be the pp_link_… secret shown with the key"))?,
                    );
                }
                b"id" => id = device_id(value)?,
                b"transport" => transport = transport_kind(value)?,
                b"broker" if value.is_empty() => broker = Text::EMPTY,
                b"broker" => broker = address(value, "broker")?,
                b"relay" => relay = Some(flag(value, "relay")?),
                b"shedding" => shedding = Some(flag(value, "shedding")?),
                b"ready" => ready = Some(flag(value, "ready")?),
                _ => return Err(refuse("form", "has a field this device does not know")),
            }
        }
        let settings = DeviceSettings {
            wifi_ssid: ssid.ok_or(refuse("ssid", "is required"))?,
            wifi_password: password,
            server: server.ok_or(refuse("server", "is required"))?,
            device_key: key.ok_or(refuse("key", "is required"))?,
            link_secret: secret,
            device_id: id,
            transport,
            broker,
            relay_active_high: relay.ok_or(refuse("relay", "must be chosen as the relay board is wired"))?,
            load_shedding_active_high: shedding.ok_or(refuse("shedding", "must be chosen as the input is wired"))?,
            ready_active_high: ready.ok_or(refuse("ready", "must be chosen as the input is wired"))?,
        };
        if transport == Transport::Mqtt && settings.device_id.len == 0 {
            return Err(refuse("id", "is required for MQTT (the device id shown on the dashboard)"));
        }
        Ok(settings)
    }

    /// The MQTT broker's host and port: `broker`, or the server's host, at port 1883 unless
    /// named.
    pub fn broker_address(&self) -> (&str, u16) {
        let raw = if self.broker.len == 0 { host_only(self.server.as_str()) } else { self.broker.as_str() };
        split_port(raw, MQTT_PORT)
    }

    /// The server's host and port (80 unless named).
    pub fn server_address(&self) -> (&str, u16) {
        split_port(self.server.as_str(), 80)
    }

    /// Writes the record kept in flash: `PPS1`, the length, the settings as a form, and a CRC-32
    /// of all before it. Returns its length.
    pub fn to_record(&self, out: &mut [u8; RECORD_BYTES]) -> usize {
        let mut w = Writer { out: &mut out[6..RECORD_BYTES - 4], at: 0 };
        w.field("ssid", self.wifi_ssid.as_str().as_bytes());
        w.field("password", self.wifi_password.as_str().as_bytes());
        w.field("server", self.server.as_str().as_bytes());
        w.field("key", self.device_key.as_str().as_bytes());
        if let Some(secret) = &self.link_secret {
            w.field("secret", secret.as_bytes());
        }
        if self.device_id.len > 0 {
            w.field("id", self.device_id.as_str().as_bytes());
        }
        if self.transport == Transport::Mqtt {
            w.field("transport", b"mqtt");
        }
        if self.broker.len > 0 {
            w.field("broker", self.broker.as_str().as_bytes());
        }
        w.field("relay", if self.relay_active_high { b"1" } else { b"0" });
        w.field("shedding", if self.load_shedding_active_high { b"1" } else { b"0" });
        w.field("ready", if self.ready_active_high { b"1" } else { b"0" });
        let len = w.at;
        out[..4].copy_from_slice(MAGIC);
        out[4..6].copy_from_slice(&(len as u16).to_le_bytes());
        let crc = crc32(&out[..6 + len]);
        out[6 + len..10 + len].copy_from_slice(&crc.to_le_bytes());
        10 + len
    }

    /// Reads a record back; anything but an intact one (erased flash, a cut write, a flipped bit,
    /// a setting that no longer passes) is an error: the device then opens its setup page, with
    /// the outputs OFF.
    pub fn from_record(bytes: &[u8]) -> Result<DeviceSettings, SettingError> {
        let broken = refuse("record", "the settings in flash are missing or damaged");
        if bytes.len() < 10 || &bytes[..4] != MAGIC {
            return Err(broken);
        }
        let len = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
        let end = 6 + len;
        if bytes.len() < end + 4 || len > RECORD_BYTES - 10 {
            return Err(broken);
        }
        let stored = u32::from_le_bytes([bytes[end], bytes[end + 1], bytes[end + 2], bytes[end + 3]]);
        if crc32(&bytes[..end]) != stored {
            return Err(broken);
        }
        DeviceSettings::from_form(&bytes[6..end])
    }

    /// The active levels of the relay and the inputs: what the setup page may show of these
    /// settings ([`page`]).
    pub const fn levels(&self) -> Levels {
        Levels {
            relay_active_high: self.relay_active_high,
            load_shedding_active_high: self.load_shedding_active_high,
            ready_active_high: self.ready_active_high,
        }
    }

    /// The controller's settings for this board (its active levels on top of `base`).
    pub const fn controller_settings(&self, base: Settings) -> Settings {
        Settings {
            load_shedding_active_high: self.load_shedding_active_high,
            ready_active_high: self.ready_active_high,
            ..base
        }
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn push(&mut self, b: u8) {
        if self.at < self.out.len() {
            self.out[self.at] = b;
        }
        self.at = (self.at + 1).min(self.out.len());
    }

    fn field(&mut self, name: &str, value: &[u8]) {
        if self.at > 0 {
            self.push(b'&');
        }
        name.bytes().for_each(|b| self.push(b));
        self.push(b'=');
        for &b in value {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                self.push(b);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.push(b'%');
                self.push(HEX[usize::from(b >> 4)]);
                self.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
}

/// One field's value, copied out of the form (at most 128 bytes; a `len` of 129 means longer).
struct Value {
    bytes: [u8; 128],
    len: usize,
}

impl Value {
    fn new(value: &[u8]) -> Value {
        let mut bytes = [0u8; 128];
        if value.len() <= bytes.len() {
            bytes[..value.len()].copy_from_slice(value);
        }
        Value { bytes, len: value.len().min(129) }
    }

    fn as_slice(&self) -> &[u8] {
        if self.len > 128 {
            // Longer than any setting: refused by every field's check for its length.
            &TOO_LONG
        } else {
            &self.bytes[..self.len]
        }
    }
}

/// Stands for a value longer than any setting.
const TOO_LONG: [u8; 129] = [b'x'; 129];

/// Percent-decodes `raw` (`+` is a space) into `buf`.
fn decode<'b>(raw: &[u8], buf: &'b mut [u8; 128]) -> Option<&'b [u8]> {
    let mut at = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = match raw[i] {
            b'+' => b' ',
            b'%' => {
                let high = (*raw.get(i + 1)? as char).to_digit(16)?;
                let low = (*raw.get(i + 2)? as char).to_digit(16)?;
                i += 2;
                (high * 16 + low) as u8
            }
            b => b,
        };
        *buf.get_mut(at)? = b;
        at += 1;
        i += 1;
    }
    Some(&buf[..at])
}

fn wifi_ssid(value: &[u8]) -> Result<Text<32>, SettingError> {
    if value.is_empty() || value.len() > 32 {
        return Err(refuse("ssid", "must be 1 to 32 bytes"));
    }
    Text::new(value).ok_or(refuse("ssid", "must be text"))
}

fn wifi_password(value: &[u8]) -> Result<Text<63>, SettingError> {
    if !value.is_empty() && !(8..=63).contains(&value.len()) {
        return Err(refuse("password", "must be 8 to 63 characters (WPA2), or empty for an open network"));
    }
    if value.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(refuse("password", "must be printable ASCII"));
    }
    Text::new(value).ok_or(refuse("password", "must be text"))
}

/// `host` or `host:port` without a port.
fn host_only(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

/// `host[:port]` into its parts (`default` when no port is named; the port was checked when the
/// setting was read).
fn split_port(address: &str, default: u16) -> (&str, u16) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(default)),
        None => (address, default),
    }
}

fn device_id(value: &[u8]) -> Result<Text<64>, SettingError> {
    let ok = value.is_empty()
        || (value.len() <= 64 && value.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')));
    if !ok {
        return Err(refuse("id", "must be the device id shown on the dashboard (letters, digits, - and _)"));
    }
    Text::new(value).ok_or(refuse("id", "must be text"))
}

fn transport_kind(value: &[u8]) -> Result<Transport, SettingError> {
    match value {
        b"" | b"http" => Ok(Transport::Http),
        b"mqtt" => Ok(Transport::Mqtt),
        _ => Err(refuse("transport", "must be http or mqtt")),
    }
}

/// The server's or the broker's address: `host[:port]`, `http://` allowed (and dropped) for the
/// server.
fn address(value: &[u8], field: &'static str) -> Result<Text<96>, SettingError> {
    if value.starts_with(b"https://") {
        return Err(refuse(field, "https is not supported: use http:// on the farm's network"));
    }
    let rest = value.strip_prefix(b"http://").unwrap_or(value);
    let rest = rest.strip_suffix(b"/").unwrap_or(rest);
    let (host, port) = match rest.iter().rposition(|&b| b == b':') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 80
        && host.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    if !host_ok {
        return Err(refuse(field, "must be host or host:port (letters, digits, dots and dashes)"));
    }
    if let Some(port) = port {
        let number = core::str::from_utf8(port).ok().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
        if number.is_none() || port.first() == Some(&b'0') {
            return Err(refuse(field, "the port must be 1 to 65535"));
        }
    }
    Text::new(rest).ok_or(refuse(field, "is too long"))
}

fn device_key(value: &[u8]) -> Result<Text<64>, SettingError> {
    let ok = value.starts_with(b"pp_dev_")
        && (17..=64).contains(&value.len())
        && value.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !ok {
        return Err(refuse("key", "must be the pp_dev_… key shown when the device was registered"));
    }
    Text::new(value).ok_or(refuse("key", "must be text"))
}

fn flag(value: &[u8], field: &'static str) -> Result<bool, SettingError> {
    match value {
        b"1" => Ok(true),
        b"0" => Ok(false),
        _ => Err(refuse(field, "must be 1 (active high) or 0 (active low)")),
    }
}

/// CRC-32 (IEEE), bit by bit: small, and a record is read once per boot.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
