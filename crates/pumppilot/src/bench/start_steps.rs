//! Where the fleet bench's Starts spent their time: each Start's steps as its two servers logged
//! them ([`pumppilot_server::start_path`]), beside when the bench sent it and when its device took
//! ON. The farmer's server (the Start's) commits it; the device's server hears the commit from the
//! store's change feed, with the state committed (or reads the pump again, when the feed did not
//! carry it), and sends the command.

use pumppilot_server::start_path::{self, Step};

/// The log filter the fleet's servers run with: warnings, and the Starts' steps.
pub const SERVER_LOG: &str = "warn,pumppilot::start_path=debug";

/// One Start that reached its device.
pub struct Timed {
    /// The pump's tenant, as the servers log it.
    pub tenant: String,
    /// The server the Start went to and the device's server (their logs' indexes).
    pub farmers_server: usize,
    pub devices_server: usize,
    /// When the bench sent it and when the device took ON (wall clock, µs).
    pub sent_us: u128,
    pub on_us: u128,
}

/// Prints, for the Starts that reached each step, the p50 and p99 of the time from the Start's
/// sending to that step, and the slowest Starts step by step. `logs` are the servers' logs, by index.
pub fn print(starts: &[Timed], logs: &[String]) {
    if starts.is_empty() {
        return;
    }
    let rows = rows(starts, logs);
    let names = [
        "the farmer's server took it",
        "committed there (the store's transaction)",
        "the device's server heard it (the change feed)",
        "it read the pump again (the store; if not carried)",
        "it sent the command",
        "the device took ON",
    ];
    println!("  where the Starts' time went (ms from sending; p50 / p99 / max of those that reached the step):");
    for (k, name) in names.iter().enumerate() {
        let mut at: Vec<f64> = rows.iter().filter_map(|row| row[k]).collect();
        if at.is_empty() {
            continue;
        }
        at.sort_by(f64::total_cmp);
        let pct = |p: f64| at[((at.len() - 1) as f64 * p).round() as usize];
        println!("    {name:<48} {:>6.1} / {:>6.1} / {:>6.1}   ({} Starts)", pct(0.5), pct(0.99), pct(1.0), at.len());
    }
    let mut slowest: Vec<&Vec<Option<f64>>> = rows.iter().collect();
    slowest.sort_by(|a, b| b[names.len() - 1].unwrap_or(0.0).total_cmp(&a[names.len() - 1].unwrap_or(0.0)));
    let short = ["took", "committed", "heard", "read", "sent", "ON"];
    for row in slowest.iter().take(3) {
        let steps: Vec<String> =
            short.iter().zip(row.iter()).filter_map(|(name, at)| at.map(|at| format!("{name} {at:.1}"))).collect();
        println!("    a slow one: {}", steps.join(", "));
    }
}

/// For each Start, the ms from its sending to each of its steps ([`Step::ALL`], then the ON):
/// the first one logged at the server that takes that step after the sending, and at the device's
/// server before the ON. The farmer's server may hear the store's answer to its commit after the
/// device took ON (the change feed told the device's server first): those count too.
fn rows(starts: &[Timed], logs: &[String]) -> Vec<Vec<Option<f64>>> {
    // Each server's steps by tenant, in the order logged.
    let steps: Vec<std::collections::HashMap<&str, Vec<(Step, u128)>>> = logs
        .iter()
        .map(|log| {
            let mut by_tenant: std::collections::HashMap<&str, Vec<(Step, u128)>> = Default::default();
            for (step, tenant, at) in log.lines().filter_map(start_path::parse) {
                by_tenant.entry(tenant).or_default().push((step, at));
            }
            by_tenant
        })
        .collect();
    starts
        .iter()
        .map(|start| {
            // The device's server's steps follow one another: a command sent before it heard of
            // the Start (a report's answer) is not this Start's.
            let mut after = start.sent_us;
            let mut row: Vec<Option<f64>> = Step::ALL
                .iter()
                .map(|step| {
                    let server = match step {
                        Step::Asked | Step::Committed => start.farmers_server,
                        Step::Heard | Step::Read | Step::Sent => start.devices_server,
                    };
                    let within =
                        if server == start.devices_server { after..=start.on_us } else { start.sent_us..=u128::MAX };
                    let at = steps
                        .get(server)?
                        .get(start.tenant.as_str())?
                        .iter()
                        .find_map(|(s, at)| (s == step && within.contains(at)).then_some(*at))?;
                    if matches!(step, Step::Heard | Step::Read) {
                        after = at;
                    }
                    Some((at - start.sent_us) as f64 / 1000.0)
                })
                .collect();
            row.push(Some(start.on_us.saturating_sub(start.sent_us) as f64 / 1000.0));
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: &str, tenant: &str, at_us: u128) -> String {
        format!("2026-12-05T17:38:43.654100Z DEBUG start path step=\"{step}\" tenant={tenant} at_us={at_us}\n")
    }

    /// A Start's steps are those of its own pump, each from the server that takes it (the farmer's
    /// for the commit, the device's for the rest), after its sending, and at the device's server
    /// before its ON; a commit told back to the farmer's server after the ON counts.
    #[test]
    fn a_starts_steps_come_from_its_two_servers_between_its_sending_and_its_on() {
        let farmers: String = [
            line("asked", "p1", 1_300),
            line("committed", "p1", 5_000),
            line("heard", "p1", 4_000),
            line("asked", "p3", 1_200),
            line("committed", "p3", 9_000),
        ]
        .concat();
        let devices: String = [
            line("sent", "p1", 900),
            line("sent", "p1", 5_500),
            line("heard", "p1", 6_000),
            line("sent", "p1", 7_000),
            line("sent", "p2", 6_500),
            line("sent", "p1", 9_500),
        ]
        .concat();
        let start = Timed { tenant: "p1".into(), farmers_server: 0, devices_server: 1, sent_us: 1_000, on_us: 8_000 };
        let late = Timed { tenant: "p3".into(), farmers_server: 0, devices_server: 1, sent_us: 1_000, on_us: 8_000 };
        let rows = rows(&[start, late], &[farmers, devices]);
        assert_eq!(
            rows,
            [
                vec![Some(0.3), Some(4.0), Some(5.0), None, Some(6.0), Some(7.0)],
                vec![Some(0.2), Some(8.0), None, None, None, Some(7.0)]
            ],
            "the device's server heard it at 5 ms (not the farmer's own at 3), sent it at 6 (not before the \
             sending, nor before it heard, nor another pump's, nor after the ON); nothing read"
        );
    }
}
