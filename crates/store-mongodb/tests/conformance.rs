//! The shared conformance suite against a real MongoDB-wire server (SecantusDB, started once for
//! this binary; see `pumppilot_store_mongodb::testing`): a fresh database per test.

use std::sync::Arc;

use pumppilot_store::Store;

pumppilot_store_conformance::conformance_tests!(async {
    Arc::new(pumppilot_store_mongodb::testing::fresh_store().await) as Arc<dyn Store>
});
