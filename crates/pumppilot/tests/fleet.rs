//! The 2,000-device fleet: a soak, not a check of every change. It is ignored by `cargo test` and
//! run by `cargo xtask soak` (`cargo test -p pumppilot --test fleet -- --ignored --nocapture`),
//! alone in its own binary so its load never competes with other tests.

mod common;

use std::{process::Command, time::Instant};

use common::{Site, start_server_with};
use serde_json::json;

/// The 2,000-device fleet: the real binaries (server and `pumppilot sim`), each device polling
/// every second for 30 s, with zero errors. Prints the server's CPU time and memory.
#[tokio::test]
#[ignore = "a 30 s soak: run it with `cargo xtask soak`"]
async fn a_fleet_of_2000_devices_polls_every_second_for_30_s_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // The default lease: a device gives a request up after half of what is left of its lease, and
    // this measures polling at a second's interval, not how a loaded debug build meets a 3 s lease.
    let (server, base) = start_server_with(
        dir.path(),
        &[("PUMPPILOT_POLL_INTERVAL_MS", "1000"), ("PUMPPILOT_DEVICE_LEASE_MS", "15000")],
    );
    let site = Site { base: base.clone() };
    let t = site.tenant("fleet", 1, 30).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let before = cpu_ticks(server.pid());
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_pumppilot"))
        .args(["sim", "--server", &base, "--admin", "fleet", "--devices", "2000", "--duration", "30s", "--quiet"])
        .env("PUMPPILOT_ADMIN_PASSWORD", common::PASSWORD)
        .output()
        .expect("run pumppilot sim");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sim failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().find(|l| l.starts_with("Summary:")).expect("a summary line");
    // The figures first, so a soak that misses its mark still says by how much.
    let cpu = (cpu_ticks(server.pid()) - before) as f64 / 100.0;
    let wall = started.elapsed().as_secs_f64();
    println!("{summary}");
    println!(
        "server (debug build) used {cpu:.1} s of CPU in {wall:.0} s ({:.0}% of one core), {} MiB resident",
        cpu / wall * 100.0,
        resident_kib(server.pid()) / 1024
    );
    assert!(summary.contains("2000 devices") && summary.contains(" 0 errors"), "{summary}");
    let polls: u64 = summary.split(", ").nth(1).and_then(|p| p.split(' ').next()).unwrap().parse().unwrap();
    assert!(polls >= 2000 * 25, "about one poll per device per second: {summary}");
}

/// User plus system CPU time of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
