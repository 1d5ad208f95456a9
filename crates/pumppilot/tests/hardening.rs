//! The release binary under an unlucky operator's faults (issue 12, finding 4): the `-shm` made
//! immutable while it serves, and a full disk with the log on it. Each request gets an answer,
//! JSON, and the process lives on. And the sign-in limiter and the log under a guesser's flood
//! (the audit of December 2026): the owner waits a turn instead of being locked out, and the log
//! stays readable.
#![cfg(target_os = "linux")]

mod common;

use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    net::{IpAddr, TcpListener},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{PASSWORD, Site, TestApp, assert_error, spawn_app, spawn_app_configured, until};
use pumppilot_server::{Settings, auth::LoginLimiter};
use reqwest::StatusCode;
use serde_json::json;

/// The binary serving the SQLite file in `dir`, its standard output and error appended to `log`;
/// with `file_limit`, every file it writes stops growing at that many bytes (a full disk: it
/// ignores SIGXFSZ, so a write past the limit fails with EFBIG as one on a full disk fails with
/// ENOSPC). Killed when dropped.
struct Serving {
    child: Child,
    base: String,
}

impl Serving {
    async fn start(dir: &Path, log: &Path, file_limit: Option<u64>) -> Serving {
        // A free port, chosen here: with the log full, the server cannot say which it took.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = File::options().create(true).append(true).open(log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_pumppilot"));
        command
            .arg("serve")
            .env("PUMPPILOT_BIND", format!("127.0.0.1:{port}"))
            .env("PUMPPILOT_DATABASE_URL", format!("sqlite://{}", dir.join("pumppilot.db").display()))
            .env("PUMPPILOT_MASTER_USERNAME", "master")
            .env("PUMPPILOT_MASTER_PASSWORD", "master-password")
            .env("PUMPPILOT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(limit) = file_limit {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut serving = Serving { child: command.spawn().unwrap(), base: format!("http://127.0.0.1:{port}") };
        let http = reqwest::Client::new();
        // Ready means the first master exists; a full disk answers only /healthz (its master
        // was made at the first start).
        let up = if file_limit.is_some() { "healthz" } else { "readyz" };
        for _ in 0..2000 {
            if let Ok(answer) = http.get(format!("{}/{up}", serving.base)).send().await
                && answer.status() == StatusCode::OK
            {
                return serving;
            }
            if let Some(status) = serving.child.try_wait().unwrap() {
                panic!("the server ended at its start ({status}): {}", read(log));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not answer within 20 s: {}", read(log));
    }

    fn site(&self) -> Site {
        Site { base: self.base.clone() }
    }

    /// Asserts the process still runs.
    fn assert_alive(&mut self, log: &Path) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the server died ({status}); its log: {}", read(log));
        }
    }

    fn terminate(&mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// Sets or clears the immutable flag (`chattr +i`); `false` when this process may not (it needs
/// CAP_LINUX_IMMUTABLE, which root has).
fn set_immutable(path: &Path, on: bool) -> bool {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let file = File::open(path).unwrap();
    let flags = ioctl_getflags(&file).unwrap();
    let flags = if on { flags | IFlags::IMMUTABLE } else { flags - IFlags::IMMUTABLE };
    match ioctl_setflags(&file, flags) {
        Ok(()) => true,
        Err(rustix::io::Errno::PERM) => false,
        Err(err) => panic!("setting the inode flags of {}: {err}", path.display()),
    }
}

/// Clears the flag again even when the test fails (else the folder could not be deleted).
struct Immutable(PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        set_immutable(&self.0, false);
    }
}

/// Found by hand: `chattr +i pp.db-shm` under the running server killed it with SIGBUS (signal
/// 7) and not a line in the log.
#[tokio::test]
async fn an_immutable_shared_memory_file_answers_503_with_one_log_line_and_never_kills_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut server = Serving::start(dir.path(), &log, None).await;
    let site = server.site();
    let t = site.tenant("rahim", 1, 10).await;
    let recharge = json!({"userId": t.user_ids[0], "minutes": 5});
    let shm = dir.path().join("pumppilot.db-shm");
    if !set_immutable(&shm, true) {
        eprintln!("SKIPPED: setting the immutable flag needs root (CAP_LINUX_IMMUTABLE)");
        return;
    }
    let guard = Immutable(shm);
    for _ in 0..3 {
        assert_error(
            &t.admin.post("/api/admin/recharge", recharge.clone()).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
        );
        assert_error(&site.anonymous().get("/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    }
    assert_eq!(site.anonymous().get("/healthz").await.0, StatusCode::OK);
    server.assert_alive(&log);
    let told = read(&log).lines().filter(|line| line.contains("was made immutable")).count();
    assert_eq!(told, 1, "one line says why, however many requests it refused: {}", read(&log));

    // Once the flag is cleared, the same process writes again.
    drop(guard);
    t.admin.ok("/api/admin/recharge", recharge).await;
    assert_eq!(site.anonymous().get("/readyz").await.0, StatusCode::OK);
    let (_, users) = t.admin.get("/api/admin/users").await;
    assert_eq!(users[0]["availableSeconds"], 15 * 60, "only the recharge made after the flag was cleared counted");
    server.assert_alive(&log);
}

/// Found by hand: with the disk full and the log on it, some requests got no answer at all.
#[tokio::test]
async fn with_the_disk_full_and_the_log_on_it_every_request_is_answered_and_writes_are_503() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let first = dir.path().join("first.log");
    let mut server = Serving::start(dir.path(), &first, None).await;
    let t = server.site().tenant("rahim", 1, 10).await;
    server.terminate();

    // Files may keep their size but not grow: the database, its -wal and -shm as they are, and
    // a log already at the limit, so no line of it can be written.
    let largest = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(dir.path().join(format!("pumppilot.db{suffix}"))).ok())
        .map(|meta| meta.len())
        .max()
        .unwrap();
    let limit = largest.next_multiple_of(4096);
    File::create(&log).unwrap().set_len(limit).unwrap();
    let mut server = Serving::start(dir.path(), &log, Some(limit)).await;
    let site = server.site();
    let admin = site.login("rahim", PASSWORD).await;
    let farmer = t.user_ids[0].clone();

    let http = reqwest::Client::new();
    let mut recharged = 0;
    let mut refused = 0;
    for round in 0..400 {
        // A write, a refused sign-in (logged) and a read: each must be answered, in JSON.
        let answer = http
            .post(format!("{}/api/admin/recharge", site.base))
            .bearer_auth(admin.token.as_deref().unwrap())
            .json(&json!({"userId": farmer, "minutes": 1}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: a recharge got no answer: {e}"));
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.expect("a JSON answer");
        match status {
            StatusCode::OK => recharged += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
                refused += 1;
            }
            other => panic!("round {round}: a recharge got {other}: {body}"),
        }
        let (status, body) =
            site.anonymous().post("/api/auth/login", json!({"username": "rahim", "password": "guess"})).await;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            matches!(
                (status, code),
                (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS") | (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
            ),
            "round {round}: a wrong password got {status} {body}"
        );
        if refused >= 3 {
            break;
        }
    }
    assert!(refused >= 3, "the database never filled up ({recharged} recharges went through)");
    server.assert_alive(&log);
    assert_eq!(site.anonymous().get("/healthz").await.0, StatusCode::OK);
    // Nothing refused was half-written: the balance holds exactly the recharges acknowledged.
    let (status, users) = admin.get("/api/admin/users").await;
    assert_eq!(status, StatusCode::OK, "reads go on: {users}");
    assert_eq!(users[0]["availableSeconds"], (10 + recharged) * 60, "{users}");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), limit, "the log could not grow");
    eprintln!("disk full: {recharged} recharges went through, then {refused} were refused with 503");
}

/// Found by hand: failed sign-ins and 429s were not logged at any level. Then, by the audit: a
/// flood of refused sign-ins wrote a WARN line each, before any hashing (4,500 lines in 10 s).
#[tokio::test]
async fn failed_sign_ins_are_logged_each_and_refusals_one_line_in_ten_seconds_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Serving::start(dir.path(), &log, None).await;
    let site = server.site();
    let guess = "a-guessed-secret-42";
    let mut refused = 0;
    for _ in 0..30 {
        let (status, _) =
            site.anonymous().post("/api/auth/login", json!({"username": "rahim", "password": guess})).await;
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(refused, 30 - LoginLimiter::PER_PAIR as usize, "the pair is stopped after its failures");
    // The log is written as it happens; wait until the last failure and a refusal are in it.
    let mut text = String::new();
    for _ in 0..2000 {
        text = read(&log);
        if text.lines().filter(|line| line.contains(": failed sign-in ")).count() >= 10
            && text.contains("sign-in refused")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failed: Vec<_> = text.lines().filter(|line| line.contains(": failed sign-in ")).collect();
    assert_eq!(failed.len(), 30 - refused, "{text}");
    assert!(failed.iter().all(|line| line.contains("rahim") && line.contains("127.0.0.1")), "{failed:#?}");
    let limited: Vec<_> = text.lines().filter(|line| line.contains("sign-in refused")).collect();
    assert_eq!(limited.len(), 1, "twenty refusals within ten seconds are one line: {text}");
    assert!(limited[0].contains("WARN") && limited[0].contains("rahim"), "{limited:#?}");
    assert!(!text.contains(guess), "a password reached the log");
}

/// Found by the audit: `{"username": "zz\n2026-12-05T02:10:07Z  INFO forged line\u001b[31mX"}`
/// wrote a forged line and a raw ESC into the log, through the failed sign-in's line and the
/// refusal's.
#[tokio::test]
async fn a_username_is_logged_escaped_so_it_never_writes_a_line_or_a_terminal_code_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Serving::start(dir.path(), &log, None).await;
    let site = server.site();
    let forged = "zz\n2026-12-05T02:10:07Z  INFO forged line\u{1b}[31mX";
    for _ in 0..=LoginLimiter::PER_PAIR {
        let answer = site.anonymous().post("/api/auth/login", json!({"username": forged, "password": "x"})).await;
        assert!(matches!(answer.0, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{answer:?}");
    }
    let mut text = String::new();
    for _ in 0..2000 {
        text = read(&log);
        if text.contains("sign-in refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!text.lines().any(|line| line.starts_with("2026-12-05T02:10:07Z")), "a forged line: {text}");
    assert!(!text.contains('\u{1b}'), "a raw ESC reached the log: {text:?}");
    let escaped = r"zz\n2026-12-05T02:10:07Z  INFO forged line\u{1b}[31mX";
    let named: Vec<_> = text.lines().filter(|line| line.contains(escaped)).collect();
    assert!(named.iter().any(|line| line.contains(": failed sign-in ")), "{text}");
    assert!(named.iter().any(|line| line.contains("sign-in refused")), "{text}");
}

/// Found by the audit: behind nginx or Caddy without `PUMPPILOT_TRUSTED_PROXIES`, every client
/// was the proxy, and ten wrong passwords locked a username out for everyone, without a word in
/// the log.
#[tokio::test]
async fn a_forwarded_for_header_from_a_peer_that_is_no_trusted_proxy_is_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = Serving::start(dir.path(), &log, None).await;
    let http = reqwest::Client::new();
    for client in ["203.0.113.9", "203.0.113.10", "198.51.100.7"] {
        let answer =
            http.get(format!("{}/healthz", server.base)).header("x-forwarded-for", client).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let mut text = String::new();
    for _ in 0..2000 {
        text = read(&log);
        if text.contains("X-Forwarded-For") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let told: Vec<_> = text.lines().filter(|line| line.contains("PUMPPILOT_TRUSTED_PROXIES")).collect();
    assert_eq!(told.len(), 1, "said once, however many requests: {text}");
    assert!(told[0].contains("WARN") && told[0].contains("127.0.0.1"), "{told:#?}");
}

/// A client whose requests come from `ip` (any of 127.0.0.0/8 reaches the test server).
fn from_address(base: &str, ip: IpAddr) -> common::Client {
    let http = reqwest::Client::builder().local_address(ip).build().unwrap();
    common::Client { http, base: base.to_string(), token: None }
}

/// Found by the audit: a loop of wrong passwords for `rahim`, moving to a new address every ten
/// tries, made his own right password get 429 "being checked already" in 38 of 40 tries; the
/// guesser's 429s did not even count as failures. Now an attempt waits its turn.
#[tokio::test]
async fn the_owner_signs_in_while_wrong_passwords_from_many_addresses_flood_their_username() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 1).await;
    let guess = json!({"username": "rahim-farmer-0", "password": "guess"});
    let stop = Arc::new(AtomicBool::new(false));
    // Six guessers at once, each moving to a new address after ten tries, before its pair is
    // stopped: 127.10.0.1, 127.11.0.1, …, then 127.10.0.2, …
    let guessers: Vec<_> = (0..6u8)
        .map(|g| {
            let (base, stop, guess) = (app.base.clone(), Arc::clone(&stop), guess.clone());
            tokio::spawn(async move {
                let mut answers = HashMap::<StatusCode, u32>::new();
                for n in 0u32.. {
                    let address = IpAddr::from([127, 10 + g, (n / 250) as u8, (n % 250) as u8 + 1]);
                    let guesser = from_address(&base, address);
                    for _ in 0..LoginLimiter::PER_PAIR {
                        if stop.load(Ordering::Relaxed) {
                            return answers;
                        }
                        let (status, body) = guesser.post("/api/auth/login", guess.clone()).await;
                        *answers.entry(status).or_default() += 1;
                        if status == StatusCode::TOO_MANY_REQUESTS {
                            assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                answers
            })
        })
        .collect();
    let failures = || app.running.app.metrics.failed_logins();
    until("the username has failed ten times: one check at a time", || failures() >= 10).await;

    let right = json!({"username": "rahim-farmer-0", "password": PASSWORD});
    let owner = app.anonymous();
    for round in 0..5 {
        let before = failures();
        let (status, body) = owner.post("/api/auth/login", right.clone()).await;
        assert_eq!(status, StatusCode::OK, "round {round}: the owner's right password got {body}");
        until("the guessers are checked between the owner's sign-ins", || failures() > before).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers = HashMap::<StatusCode, u32>::new();
    for guesser in guessers {
        for (status, count) in guesser.await.unwrap() {
            *answers.entry(status).or_default() += count;
        }
    }
    eprintln!("the flood's answers while the owner signed in five times: {answers:?}");
    assert!(
        answers.keys().all(|status| matches!(*status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS)),
        "{answers:?}"
    );
    drop(t);
}

/// Four wrong passwords at once, from four addresses of the /64 `network` (written `2001:db8::`),
/// for four usernames; as many as there are password check slots, so none waits for one.
async fn four_at_once(app: &TestApp, network: &str) -> Vec<StatusCode> {
    let attempts = (0..4).map(|i| async move {
        let username = format!("someone-{network}{i}");
        app.login_forwarded_for(&format!("{network}{:x}", 0x100 + i), &username, "x").await.0
    });
    futures::future::join_all(attempts).await
}

/// Found by the audit: the limits counted an IPv6 address whole, and one phone's /64 is
/// 2^64 addresses to pick from: a guesser moved to the next for every try.
#[tokio::test]
async fn the_addresses_of_one_ipv6_64_share_one_budget() {
    let app =
        spawn_app_configured(|settings| Settings { trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()], ..settings })
            .await;
    let t = app.tenant("rahim", 1, 1).await;
    for i in 1..=LoginLimiter::PER_PAIR {
        let answer = app.login_forwarded_for(&format!("2001:db8:7:1::{i:x}"), "rahim-farmer-0", "guess").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let answer = app.login_forwarded_for("2001:db8:7:1:ffff:ffff:ffff:ffff", "rahim-farmer-0", "guess").await;
    assert_error(&answer, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // The owner, in another /64, is another client.
    let owner = app.login_forwarded_for("2001:db8:7:2::1", "rahim-farmer-0", PASSWORD).await;
    assert_eq!(owner.0, StatusCode::OK, "{}", owner.1);

    // A /64 that failed for many usernames is checked at most two at a time, whichever of its
    // addresses the attempts come from; another /64 is not held back by it.
    for i in 0..LoginLimiter::PER_ADDRESS {
        let answer = app.login_forwarded_for(&format!("2001:db8:9:1::{i:x}"), &format!("nobody-{i}"), "x").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let throttled = four_at_once(&app, "2001:db8:9:1::").await;
    assert!(throttled.contains(&StatusCode::TOO_MANY_REQUESTS), "{throttled:?}");
    let neighbours = four_at_once(&app, "2001:db8:9:2::").await;
    assert!(neighbours.iter().all(|status| *status == StatusCode::UNAUTHORIZED), "{neighbours:?}");
    drop(t);
}

/// The most memory the process ever held (VmHWM), in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

/// Found by hand: 120 parallel failed sign-ins from different addresses took the server from
/// 12 MB to over 2 GB resident (an Argon2 hash of about 19 MiB each, all at once).
#[tokio::test]
async fn a_flood_of_sign_ins_from_many_addresses_keeps_the_server_small_and_answers_each() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut server = Serving::start(dir.path(), &log, None).await;
    let base = server.base.clone();
    let before = peak_mib(server.child.id());
    let attempts = (0..120u32).map(|i| {
        let http = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 20 + (i / 200) as u8, (i % 200) as u8 + 1]))
            .build()
            .unwrap();
        let base = base.clone();
        async move {
            let answer = http
                .post(format!("{base}/api/auth/login"))
                .json(&json!({"username": format!("stranger-{i}"), "password": "guess"}))
                .send()
                .await
                .expect("every sign-in is answered");
            let status = answer.status();
            let body: serde_json::Value = answer.json().await.expect("a JSON answer");
            (status, body)
        }
    });
    let mut busy = 0;
    for (status, body) in futures::future::join_all(attempts).await {
        match (status, body["error"]["code"].as_str()) {
            (StatusCode::UNAUTHORIZED, Some("INVALID_CREDENTIALS")) => {}
            (StatusCode::SERVICE_UNAVAILABLE, Some("BUSY")) => busy += 1,
            other => panic!("a sign-in got {other:?}: {body}"),
        }
    }
    server.assert_alive(&log);
    let peak = peak_mib(server.child.id());
    eprintln!("120 parallel sign-ins: peak resident {peak} MiB (before them {before} MiB), {busy} answered BUSY");
    // Four checks at once (PUMPPILOT_MAX_HASHING) are about 80 MiB; 120 at once were over 2 GiB,
    // and a freed block kept in every thread's arena about 450 MiB.
    assert!(peak < before + 160, "the server grew from {before} to {peak} MiB");
}
