//! The fault injector: one seeded random source that decides, before every port call an
//! actor (a receiver or worker invocation) makes, whether the call goes through, fails
//! before its effect, fails after it (a timeout the caller cannot tell from a failure),
//! is delayed (the clock jumps), or crashes the invocation (before or after the effect).
//! It also interleaves concurrent actors by yielding at call boundaries, and kills an
//! invocation that runs past its deadline, as Lambda does.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use genhook::domain::clock::{Clock, ManualClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;

tokio::task_local! {
    /// The invocation a port call belongs to.
    pub static ACTOR: Arc<Actor>;
}

/// One invocation: its deadline, and how it is told it crashed.
#[derive(Debug, Default)]
pub struct Actor {
    /// Lambda's deadline (epoch ms): past it the invocation is killed.
    pub deadline_ms: i64,
    crashed: Notify,
    dead: AtomicBool,
}

impl Actor {
    /// An invocation that must finish by `deadline_ms`.
    pub fn new(deadline_ms: i64) -> Arc<Self> {
        Arc::new(Self { deadline_ms, ..Self::default() })
    }

    /// Runs `fut` as this invocation; `None` if it crashed (the future is dropped where it
    /// stood: every effect before stays, nothing after happens).
    pub async fn run<T>(self: &Arc<Self>, fut: impl Future<Output = T>) -> Option<T> {
        let me = self.clone();
        ACTOR
            .scope(me, async {
                tokio::select! {
                    biased;
                    _ = self.crashed.notified() => None,
                    out = fut => Some(out),
                }
            })
            .await
    }

    fn crash(&self) {
        self.dead.store(true, Ordering::SeqCst);
        self.crashed.notify_one();
    }
}

/// What happens to one port call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The call goes through.
    Proceed,
    /// The call fails and has no effect.
    FailBefore,
    /// The call takes effect but the caller sees a failure (a timeout).
    FailAfter,
    /// The invocation dies before the call.
    CrashBefore,
    /// The invocation dies after the call took effect.
    CrashAfter,
}

/// Counts of what was injected.
#[derive(Debug, Default)]
pub struct Injected {
    /// Calls seen.
    pub calls: AtomicU64,
    /// Failures (before or after the effect).
    pub failures: AtomicU64,
    /// Crashes (including deadline kills).
    pub crashes: AtomicU64,
    /// Clock jumps.
    pub delays: AtomicU64,
}

/// The injector, shared by every wrapper of one schedule.
pub struct Chaos {
    rng: Mutex<StdRng>,
    /// Faults are injected only while this is set (the heal phase turns it off).
    pub enabled: AtomicBool,
    /// Probability that a call is disturbed at all.
    pub rate: f64,
    /// The simulated clock.
    pub clock: Arc<ManualClock>,
    /// What was injected.
    pub injected: Injected,
    trace: Mutex<Vec<String>>,
    violations: Mutex<Vec<String>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Chaos {
    /// An injector drawing from `seed`.
    pub fn new(seed: u64, rate: f64, clock: Arc<ManualClock>) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            enabled: AtomicBool::new(true),
            rate,
            clock,
            injected: Injected::default(),
            trace: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        }
    }

    /// Records a broken invariant seen while the schedule runs.
    pub fn violation(&self, what: impl Into<String>) {
        let what = what.into();
        self.note(format!("VIOLATION: {what}"));
        locked(&self.violations).push(what);
    }

    /// The invariants broken so far.
    pub fn violations(&self) -> Vec<String> {
        locked(&self.violations).clone()
    }

    /// Draws from the schedule's random source.
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut locked(&self.rng))
    }

    /// Notes a line in the schedule's trace (printed when an invariant breaks).
    pub fn note(&self, line: impl Into<String>) {
        let mut t = locked(&self.trace);
        if t.len() < 4000 {
            t.push(format!("t={} {}", self.clock.now_ms(), line.into()));
        }
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<String> {
        locked(&self.trace).clone()
    }

    /// Decides the fate of call `op`: yields to let other actors run, maybe jumps the
    /// clock, and kills the invocation if its deadline has passed.
    pub async fn before(&self, op: &str) -> Action {
        self.injected.calls.fetch_add(1, Ordering::Relaxed);
        let on = self.enabled.load(Ordering::SeqCst);
        let (yields, delay_ms, action) = self.with_rng(|rng| {
            let yields = rng.random_range(0..3u32);
            if !on || !rng.random_bool(self.rate) {
                return (yields, 0, Action::Proceed);
            }
            match rng.random_range(0..10u32) {
                0..=2 => (yields, 0, Action::FailBefore),
                3..=4 => (yields, 0, Action::FailAfter),
                5..=7 => (yields, rng.random_range(100..90_000i64), Action::Proceed),
                8 => (yields, 0, Action::CrashBefore),
                _ => (yields, 0, Action::CrashAfter),
            }
        });
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        if delay_ms > 0 {
            self.injected.delays.fetch_add(1, Ordering::Relaxed);
            self.clock.advance(time::Duration::milliseconds(delay_ms));
        }
        let past_deadline = ACTOR.try_with(|a| self.clock.now_ms() > a.deadline_ms).unwrap_or(false);
        let action = if past_deadline { Action::CrashBefore } else { action };
        match action {
            Action::Proceed => {}
            Action::FailBefore | Action::FailAfter => {
                self.injected.failures.fetch_add(1, Ordering::Relaxed);
            }
            Action::CrashBefore | Action::CrashAfter => {
                self.injected.crashes.fetch_add(1, Ordering::Relaxed);
            }
        }
        if action != Action::Proceed || delay_ms > 0 {
            self.note(format!(
                "{op}: {action:?}{}",
                if delay_ms > 0 { format!(" after {delay_ms} ms") } else { String::new() }
            ));
        }
        action
    }

    /// Ends the calling invocation: never returns.
    pub async fn crash<T>(&self) -> T {
        let _ = ACTOR.try_with(|a| a.crash());
        std::future::pending().await
    }

    /// Runs one port call under the injector: `effect` is the real call, `fail` the error
    /// the caller sees for an injected failure.
    pub async fn call<T, E>(
        &self,
        op: &str,
        effect: impl Future<Output = Result<T, E>>,
        fail: impl FnOnce(String) -> E,
    ) -> Result<T, E> {
        match self.before(op).await {
            Action::Proceed => effect.await,
            Action::FailBefore => Err(fail(format!("injected: {op} failed"))),
            Action::FailAfter => {
                let _ = effect.await;
                Err(fail(format!("injected: {op} timed out after taking effect")))
            }
            Action::CrashBefore => self.crash().await,
            Action::CrashAfter => {
                let _ = effect.await;
                self.crash().await
            }
        }
    }
}
