//! The fault campaign, at least 1,000,000 device-steps: the controller against the model server
//! through a bad network, on every board setting, with noise, reboots and clock jumps. Not one
//! step may have the relay ON outside the rule.

use std::time::Instant;

use pumppilot_fieldtest::{Campaign, Faults, Figures, ModelServer, boards};

/// Steps per board setting; there are 8 settings: 2,000,000 steps, about 28 hours of pump time.
const STEPS_PER_BOARD: u64 = 250_000;

#[test]
fn two_million_steps_of_faults_never_run_the_motor_outside_the_rule() {
    let started = Instant::now();
    let mut total = Figures::default();
    let mut examples = Vec::new();
    for (i, settings) in boards().into_iter().enumerate() {
        let seed = 0x5EED_0000 + i as u64;
        let mut campaign = Campaign::new(seed, settings, Faults::BAD_DAY, ModelServer::new(seed ^ 0xA11CE));
        campaign.run(STEPS_PER_BOARD);
        total.add(&campaign.figures);
        println!("board {i}: OFF though allowed: {:?}", campaign.slow_reasons);
        examples.extend(campaign.examples.into_iter().map(|e| format!("board {i} (seed {seed:#x}): {e}")));
    }
    let took = started.elapsed();
    println!("fault campaign, {} boards:\n{total}\nwall time {took:.2?}", boards().len());
    assert!(total.steps >= 2_000_000);
    assert_eq!(total.violations, 0, "{examples:#?}");
    assert_eq!(total.acceptance_mismatches, 0, "{examples:#?}");
    // The campaign did exercise what it claims to.
    for (what, count) in [
        ("relay ON steps", total.relay_on_steps),
        ("starts", total.starts),
        ("stale answers", total.answers_stale),
        ("garbage answers", total.answers_garbage),
        ("timeouts", total.timeouts),
        ("server errors", total.server_errors),
        ("duplicates", total.duplicates),
        ("late deliveries", total.late_deliveries),
        ("reboots", total.reboots),
        ("clock jumps", total.clock_jumps),
        ("feedback trips", total.feedback_trips),
    ] {
        assert!(count > 0, "the campaign never saw any {what}");
    }
    assert!(total.relay_on_steps * 20 > total.steps, "the relay was ON in too few steps to mean much: {total}");
}
