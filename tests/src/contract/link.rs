//! The [`LinkCache`](genhook::ports::LinkCache) contract (see the doc comments of `genhook::ports::link_cache` and
//! `genhook::domain::link_cache`).

use genhook::domain::link_cache::{CachedOutputs, CachedUrl, MAX_CACHED_BYTES, MAX_CACHED_OUTPUTS, MAX_JOB_ID_BYTES};

use super::Store;
use super::store::T0;

const SEC: i64 = 1000;
/// When cache items may go (epoch s): a day after [`T0`].
const TTL: i64 = T0 / 1000 + 86_400;

fn outputs(urls: &[&str], fetched_at: i64) -> CachedOutputs {
    CachedOutputs {
        outputs: urls
            .iter()
            .enumerate()
            .map(|(i, u)| CachedUrl {
                url: (*u).into(),
                expires_at: (i % 2 == 0).then_some(T0 / 1000 + 3600 + i as i64),
            })
            .collect(),
        fetched_at,
    }
}

async fn get(s: &dyn Store, provider: &str, job_id: &str) -> Option<CachedOutputs> {
    s.get_outputs(provider, job_id).await.expect("get_outputs")
}

async fn put(s: &dyn Store, provider: &str, job_id: &str, o: &CachedOutputs) {
    s.put_outputs(provider, job_id, o, TTL).await.expect("put_outputs");
}

async fn lease(s: &dyn Store, provider: &str, job_id: &str, token: &str, until_ms: i64, now_ms: i64) -> bool {
    s.lease_refresh(provider, job_id, token, until_ms, now_ms).await.expect("lease_refresh")
}

/// What is put is what is read back, and a later put replaces it whole.
pub async fn link_outputs_round_trip(s: &dyn Store) {
    let first = outputs(
        &["https://cdn.example.com/a.png?X-Amz-Signature=abc&X-Amz-Expires=3600", "https://cdn.example.com/b.png"],
        T0 / 1000,
    );
    put(s, "replicate", "job-1", &first).await;
    assert_eq!(get(s, "replicate", "job-1").await, Some(first));
    let second = outputs(&["https://cdn.example.com/c.png"], T0 / 1000 + 60);
    put(s, "replicate", "job-1", &second).await;
    assert_eq!(get(s, "replicate", "job-1").await, Some(second));
    let none = outputs(&[], T0 / 1000 + 120);
    put(s, "replicate", "job-1", &none).await;
    assert_eq!(get(s, "replicate", "job-1").await, Some(none), "a job without outputs is cached too");
}

/// A job nobody cached has no outputs.
pub async fn link_outputs_of_a_missing_job_are_none(s: &dyn Store) {
    assert_eq!(get(s, "replicate", "never-seen").await, None);
    put(s, "replicate", "seen", &outputs(&["https://a"], 1)).await;
    assert_eq!(get(s, "replicate", "never-seen").await, None);
}

/// The refresh lease is taken once, then refused while it is live (through its last ms).
pub async fn link_lease_is_taken_once_then_refused_while_live(s: &dyn Store) {
    assert!(lease(s, "p", "j", "t1", T0 + 10 * SEC, T0).await);
    assert!(!lease(s, "p", "j", "t2", T0 + 20 * SEC, T0).await, "the same instant");
    assert!(!lease(s, "p", "j", "t2", T0 + 20 * SEC, T0 + 5 * SEC).await);
    assert!(!lease(s, "p", "j", "t2", T0 + 20 * SEC, T0 + 10 * SEC).await, "live at its last ms");
}

/// Once the lease has ended anyone takes it, and the new one blocks in turn.
pub async fn link_lease_is_taken_again_after_it_expires(s: &dyn Store) {
    assert!(lease(s, "p", "j", "t1", T0 + 10 * SEC, T0).await);
    assert!(lease(s, "p", "j", "t2", T0 + 20 * SEC, T0 + 10 * SEC + 1).await);
    assert!(!lease(s, "p", "j", "t3", T0 + 30 * SEC, T0 + 15 * SEC).await, "t2's lease is live");
    assert!(lease(s, "p", "j", "t3", T0 + 30 * SEC, T0 + 20 * SEC + 1).await);
}

/// Putting the outputs frees the lease at once; a new lease keeps the outputs.
pub async fn link_put_frees_the_lease(s: &dyn Store) {
    assert!(lease(s, "p", "j", "t1", T0 + 60 * SEC, T0).await);
    let o = outputs(&["https://a", "https://b"], T0 / 1000);
    put(s, "p", "j", &o).await;
    assert!(lease(s, "p", "j", "t2", T0 + 70 * SEC, T0 + SEC).await, "t1's lease ended with the put");
    assert_eq!(get(s, "p", "j").await, Some(o), "the lease keeps the cached outputs");
    assert!(!lease(s, "p", "j", "t3", T0 + 80 * SEC, T0 + 2 * SEC).await, "t2's lease is live");
}

/// A refresh that ends without caching frees its own lease, and only its own: the next
/// request takes it at once; cached outputs stay.
pub async fn link_release_frees_only_the_holders_lease(s: &dyn Store) {
    let o = outputs(&["https://a"], T0 / 1000);
    put(s, "p", "j", &o).await;
    assert!(lease(s, "p", "j", "t1", T0 + 60 * SEC, T0).await);
    s.release_refresh("p", "j", "t2").await.expect("release_refresh");
    assert!(!lease(s, "p", "j", "t2", T0 + 70 * SEC, T0 + SEC).await, "a stranger's release frees nothing");
    s.release_refresh("p", "j", "t1").await.expect("release_refresh");
    assert!(lease(s, "p", "j", "t2", T0 + 70 * SEC, T0 + SEC).await, "freed long before it would end");
    assert_eq!(get(s, "p", "j").await, Some(o), "the release keeps the cached outputs");
    s.release_refresh("p", "j", "t1").await.expect("a release after another took the lease");
    assert!(!lease(s, "p", "j", "t3", T0 + 80 * SEC, T0 + 2 * SEC).await, "t2's lease is still held");
    s.release_refresh("p", "never", "t1").await.expect("releasing a job nobody cached");
    assert_eq!(get(s, "p", "never").await, None, "and it creates nothing");
}

/// A lease on a job nobody cached creates its item, holding the lease and no outputs.
pub async fn link_lease_on_a_missing_job_creates_it_without_outputs(s: &dyn Store) {
    assert!(lease(s, "p", "new", "t1", T0 + 10 * SEC, T0).await);
    assert_eq!(get(s, "p", "new").await, None, "a lease alone caches nothing");
    assert!(!lease(s, "p", "new", "t2", T0 + 20 * SEC, T0 + SEC).await, "the item holds the lease");
    let o = outputs(&["https://a"], T0 / 1000 + 1);
    put(s, "p", "new", &o).await;
    assert_eq!(get(s, "p", "new").await, Some(o));
}

/// Taking a lease over cached outputs, again and again, leaves them as they are.
pub async fn link_lease_keeps_cached_outputs(s: &dyn Store) {
    let o = outputs(&["https://a", "https://b", "https://c"], T0 / 1000);
    put(s, "p", "j", &o).await;
    assert!(lease(s, "p", "j", "t1", T0 + 10 * SEC, T0).await);
    assert!(lease(s, "p", "j", "t2", T0 + 30 * SEC, T0 + 20 * SEC).await);
    assert_eq!(get(s, "p", "j").await, Some(o));
}

/// Each (provider, job) has its own outputs and lease, even when the two names hold the
/// same bytes split differently.
pub async fn link_jobs_are_independent(s: &dyn Store) {
    assert!(lease(s, "p", "j1", "t1", T0 + 10 * SEC, T0).await);
    assert!(lease(s, "p", "j2", "t2", T0 + 10 * SEC, T0).await, "another job");
    assert!(lease(s, "q", "j1", "t3", T0 + 10 * SEC, T0).await, "another provider");
    assert!(lease(s, "ab", "c", "t4", T0 + 10 * SEC, T0).await);
    assert!(lease(s, "a", "bc", "t5", T0 + 10 * SEC, T0).await, "the same bytes, split elsewhere");
    let a = outputs(&["https://a"], 1);
    let b = outputs(&["https://b"], 2);
    put(s, "p", "j1", &a).await;
    assert_eq!(get(s, "p", "j2").await, None);
    assert_eq!(get(s, "q", "j1").await, None);
    put(s, "q", "j1", &b).await;
    assert_eq!(get(s, "p", "j1").await, Some(a));
    assert_eq!(get(s, "q", "j1").await, Some(b));
    assert!(!lease(s, "p", "j2", "t6", T0 + 20 * SEC, T0 + SEC).await, "the puts freed no other job's lease");
    assert!(!lease(s, "a", "bc", "t6", T0 + 20 * SEC, T0 + SEC).await);
}

/// Job ids of any characters, up to the longest, are keys like any other.
pub async fn link_job_ids_of_any_characters(s: &dyn Store) {
    let mut long = String::new();
    for c in "é#/ %?\u{0}".chars().cycle() {
        if long.len() + c.len_utf8() > MAX_JOB_ID_BYTES {
            break;
        }
        long.push(c);
    }
    for (n, job) in ["a#b", "link#p#x", "ü/..", &long].into_iter().enumerate() {
        let o = outputs(&["https://a"], n as i64);
        put(s, "p", job, &o).await;
        assert_eq!(get(s, "p", job).await, Some(o), "{job:?}");
        assert!(lease(s, "p", job, "t", T0 + SEC, T0).await);
    }
}

/// Outputs beyond the cache's bounds and names it cannot key are refused, and nothing is
/// written.
pub async fn link_cache_refuses_what_it_cannot_hold(s: &dyn Store) {
    let many: Vec<&str> = vec!["https://a"; MAX_CACHED_OUTPUTS + 1];
    assert!(s.put_outputs("p", "j", &outputs(&many, 1), TTL).await.is_err(), "too many outputs");
    let huge = format!("https://a/{}", "x".repeat(MAX_CACHED_BYTES));
    assert!(s.put_outputs("p", "j", &outputs(&[&huge], 1), TTL).await.is_err(), "too large");
    assert_eq!(get(s, "p", "j").await, None);
    let most: Vec<&str> = vec!["https://a"; MAX_CACHED_OUTPUTS];
    put(s, "p", "j", &outputs(&most, 1)).await;
    assert_eq!(get(s, "p", "j").await.map(|o| o.outputs.len()), Some(MAX_CACHED_OUTPUTS));

    let too_long = "j".repeat(MAX_JOB_ID_BYTES + 1);
    for (provider, job) in [("a#b", "c"), ("", "c"), ("P", "c"), ("p", ""), ("p", too_long.as_str())] {
        assert!(s.get_outputs(provider, job).await.is_err(), "{provider:?} {job:?}");
        assert!(s.put_outputs(provider, job, &outputs(&["https://a"], 1), TTL).await.is_err(), "{provider:?}");
        assert!(s.lease_refresh(provider, job, "t", T0 + SEC, T0).await.is_err(), "{provider:?}");
    }
}
