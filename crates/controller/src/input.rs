//! Debouncing one digital input, with time passed in.

use crate::Millis;

/// One input pin: the raw level and since when it has held, and the last level that held long
/// enough. The debounced value is computed at the moment asked, so a caller that samples only
/// when a level changes gets the same answer as one that samples every few milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Debounced {
    /// The last raw level and when it was first seen.
    raw: Option<(bool, Millis)>,
    /// The last level that held for the debounce time; `None` until one has.
    settled: Option<bool>,
}

impl Debounced {
    /// Nothing sampled yet: the input has no value (callers treat that as unsafe).
    pub(crate) const UNKNOWN: Debounced = Debounced { raw: None, settled: None };

    /// Records the raw level seen at `now`.
    pub(crate) fn sample(&mut self, now: Millis, level: bool, debounce_ms: u32) {
        match self.raw {
            Some((raw, _)) if raw == level => {}
            Some((raw, since)) => {
                if held(since, now, debounce_ms) {
                    self.settled = Some(raw);
                }
                self.raw = Some((level, now));
            }
            None => self.raw = Some((level, now)),
        }
    }

    /// The debounced level at `now`: the raw level once it has held `debounce_ms`, otherwise the
    /// previous settled level, or `None` when no level has ever held that long.
    pub(crate) fn value(&self, now: Millis, debounce_ms: u32) -> Option<bool> {
        match self.raw {
            Some((raw, since)) if held(since, now, debounce_ms) => Some(raw),
            _ => self.settled,
        }
    }
}

/// True when a level first seen at `since` has held for `debounce_ms` at `now`. A `now` before
/// `since` (a clock that went back) has held for no time at all.
fn held(since: Millis, now: Millis, debounce_ms: u32) -> bool {
    now.since(since).is_some_and(|held| held >= u64::from(debounce_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_counts_only_once_it_has_held() {
        let mut input = Debounced::UNKNOWN;
        assert_eq!(input.value(Millis(0), 50), None);
        input.sample(Millis(100), true, 50);
        assert_eq!(input.value(Millis(149), 50), None);
        assert_eq!(input.value(Millis(150), 50), Some(true));
        // A glitch shorter than the debounce time does not change the value...
        input.sample(Millis(200), false, 50);
        assert_eq!(input.value(Millis(249), 50), Some(true));
        input.sample(Millis(249), true, 50);
        assert_eq!(input.value(Millis(260), 50), Some(true));
        // ...and the value before the glitch is still the settled one while the new level settles.
        input.sample(Millis(300), false, 50);
        assert_eq!(input.value(Millis(320), 50), Some(true));
        assert_eq!(input.value(Millis(350), 50), Some(false));
        // A clock that went back sees the raw level as not yet held.
        assert_eq!(input.value(Millis(10), 50), Some(true));
    }

    #[test]
    fn zero_debounce_follows_the_raw_level() {
        let mut input = Debounced::UNKNOWN;
        input.sample(Millis(5), false, 0);
        assert_eq!(input.value(Millis(5), 0), Some(false));
        input.sample(Millis(6), true, 0);
        assert_eq!(input.value(Millis(6), 0), Some(true));
    }
}
