//! Time as the engine sees it: milliseconds since the Unix epoch, passed in by the caller.

use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

/// A moment in wall-clock time, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }
}

impl Add<i64> for Timestamp {
    type Output = Timestamp;
    fn add(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl Sub<i64> for Timestamp {
    type Output = Timestamp;
    fn sub(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_sub(ms))
    }
}

impl Sub for Timestamp {
    type Output = i64;
    /// Milliseconds from `rhs` to `self`.
    fn sub(self, rhs: Timestamp) -> i64 {
        self.0 - rhs.0
    }
}
