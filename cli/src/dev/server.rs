//! The receiver as a local HTTP server: every request goes through the same
//! [`Receiver::handle`] the Lambda calls, with the raw body bytes untouched; output
//! links (`/outputs/...`) go to the same [`LinkService::handle`] as their Lambda's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use genhook::domain::clock::{Clock, SystemClock, millis};
use genhook::engine::links::LinkService;
use genhook::engine::receiver::Receiver;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The largest body read (API Gateway's limit); the receiver's own limit answers 413 first.
const MAX_READ_BYTES: usize = 10 * 1024 * 1024;
/// The per-request budget, as a Lambda timeout would set it: it bounds the claim's lease.
const REQUEST_BUDGET: Duration = Duration::from_secs(10);

/// What the receiver answered, counted.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// New deliveries accepted and queued.
    pub accepted: AtomicU64,
    /// Deliveries acknowledged as duplicates.
    pub duplicates: AtomicU64,
    /// Deliveries refused (4xx: bad signature, bad payload, unknown route...).
    pub rejected: AtomicU64,
    /// Deliveries answered 5xx (the provider retries them).
    pub unavailable: AtomicU64,
}

impl ReceiverStats {
    fn count(&self, status: StatusCode, body: &str) {
        let counter = match status.as_u16() {
            200..=299 if body.contains("\"duplicate\":true") => &self.duplicates,
            200..=299 => &self.accepted,
            400..=499 => &self.rejected,
            _ => &self.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct App {
    receiver: Arc<Receiver>,
    links: Arc<LinkService>,
    stats: Arc<ReceiverStats>,
}

async fn link(State(app): State<App>, req: Request) -> Response {
    app.links.handle(req.method(), req.uri()).await.map(Body::from)
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_READ_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let message = format!("the body exceeds the {MAX_READ_BYTES} bytes a front end passes on");
            return genhook::engine::answer::error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message)
                .map(Body::from);
        }
    };
    let deadline_ms = SystemClock.now_ms().saturating_add(millis(REQUEST_BUDGET));
    let resp = app.receiver.handle(http::Request::from_parts(parts, bytes), Some(deadline_ms)).await;
    app.stats.count(resp.status(), resp.body());
    resp.map(Body::from)
}

/// Serves until `stop` turns true, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    receiver: Arc<Receiver>,
    links: Arc<LinkService>,
    stats: Arc<ReceiverStats>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(&format!("/{}/{{*link}}", genhook::toolkit::auth::link_token::ROUTE), any(link))
        .fallback(handle)
        .with_state(App { receiver, links, stats });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
