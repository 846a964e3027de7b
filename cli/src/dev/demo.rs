//! `genhook dev --demo`: the simulator delivers a burst of signed webhooks (duplicates,
//! forgeries, failed jobs, reordering) to the running receiver; the run ends when the
//! inbox is drained and every job's event is out.

use std::process::ExitCode;
use std::time::Duration;

use super::{DevError, Running, summary};
use crate::simulate::{DeliveryOptions, deliver};

/// How long the pipeline may take to drain after the last delivery.
const DRAIN_BUDGET: Duration = Duration::from_secs(90);

/// Runs the demo against `running`; exit code 0 when every job was published once.
pub async fn run(running: &Running, jobs: u32) -> Result<ExitCode, DevError> {
    let sim = running.simulator.as_ref().ok_or_else(|| DevError::Demo("the demo needs the simulator".into()))?;
    let opts = DeliveryOptions {
        url: running.webhook_url.clone(),
        secret: running.secret.clone(),
        jobs,
        fail_rate: 0.25,
        duplicate_rate: 0.5,
        forged: 2,
        reorder: true,
        max_delay: Duration::from_millis(300),
        max_attempts: 6,
        retry_base: Duration::from_millis(200),
        concurrency: 4,
        progress: true,
    };
    eprintln!(
        "genhook dev --demo: {jobs} simulated jobs; their signed webhooks arrive reordered, some twice, plus {} forged deliveries",
        opts.forged
    );
    let delivered = deliver(sim, &opts).await?;
    eprintln!("\nDeliveries (simulated provider's view)\n{delivered}");

    let deadline = tokio::time::Instant::now() + DRAIN_BUDGET;
    loop {
        let depth = running.inbox.depth().await.map_err(|e| DevError::Demo(e.to_string()))?;
        if depth == 0 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DevError::Demo(format!("{depth} messages still in the inbox after {DRAIN_BUDGET:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let totals = running.worker.lock().expect("totals lock").clone();
    eprintln!("{}", summary(&running.receiver, &totals));
    let ok = delivered.gave_up == 0 && totals.published == jobs as usize && totals.dead_lettered == 0;
    if ok {
        eprintln!("genhook dev --demo: every job was reconciled and published exactly once");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(DevError::Demo(format!(
            "expected {jobs} events, published {} ({} dead-lettered, {} deliveries given up)",
            totals.published, totals.dead_lettered, delivered.gave_up
        )))
    }
}
