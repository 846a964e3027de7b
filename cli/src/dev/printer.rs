//! The outbox as `genhook dev` runs it: every event the worker publishes is also printed
//! to standard output as one JSON line.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use genhook::ports::{OutgoingMessage, Queue, QueueError};

/// An outbox that prints what it accepts, and remembers the first output link it saw.
pub struct PrintingOutbox {
    inner: Arc<dyn Queue>,
    first_link: Mutex<Option<String>>,
}

impl PrintingOutbox {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Queue>) -> Self {
        Self { inner, first_link: Mutex::new(None) }
    }

    /// The `link` of the first published output that had one.
    pub fn first_link(&self) -> Option<String> {
        self.first_link.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn print(&self, body: &str) {
        let mut first = self.first_link.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|e| e.pointer("/outputs/0/link")?.as_str().map(String::from));
        }
        drop(first);
        let mut out = std::io::stdout().lock();
        // The event JSON is one line already; a closed stdout must not stop the pipeline.
        let _ = writeln!(out, "{body}").and_then(|()| out.flush());
    }
}

#[async_trait]
impl Queue for PrintingOutbox {
    async fn send(&self, msg: OutgoingMessage) -> Result<String, QueueError> {
        let body = msg.body.clone();
        let id = self.inner.send(msg).await?;
        self.print(&body);
        Ok(id)
    }

    async fn send_batch(&self, msgs: Vec<OutgoingMessage>) -> Vec<Result<String, QueueError>> {
        let bodies: Vec<String> = msgs.iter().map(|m| m.body.clone()).collect();
        let results = self.inner.send_batch(msgs).await;
        for (body, result) in bodies.iter().zip(&results) {
            if result.is_ok() {
                self.print(body);
            }
        }
        results
    }

    async fn delay_retries(&self, retries: Vec<(String, Duration)>) -> Result<(), QueueError> {
        self.inner.delay_retries(retries).await
    }
}
