//! CONNECTs budgeted per client address, as sign-ins are (`auth::LoginLimiter`): an address
//! whose CONNECTs failed [`ConnectBudget::FAILURES`] times in the window (a wrong id or key, a
//! malformed CONNECT) is refused until the window ends, and every address has a rate of CONNECTs
//! (a bucket of `per_second` tokens a second, ten seconds' worth at most), so a flood of
//! connections, right or wrong, costs the server little. Refused CONNECTs get "server
//! unavailable" (3). Counted on the server's clock, per server.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use pumppilot_engine::Timestamp;

use crate::{auth::LoginLimiter, clock::SharedClock};

/// How many seconds' worth of CONNECTs an address may make at once.
const BURST_SECONDS: u64 = 10;
/// Addresses kept before the quiet ones are forgotten.
const SWEEP_ABOVE: usize = 4096;

pub struct ConnectBudget {
    clock: SharedClock,
    per_second: u64,
    window_ms: i64,
    addresses: Mutex<Addresses>,
}

#[derive(Default)]
struct Addresses {
    budgets: HashMap<IpAddr, Budget>,
    /// When the quiet addresses were last forgotten (at most once a second).
    swept: Option<Timestamp>,
}

#[derive(Clone, Copy)]
struct Budget {
    /// Tokens left, in thousandths of a CONNECT, as of `at`.
    tokens: u64,
    at: Timestamp,
    /// Failures counted since `since`.
    failures: u32,
    since: Timestamp,
}

impl ConnectBudget {
    /// Failed CONNECTs from one address in the window before it is refused: the sign-ins' figure.
    pub const FAILURES: u32 = LoginLimiter::PER_ADDRESS;

    /// A budget of `per_second` CONNECTs a second per address (at least 1).
    pub fn new(clock: SharedClock, per_second: u32) -> Self {
        let window_ms = i64::try_from(LoginLimiter::WINDOW.as_millis()).unwrap_or(i64::MAX);
        ConnectBudget { clock, per_second: u64::from(per_second.max(1)), window_ms, addresses: Default::default() }
    }

    fn full(&self) -> u64 {
        self.per_second * BURST_SECONDS * 1000
    }

    /// Takes one CONNECT from `address`'s budget: false when it has none left or failed too
    /// often in the window.
    pub fn admit(&self, address: IpAddr) -> bool {
        let now = self.clock.now();
        let full = self.full();
        let mut addresses = self.addresses.lock().expect("connect budget lock");
        if addresses.budgets.len() > SWEEP_ABOVE && addresses.swept.is_none_or(|at| now - at >= 1_000) {
            addresses.swept = Some(now);
            addresses.budgets.retain(|_, budget| !self.settled(budget, now));
        }
        let budget =
            addresses.budgets.entry(address).or_insert(Budget { tokens: full, at: now, failures: 0, since: now });
        self.refill(budget, now);
        if budget.failures >= Self::FAILURES || budget.tokens < 1000 {
            return false;
        }
        budget.tokens -= 1000;
        true
    }

    /// Counts a failed CONNECT from `address`.
    pub fn failed(&self, address: IpAddr) {
        let now = self.clock.now();
        let full = self.full();
        let mut addresses = self.addresses.lock().expect("connect budget lock");
        let budget =
            addresses.budgets.entry(address).or_insert(Budget { tokens: full, at: now, failures: 0, since: now });
        self.refill(budget, now);
        budget.failures = budget.failures.saturating_add(1);
    }

    fn refill(&self, budget: &mut Budget, now: Timestamp) {
        let elapsed = u64::try_from(now - budget.at).unwrap_or(0);
        budget.tokens = budget.tokens.saturating_add(elapsed.saturating_mul(self.per_second)).min(self.full());
        budget.at = now;
        if now - budget.since >= self.window_ms {
            budget.failures = 0;
            budget.since = now;
        }
    }

    /// True when forgetting the address changes nothing: its bucket is full again and its
    /// failures' window is over.
    fn settled(&self, budget: &Budget, now: Timestamp) -> bool {
        let elapsed = u64::try_from(now - budget.at).unwrap_or(0);
        let tokens = budget.tokens.saturating_add(elapsed.saturating_mul(self.per_second));
        tokens >= self.full() && (budget.failures == 0 || now - budget.since >= self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_flood_from_one_address_is_refused_and_the_budget_refills() {
        let clock = ManualClock::starting_now();
        let budget = ConnectBudget::new(clock.clone(), 2);
        let (flood, other) = (IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::from(Ipv4Addr::new(10, 0, 0, 2)));
        for n in 0..20 {
            assert!(budget.admit(flood), "CONNECT {n} of the burst");
        }
        assert!(!budget.admit(flood), "the 21st at once");
        assert!(budget.admit(other), "another address has its own budget");
        clock.advance(Duration::from_millis(500));
        assert!(budget.admit(flood), "one more after half a second at 2 a second");
        assert!(!budget.admit(flood));
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let clock = ManualClock::starting_now();
        let budget = ConnectBudget::new(clock.clone(), 10);
        for n in 0..=SWEEP_ABOVE as u32 {
            assert!(budget.admit(IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + n))));
        }
        budget.failed(IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)));
        clock.advance(Duration::from_secs(BURST_SECONDS));
        assert!(budget.admit(IpAddr::from(Ipv4Addr::new(192, 168, 0, 1))));
        let kept = budget.addresses.lock().unwrap().budgets.len();
        assert_eq!(kept, 2, "the refilled addresses are gone; the one that failed and the new one stay");
    }

    #[test]
    fn failures_refuse_an_address_for_the_window() {
        let clock = ManualClock::starting_now();
        let budget = ConnectBudget::new(clock.clone(), 1_000);
        let address = IpAddr::from(Ipv4Addr::LOCALHOST);
        for _ in 0..ConnectBudget::FAILURES {
            assert!(budget.admit(address));
            budget.failed(address);
        }
        assert!(!budget.admit(address), "refused after the failures");
        clock.advance(LoginLimiter::WINDOW);
        assert!(budget.admit(address), "the window is over");
    }
}
