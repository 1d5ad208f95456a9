//! Scripted inputs: what happens at a virtual pump, and when.
//!
//! A script is a list of steps separated by `,` or `;`, times counted from the device's start:
//! - `shed@10s..25s`: the grid is down (load shedding) from 10 s to 25 s;
//! - `notready@30s..35s`: the pump reports not ready;
//! - `cut@40s..60s`: the network is gone (requests time out);
//! - `card@5s=04A1B2C3`: the card with that UID is held to the reader.
//!
//! A range without an end (`shed@10s..`) lasts until the device stops.

use std::time::Duration;

use anyhow::{Context, bail};

/// One scripted happening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The grid is down in `[from, to)`.
    Shed { from: Duration, to: Option<Duration> },
    /// The pump is not ready in `[from, to)`.
    NotReady { from: Duration, to: Option<Duration> },
    /// No network in `[from, to)`.
    Cut { from: Duration, to: Option<Duration> },
    /// A card held to the reader at `at`.
    Card { at: Duration, uid: Vec<u8> },
}

/// Every step of one device's script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script(pub Vec<Step>);

/// What the script says at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    pub grid_up: bool,
    pub ready: bool,
    pub network: bool,
}

fn within(t: Duration, from: Duration, to: Option<Duration>) -> bool {
    t >= from && to.is_none_or(|to| t < to)
}

impl Script {
    /// Parses the script syntax described in the module documentation.
    pub fn parse(text: &str) -> anyhow::Result<Script> {
        let mut steps = Vec::new();
        for item in text.split([',', ';']).map(str::trim).filter(|item| !item.is_empty()) {
            let (kind, when) = item.split_once('@').with_context(|| format!("{item:?}: expected KIND@TIME"))?;
            let step = match kind.trim() {
                "card" => {
                    let (at, uid) =
                        when.split_once('=').with_context(|| format!("{item:?}: expected card@TIME=UID"))?;
                    Step::Card { at: duration(at)?, uid: uid_bytes(uid).with_context(|| format!("{item:?}"))? }
                }
                kind @ ("shed" | "notready" | "cut") => {
                    let (from, to) = match when.split_once("..") {
                        Some((from, "")) => (duration(from)?, None),
                        Some((from, to)) => (duration(from)?, Some(duration(to)?)),
                        None => bail!("{item:?}: expected {kind}@FROM..TO"),
                    };
                    if to.is_some_and(|to| to <= from) {
                        bail!("{item:?}: the end comes before the start");
                    }
                    match kind {
                        "shed" => Step::Shed { from, to },
                        "notready" => Step::NotReady { from, to },
                        _ => Step::Cut { from, to },
                    }
                }
                other => bail!("{item:?}: unknown step {other:?} (shed, notready, cut or card)"),
            };
            steps.push(step);
        }
        Ok(Script(steps))
    }

    /// The inputs at `t` after the start.
    pub fn inputs(&self, t: Duration) -> Inputs {
        let mut inputs = Inputs { grid_up: true, ready: true, network: true };
        for step in &self.0 {
            match *step {
                Step::Shed { from, to } if within(t, from, to) => inputs.grid_up = false,
                Step::NotReady { from, to } if within(t, from, to) => inputs.ready = false,
                Step::Cut { from, to } if within(t, from, to) => inputs.network = false,
                _ => {}
            }
        }
        inputs
    }

    /// The cards held to the reader in `(after, until]`.
    pub fn cards(&self, after: Duration, until: Duration) -> impl Iterator<Item = &[u8]> {
        self.0.iter().filter_map(move |step| match step {
            Step::Card { at, uid } if *at > after && *at <= until => Some(uid.as_slice()),
            _ => None,
        })
    }

    /// When the last scripted change happens.
    pub fn end(&self) -> Duration {
        self.0
            .iter()
            .map(|step| match *step {
                Step::Shed { from, to } | Step::NotReady { from, to } | Step::Cut { from, to } => to.unwrap_or(from),
                Step::Card { at, .. } => at,
            })
            .max()
            .unwrap_or_default()
    }
}

fn duration(text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).with_context(|| format!("{text:?} is not a duration like 10s or 1m30s"))
}

/// A card UID from hex, with or without `:` between the bytes.
pub fn uid_bytes(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
    if !digits.len().is_multiple_of(2) || !(8..=20).contains(&digits.len()) {
        bail!("a card UID is 4 to 10 bytes in hex, like 04A1B2C3");
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).context("a card UID is hex digits"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn a_script_reads_as_written() {
        let script =
            Script::parse("shed@10s..25s, notready@30s..35s; cut@40s..1m; card@5s=04:A1:B2:C3, shed@2m..").unwrap();
        assert_eq!(script.0.len(), 5);
        assert_eq!(script.inputs(s(0)), Inputs { grid_up: true, ready: true, network: true });
        assert!(!script.inputs(s(10)).grid_up && script.inputs(s(25)).grid_up);
        assert!(!script.inputs(s(31)).ready);
        assert!(!script.inputs(s(59)).network && script.inputs(s(60)).network);
        assert!(!script.inputs(s(3600)).grid_up, "an open range lasts");
        assert_eq!(script.cards(s(4), s(5)).collect::<Vec<_>>(), [&[0x04, 0xA1, 0xB2, 0xC3][..]]);
        assert_eq!(script.cards(s(5), s(6)).count(), 0, "a card is held once");
        assert_eq!(script.end(), s(120));
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("shed@10s", "FROM..TO"),
            ("flood@1s..2s", "unknown step"),
            ("shed@20s..10s", "before the start"),
            ("card@1s=04A1", "4 to 10 bytes"),
            ("cut@soon..2s", "not a duration"),
        ] {
            let err = format!("{:#}", Script::parse(bad).unwrap_err());
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
