//! What the status LED shows about the network, decided here so every board blinks alike and the
//! table is tested on the host. Card outcomes have patterns of their own (`CardFeedback`).

use crate::LinkState;

/// One LED period: on for `on_ms`, then off for `off_ms` (0: steady on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Blink {
    pub on_ms: u32,
    pub off_ms: u32,
}

/// The pattern for the network: `wifi` is true once the board has joined the network and has an
/// address.
///
/// | pattern | meaning |
/// |---|---|
/// | short flash every 2 s | no WiFi or no address |
/// | blinking 1 Hz | the server does not answer (or its answer did not check): wait, or look at the server |
/// | fast blinking, 4 Hz | the server refuses the device's key or signature: the device's settings must change |
/// | steady on | polling normally |
///
/// Setup mode has patterns of its own, [`SETUP`] and [`PRESS_TO_SAVE`].
pub const fn blink(wifi: bool, link: LinkState) -> Blink {
    if !wifi {
        return Blink { on_ms: 100, off_ms: 1_900 };
    }
    match link {
        LinkState::Up => Blink { on_ms: 1_000, off_ms: 0 },
        LinkState::KeyRefused => Blink { on_ms: 125, off_ms: 125 },
        LinkState::Unknown | LinkState::Unreachable | LinkState::Forged => Blink { on_ms: 500, off_ms: 500 },
    }
}

/// Setup mode (the device's own access point and setup page are open, the motor is OFF): on,
/// with a short dark gap every 2 s (the opposite of "no WiFi").
pub const SETUP: Blink = Blink { on_ms: 1_800, off_ms: 200 };

/// Setup mode with settings sent from the page waiting for a press of the board's button
/// (`setup::PendingSave`): fast blinking, 5 Hz, until the press or the deadline.
pub const PRESS_TO_SAVE: Blink = Blink { on_ms: 100, off_ms: 100 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_refused_and_unreachable_blink_differently() {
        let all = [LinkState::Unknown, LinkState::Up, LinkState::Unreachable, LinkState::KeyRefused, LinkState::Forged];
        let no_wifi = blink(false, LinkState::Up);
        for link in all {
            assert_eq!(blink(false, link), no_wifi, "without WiFi nothing else is known");
            assert_ne!(blink(true, link), no_wifi);
        }
        assert_ne!(blink(true, LinkState::KeyRefused), blink(true, LinkState::Unreachable));
        assert_ne!(blink(true, LinkState::Up), blink(true, LinkState::Unreachable));
        assert_eq!(blink(true, LinkState::Up).off_ms, 0, "steady when all is well");
        assert_ne!(SETUP, PRESS_TO_SAVE, "a save waiting for the button shows");
        for wifi in [false, true] {
            for link in all {
                assert_ne!(blink(wifi, link), SETUP, "setup mode looks like no network state");
                assert_ne!(blink(wifi, link), PRESS_TO_SAVE, "nor does a save waiting for the button");
            }
        }
    }
}
