//! The RFID flow: a card held to the reader becomes one tap, and the server's answer one signal.

use pumppilot_protocol::{CardAction, CardTap, json};

/// Shortest card UID the server accepts, in bytes (a single-size MIFARE UID).
pub const MIN_UID_BYTES: usize = 4;
/// Longest card UID, in bytes (a triple-size UID).
pub const MAX_UID_BYTES: usize = 10;

/// A card's UID as upper-case hex, ready for [`CardTap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardUid {
    hex: [u8; 2 * MAX_UID_BYTES],
    len: u8,
}

impl CardUid {
    /// The UID's upper-case hex, 4 to 10 bytes long. `None` for any other length.
    pub fn from_bytes(uid: &[u8]) -> Option<CardUid> {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        if !(MIN_UID_BYTES..=MAX_UID_BYTES).contains(&uid.len()) {
            return None;
        }
        let mut hex = [0u8; 2 * MAX_UID_BYTES];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(uid) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0F)];
        }
        Some(CardUid { hex, len: (2 * uid.len()) as u8 })
    }

    /// The upper-case hex, e.g. `"04A1B2C3"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits were written, so this cannot fail.
        core::str::from_utf8(&self.hex[..usize::from(self.len)]).unwrap_or("")
    }
}

/// One tap of a card: its UID and the tap's id ([`CardTap::tap`]), which every retry of this tap
/// sends again (the body is made once) and the next tap does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tap {
    pub card: CardUid,
    pub id: u32,
}

impl Tap {
    /// The card's upper-case hex, e.g. `"04A1B2C3"`.
    pub fn as_str(&self) -> &str {
        self.card.as_str()
    }

    /// The body of `POST /api/esp32/rfid` for this tap, the same for each of its retries.
    pub fn tap(&self) -> CardTap<'_> {
        CardTap { uid: self.as_str(), tap: Some(self.id) }
    }
}

/// What the device shows after a tap (a status LED pattern, a buzzer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardFeedback {
    /// The card holder's run started.
    Started,
    /// The card holder joined the queue.
    Queued,
    /// The card holder's active run ended.
    Stopped,
    /// The server refused the card.
    Denied,
    /// No usable answer: network error, an HTTP status other than 200, or a body that is not a
    /// card answer. The tap may or may not have been applied; the holder can look in the app.
    Error,
}

impl CardFeedback {
    /// The feedback for the body of an HTTP 200 answer to a tap.
    pub fn from_answer(body: &[u8]) -> CardFeedback {
        match json::decode_card_answer(body) {
            Ok(answer) => match answer.action {
                CardAction::Started => CardFeedback::Started,
                CardAction::Queued => CardFeedback::Queued,
                CardAction::Stopped => CardFeedback::Stopped,
                CardAction::Denied => CardFeedback::Denied,
            },
            Err(_) => CardFeedback::Error,
        }
    }
}
