//! `cargo xtask test`: every check this repository has, in the order a reviewer would run them.
//!
//! It installs nothing globally that a fresh machine lacks without saying so; each step prints
//! what it runs, and the first failure stops the run with its exit code.

use std::{
    process::{Command, ExitCode},
    time::Instant,
};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let steps: &[(&str, &[&str])] = match task.as_str() {
        "test" => &[
            ("format", &["fmt", "--all", "--", "--check"]),
            ("lint", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
            ("tests", &["test", "--workspace", "--locked"]),
        ],
        "lint" => &[
            ("format", &["fmt", "--all", "--", "--check"]),
            ("lint", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
        ],
        _ => {
            eprintln!("usage: cargo xtask test   (format check, clippy -D warnings, every test)");
            eprintln!("       cargo xtask lint   (format check and clippy only)");
            return ExitCode::from(2);
        }
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    for (i, (name, args)) in steps.iter().enumerate() {
        eprintln!("==> [{}/{}] {name}: cargo {}", i + 1, steps.len(), args.join(" "));
        let step_started = Instant::now();
        let status = Command::new(&cargo).args(*args).status();
        match status {
            Ok(status) if status.success() => eprintln!("    {name} ok in {:.0?}", step_started.elapsed()),
            Ok(status) => {
                eprintln!("    {name} FAILED ({status})");
                return ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("    {name}: could not run cargo: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("==> all checks passed in {:.0?}", started.elapsed());
    ExitCode::SUCCESS
}
