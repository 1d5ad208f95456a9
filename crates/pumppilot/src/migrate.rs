//! `pumppilot migrate --from URL --to URL`: copies an installation from one store to another
//! (SQLite to MongoDB, or back), then checks what landed.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pumppilot_store::{Role, Snapshot, Store};

use crate::redact;

/// Records per write.
const CHUNK: usize = 500;

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The store to copy from: sqlite://PATH, mongodb://… or mongodb+srv://…
    #[arg(long)]
    from: String,
    /// The store to copy into (empty, unless --force).
    #[arg(long)]
    to: String,
    /// Delete whatever the target holds first.
    #[arg(long)]
    force: bool,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.from.trim() != args.to.trim(), "--from and --to name the same store");
    let source = pumppilot::store::open_url(&args.from, "--from").await?;
    let target = pumppilot::store::open_url(&args.to, "--to").await?;
    let (from, to) = (redact(&args.from), redact(&args.to));
    let held = accounts(target.as_ref()).await.context("reading the target")?;
    if held > 0 {
        anyhow::ensure!(
            args.force,
            "the target {to} already holds {held} accounts; migrate copies into an empty store (pass --force to \
             delete what it holds first)"
        );
        target.erase().await.context("emptying the target")?;
        println!("Deleted what {to} held (--force).");
    }

    let snapshot = source.export().await.context("reading the source")?;
    println!("Copying {} records from {from} to {to}.", snapshot.len());
    let bar = ProgressBar::new(snapshot.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for (kind, part) in parts(&snapshot) {
        bar.set_message(kind);
        target.import(&part).await.with_context(|| format!("writing {kind} into the target"))?;
        bar.inc(part.len() as u64);
    }
    bar.finish_and_clear();

    let copied = target.export().await.context("reading the target back")?;
    let wallets = verify(&snapshot, &copied)?;
    println!(
        "Copied and verified: {}; every one of {wallets} wallets equals the sum of its ledger and its balance in {from}.",
        snapshot.counts().iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// How many accounts a store holds.
pub(crate) async fn accounts(store: &dyn Store) -> anyhow::Result<usize> {
    let mut held = 0;
    for role in [Role::Master, Role::Admin, Role::User] {
        held += store.accounts(role, None).await?.len();
    }
    Ok(held)
}

/// The snapshot in pieces of at most [`CHUNK`] records, accounts first, then tenants, then the rest.
pub(crate) fn parts(snapshot: &Snapshot) -> Vec<(&'static str, Snapshot)> {
    let mut parts = Vec::new();
    macro_rules! split {
        ($($field:ident: $kind:literal),*) => {$(
            for chunk in snapshot.$field.chunks(CHUNK) {
                parts.push(($kind, Snapshot { $field: chunk.to_vec(), ..Snapshot::default() }));
            }
        )*};
    }
    split!(accounts: "accounts", tenants: "tenants", ended_entries: "queue entries", ledger: "ledger",
           usage: "usage", audit: "audit log", minute_requests: "minute requests", sessions: "sessions",
           devices: "devices", cards: "cards", terms: "owners' terms", receipts: "receipts",
           device_links: "device link counters", alert_profiles: "alert profiles",
           notifications: "notifications");
    // Images are large: one per part.
    for chunk in snapshot.firmware.chunks(1) {
        parts.push(("firmware releases", Snapshot { firmware: chunk.to_vec(), ..Snapshot::default() }));
    }
    parts
}

/// The target holds as many records of each kind as the source, and every user's wallet is the
/// sum of their ledger and the balance the source had. Returns how many wallets were checked.
pub(crate) fn verify(source: &Snapshot, copied: &Snapshot) -> anyhow::Result<usize> {
    for ((kind, expected), (_, found)) in source.counts().iter().zip(copied.counts()) {
        anyhow::ensure!(*expected == found, "the target holds {found} {kind}, the source {expected}");
    }
    let mut checked = 0;
    for user in copied.accounts.iter().filter(|account| account.role == Role::User) {
        let balance = |snapshot: &Snapshot| {
            snapshot
                .tenants
                .iter()
                .find(|tenant| Some(tenant.admin_id) == user.admin_id)
                .map_or(0, |tenant| tenant.wallet(user.id))
        };
        let ledger: i64 = copied.ledger.iter().filter(|entry| entry.user_id == user.id).map(|e| e.delta_seconds).sum();
        let (copied_balance, source_balance) = (balance(copied), balance(source));
        anyhow::ensure!(
            copied_balance == ledger && copied_balance == source_balance,
            "the wallet of {} holds {copied_balance} s in the target, its ledger sums to {ledger} s and the source \
             had {source_balance} s",
            user.username
        );
        checked += 1;
    }
    Ok(checked)
}
