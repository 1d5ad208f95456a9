//! How long a batch of presence joins takes on SecantusDB: `cargo run --release -p
//! pumppilot-store-mongodb --features testing --example presence_joins [-- 64 512 2000]`.
//!
//! A measurement, not a test: it starts SecantusDB as the tests do, provisions a tenant with its
//! device for every join it will make (each batch joins tenants none before it joined), then times
//! `Store::record_presence` for each batch size asked (three times each, the best and the worst
//! printed), and the leaves of the same devices.

use std::time::Instant;

use pumppilot_engine::{AdminId, DeviceId, DeviceLink, Tenant, Timestamp, UserId};
use pumppilot_store::{Account, Device, Role, Snapshot, Store};
use pumppilot_store_mongodb::testing;

const ROUNDS: usize = 3;

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![64, 512, 2_000] } else { sizes };
    let store = testing::fresh_store().await;
    let now = Timestamp(1_767_225_600_000);
    let total: usize = sizes.iter().sum::<usize>() * ROUNDS;
    let started = Instant::now();
    let mut pumps = Vec::with_capacity(total);
    for chunk in (0..total).collect::<Vec<_>>().chunks(2_000) {
        let (mut accounts, mut tenants, mut devices) = (Vec::new(), Vec::new(), Vec::new());
        for &i in chunk {
            let admin = AdminId(UserId::new());
            accounts.push(Account {
                id: admin.0,
                username: format!("owner-{i}"),
                name: "Owner".into(),
                role: Role::Admin,
                admin_id: Some(admin),
                password_hash: "$argon2id$probe".into(),
                suspended: false,
                created_at: now,
            });
            let device = DeviceId::new();
            tenants.push(Tenant {
                controller: Some(device),
                device: DeviceLink {
                    last_poll_at: Some(now),
                    load_shedding: false,
                    ready: true,
                    relay: false,
                    lease_ms: 0,
                    without_command_since: None,
                },
                ..Tenant::new(admin, 0)
            });
            devices.push(Device {
                id: device,
                admin_id: admin,
                name: format!("pump {i}"),
                key_hash: (i as u64).to_le_bytes().repeat(4),
                created_at: now,
                telemetry: None,
            });
            pumps.push((admin, device));
        }
        store.import(&Snapshot { accounts, tenants, ..Snapshot::default() }).await.expect("tenants");
        store.import(&Snapshot { devices, ..Snapshot::default() }).await.expect("devices");
    }
    println!("{total} tenants with a device provisioned in {:.1} s", started.elapsed().as_secs_f64());
    let mut next = pumps.iter();
    for size in sizes {
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let batch: Vec<_> = next
                .by_ref()
                .take(size)
                .map(|&(admin, device)| (admin, device, now + 1_000 * (round as i64 + 1)))
                .collect();
            let t = Instant::now();
            store.record_presence("probe", &batch, &[]).await.expect("joins");
            joins.push(t.elapsed().as_secs_f64() * 1_000.0);
            let t = Instant::now();
            store.record_presence("probe", &[], &batch).await.expect("leaves");
            leaves.push(t.elapsed().as_secs_f64() * 1_000.0);
        }
        let span = |v: &[f64]| {
            let (lo, hi) = v.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            format!("{lo:.0}–{hi:.0} ms ({:.2}–{:.2} ms a device)", lo / size as f64, hi / size as f64)
        };
        println!("{size:>6} joins: {}; their leaves: {}", span(&joins), span(&leaves));
    }
}
