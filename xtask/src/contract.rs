//! The API contract, checked by two tools no one here wrote, against the real binary:
//! `openapi-spec-validator` says `/api/openapi.json` is a valid OpenAPI document, and
//! `schemathesis` sends generated requests to every operation, as each role, and checks that no
//! answer is a server error and that each answer's status, content type and body are the ones
//! the document declares.
//!
//! Both come from PyPI at pinned versions into a virtual environment under `target/` (made once,
//! reused while its pins match). The server is `target/debug/pumppilot serve` on a free port with
//! a fresh SQLite file, stopped at the end whatever happened.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::run;

/// The tools, pinned: a new version is a deliberate change here.
const TOOLS: &[&str] = &["openapi-spec-validator==0.9.0", "schemathesis==4.32.5"];
/// The master's credentials on the test server.
const MASTER: (&str, &str) = ("master", "contract-master-password");
/// The password of every account the step makes.
const PASSWORD: &str = "contract-password";
/// Generated test cases per operation and phase: enough to try every status, small enough that
/// the five runs take well under two minutes on a 2-core machine.
const EXAMPLES: &str = "10";
/// A fixed seed: the same requests every run, so a failure is reproducible and never luck.
const SEED: &str = "20261201";
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// The whole step: tools, server, accounts, validator, schemathesis per role.
pub fn check(root: &Path, cargo: &str) -> Result<(), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let venv = install_tools(&target)?;
    run(Command::new(cargo).args(["build", "--locked", "-p", "pumppilot"]).current_dir(root))?;
    let work = target.join("contract");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let server = Server::start(&target.join("debug").join("pumppilot"), &work)?;
    let result = against(&server.url, &venv, &work);
    drop(server);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

/// Makes `target/contract-venv` with the pinned tools unless it already has them (and they run).
fn install_tools(target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("contract-venv");
    let stamp = venv.join("pins.txt");
    let pins = TOOLS.join("\n");
    let runs =
        || Command::new(venv.join("bin/schemathesis")).arg("--version").output().is_ok_and(|o| o.status.success());
    if std::fs::read_to_string(&stamp).is_ok_and(|text| text == pins) && runs() {
        eprintln!("    {} already in {}", TOOLS.join(", "), venv.display());
        return Ok(venv);
    }
    ensure_python()?;
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(TOOLS))?;
    std::fs::write(&stamp, pins).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(venv)
}

/// Python 3 with `venv` (Debian splits it into `python3-venv`), from apt when missing.
fn ensure_python() -> Result<(), String> {
    let check = Command::new("python3").args(["-c", "import ensurepip, venv"]).output();
    if check.is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", "python3", "python3-venv"]))
}

/// The checks against a running server at `url`.
fn against(url: &str, venv: &Path, work: &Path) -> Result<(), String> {
    let document = work.join("openapi.json");
    let text = ureq::get(format!("{url}/api/openapi.json"))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| format!("GET /api/openapi.json: {e}"))?;
    std::fs::write(&document, text).map_err(|e| format!("cannot write {}: {e}", document.display()))?;
    run(Command::new(venv.join("bin/openapi-spec-validator")).arg(&document))?;

    let accounts = Accounts::provision(url)?;
    // The master acts on a tenant only with `?adminId=`: its run names the owner's.
    let master_config = work.join("master.toml");
    let config = format!("[parameters]\n\"query.adminId\" = \"{}\"\n", accounts.owner_id);
    std::fs::write(&master_config, config).map_err(|e| format!("cannot write {}: {e}", master_config.display()))?;
    let no_config = work.join("none.toml");
    std::fs::write(&no_config, "").map_err(|e| format!("cannot write {}: {e}", no_config.display()))?;
    // Schemathesis learns ids from answers and uses them: an owner's run suspends the farmers it
    // lists and rotates its devices' keys, the master's run suspends admins. So the owner works
    // on a tenant of their own, the farmer and the device on another, and the master goes last.
    // Signing out (which ends the session the rest of a run uses) gets a run of its own, and the
    // event stream, which never ends, is left to `crates/pumppilot/tests/live.rs`.
    let roles = [
        ("owner", &accounts.owner, &no_config, &["--exclude-path", "/api/auth/logout"][..]),
        ("farmer", &accounts.farmer, &no_config, &["--exclude-path", "/api/auth/logout"]),
        ("device", &accounts.device_key, &no_config, &["--exclude-path", "/api/auth/logout"]),
        ("master", &accounts.master, &master_config, &["--exclude-path", "/api/auth/logout"]),
        ("signing out", &accounts.leaving, &no_config, &["--include-path", "/api/auth/logout"]),
    ];
    for (role, token, config, filter) in roles {
        eprintln!("    schemathesis as {role}");
        run(Command::new(venv.join("bin/schemathesis"))
            .current_dir(work)
            .arg("--config-file")
            .arg(config)
            .arg("run")
            .arg(format!("{url}/api/openapi.json"))
            .arg("--no-color")
            .args(["--checks", CHECKS, "--max-examples", EXAMPLES, "--seed", SEED])
            .args(["--phases", "examples,coverage,fuzzing", "--generation-database", "none"])
            .args(["--exclude-path", "/api/events", "--request-timeout", "10"])
            .args(filter)
            .arg("--header")
            .arg(format!("Authorization: Bearer {token}")))?;
    }
    Ok(())
}

/// A token for each role.
struct Accounts {
    master: String,
    owner: String,
    /// The owner's id, the tenant the master's run acts on.
    owner_id: String,
    farmer: String,
    device_key: String,
    /// A farmer whose session the sign-out run ends.
    leaving: String,
}

impl Accounts {
    /// Two tenants over the API: the owner's own, and one with a farmer (with minutes) and a
    /// device that has polled once.
    fn provision(url: &str) -> Result<Self, String> {
        let master = login(url, MASTER.0, MASTER.1)?;
        let body = json!({"name": "Owner", "username": "owner", "password": PASSWORD});
        let owner_id = text(&post(url, &master, "/api/master/admins", body)?, "id")?;
        let owner = login(url, "owner", PASSWORD)?;
        let body = json!({"name": "Field owner", "username": "field-owner", "password": PASSWORD});
        post(url, &master, "/api/master/admins", body)?;
        let field_owner = login(url, "field-owner", PASSWORD)?;
        let mut users = Vec::new();
        for name in ["farmer", "leaving"] {
            let body = json!({"name": name, "username": name, "password": PASSWORD});
            let user = post(url, &field_owner, "/api/admin/users", body)?;
            let body = json!({"userId": user["id"], "minutes": 30});
            post(url, &field_owner, "/api/admin/recharge", body)?;
            users.push(login(url, name, PASSWORD)?);
        }
        let device = post(url, &field_owner, "/api/admin/devices", json!({"name": "Field pump"}))?;
        let device_key = text(&device, "deviceKey")?;
        let poll = json!({"loadShedding": false, "ready": true, "relay": false});
        post(url, &device_key, "/api/esp32/poll", poll)?;
        let leaving = users.pop().unwrap_or_default();
        let farmer = users.pop().unwrap_or_default();
        Ok(Accounts { master, owner, owner_id, farmer, device_key, leaving })
    }
}

fn login(url: &str, username: &str, password: &str) -> Result<String, String> {
    let answer = post(url, "", "/api/auth/login", json!({"username": username, "password": password}))?;
    text(&answer, "token")
}

fn post(url: &str, token: &str, path: &str, body: Value) -> Result<Value, String> {
    ureq::post(format!("{url}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .send_json(body)
        .and_then(|mut r| r.body_mut().read_json::<Value>())
        .map_err(|e| format!("POST {path}: {e}"))
}

fn text(answer: &Value, field: &str) -> Result<String, String> {
    answer[field].as_str().map(str::to_owned).ok_or_else(|| format!("no `{field}` in {answer}"))
}

/// `pumppilot serve` on a free port; dropping it stops the server.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(bin: &Path, work: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let log = std::fs::File::create(work.join("server.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("serve")
            .env("PUMPPILOT_BIND", format!("127.0.0.1:{port}"))
            .env("PUMPPILOT_DATABASE_URL", format!("sqlite://{}", work.join("pumppilot.db").display()))
            .env("PUMPPILOT_MASTER_USERNAME", MASTER.0)
            .env("PUMPPILOT_MASTER_PASSWORD", MASTER.1)
            // A short lease keeps long-polls (held up to a third of it) short.
            .env("PUMPPILOT_DEVICE_LEASE_MS", "3000")
            .env("PUMPPILOT_POLL_INTERVAL_MS", "1000")
            .env("PUMPPILOT_LOG", "warn")
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = Server { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while ureq::get(format!("{}/healthz", server.url)).call().is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited with {status}; see {}", work.join("server.log").display()));
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the server did not answer /healthz within 30 s".into());
            }
            sleep(Duration::from_millis(50));
        }
        eprintln!("    pumppilot serving on {} (log: {})", server.url, work.join("server.log").display());
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
