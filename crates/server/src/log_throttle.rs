//! Log lines that an attack or an outage would repeat thousands of times a second (a refused
//! sign-in, a failed store write) are let through once a period, with how many were held back:
//! the log stays readable and a full disk or an SD card is not filled by it.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Lets one log line through per period, counting the ones it held back.
pub struct LogThrottle {
    every: Duration,
    /// When the last line went through, and how many were held back since.
    last: Mutex<Option<(Instant, u64)>>,
}

impl LogThrottle {
    pub const fn every(every: Duration) -> LogThrottle {
        LogThrottle { every, last: Mutex::new(None) }
    }

    /// `Some(held back since the last line)` when a line may be logged at `now`, else `None`.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match last.as_mut() {
            Some((at, held)) if now.saturating_duration_since(*at) < self.every => {
                *held += 1;
                None
            }
            _ => {
                let held = last.map_or(0, |(_, held)| held);
                *last = Some((now, 0));
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::LogThrottle;

    #[test]
    fn one_line_goes_through_per_period_with_the_count_held_back() {
        let throttle = LogThrottle::every(Duration::from_secs(10));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(throttle.admit(at(0)), Some(0), "the first failure is logged");
        assert_eq!(throttle.admit(at(1)), None);
        assert_eq!(throttle.admit(at(9_999)), None);
        assert_eq!(throttle.admit(at(10_000)), Some(2), "a period later, with the two held back");
        assert_eq!(throttle.admit(at(10_500)), None);
        assert_eq!(throttle.admit(at(60_000)), Some(1));
        assert_eq!(throttle.admit(at(60_001)), None);
    }
}
