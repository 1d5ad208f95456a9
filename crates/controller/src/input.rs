//! Debouncing one digital input, with time passed in.

use crate::Millis;

/// A level counts only after this many samples in a row have shown it (and they span the
/// debounce time): with a 50 ms tick and a 50 ms debounce, one stray sample can never count.
pub const DEBOUNCE_SAMPLES: u32 = 3;

/// One input pin: the current run of equal raw samples, and the last level that counted.
///
/// A level counts once it has been seen in consecutive samples spanning at least the debounce
/// time and numbering at least [`DEBOUNCE_SAMPLES`]. Time between samples is not assumed to
/// show the same level: only samples are evidence, so a caller that samples rarely settles late,
/// never early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Debounced {
    /// The level of the latest run of equal samples, when its first sample was seen, and how
    /// many samples it has had.
    run: Option<(bool, Millis, u32)>,
    /// The level that counts and the moment it started to count; `None` until one has.
    settled: Option<(bool, Millis)>,
}

impl Debounced {
    /// Nothing sampled yet: the input has no value (callers treat that as unsafe).
    pub(crate) const UNKNOWN: Debounced = Debounced { run: None, settled: None };

    /// Records the raw level seen at `now`.
    pub(crate) fn sample(&mut self, now: Millis, level: bool, debounce_ms: u32) {
        let (since, samples) = match self.run {
            Some((raw, since, samples)) if raw == level => (since, samples.saturating_add(1)),
            _ => (now, 1),
        };
        self.run = Some((level, since, samples));
        let spans = now.since(since).is_some_and(|held| held >= u64::from(debounce_ms));
        if spans && samples >= DEBOUNCE_SAMPLES && self.settled.is_none_or(|(settled, _)| settled != level) {
            self.settled = Some((level, now));
        }
    }

    /// The level that counts, or `None` when no level has yet.
    pub(crate) const fn value(&self) -> Option<bool> {
        match self.settled {
            Some((level, _)) => Some(level),
            None => None,
        }
    }

    /// The moment the level that counts started to count.
    pub(crate) const fn since(&self) -> Option<Millis> {
        match self.settled {
            Some((_, since)) => Some(since),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(samples: &[(u64, bool)], debounce_ms: u32) -> Debounced {
        let mut input = Debounced::UNKNOWN;
        for &(at, level) in samples {
            input.sample(Millis(at), level, debounce_ms);
        }
        input
    }

    #[test]
    fn a_level_counts_only_after_three_samples_spanning_the_debounce_time() {
        let mut input = Debounced::UNKNOWN;
        assert_eq!(input.value(), None);
        input.sample(Millis(100), true, 50);
        input.sample(Millis(150), true, 50);
        // Spans 50 ms but only two samples.
        assert_eq!(input.value(), None);
        input.sample(Millis(200), true, 50);
        assert_eq!((input.value(), input.since()), (Some(true), Some(Millis(200))));
        // A glitch of one or two samples does not change the value...
        input.sample(Millis(250), false, 50);
        input.sample(Millis(300), false, 50);
        assert_eq!(input.value(), Some(true));
        input.sample(Millis(350), true, 50);
        assert_eq!((input.value(), input.since()), (Some(true), Some(Millis(200))));
        // ...three samples spanning less than the debounce time neither...
        let fast = sampled(&[(0, true), (10, true), (20, true), (40, true)], 50);
        assert_eq!(fast.value(), None);
        assert_eq!(sampled(&[(0, true), (10, true), (20, true), (50, true)], 50).value(), Some(true));
        // ...and a new level counts from the sample that completed it.
        input.sample(Millis(400), false, 50);
        input.sample(Millis(450), false, 50);
        input.sample(Millis(500), false, 50);
        assert_eq!((input.value(), input.since()), (Some(false), Some(Millis(500))));
    }

    #[test]
    fn one_noisy_sample_with_tick_equal_to_debounce_never_counts() {
        // The bug this replaces: at a 50 ms tick and a 50 ms debounce, "not ready, READY, not
        // ready" made READY count for one tick.
        let input = sampled(&[(0, false), (50, false), (100, false), (150, true), (200, false)], 50);
        assert_eq!(input.value(), Some(false));
        let input = sampled(&[(0, false), (50, false), (100, false), (150, true), (200, true)], 50);
        assert_eq!(input.value(), Some(false));
    }

    #[test]
    fn zero_debounce_still_needs_three_samples() {
        let input = sampled(&[(5, false), (5, false)], 0);
        assert_eq!(input.value(), None);
        assert_eq!(sampled(&[(5, false), (5, false), (5, false)], 0).value(), Some(false));
    }

    #[test]
    fn a_clock_that_goes_back_within_a_run_does_not_count_as_held() {
        let input = sampled(&[(1_000, true), (1_010, true), (900, true)], 50);
        assert_eq!(input.value(), None);
    }
}
