//! The shared conformance suite against SQLite: a fresh file database per test, and once more in
//! memory.

use std::sync::Arc;

use pumppilot_store::Store;
use pumppilot_store_sqlite::SqliteStore;

pumppilot_store_conformance::conformance_tests!(async {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let store = SqliteStore::open(&url).expect("open the database");
    // The folder lives as long as the test.
    (Arc::new(store) as Arc<dyn Store>, dir)
});

mod in_memory {
    use super::*;

    pumppilot_store_conformance::conformance_tests!(async {
        Arc::new(SqliteStore::open("sqlite::memory:").expect("open in memory")) as Arc<dyn Store>
    });
}
