//! A fault-injecting TCP proxy to put in front of DynamoDB Local or the SQS emulator.
//!
//! The SDKs speak HTTP/1.1 on keep-alive connections, one request at a time per
//! connection. The proxy reads each request (head, then a `Content-Length` or chunked
//! body), names its operation from the `X-Amz-Target` header (`DynamoDB_20120810.PutItem`
//! → `PutItem`, `AmazonSQS.SendMessage` → `SendMessage`), and applies the first matching
//! [`Rule`]: pass it through, refuse it (close the connection: the service is down), drop
//! it (never answer), hold it until a [`Gate`] opens, or forward it and hold the response
//! back (the effect happens server-side, the client times out). Everything it does is
//! recorded, and tests wait on that record ([`FaultProxy::wait_for`]) rather than on
//! sleeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use genhook_cli::simulate::script::Gate;

/// What the proxy does with a request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Forward it and relay the response.
    Pass,
    /// Close the client's connection without forwarding anything (the service is down).
    Refuse,
    /// Accept it and never forward or answer it; the connection stays open until the
    /// client gives up.
    Drop,
    /// Forward it, then hold the response back this long (or until the client hangs up)
    /// before relaying it: the effect happens, the client sees a timeout.
    DelayResponse(Duration),
    /// Hold the request until the gate opens, then forward it as [`Action::Pass`] does,
    /// even if the client has given up meanwhile (a request in flight still lands).
    Hold(Gate),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Refuse => "refuse",
            Action::Drop => "drop",
            Action::DelayResponse(_) => "delay-response",
            Action::Hold(_) => "hold",
        }
    }
}

/// A rule: requests for an operation (or every request), an action, and how many
/// requests it applies to before it is used up.
#[derive(Clone, Debug)]
pub struct Rule {
    op: Option<String>,
    action: Action,
    times: Option<usize>,
}

impl Rule {
    /// A rule for one operation (`PutItem`, `SendMessage`, ...; the `X-Amz-Target` suffix).
    pub fn op(op: &str, action: Action) -> Self {
        Self { op: Some(op.to_string()), action, times: None }
    }

    /// A rule for every request.
    pub fn any(action: Action) -> Self {
        Self { op: None, action, times: None }
    }

    /// Applies to the next `n` matching requests only (default: all of them).
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, op: &str) -> bool {
        self.times != Some(0) && self.op.as_deref().is_none_or(|o| o == op)
    }
}

/// What happened to a request, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The request was read and an action chosen.
    Received,
    /// The connection was closed instead of forwarding it ([`Action::Refuse`]).
    Refused,
    /// The request was sent to the emulator.
    Forwarded,
    /// The emulator's whole response was read: the effect has happened.
    Answered,
    /// The response reached the client.
    Delivered,
}

/// One entry of the proxy's record.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The client connection (numbered from 1).
    pub conn: u64,
    /// The operation (`-` when the request had no `X-Amz-Target`).
    pub op: String,
    /// The action chosen for it.
    pub action: &'static str,
    /// What happened.
    pub stage: Stage,
    /// The emulator's status code, from [`Stage::Answered`] on.
    pub status: Option<u16>,
}

struct Shared {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Entry>>,
    changed: watch::Sender<u64>,
}

impl Shared {
    /// The action for `op`, using up one application of a counted rule.
    fn action(&self, op: &str) -> Action {
        let mut rules = self.rules.lock().unwrap();
        match rules.iter_mut().find(|r| r.matches(op)) {
            Some(rule) => {
                if let Some(n) = &mut rule.times {
                    *n -= 1;
                }
                rule.action.clone()
            }
            None => Action::Pass,
        }
    }

    fn record(&self, conn: u64, op: &str, action: &Action, stage: Stage, status: Option<u16>) {
        self.log.lock().unwrap().push(Entry { conn, op: op.to_string(), action: action.name(), stage, status });
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A running proxy; it stops with the test's runtime.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port in front of `upstream`
    /// (`http://host:port`, as in `AWS_ENDPOINT_URL_*`). With no rules it passes
    /// everything through.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy speaks plain HTTP; upstream {upstream:?}"))
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared =
            Arc::new(Shared { upstream, rules: Mutex::default(), log: Mutex::default(), changed: watch::channel(0).0 });
        let accept = shared.clone();
        tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((client, _)) = listener.accept().await {
                conn += 1;
                let _ = client.set_nodelay(true);
                tokio::spawn(serve(conn, client, accept.clone()));
            }
        });
        Self { url, shared }
    }

    /// The endpoint URL to give the SDK client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Appends a rule; the first rule that matches a request (and is not used up) decides.
    pub fn add(&self, rule: Rule) -> &Self {
        self.shared.rules.lock().unwrap().push(rule);
        self
    }

    /// Removes every rule: everything passes again.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// The record so far.
    pub fn log(&self) -> Vec<Entry> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests for `op` (`"*"`: any) reached `stage`.
    pub fn count(&self, op: &str, stage: Stage) -> usize {
        count(&self.shared.log.lock().unwrap(), op, stage)
    }

    /// Waits until `n` requests for `op` (`"*"`: any) have reached `stage`; fails the
    /// test, showing the record, after 15 s.
    pub async fn wait_for(&self, op: &str, stage: Stage, n: usize) {
        let mut rx = self.shared.changed.subscribe();
        let reached = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                if count(&self.shared.log.lock().unwrap(), op, stage) >= n {
                    return;
                }
                rx.changed().await.expect("the sender lives in self");
            }
        })
        .await;
        assert!(reached.is_ok(), "{n} × {op} never reached {stage:?}; proxy record: {:#?}", self.log());
    }
}

fn count(log: &[Entry], op: &str, stage: Stage) -> usize {
    log.iter().filter(|e| e.stage == stage && (op == "*" || e.op == op)).count()
}

/// One client connection: read a request, act on it, repeat.
async fn serve(conn: u64, client: TcpStream, shared: Arc<Shared>) {
    let mut client = Framed::new(client);
    let mut upstream: Option<Framed> = None;
    loop {
        let Ok(Some(request)) = client.read_message(Kind::Request).await else { return };
        let op = request
            .header("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| "-".into());
        let action = shared.action(&op);
        shared.record(conn, &op, &action, Stage::Received, None);
        let delay = match &action {
            Action::Pass => None,
            Action::Refuse => {
                shared.record(conn, &op, &action, Stage::Refused, None);
                return;
            }
            Action::Drop => {
                client.wait_closed(None).await;
                return;
            }
            Action::DelayResponse(d) => Some(*d),
            Action::Hold(gate) => {
                gate.wait().await;
                None
            }
        };
        // Forward, on this client connection's own emulator connection.
        if upstream.is_none() {
            match TcpStream::connect(&shared.upstream).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    upstream = Some(Framed::new(s));
                }
                Err(_) => return,
            }
        }
        let up = upstream.as_mut().unwrap();
        if up.stream.write_all(&request.raw).await.is_err() {
            return;
        }
        shared.record(conn, &op, &action, Stage::Forwarded, None);
        let Ok(Some(response)) = up.read_message(Kind::Response).await else { return };
        shared.record(conn, &op, &action, Stage::Answered, response.status);
        if let Some(d) = delay
            && !client.wait_closed(Some(d)).await
        {
            return;
        }
        if client.stream.write_all(&response.raw).await.is_err() {
            return;
        }
        shared.record(conn, &op, &action, Stage::Delivered, response.status);
        if response.close || request.close {
            return;
        }
        if response.upstream_closed {
            upstream = None;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

/// One HTTP/1.1 message, byte for byte.
struct Message {
    raw: Vec<u8>,
    headers: Vec<(String, String)>,
    status: Option<u16>,
    /// `Connection: close` was asked for.
    close: bool,
    /// The body ran to the end of the connection.
    upstream_closed: bool,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A connection with a read buffer.
struct Framed {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Framed {
    fn new(stream: TcpStream) -> Self {
        Self { stream, buf: Vec::new() }
    }

    /// Reads more bytes into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Waits for the peer to close the connection, or `limit` to pass (`None`: no limit);
    /// `true` if the time ran out with the peer still there.
    async fn wait_closed(&mut self, limit: Option<Duration>) -> bool {
        let deadline = limit.map(|d| Instant::now() + d);
        loop {
            let read = self.fill();
            let done = match deadline {
                Some(at) => match tokio::time::timeout_at(at, read).await {
                    Err(_) => return true,
                    Ok(r) => r,
                },
                None => read.await,
            };
            if !matches!(done, Ok(true)) {
                return false;
            }
        }
    }

    /// Takes `n` buffered-or-read bytes.
    async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (with its CRLF).
    async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..i + 2).collect());
            }
            if !self.fill().await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads one message; `None` when the peer closed the connection between messages.
    async fn read_message(&mut self, kind: Kind) -> std::io::Result<Option<Message>> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill().await? {
                return if self.buf.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
            }
        };
        let mut raw: Vec<u8> = self.buf.drain(..head_end).collect();
        let head = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let status = match kind {
            Kind::Response => start.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()),
            Kind::Request => None,
        };
        let mut msg = Message { raw: Vec::new(), headers, status, close: false, upstream_closed: false };
        msg.close = msg.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let chunked = msg.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = msg.header("content-length").and_then(|v| v.parse::<usize>().ok());
        if chunked {
            loop {
                let size_line = self.line().await?;
                raw.extend_from_slice(&size_line);
                let text = String::from_utf8_lossy(&size_line);
                let size = usize::from_str_radix(text.trim().split(';').next().unwrap_or("0").trim(), 16)
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        let l = self.line().await?;
                        raw.extend_from_slice(&l);
                        if l == b"\r\n" {
                            break;
                        }
                    }
                    break;
                }
                raw.extend(self.take(size + 2).await?);
            }
        } else if let Some(n) = length {
            raw.extend(self.take(n).await?);
        } else if kind == Kind::Response && !matches!(status, Some(100..=199 | 204 | 304)) {
            // No length: the body runs to the end of the connection.
            while self.fill().await? {}
            raw.append(&mut self.buf);
            msg.upstream_closed = true;
            msg.close = true;
        }
        msg.raw = raw;
        Ok(Some(msg))
    }
}
