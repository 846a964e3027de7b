//! `genhook dev`: the whole pipeline in one process. The receiver serves HTTP on a local
//! port through the Lambda's own handler code; the worker consumes the inbox the way
//! Lambda's event source mapping does; published events are printed as JSON lines.
//! State lives in the embedded SQLite file (or DynamoDB + SQS with `--aws`), so a
//! restart loses nothing that was acknowledged.

mod consumer;
mod demo;
mod printer;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use genhook::config::worker_settings;
use genhook::domain::backoff::Backoff;
use genhook::domain::clock::SystemClock;
use genhook::engine::worker::{BatchReport, WorkerPorts, WorkerSettings};
use genhook::ports::env::{ConfigError, Env};
use genhook::providers::katalo::ROUTE as KATALO_ROUTE;
use tokio::sync::watch;

use crate::backend::{BackendArgs, BackendError};
use crate::simulate::{ApiOptions, KataloSimulator, SIM_API_KEY, SimulateError};
pub use printer::PrintingOutbox;
pub use server::ReceiverStats;

/// The signing secret `genhook dev` uses when KATALO_WEBHOOK_SECRET is unset (local only).
pub const DEV_WEBHOOK_SECRET: &str = "whsec_genhook_dev_local";
/// The APIMP callback key `genhook dev` uses when APIMP_CALLBACK_SECRET is unset (local only).
pub const DEV_APIMP_CALLBACK_SECRET: &str = "apimp_genhook_dev_local";
/// The Replicate webhook secret `genhook dev` uses when REPLICATE_WEBHOOK_SECRET is unset
/// (local only; a Standard Webhooks `whsec_` key).
pub const DEV_REPLICATE_WEBHOOK_SECRET: &str = "whsec_Z2VuaG9va19kZXZfcmVwbGljYXRlX2xvY2Fs";
/// The output links' key `genhook dev` uses when GENHOOK_LINK_SECRET is unset (local only).
pub const DEV_LINK_SECRET: &str = "links_genhook_dev_local";

/// `genhook dev` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  genhook dev                      # embedded store, built-in Katalo simulator
  genhook dev --demo               # push a burst of simulated webhooks through, print a summary, exit
  genhook dev --aws                # DynamoDB + SQS (AWS_ENDPOINT_URL or GENHOOK_TABLE / *_QUEUE_URL)
  genhook trigger completed --url http://127.0.0.1:8080/webhooks/katalo --secret whsec_genhook_dev_local")]
pub struct DevArgs {
    /// Address the receiver listens on (port 0 picks a free one) [default:
    /// 127.0.0.1:8080, or a free port with --demo].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Deliver a burst of simulated Katalo webhooks (with duplicates, forgeries and
    /// failed jobs) to this receiver, wait until every one is reconciled, print a
    /// summary and exit.
    #[arg(long)]
    pub demo: bool,
    /// How many jobs the demo delivers.
    #[arg(long, default_value_t = 8, requires = "demo")]
    pub demo_jobs: u32,
}

/// What can stop `genhook dev`.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The backend cannot be opened.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A variable is wrong.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The port is taken.
    #[error("cannot listen on {addr}: {source} (is another genhook dev running? pass --listen 127.0.0.1:0)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The built-in simulator failed.
    #[error(transparent)]
    Simulator(#[from] SimulateError),
    /// The demo's deliveries were not all reconciled.
    #[error("the demo did not finish: {0}")]
    Demo(String),
}

/// Counts of what the worker did, over all batches.
#[derive(Debug, Default, Clone)]
pub struct WorkerTotals {
    /// Events published.
    pub published: usize,
    /// Records with nothing left to do.
    pub skipped: usize,
    /// Attempts scheduled for later.
    pub retried: usize,
    /// Records sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Polls of watched jobs and tasks scheduled.
    pub polls_scheduled: usize,
    /// Jobs given up on (a `generation.abandoned` published, the message dead-lettered).
    pub abandoned: usize,
}

impl WorkerTotals {
    fn add(&mut self, r: &BatchReport) {
        self.published += r.published;
        self.skipped += r.skipped;
        self.retried += r.retried;
        self.dead_lettered += r.dead_lettered;
        self.polls_scheduled += r.rescheduled;
        self.abandoned += r.abandoned;
    }
}

/// The running pipeline.
pub struct Running {
    /// The webhook URL.
    pub webhook_url: String,
    /// The signing secret in use.
    pub secret: String,
    /// The receiver's counters.
    pub receiver: Arc<ReceiverStats>,
    /// The worker's counters.
    pub worker: Arc<std::sync::Mutex<WorkerTotals>>,
    /// The built-in simulator, when no API key is configured.
    pub simulator: Option<KataloSimulator>,
    /// The inbox (to see when it is drained).
    pub inbox: Arc<dyn genhook::ports::QueueConsumer>,
    /// The inbox, for sending (APIMP registrations).
    pub inbox_queue: Arc<dyn genhook::ports::Queue>,
    /// The receiver's root URL (`http://addr`), for minting APIMP callback URLs.
    pub base_url: String,
    /// The APIMP callback URLs' key in use.
    pub apimp_callback_secret: String,
    /// The Replicate webhook secret in use.
    pub replicate_secret: String,
    /// The outbox as the worker sees it (it remembers the first output link).
    pub outbox: Arc<PrintingOutbox>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops receiving, lets the batch in progress finish, and waits for both loops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// A provider API on this machine (the built-in simulator, `genhook simulate`) serves its
/// output files itself, over plain http: unless configured, the provider's outputs may
/// point there as well as to its default hosts (see the output hosts in
/// docs/configuration.md).
fn local_output_hosts(env: Env) -> Env {
    use genhook::providers::{apimp, katalo, replicate};
    let providers = [
        ("KATALO_API_BASE_URL", "KATALO_OUTPUT_HOSTS", katalo::OUTPUT_HOSTS),
        ("APIMP_API_BASE_URL", "APIMP_OUTPUT_HOSTS", apimp::OUTPUT_HOSTS),
        ("REPLICATE_API_BASE_URL", "REPLICATE_OUTPUT_HOSTS", replicate::OUTPUT_HOSTS),
    ];
    let local: Vec<(&str, String)> = providers
        .into_iter()
        .filter_map(|(api, hosts, defaults)| {
            let url = url::Url::parse(&env.optional(api)?).ok()?;
            let loopback = match url.host()? {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            };
            loopback.then(|| (hosts, format!("{},{}", url.origin().ascii_serialization(), defaults.join(","))))
        })
        .collect();
    env.or_defaults(local)
}

/// Starts the receiver and the worker, built by the same composition root as the
/// Lambdas ([`genhook::config`]) from the process environment with local defaults: the
/// built-in simulator for the provider APIs whose keys are unset (always, with `--demo`)
/// and local webhook secrets.
pub async fn start(args: &DevArgs) -> Result<Running, DevError> {
    let backend = args.backend.open().await?;
    let mut env = Env::process();
    let clock = Arc::new(SystemClock);

    // The demo's jobs exist only in the simulator, so it always uses one.
    let simulator = if args.demo || env.optional("KATALO_API_KEY").is_none() {
        // The demo also has the API fail now and then, to show the worker's retries.
        let error_rate = if args.demo { 0.2 } else { 0.0 };
        let opts = ApiOptions { adopt_unknown_jobs: true, error_rate, ..ApiOptions::default() };
        let sim = KataloSimulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await?;
        eprintln!("genhook dev: no KATALO_API_KEY, so jobs are read from the built-in simulator at {}", sim.base_url());
        let apimp_configured = env.optional("APIMP_API_KEY").is_some();
        let mut over = vec![
            ("KATALO_API_KEY", SIM_API_KEY.to_string()),
            ("KATALO_API_BASE_URL", sim.base_url()),
            ("KATALO_API_MAX_RPS", "1000".to_string()),
        ];
        if !apimp_configured {
            over.extend([
                ("APIMP_API_KEY", SIM_API_KEY.to_string()),
                ("APIMP_API_BASE_URL", sim.base_url()),
                ("APIMP_API_MAX_RPS", "1000".to_string()),
            ]);
        }
        // The simulator's jobs are also Replicate predictions (`GET /v1/predictions/{id}`).
        if env.optional("REPLICATE_API_TOKEN").is_none() {
            over.extend([
                ("REPLICATE_API_TOKEN", SIM_API_KEY.to_string()),
                ("REPLICATE_API_BASE_URL", sim.base_url()),
                ("REPLICATE_API_MAX_RPS", "1000".to_string()),
            ]);
        }
        env = env.overlaid(over);
        Some(sim)
    } else {
        let base = env.http_url("KATALO_API_BASE_URL", Some(genhook::providers::katalo::api::DEFAULT_BASE_URL))?;
        eprintln!("genhook dev: provider API {}", genhook::toolkit::http::redact::redact(&base));
        None
    };
    let env = local_output_hosts(env);
    // Local webhook secrets unless configured; APIMP callbacks are always on locally.
    let env = env.or_defaults([
        ("KATALO_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET),
        ("APIMP_CALLBACK_SECRET", DEV_APIMP_CALLBACK_SECRET),
        ("REPLICATE_WEBHOOK_SECRET", DEV_REPLICATE_WEBHOOK_SECRET),
    ]);
    let secret = env.required("KATALO_WEBHOOK_SECRET")?;
    let replicate_secret = env.required("REPLICATE_WEBHOOK_SECRET")?;
    let apimp_callback_secret = env.required("APIMP_CALLBACK_SECRET")?;
    let receiver =
        Arc::new(genhook::config::receiver(&env, backend.store.clone(), backend.inbox.clone(), clock.clone())?);

    let listen = args.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], if args.demo { 0 } else { 8080 })));
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| DevError::Listen { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| DevError::Listen { addr: listen, source })?;
    // Output links point at this server unless GENHOOK_PUBLIC_URL says otherwise (a tunnel).
    let env = env.or_defaults([
        ("GENHOOK_LINK_SECRET", DEV_LINK_SECRET.to_string()),
        ("GENHOOK_PUBLIC_URL", format!("http://{addr}")),
    ]);
    let links =
        Arc::new(genhook::config::link_service(&env, backend.links.clone(), backend.watches.clone(), clock.clone())?);

    let visibility = Duration::from_secs(args.backend.visibility_timeout_secs.into());
    let defaults = WorkerSettings {
        // Local runs retry sooner than the deployed defaults (10 s doubling to 15 min).
        backoff: Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(30), jitter: true },
        // A crashed run's lease is over by the time its message is visible again.
        lease: visibility,
        ..WorkerSettings::default()
    };
    let outbox = Arc::new(PrintingOutbox::new(backend.outbox.clone()));
    let ports = WorkerPorts {
        store: backend.store.clone(),
        inbox: backend.inbox.clone(),
        inbox_dlq: Some(backend.inbox_dlq.clone()),
        outbox: outbox.clone(),
        clock,
    };
    let worker =
        Arc::new(genhook::config::worker(&env, ports, backend.watches.clone(), worker_settings(&env, defaults)?)?);

    let webhook_url = format!("http://{addr}{KATALO_ROUTE}");
    eprintln!("genhook dev: state in {}", backend.description);
    eprintln!("genhook dev: receiving Katalo webhooks at {webhook_url}");
    eprintln!(
        "genhook dev: receiving APIMP callbacks at http://{addr}/webhooks/apimp/{{kling|doubao|minimax|vidu}} (genhook callback-url --base-url http://{addr})"
    );
    eprintln!("genhook dev: receiving Replicate webhooks at http://{addr}/webhooks/replicate");
    if replicate_secret == DEV_REPLICATE_WEBHOOK_SECRET {
        eprintln!(
            "genhook dev: REPLICATE_WEBHOOK_SECRET is unset; deliveries must be signed with {DEV_REPLICATE_WEBHOOK_SECRET}"
        );
    }
    if apimp_callback_secret == DEV_APIMP_CALLBACK_SECRET {
        eprintln!(
            "genhook dev: APIMP_CALLBACK_SECRET is unset; callback URLs are minted with {DEV_APIMP_CALLBACK_SECRET}"
        );
    }
    eprintln!(
        "genhook dev: serving output links at {}/outputs/{{provider}}/{{job_id}}/{{index}}",
        env.optional("GENHOOK_PUBLIC_URL").unwrap_or_default().trim_end_matches('/')
    );
    if secret == DEV_WEBHOOK_SECRET {
        eprintln!("genhook dev: KATALO_WEBHOOK_SECRET is unset; deliveries must be signed with {DEV_WEBHOOK_SECRET}");
    }

    let (stop, stop_rx) = watch::channel(false);
    let stats = Arc::new(ReceiverStats::default());
    let totals = Arc::new(std::sync::Mutex::new(WorkerTotals::default()));
    let server_task = {
        let (receiver, stats, stop_rx) = (receiver.clone(), stats.clone(), stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = server::serve(listener, receiver, links, stats, stop_rx).await {
                eprintln!("genhook dev: the HTTP server stopped: {e}");
            }
        })
    };
    let worker_task = {
        let (source, totals) = (backend.inbox_consumer.clone(), totals.clone());
        tokio::spawn(consumer::run(source, worker, stop_rx, move |r| {
            totals.lock().expect("totals lock").add(r);
        }))
    };
    Ok(Running {
        webhook_url,
        secret,
        receiver: stats,
        worker: totals,
        simulator,
        inbox: backend.inbox_consumer,
        inbox_queue: backend.inbox,
        base_url: format!("http://{addr}"),
        apimp_callback_secret,
        replicate_secret,
        outbox,
        stop,
        tasks: vec![server_task, worker_task],
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs `genhook dev`.
pub async fn run(args: DevArgs) -> Result<ExitCode, DevError> {
    let running = start(&args).await?;
    if args.demo {
        let result = demo::run(&running, args.demo_jobs).await;
        running.shutdown().await;
        return result;
    }
    eprintln!("genhook dev: ready; published events print below as JSON lines (Ctrl-C stops)");
    shutdown_signal().await;
    eprintln!("genhook dev: stopping (the batch in progress finishes first)");
    let (receiver, worker) = (running.receiver.clone(), running.worker.clone());
    running.shutdown().await;
    eprintln!("{}", summary(&receiver, &worker.lock().expect("totals lock")));
    Ok(ExitCode::SUCCESS)
}

/// The end-of-run summary.
pub fn summary(r: &ReceiverStats, w: &WorkerTotals) -> String {
    let get = ReceiverStats::get;
    format!(
        "genhook dev summary\n  receiver: {} accepted, {} duplicates acknowledged, {} rejected, {} answered 5xx\n  worker:   {} events published, {} retries scheduled, {} polls scheduled, {} dead-lettered ({} jobs abandoned), {} already done or dropped",
        get(&r.accepted),
        get(&r.duplicates),
        get(&r.rejected),
        get(&r.unavailable),
        w.published,
        w.retried,
        w.polls_scheduled,
        w.dead_lettered,
        w.abandoned,
        w.skipped
    )
}
