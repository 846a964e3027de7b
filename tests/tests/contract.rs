//! The adapter contract (`genhook_tests::contract`) against every backend: each
//! function runs once on the memory adapters, once on SQLite, and once on DynamoDB
//! Local and the SQS emulator.

use genhook_tests::contract::{
    dynamodb_store, memory_queue, memory_store, queue, sqlite_queue, sqlite_store, sqs_queue, store,
};

macro_rules! store_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let f = $fixture().await;
            store::$case(&*f.store).await;
        }
    )*};
}

macro_rules! queue_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            queue::$case(&$fixture().await).await;
        }
    )*};
}

/// Every contract function, on one store and one queue backend.
macro_rules! contract {
    ($backend:ident, $store:ident, $queue:ident) => {
        mod $backend {
            use super::*;

            mod store_contract {
                use super::*;
                store_cases!($store:
                    claim_takes_a_free_key,
                    live_in_progress_claim_blocks,
                    expired_claim_lease_is_reclaimable,
                    enqueued_and_published_block_until_expiry,
                    body_hash_and_conflicts,
                    existing_returns_the_live_record,
                    mark_enqueued_only_own_in_progress_claim,
                    release_deletes_only_own_in_progress_claim,
                    release_never_deletes_a_leased_record,
                    acquire_work_recreates_a_missing_record,
                    acquire_work_busy_then_taken_over,
                    acquire_work_on_a_published_record,
                    acquire_work_enqueues_and_pushes_expiry,
                    claim_never_overwrites_a_live_work_lease,
                    release_work_only_by_holder,
                    mark_published_only_by_holder,
                    advance_polls_only_for_holder_from_current,
                    released_claim_survives_a_worker_lease,
                    watches_are_never_replaced,
                );
            }

            mod queue_contract {
                use super::*;
                queue_cases!($queue:
                    send_receive_delete,
                    attributes_round_trip,
                    receive_count_increments_per_receive,
                    visibility_timeout_hides_then_redelivers,
                    delay_retries_hides_for_the_given_time,
                    delayed_sends_are_invisible_until_due,
                    batch_sends_report_in_order,
                    dead_letter_after_max_receives,
                    depth_counts_everything_held,
                    oversized_messages_are_rejected,
                );
            }
        }
    };
}

contract!(memory, memory_store, memory_queue);
contract!(sqlite, sqlite_store, sqlite_queue);
contract!(aws, dynamodb_store, sqs_queue);
