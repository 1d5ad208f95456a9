//! One conformance suite for every PumpPilot store backend.
//!
//! Each story is a `pub async fn story(store: &dyn Store)` that panics when the backend breaks the
//! contract of [`pumppilot_store::Store`]. Stories use nothing but the trait (and the real engine
//! to produce transitions), so the SQLite backend and a MongoDB backend run the very same checks.
//! Every story expects a fresh, empty database.
//!
//! A backend runs them all with one line in an integration test (its dev-dependencies need
//! `tokio` with the `macros` and `rt` features):
//!
//! ```ignore
//! pumppilot_store_conformance::conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     // Anything else returned in the tuple lives as long as the test (here: the folder).
//!     (std::sync::Arc::new(store) as std::sync::Arc<dyn pumppilot_store::Store>, dir)
//! });
//! ```

mod accounts;
mod alerts;
mod audited;
mod books;
mod cards;
mod devices;
mod guards;
mod owner;
mod queue;
mod requests;
mod sessions;
mod support;
mod tenants;
mod totals;

use std::sync::Arc;

use pumppilot_store::Store;

pub use accounts::{
    accounts_round_trip_and_filtering, owners_come_a_page_at_a_time_with_their_farmer_counts, suspending_the_master,
    usernames_are_unique,
};
pub use alerts::{
    a_pending_number_is_no_ones_until_confirmed, a_persons_items_are_found_and_claimed_one_by_one,
    a_profile_saved_keeps_the_wrong_codes_counted_since_it_was_read,
    a_profile_saved_lands_only_on_the_profile_it_was_made_from, a_push_token_belongs_to_one_account_at_a_time,
    a_text_is_taken_once_while_its_claim_lasts, alert_profiles_round_trip_and_phones_are_unique,
    keyed_notices_are_told_once, notices_are_written_with_their_commit, old_notifications_are_purged,
    outbox_claims_are_held_by_one_sender, push_tickets_wait_for_their_receipts_in_the_store,
    racing_claims_never_share_an_item, request_notices_are_written_with_the_request, send_windows_count_across_senders,
    wrong_codes_are_counted_with_the_number_waiting,
};
pub use audited::{
    a_device_registered_again_with_its_key_is_made_once, a_write_and_its_audit_entry_are_stored_together,
};
pub use books::{
    audit_lines_are_filtered_over_the_whole_log_a_page_at_a_time, audit_newest_first_with_limit,
    ledger_and_wallets_survive_reload, usage_by_tenant_user_and_date_range,
};
pub use cards::cards_bind_move_and_stay_in_their_tenant;
pub use devices::{
    a_fleet_coming_online_at_once_gets_each_answer_exact, a_reservation_reads_the_stored_report,
    arriving_devices_are_written_and_joined_in_one_call, controllers_are_present_at_the_server_they_poll,
    device_keys_and_firmware_are_each_devices_current_ones, devices_report_reset_reader_and_feedback,
    devices_telemetry_and_key_rotation, firmware_downloads_move_forward_and_are_purged,
    firmware_releases_keep_their_bytes_and_rollout, link_counter_windows_never_overlap,
    only_the_controller_keeps_the_lease_and_devices_retire,
    tenants_with_runs_and_pump_links_are_as_each_tenant_reads_alone, the_write_probe_succeeds_and_changes_nothing,
};
pub use guards::{
    a_ledger_entry_must_follow_the_stored_balance, accounts_must_name_a_real_tenant,
    alert_profiles_and_the_bell_come_through_an_export_whole, an_ended_entry_is_final,
    an_entry_left_out_of_the_state_without_ending_is_refused,
    an_export_erased_and_imported_again_is_the_same_installation, erase_leaves_no_passing_count_behind,
};
pub use owner::{
    a_change_sent_again_with_its_key_is_made_once, a_receipt_is_voided_once_and_counts_for_no_cash,
    a_receipt_is_written_with_its_recharge, a_waiting_farmer_moved_in_line_passes_the_others,
    changing_a_farmer_renames_resets_and_revokes_at_once, changing_ones_own_password_keeps_the_session_that_asked,
    terms_are_per_tenant_and_written_with_their_audit_line,
};
pub use queue::{
    all_tenants_read_together_are_each_as_read_alone, one_active_entry_per_admin_is_enforced_by_the_store,
    positions_close_up_as_the_line_moves,
};
pub use requests::{
    a_rejection_keeps_its_reason, approving_with_a_commit_decides_once,
    deciding_a_request_settles_the_owners_notice_of_it, one_pending_request_per_user, rejecting_decides_once,
};
pub use sessions::{
    a_phone_registers_its_push_token_and_nothing_else, a_push_token_lives_as_long_as_the_session_that_registered_it,
    a_session_is_read_with_its_accounts, purging_a_session_takes_its_push_tokens, purging_removes_only_dead_sessions,
    sessions_lookup_rotation_and_revocation,
};
pub use tenants::{
    commit_round_trip_with_the_engine, concurrent_writers_retry_until_every_credit_lands,
    controller_and_restart_protection_survive_reload, creating_an_admin_creates_its_tenant,
    racing_commits_only_one_wins, stale_version_is_a_conflict_and_writes_nothing, suspending_a_tenant_in_one_commit,
};
pub use totals::fleet_totals_are_every_pumps_figures_from_a_moment;

/// The store is reachable.
pub async fn ping(store: &dyn Store) {
    store.ping().await.expect("ping");
}

/// What a test's factory produces: a store, possibly with things that must live as long as it
/// (a temporary folder, a database to drop), as `(store, guard)`.
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl Fixture for Arc<dyn Store> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

impl Fixture for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

impl<S: Store> Fixture for Arc<S> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

impl<S: Store> Fixture for Box<S> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

impl<F: Fixture, Guard> Fixture for (F, Guard) {
    fn store(&self) -> &dyn Store {
        self.0.store()
    }
}

/// Expands to one `#[tokio::test]` per story, each on a fresh store from `$factory`.
///
/// `$factory` is an async expression (typically an `async { … }` block) evaluated once per test;
/// it produces a [`Fixture`]: an `Arc<dyn Store>`, a `Box<dyn Store>`, an `Arc` or `Box` of a
/// concrete store, or `(store, guard)` where the guard (a temporary folder, a database to drop)
/// lives until the test ends. Invoke it at most once per module; the tests are named after the
/// stories.
#[macro_export]
macro_rules! conformance_tests {
    (@stories $factory:expr; $($story:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $story() {
                let fixture = $factory.await;
                $crate::$story($crate::Fixture::store(&fixture)).await;
            }
        )*
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!(@stories $factory;
            ping,
            usernames_are_unique,
            accounts_round_trip_and_filtering,
            owners_come_a_page_at_a_time_with_their_farmer_counts,
            fleet_totals_are_every_pumps_figures_from_a_moment,
            suspending_the_master,
            creating_an_admin_creates_its_tenant,
            commit_round_trip_with_the_engine,
            stale_version_is_a_conflict_and_writes_nothing,
            racing_commits_only_one_wins,
            concurrent_writers_retry_until_every_credit_lands,
            suspending_a_tenant_in_one_commit,
            one_active_entry_per_admin_is_enforced_by_the_store,
            an_entry_left_out_of_the_state_without_ending_is_refused,
            an_ended_entry_is_final,
            a_ledger_entry_must_follow_the_stored_balance,
            accounts_must_name_a_real_tenant,
            an_export_erased_and_imported_again_is_the_same_installation,
            erase_leaves_no_passing_count_behind,
            alert_profiles_and_the_bell_come_through_an_export_whole,
            positions_close_up_as_the_line_moves,
            ledger_and_wallets_survive_reload,
            usage_by_tenant_user_and_date_range,
            audit_newest_first_with_limit,
            audit_lines_are_filtered_over_the_whole_log_a_page_at_a_time,
            approving_with_a_commit_decides_once,
            rejecting_decides_once,
            a_rejection_keeps_its_reason,
            deciding_a_request_settles_the_owners_notice_of_it,
            a_write_and_its_audit_entry_are_stored_together,
            a_device_registered_again_with_its_key_is_made_once,
            one_pending_request_per_user,
            devices_telemetry_and_key_rotation,
            devices_report_reset_reader_and_feedback,
            link_counter_windows_never_overlap,
            a_reservation_reads_the_stored_report,
            a_fleet_coming_online_at_once_gets_each_answer_exact,
            firmware_releases_keep_their_bytes_and_rollout,
            firmware_downloads_move_forward_and_are_purged,
            only_the_controller_keeps_the_lease_and_devices_retire,
            controllers_are_present_at_the_server_they_poll,
            arriving_devices_are_written_and_joined_in_one_call,
            all_tenants_read_together_are_each_as_read_alone,
            tenants_with_runs_and_pump_links_are_as_each_tenant_reads_alone,
            device_keys_and_firmware_are_each_devices_current_ones,
            the_write_probe_succeeds_and_changes_nothing,
            controller_and_restart_protection_survive_reload,
            cards_bind_move_and_stay_in_their_tenant,
            sessions_lookup_rotation_and_revocation,
            a_session_is_read_with_its_accounts,
            notices_are_written_with_their_commit,
            keyed_notices_are_told_once,
            request_notices_are_written_with_the_request,
            outbox_claims_are_held_by_one_sender,
            a_persons_items_are_found_and_claimed_one_by_one,
            racing_claims_never_share_an_item,
            alert_profiles_round_trip_and_phones_are_unique,
            a_pending_number_is_no_ones_until_confirmed,
            wrong_codes_are_counted_with_the_number_waiting,
            a_profile_saved_keeps_the_wrong_codes_counted_since_it_was_read,
            a_profile_saved_lands_only_on_the_profile_it_was_made_from,
            a_push_token_belongs_to_one_account_at_a_time,
            a_text_is_taken_once_while_its_claim_lasts,
            send_windows_count_across_senders,
            old_notifications_are_purged,
            push_tickets_wait_for_their_receipts_in_the_store,
            purging_removes_only_dead_sessions,
            a_push_token_lives_as_long_as_the_session_that_registered_it,
            purging_a_session_takes_its_push_tokens,
            a_phone_registers_its_push_token_and_nothing_else,
            terms_are_per_tenant_and_written_with_their_audit_line,
            a_receipt_is_written_with_its_recharge,
            a_receipt_is_voided_once_and_counts_for_no_cash,
            a_change_sent_again_with_its_key_is_made_once,
            changing_a_farmer_renames_resets_and_revokes_at_once,
            changing_ones_own_password_keeps_the_session_that_asked,
            a_waiting_farmer_moved_in_line_passes_the_others,
        );
    };
}
