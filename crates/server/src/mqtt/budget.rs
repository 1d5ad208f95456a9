//! CONNECTs budgeted per client address: a bucket of `per_second` CONNECTs a second, ten
//! seconds' worth at most, so a flood of connections, right or wrong, costs the server little.
//! A failed one (a wrong id or key, a malformed CONNECT, anything else first, nothing in time)
//! costs [`ConnectBudget::FAILED_COST`] CONNECTs' worth: a guesser or a broken client is slowed
//! ten times more than a device, yet nothing locks an address out for longer than its bucket
//! takes to refill. Many devices share one address (a carrier's NAT, a village's router, a TCP
//! proxy without the PROXY protocol), and one retired board retrying with its old key must not
//! shut the others out, as sign-ins slow a village behind one NAT and never shut it out
//! (`auth::LoginLimiter`). A device key is 256 random bits and checking one is a keyed hash, so
//! a lockout would protect nothing the bucket does not. Refused CONNECTs get "server
//! unavailable" (3). Counted on the server's clock, per server.
//!
//! An address may also have at most a full bucket's worth of connections waiting for their
//! CONNECT at once ([`ConnectBudget::knock`]): each of them holds one of the server's connection
//! slots for up to ten seconds, so without this bound one address could fill every slot with
//! silent connections (the bucket alone charges them only when their time is up). A connection
//! past the bound is closed at once, unanswered, and costs a failed CONNECT.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use pumppilot_engine::Timestamp;

use crate::clock::SharedClock;

/// How many seconds' worth of CONNECTs an address may make at once.
const BURST_SECONDS: u64 = 10;
/// Addresses kept before the quiet ones are forgotten.
const SWEEP_ABOVE: usize = 4096;
/// A CONNECT's worth of tokens.
const ONE: u64 = 1000;

pub struct ConnectBudget {
    clock: SharedClock,
    per_second: u64,
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
    /// Connections from the address waiting for their CONNECT ([`Waiting`]).
    waiting: u64,
}

/// A connection from `address` waiting for its CONNECT, counted until this is dropped.
pub struct Waiting<'a> {
    budget: &'a ConnectBudget,
    address: IpAddr,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut addresses = self.budget.addresses.lock().expect("connect budget lock");
        if let Some(budget) = addresses.budgets.get_mut(&self.address) {
            budget.waiting = budget.waiting.saturating_sub(1);
        }
    }
}

impl ConnectBudget {
    /// What a failed CONNECT costs its address, in CONNECTs (the one [`admit`](Self::admit) took
    /// included).
    pub const FAILED_COST: u64 = 10;

    /// A budget of `per_second` CONNECTs a second per address (at least 1).
    pub fn new(clock: SharedClock, per_second: u32) -> Self {
        ConnectBudget { clock, per_second: u64::from(per_second.max(1)), addresses: Default::default() }
    }

    fn full(&self) -> u64 {
        self.per_second * BURST_SECONDS * ONE
    }

    /// Counts a connection from `address` waiting for its CONNECT, until the returned guard is
    /// dropped: `None` when the address has a full bucket's worth of them already (the
    /// connection is then counted as a failed CONNECT).
    pub fn knock(&self, address: IpAddr) -> Option<Waiting<'_>> {
        let bound = self.full() / ONE;
        let admitted = self.with(address, |budget| {
            let admitted = budget.waiting < bound;
            budget.waiting += u64::from(admitted);
            admitted
        });
        if !admitted {
            self.failed(address, false);
            return None;
        }
        Some(Waiting { budget: self, address })
    }

    /// Takes one CONNECT from `address`'s budget: false when it has none left.
    pub fn admit(&self, address: IpAddr) -> bool {
        self.take(address, ONE, true)
    }

    /// Counts a failed CONNECT from `address`: the rest of [`Self::FAILED_COST`] when
    /// [`admit`](Self::admit) took its one (`admitted`), all of it when the connection failed
    /// before asking. The bucket may run dry; it never goes below empty.
    pub fn failed(&self, address: IpAddr, admitted: bool) {
        let cost = if admitted { Self::FAILED_COST - 1 } else { Self::FAILED_COST };
        self.take(address, cost * ONE, false);
    }

    /// Takes `cost` tokens from `address`; with `only_if_there`, only when it has them all.
    fn take(&self, address: IpAddr, cost: u64, only_if_there: bool) -> bool {
        self.with(address, |budget| {
            if only_if_there && budget.tokens < cost {
                return false;
            }
            budget.tokens = budget.tokens.saturating_sub(cost);
            true
        })
    }

    /// Runs `f` on `address`'s budget, refilled to now; forgets the quiet addresses first (at
    /// most once a second, once there are many).
    fn with<T>(&self, address: IpAddr, f: impl FnOnce(&mut Budget) -> T) -> T {
        let now = self.clock.now();
        let full = self.full();
        let mut addresses = self.addresses.lock().expect("connect budget lock");
        if addresses.budgets.len() > SWEEP_ABOVE && addresses.swept.is_none_or(|at| now - at >= 1_000) {
            addresses.swept = Some(now);
            addresses.budgets.retain(|_, budget| budget.waiting > 0 || self.tokens(budget, now) < full);
        }
        let budget = addresses.budgets.entry(address).or_insert(Budget { tokens: full, at: now, waiting: 0 });
        budget.tokens = self.tokens(budget, now);
        budget.at = now;
        f(budget)
    }

    /// The tokens `budget` holds at `now`, refilled since it was last counted.
    fn tokens(&self, budget: &Budget, now: Timestamp) -> u64 {
        let elapsed = u64::try_from(now - budget.at).unwrap_or(0);
        budget.tokens.saturating_add(elapsed.saturating_mul(self.per_second)).min(self.full())
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
        clock.advance(Duration::from_millis(500));
        budget.failed(IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)), false);
        clock.advance(Duration::from_millis(500));
        assert!(budget.admit(IpAddr::from(Ipv4Addr::new(192, 168, 0, 1))));
        let kept = budget.addresses.lock().unwrap().budgets.len();
        assert_eq!(kept, 2, "the refilled addresses are gone; the one that failed and the new one stay");
    }

    #[test]
    fn an_address_may_have_a_bucket_of_connections_waiting_for_their_connect() {
        let clock = ManualClock::starting_now();
        // Ten CONNECTs' worth at once.
        let budget = ConnectBudget::new(clock.clone(), 1);
        let (silent, other) = (IpAddr::from(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::from(Ipv4Addr::new(10, 0, 0, 2)));
        let mut waiting: Vec<_> =
            (0..10).map(|n| budget.knock(silent).unwrap_or_else(|| panic!("knock {n}"))).collect();
        assert!(budget.knock(silent).is_none(), "the 11th waiting at once");
        assert!(budget.knock(other).is_some(), "another address waits on its own count");
        assert!(!budget.admit(silent), "the refused knock cost a failed CONNECT");
        // One goes (it sent its CONNECT, or its time was up): room for one more.
        waiting.pop();
        clock.advance(Duration::from_secs(BURST_SECONDS));
        waiting.push(budget.knock(silent).expect("room for one"));
        assert!(budget.knock(silent).is_none());
        // An address with connections waiting is not forgotten when its bucket is full again.
        clock.advance(Duration::from_secs(BURST_SECONDS));
        for n in 0..=SWEEP_ABOVE as u32 {
            drop(budget.knock(IpAddr::from(std::net::Ipv4Addr::from(0x0B00_0000 + n))));
        }
        assert!(budget.addresses.lock().unwrap().budgets.len() < SWEEP_ABOVE, "swept");
        assert!(budget.knock(silent).is_none(), "still ten waiting after the sweep");
        drop(waiting);
    }

    #[test]
    fn a_failure_costs_ten_connects_and_never_locks_the_address_out() {
        let clock = ManualClock::starting_now();
        // Ten CONNECTs at once, one a second after.
        let budget = ConnectBudget::new(clock.clone(), 1);
        let address = IpAddr::from(Ipv4Addr::LOCALHOST);
        assert!(budget.admit(address));
        budget.failed(address, true);
        assert!(!budget.admit(address), "one failed CONNECT took the whole burst");
        clock.advance(Duration::from_secs(1));
        assert!(budget.admit(address), "a second later, one more");
        // A board retrying with a retired key, hundreds of times: the address is slowed, but it
        // is never refused once its bucket has refilled (no window of failures).
        for _ in 0..500 {
            budget.failed(address, false);
        }
        assert!(!budget.admit(address));
        clock.advance(Duration::from_secs(BURST_SECONDS));
        for n in 0..10 {
            assert!(budget.admit(address), "CONNECT {n} after the bucket refilled");
        }
    }
}
