//! The server's clock, given from outside: [`SystemClock`] in production, [`ManualClock`] in
//! tests, which move time by hand so nothing about time depends on how fast the machine is.
//!
//! Everything in the server that reads the time or waits for a moment goes through a [`Clock`]:
//! the runtime's timer (runs ending, leases), long-poll caps, the telemetry flush, session
//! expiry, the login limiter's window, card-tap dedupe and the hourly sweep.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use pumppilot_engine::Timestamp;
use tokio::sync::oneshot;

/// A wait for a moment of a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the server reads the time and waits for a moment.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch, now.
    fn now(&self) -> Timestamp;

    /// Resolves once [`Clock::now`] has reached `at` (at once if it already has).
    fn sleep_until(&self, at: Timestamp) -> Sleep;
}

/// The clock the server runs on.
pub type SharedClock = Arc<dyn Clock>;

impl dyn Clock {
    /// Resolves once `wait` has passed on this clock.
    pub fn sleep(&self, wait: Duration) -> Sleep {
        self.sleep_until(self.now() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The wall clock (production).
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The wall clock: the system's time, and tokio's timers for waiting.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(since_epoch.as_millis() as i64)
    }

    fn sleep_until(&self, at: Timestamp) -> Sleep {
        let wait = u64::try_from(at - self.now()).unwrap_or(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that stands still until a test moves it with [`ManualClock::advance`] or
/// [`ManualClock::set`]; every wait whose moment has come is released at once.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<Manual>,
}

#[derive(Debug)]
struct Manual {
    now: Timestamp,
    sleepers: Vec<(Timestamp, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock { state: Mutex::new(Manual { now: start, sleepers: Vec::new() }) })
    }

    /// A clock standing at the wall clock's current whole second (so times look real in views).
    pub fn starting_now() -> Arc<ManualClock> {
        let now = SystemClock.now();
        ManualClock::at(Timestamp(now.millis() - now.millis() % 1000))
    }

    /// Moves the clock forward by `by` and releases every wait that has come.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self.now() + by;
        self.set(now);
    }

    /// Sets the clock (forward or back) and releases every wait that has come.
    pub fn set(&self, now: Timestamp) {
        let mut state = self.state.lock().expect("clock lock");
        state.now = now;
        let sleepers = std::mem::take(&mut state.sleepers);
        for (at, wake) in sleepers {
            if at <= now {
                let _ = wake.send(());
            } else if !wake.is_closed() {
                state.sleepers.push((at, wake));
            }
        }
    }

    /// The moments someone is waiting for, earliest first (to know a wait has begun).
    pub fn waits(&self) -> Vec<Timestamp> {
        let mut state = self.state.lock().expect("clock lock");
        state.sleepers.retain(|(_, wake)| !wake.is_closed());
        let mut waits: Vec<Timestamp> = state.sleepers.iter().map(|(at, _)| *at).collect();
        waits.sort();
        waits
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.state.lock().expect("clock lock").now
    }

    fn sleep_until(&self, at: Timestamp) -> Sleep {
        let mut state = self.state.lock().expect("clock lock");
        if at <= state.now {
            return Box::pin(std::future::ready(()));
        }
        let (wake, woken) = oneshot::channel();
        state.sleepers.push((at, wake));
        Box::pin(async move {
            if woken.await.is_err() {
                // The clock is gone: its moment never comes.
                std::future::pending::<()>().await;
            }
        })
    }
}

/// RFC 3339 UTC text for a timestamp, as every API time is written.
pub fn rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads an RFC 3339 time or a plain `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Some(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64));
    }
    let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(Timestamp(date.midnight().assume_utc().unix_timestamp() * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_releases_a_wait_when_its_moment_comes_and_not_before() {
        let clock = ManualClock::at(Timestamp(10_000));
        let shared: SharedClock = clock.clone();
        let mut wait = tokio::spawn(shared.sleep(Duration::from_millis(500)));
        while clock.waits() != [Timestamp(10_500)] {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_millis(499));
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut wait).await.is_err(), "released early");
        clock.advance(Duration::from_millis(1));
        wait.await.unwrap();
        assert_eq!(shared.now(), Timestamp(10_500));
        assert!(clock.waits().is_empty());
        shared.sleep_until(Timestamp(1)).await;
    }

    #[test]
    fn times_round_trip() {
        let at = Timestamp(1_764_230_400_123);
        assert_eq!(rfc3339(at), "2025-11-27T08:00:00.123Z");
        assert_eq!(parse_time(&rfc3339(at)), Some(at));
        assert_eq!(parse_time("2025-11-27"), Some(Timestamp(1_764_201_600_000)));
        assert_eq!(parse_time("yesterday"), None);
    }
}
