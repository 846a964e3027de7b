//! A provider's job API within its shared read budget: each read first takes a slot of
//! the current one-second window ([`crate::ports::budget::ReadBudget`]); a full window
//! waits for the next one, a few times at most, then answers as the provider would (a
//! rate limit), so the worker pauses and the links answer 503 instead of spending the
//! provider's own limit. A budget store that cannot be reached does not stop reads: each
//! instance's own rate limit still applies.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use crate::domain::budget::{per_second, window};
use crate::domain::clock::Clock;
use crate::domain::job::Job;
use crate::ports::budget::ReadBudget;
use crate::ports::provider::Deps;
use crate::ports::{JobApi, JobApiError};

/// Full windows a read waits through before it answers as rate-limited.
const WINDOWS_WAITED: u32 = 3;

/// A job API whose reads keep a per-minute budget shared through a store.
pub struct BudgetedApi {
    inner: Arc<dyn JobApi>,
    budget: Arc<dyn ReadBudget>,
    provider: &'static str,
    per_second: u32,
    clock: Arc<dyn Clock>,
}

impl BudgetedApi {
    /// `inner`, reading at most `per_minute` times a minute (as `per_minute / 60` a
    /// second) across everything that counts in `budget`.
    pub fn new(
        inner: Arc<dyn JobApi>,
        budget: Arc<dyn ReadBudget>,
        provider: &'static str,
        per_minute: u32,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { inner, budget, provider, per_second: per_second(per_minute), clock }
    }

    /// Takes a slot: `Ok` to read, `Err` with a rate limit after the windows waited.
    async fn slot(&self) -> Result<(), JobApiError> {
        for _ in 0..=WINDOWS_WAITED {
            let (window_s, next_ms) = window(self.clock.now_ms());
            match self.budget.take_read(self.provider, window_s, self.per_second).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    let jitter = u64::from(rand::random::<u8>() % 50);
                    let wait = u64::try_from(next_ms).unwrap_or(1000).saturating_add(jitter);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                Err(e) => {
                    warn!(provider = self.provider, error = %e, "read budget unavailable; reading within this instance's own limit");
                    return Ok(());
                }
            }
        }
        Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(1)) })
    }
}

/// `api` within `provider`'s shared budget of `per_minute` reads when the deployment
/// counts budgets (`deps.budget`) and the provider has one (`per_minute` not 0); else
/// `api` itself.
pub fn within_budget(api: Arc<dyn JobApi>, deps: &Deps, provider: &'static str, per_minute: u32) -> Arc<dyn JobApi> {
    match &deps.budget {
        Some(budget) if per_minute > 0 => {
            Arc::new(BudgetedApi::new(api, budget.clone(), provider, per_minute, deps.clock.clone()))
        }
        _ => api,
    }
}

#[async_trait]
impl JobApi for BudgetedApi {
    async fn get_job(&self, job_id: &str) -> Result<Job, JobApiError> {
        self.slot().await?;
        self.inner.get_job(job_id).await
    }

    async fn list_jobs(
        &self,
        from: time::OffsetDateTime,
        until: time::OffsetDateTime,
        cursor: Option<&str>,
    ) -> Result<crate::ports::JobPage, JobApiError> {
        self.slot().await?;
        self.inner.list_jobs(from, until, cursor).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use time::macros::datetime;

    use super::*;
    use crate::adapters::memory::MemoryStore;
    use crate::domain::clock::{ManualClock, SystemClock};
    use crate::ports::StoreError;

    /// Counts its calls and knows no job: a read that reaches it answers 404.
    struct Counting(AtomicU32);

    #[async_trait]
    impl JobApi for Counting {
        async fn get_job(&self, _job_id: &str) -> Result<Job, JobApiError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(JobApiError::Permanent { status: 404, reason: "not_found".into() })
        }
    }

    fn reached(r: Result<Job, JobApiError>) -> bool {
        matches!(r, Err(JobApiError::Permanent { status: 404, .. }))
    }

    /// Two clients (the worker's and the links') sharing one budget never read more than
    /// its share of a second together; a read that finds every window full answers as a
    /// rate limit, and the next second has its own share.
    #[tokio::test(start_paused = true)]
    async fn clients_sharing_a_budget_keep_it_together() {
        let store = Arc::new(MemoryStore::default());
        let api = Arc::new(Counting(AtomicU32::new(0)));
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-07 12:00:00 UTC)));
        // 180 a minute: 3 a second.
        let client = || BudgetedApi::new(api.clone(), store.clone(), "katalo", 180, clock.clone());
        let (worker, links) = (client(), client());
        for c in [&worker, &links, &worker] {
            assert!(reached(c.get_job("j").await));
        }
        let limited = links.get_job("j").await.unwrap_err();
        assert_eq!(limited, JobApiError::RateLimited { retry_after: Some(Duration::from_secs(1)) });
        assert_eq!(api.0.load(Ordering::SeqCst), 3, "the fourth read never reached the provider");
        // Another provider's budget is its own.
        let other = BudgetedApi::new(api.clone(), store.clone(), "replicate", 180, clock.clone());
        assert!(reached(other.get_job("p").await));
        clock.advance(time::Duration::seconds(1));
        assert!(reached(links.get_job("j").await));
        assert_eq!(api.0.load(Ordering::SeqCst), 5);
    }

    /// A store that cannot be reached does not stop reads.
    #[tokio::test]
    async fn an_unreachable_budget_store_lets_reads_through() {
        struct Down;
        #[async_trait]
        impl ReadBudget for Down {
            async fn take_read(&self, _: &str, _: i64, _: u32) -> Result<bool, StoreError> {
                Err(StoreError("down".into()))
            }
        }
        let api = Arc::new(Counting(AtomicU32::new(0)));
        let client = BudgetedApi::new(api.clone(), Arc::new(Down), "katalo", 1_200, Arc::new(SystemClock));
        assert!(reached(client.get_job("j").await));
        assert_eq!(api.0.load(Ordering::SeqCst), 1);
    }
}
