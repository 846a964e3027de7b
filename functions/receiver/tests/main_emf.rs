//! The built `receiver` binary against a fake Lambda Runtime API: after each invocation
//! its standard output carries the EMF documents of what it recorded, each on its own
//! line beside the logs, and the cold start only after the first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// An API Gateway (HTTP API) event: `method` on `path` with an unsigned body, which the
/// receiver refuses before any store or queue call (so the test needs no AWS).
fn apigw_event(method: &str, path: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api1234", "domainName": "api1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api1234", "requestId": "req-main", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795435200000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "t"}
        },
        "body": "{}",
        "isBase64Encoded": false
    })
    .to_string()
}

/// One HTTP/1.1 request off a keep-alive connection: its request line and body.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((line.trim().to_string(), body))
}

/// Serves the Runtime API: hands out `events` in turn (then holds the next request
/// open), and reports each request line on `seen`.
fn serve_runtime_api(listener: TcpListener, events: Vec<String>, seen: mpsc::Sender<String>) {
    let mut events = events.into_iter().enumerate();
    for stream in listener.incoming() {
        let mut stream = stream.unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        while let Some((line, _)) = read_request(&mut reader) {
            let _ = seen.send(line.clone());
            if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                let Some((i, event)) = events.next() else {
                    std::thread::sleep(Duration::from_secs(60));
                    return;
                };
                let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 10_000;
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-{i}\r\n\
                     lambda-runtime-deadline-ms: {deadline}\r\n\
                     lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:receiver\r\n\
                     lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\
                     content-length: {}\r\n\r\n{event}",
                    event.len()
                )
                .unwrap();
            } else {
                write!(stream, "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{{}}").unwrap();
            }
        }
    }
}

#[test]
fn the_binary_prints_emf_after_each_invocation() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let (seen, lines) = mpsc::channel();
    let events = vec![apigw_event("POST", "/nowhere"), apigw_event("POST", "/webhooks/katalo")];
    std::thread::spawn(move || serve_runtime_api(listener, events, seen));

    let mut child = Command::new(env!("CARGO_BIN_EXE_receiver"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "receiver"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("GENHOOK_TABLE", "t"),
            ("GENHOOK_INBOX_QUEUE_URL", "http://127.0.0.1:9/q"),
            ("KATALO_WEBHOOK_SECRET", "whsec_main_emf_0001"),
            ("GENHOOK_METRICS_NAMESPACE", "genhook/main-test"),
            ("RUST_LOG", "info"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both invocations are answered (and so flushed) once the third `next` comes.
    let mut nexts = 0;
    while nexts < 3 {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("the runtime keeps polling");
        nexts += usize::from(line.contains("/invocation/next"));
    }
    child.kill().unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let _ = child.wait();

    let docs: Vec<Value> = stdout
        .lines()
        .filter(|l| l.starts_with("{\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("a whole EMF document per line"))
        .collect();
    let summary: Vec<(String, Value, Value)> = docs
        .iter()
        .map(|d| {
            let directive = &d["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "genhook/main-test");
            let name = directive["Metrics"][0]["Name"].as_str().unwrap().to_string();
            let dims: serde_json::Map<String, Value> = directive["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| (k.as_str().unwrap().to_string(), d[k.as_str().unwrap()].clone()))
                .collect();
            let value = d[&name].clone();
            (name, Value::Object(dims), value)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("cold_starts".into(), json!({"function": "receiver"}), json!(1)),
            ("deliveries_rejected".into(), json!({"provider": "unknown", "reason": "not_found"}), json!(1)),
            ("deliveries_rejected".into(), json!({"provider": "katalo", "reason": "bad_signature"}), json!(1)),
        ],
        "stdout:\n{stdout}"
    );
    // The refusal was logged on the same stream, on lines of its own.
    assert!(stdout.lines().any(|l| l.contains("rejected: signature") && !l.contains("_aws")), "stdout:\n{stdout}");
}
