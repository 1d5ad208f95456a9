//! The device's side of MQTT (`docs/DEVICE.md`, "MQTT"): the topics, the report with its `ref`,
//! and a command the server pushes.
//!
//! Over MQTT no answer belongs to a request, so the lease cannot count from "the poll that
//! brought it". Instead each report carries a `ref` (going up), the device remembers when it sent
//! its last [`REMEMBERED_REFS`] reports (and, signing, the counter each was signed with), and a
//! command names the `ref` of the latest report the server had when it made it: the command's
//! lease counts from that report's send time, which is never later than the command itself (the
//! same rule as an HTTP answer, whose lease counts from its poll's send). A command without a
//! `ref`, or with one that names no report the device remembers (on a device that signs, also one
//! signed with another counter than that report's), may switch the relay OFF but never ON; the
//! device then reports at once, and the answer to that report (naming its `ref`) may switch it ON.
//!
//! A shell (firmware, simulator) does:
//! 0. at boot, [`Controller::set_first_ref`] with a random number;
//! 1. connect with [`KEEP_ALIVE_S`], clean session, the will [`Topics::status`] /
//!    [`WILL_PAYLOAD`]; subscribe to [`Topics::command`];
//! 2. publish [`Controller::mqtt_report`] (its [`MqttReport::encode`]) to [`Topics::report`] at
//!    once when [`Controller::report_now`] says so, else every [`Controller::next_poll_in`];
//! 3. hand every message on [`Topics::command`] to [`Controller::command`], and report at once when
//!    the result says [`Pushed::report_now`];
//! 4. a connection that fails or drops: [`Controller::poll_failed`] (the reconnect backs off);
//!    the command stays until its lease runs out, as for HTTP.
//!
//! A device with a link secret signs (`pumppilot_protocol::link`, "Over MQTT"): its reports carry
//! the prefix line `<counter> <mac-hex>\n` ([`Controller::mqtt_payload`], the counter shared with
//! its HTTP requests), and [`Controller::command`] takes only a command whose MAC checks; anything
//! else (forged, tampered, unsigned) drops the command (relay OFF), as for HTTP. The MAC of a
//! command covers the counter of the report it answers, and the device takes it as the answer to
//! the report its `ref` names only when that is the counter the report was signed with: a command
//! captured at an earlier boot whose `ref` this boot's reports reach again is not one of theirs.
//! A signed refusal of a report's counter (the device rebooted and counts from below) moves the
//! counter above the highest the server accepted; the next report goes after the retry delay.

use pumppilot_protocol::{
    MAX_ANSWER_BYTES, PollAnswer, PollReport,
    json::{self, JsonError},
    link::{self, Framed, MqttKind},
};

use crate::{AnswerError, Controller, Millis, Sent};

/// How many reports' send times a device remembers (a command naming an older one cannot switch
/// the relay ON).
pub const REMEMBERED_REFS: usize = 8;

/// The keep-alive the device asks for, in seconds (the server closes a connection silent for
/// one and a half times this).
pub const KEEP_ALIVE_S: u16 = 30;

/// The will message's payload, on [`Topics::status`].
pub const WILL_PAYLOAD: &[u8] = b"offline";

/// Longest report payload [`Controller::mqtt_payload`] writes (and the buffer it needs): the JSON
/// with `ref` and, on a device that signs, the prefix line before it.
pub const MAX_REPORT_PAYLOAD: usize = json::MAX_MQTT_REPORT_BYTES + link::MAX_MQTT_PREFIX_BYTES;

/// Longest device id a [`Topic`] holds (the server's ids are 32 hex digits).
pub const MAX_DEVICE_ID: usize = 64;

/// A topic name in a fixed buffer (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Topic {
    buf: [u8; MAX_DEVICE_ID + 18],
    len: u8,
}

impl Topic {
    fn of(device_id: &str, leaf: &str) -> Topic {
        let mut topic = Topic { buf: [0; MAX_DEVICE_ID + 18], len: 0 };
        for part in ["pumppilot/", device_id, "/", leaf] {
            let at = usize::from(topic.len);
            topic.buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            topic.len += part.len() as u8;
        }
        topic
    }

    /// The topic name.
    pub fn as_str(&self) -> &str {
        // Built only from `&str` parts, so always UTF-8.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl core::fmt::Debug for Topic {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three topics of one device: `pumppilot/{deviceId}/report`, `/command` and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topics {
    pub report: Topic,
    pub command: Topic,
    pub status: Topic,
}

impl Topics {
    /// The topics of `device_id`, or `None` when it is empty, longer than [`MAX_DEVICE_ID`], or
    /// holds anything but ASCII letters, digits, `-` and `_` (so no MQTT wildcard or level).
    pub fn new(device_id: &str) -> Option<Topics> {
        let fits = !device_id.is_empty() && device_id.len() <= MAX_DEVICE_ID;
        if !fits || !device_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        Some(Topics {
            report: Topic::of(device_id, "report"),
            command: Topic::of(device_id, "command"),
            status: Topic::of(device_id, "status"),
        })
    }
}

/// A report to publish, numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqttReport {
    /// The inputs, as for an HTTP poll (the shell may fill in `rssi`).
    pub report: PollReport<'static>,
    /// This report's `ref`.
    pub reference: u32,
}

impl MqttReport {
    /// Writes the payload (the poll report JSON with `"ref"`); at most
    /// [`json::MAX_MQTT_REPORT_BYTES`].
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, JsonError> {
        json::encode_report_ref(&self.report, self.reference, buf)
    }
}

/// What a pushed command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// It names a report the device remembers (signed, with that report's counter): it is the
    /// command now, its lease counted from that report's send time.
    Taken(PollAnswer),
    /// It has no `ref`, or names no report the device remembers, and says OFF: it is the command
    /// now (the relay opens). Report at once.
    TakenOff(PollAnswer),
    /// It has no `ref`, or names no report the device remembers, and says ON: it is not used (the
    /// command before it stays, with its own lease). Report at once: the answer, naming the
    /// report, may switch the relay ON.
    Unreferenced(PollAnswer),
}

impl Pushed {
    /// The command as the server sent it.
    pub const fn answer(&self) -> &PollAnswer {
        match self {
            Pushed::Taken(answer) | Pushed::TakenOff(answer) | Pushed::Unreferenced(answer) => answer,
        }
    }

    /// True when the device should publish a report at once.
    pub const fn report_now(&self) -> bool {
        !matches!(self, Pushed::Taken(_))
    }
}

/// One report the device remembers: its `ref`, when it was sent (and under which clock epoch),
/// and the counter it was signed with (`None` until [`Controller::mqtt_payload`] signed it, and
/// on a device without a link secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remembered {
    reference: u32,
    at: Millis,
    epoch: u32,
    counter: Option<u64>,
}

/// The send times of the last [`REMEMBERED_REFS`] reports, and the next `ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refs {
    /// At `ref % REMEMBERED_REFS`.
    sent: [Option<Remembered>; REMEMBERED_REFS],
    next: u32,
}

impl Refs {
    pub(crate) const NONE: Refs = Refs { sent: [None; REMEMBERED_REFS], next: 1 };

    fn start_at(&mut self, first: u32) {
        *self = Refs { next: first.max(1), ..Refs::NONE };
    }

    fn push(&mut self, sent: Sent) -> u32 {
        let reference = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.sent[reference as usize % REMEMBERED_REFS] =
            Some(Remembered { reference, at: sent.at, epoch: sent.epoch, counter: None });
        reference
    }

    /// Remembers that the report `reference` went out signed with `counter` (the last signing
    /// counts, should a shell sign one report twice).
    fn signed(&mut self, reference: u32, counter: u64) {
        if let Some(report) = &mut self.sent[reference as usize % REMEMBERED_REFS]
            && report.reference == reference
        {
            report.counter = Some(counter);
        }
    }

    /// The report `reference`, sent under the clock's `epoch` and signed with `counter` (the
    /// counter a signed command carries; `None`, unsigned, matches only a report that was not
    /// signed either).
    fn find(&self, reference: u32, epoch: u32, counter: Option<u64>) -> Option<Sent> {
        match self.sent[reference as usize % REMEMBERED_REFS] {
            Some(report) if report.reference == reference && report.epoch == epoch && report.counter == counter => {
                Some(Sent { at: report.at, epoch, signature: None })
            }
            _ => None,
        }
    }

    /// The newest send time remembered under the clock's current epoch.
    fn newest(&self, epoch: u32) -> Option<Sent> {
        let at = self.sent.iter().flatten().filter(|report| report.epoch == epoch).map(|report| report.at).max()?;
        Some(Sent { at, epoch, signature: None })
    }
}

impl Controller {
    /// Numbers this boot's reports from `first` (0 counts as 1). Call it once at boot with a
    /// random number (the firmware's hardware RNG): a command naming a report of an earlier boot
    /// (a broker's retained message, a server that has not yet heard of the reboot) then names a
    /// `ref` this boot has not sent, and cannot switch the relay ON with the lease of another
    /// report. Without it, refs start at 1. It forgets the send times remembered so far.
    pub fn set_first_ref(&mut self, first: u32) {
        self.refs.start_at(first);
    }

    /// The report to publish at `now`, with its `ref` (one more than the last); remembers its
    /// send time for the command that will name it. The same report as [`Controller::report`]
    /// (and remembered for [`Controller::report_now`] alike).
    pub fn mqtt_report(&mut self, now: Millis) -> MqttReport {
        let report = self.report(now);
        let sent = self.sent(now);
        MqttReport { report, reference: self.refs.push(sent) }
    }

    /// Writes the payload to publish for `report` on `topic` (the device's [`Topics::report`])
    /// into `buf` (at least [`MAX_REPORT_PAYLOAD`] bytes) and returns its length: the JSON
    /// ([`MqttReport::encode`]) and, on a device with a link secret, signed with the next counter
    /// (`<counter> <mac-hex>\n` before it), which the device remembers with the report: a command
    /// answers it only when signed with that counter. Sign each report once, as it goes out.
    pub fn mqtt_payload(&mut self, report: &MqttReport, topic: &str, buf: &mut [u8]) -> Result<usize, JsonError> {
        let Some(secret) = self.link else { return report.encode(buf) };
        let at = link::MAX_MQTT_PREFIX_BYTES;
        let len = report.encode(buf.get_mut(at..).ok_or(JsonError::BufferFull)?)?;
        let counter = self.next_counter();
        self.refs.signed(report.reference, counter);
        Ok(link::sign_in_place(&secret, MqttKind::Report, topic, counter, buf, len))
    }

    /// Takes a command the server pushed (the payload of a message on `topic`, the device's
    /// [`Topics::command`]), arriving at `now`.
    ///
    /// On a device with a link secret the payload must be signed (`<counter> <mac-hex>\n` before
    /// the JSON) and its MAC check for a command on `topic`: else the command is dropped (relay
    /// OFF, [`AnswerError::Forged`]), whatever it says. A signed refusal of a report's counter
    /// moves the counter above the one it names and counts as a failed report
    /// ([`AnswerError::Refused`]`(409)`); the rules below then apply to the JSON.
    ///
    /// - Garbage (not the answer JSON, too long, a `ref` that is not a number) drops the command
    ///   (relay OFF), as for HTTP.
    /// - A `ref` the device remembers, and on a device with a link secret signed with the counter
    ///   that report was signed with: the command is taken as an HTTP answer to that report
    ///   ([`Controller::answer`]'s rules; a command older than the current one is
    ///   [`AnswerError::Stale`]).
    /// - No `ref`, one no longer remembered, or one whose report was signed with another counter
    ///   (a command made for a report of an earlier boot with the same `ref`): an OFF is taken, an
    ///   ON is not; either way the device should report at once ([`Pushed::report_now`], and
    ///   [`Controller::report_now`] says so too).
    pub fn command(&mut self, now: Millis, topic: &str, payload: &[u8]) -> Result<Pushed, AnswerError> {
        self.observe(now);
        let (body, counter) = match self.link {
            None => (payload, None),
            Some(secret) => match link::unframe(payload) {
                Framed::Signed { counter, tag, body } => {
                    if secret.check_mqtt(MqttKind::Command, topic, counter, body, &tag) {
                        (body, Some(counter))
                    } else if secret.check_mqtt(MqttKind::Stale, topic, counter, body, &tag) {
                        self.refusal(409, counter);
                        return Err(self.refused(now, 409));
                    } else {
                        return Err(self.forged());
                    }
                }
                // The command a server pushes on SUBSCRIBE, before this connection's first
                // (signed) report told it that the device signs, comes plain and names no report:
                // it is not used (the relay keeps the command it has) and the device reports at
                // once; the answer to that report comes signed. Any other plain command is forged.
                Framed::Plain(body) if matches!(json::decode_ref(body, MAX_ANSWER_BYTES), Ok(None)) => {
                    return match json::decode_answer(body) {
                        Ok(answer) => Ok(Pushed::Unreferenced(answer)),
                        Err(_) => Err(self.forged()),
                    };
                }
                Framed::Plain(_) | Framed::Malformed => return Err(self.forged()),
            },
        };
        let (answer, reference) = match json::decode_answer(body)
            .and_then(|answer| Ok((answer, json::decode_ref(body, MAX_ANSWER_BYTES)?)))
        {
            Ok(read) => read,
            Err(err) => return Err(self.garbage(err)),
        };
        // The report it names, and (signed) the very report: the server signs a command with the
        // counter of the report its `ref` names, so one made for a report of an earlier boot that
        // had the same `ref` (refs start at a random number at each boot, and two boots' may
        // meet) carries another counter, and answers none of this boot's reports.
        if let Some(sent) = reference.and_then(|r| self.refs.find(r, self.epoch, counter)) {
            return self.take_answer(sent, now, body).map(Pushed::Taken);
        }
        if answer.commands_on() {
            // Not used; the link is up, and a report at once brings the answer naming it.
            self.failures = 0;
            self.reported = None;
            return Ok(Pushed::Unreferenced(answer));
        }
        // An OFF counts from the newest report sent (an answer to that one, made after this
        // command, may follow and is used), or from now when none is remembered; never from
        // before the newest answer taken (kept when the command was dropped), so it is never
        // stale.
        let mut anchor = self.refs.newest(self.epoch).unwrap_or_else(|| self.sent(now));
        if let Some((at, _)) = self.newest {
            anchor.at = anchor.at.max(at);
        }
        self.take_answer(anchor, now, body)?;
        self.reported = None;
        Ok(Pushed::TakenOff(answer))
    }
}
