#!/usr/bin/env python3
"""Cold start of a Lambda `bootstrap`, measured against a fake Lambda Runtime API.

    python3 scripts/perf/coldstart.py --bin PATH --runs N [--event FILE [--event FILE2]]
        [--event-cmd CMD] [--env K=V ...] [--timeout SECS] [--log FILE]

Each run spawns the binary with a clean Lambda-like environment (runtime API address,
function name, memory size, region, fake credentials, plus the `--env` extras) and
measures:

- init: from the spawn to its first `GET /2018-06-01/runtime/invocation/next`;
- peak RSS: VmHWM from /proc/PID/status at that moment;
- with an event: the first and the second invocation, each from handing the event out
  to the function's POST of its response (or error).

`--event FILE` is served twice (given twice: the first file, then the second);
`--event-cmd CMD` runs CMD (a shell command, with RUN and INVOKE in its environment)
before each invocation and serves its standard output instead, e.g. a freshly signed
webhook, so the second invocation does the same work as the first.

genhook's functions open their DynamoDB/SQS connections during init (bounded by
GENHOOK_WARMUP_TIMEOUT_MS, default 1000): to time the process's own start, pass
`--env GENHOOK_WARMUP_TIMEOUT_MS=0`; without it and without reachable endpoints, init
includes those calls failing (up to the bound).

The last line of standard output is a JSON object: init_ms_median, init_ms_min,
hwm_mb_median, first_invoke_ms, second_invoke_ms (medians over the runs; null without an
event), and the per-run figures. Exit status 1 when a run fails to start or an
invocation answers with an error.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/2018-06-01/runtime"


class Run:
    """The state of one spawned process, shared with the server's handler threads."""

    def __init__(self, events):
        self.events = list(events)  # bytes, served in order
        self.pid = None
        self.spawned = None
        self.init_ms = None
        self.hwm_kb = None
        self.init_error = None
        self.wanted = len(self.events)
        self.handed_out = {}  # request id -> perf_counter at hand-out
        self.invoke_ms = []
        self.invoke_errors = []
        self.cond = threading.Condition()
        self.done = False


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-lambda-runtime"

    def log_message(self, *args):
        pass

    def _run(self):
        return self.server.current

    def _answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        now = time.perf_counter()
        run = self._run()
        if self.path != f"{API}/invocation/next" or run is None:
            self._answer(404)
            return
        with run.cond:
            if run.init_ms is None:
                run.init_ms = (now - run.spawned) * 1000
                run.hwm_kb = vm_hwm_kb(run.pid)
                run.cond.notify_all()
            event = run.events.pop(0) if run.events else None
            if event is None:
                # Nothing more to hand out: hold the call until the run ends.
                while not run.done:
                    run.cond.wait(0.5)
                return
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000) + 30_000
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:coldstart"),
            ("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"),
        ]
        with run.cond:
            run.handed_out[request_id] = time.perf_counter()
        self._answer(200, event, headers)

    def do_POST(self):
        now = time.perf_counter()
        run = self._run()
        body = self._body()
        parts = self.path[len(API) + 1 :].split("/") if self.path.startswith(API + "/") else []
        if run is None or not parts:
            self._answer(404)
            return
        if parts == ["init", "error"]:
            with run.cond:
                run.init_error = body.decode("utf-8", "replace")
                run.cond.notify_all()
            self._answer(202, b'{"status":"OK"}')
            return
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            with run.cond:
                started = run.handed_out.pop(parts[1], None)
                if started is not None:
                    run.invoke_ms.append((now - started) * 1000)
                if parts[2] == "error":
                    run.invoke_errors.append(body.decode("utf-8", "replace")[:500])
                run.cond.notify_all()
            self._answer(202, b'{"status":"OK"}')
            return
        self._answer(404)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    current = None

    def handle_error(self, request, client_address):
        # A function killed at the end of its run drops its held /next call.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def lambda_env(port, extras):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/coldstart",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/24/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIAFAKECOLDSTART000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret-access-key-for-the-cold-start-harness",
        "AWS_SESSION_TOKEN": "fake-session-token",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": "bootstrap",
    }
    env.update(extras)
    return env


def events_for(args, run_no):
    if args.event_cmd:
        out = []
        for invoke in (1, 2):
            env = dict(os.environ, RUN=str(run_no), INVOKE=str(invoke))
            out.append(subprocess.run(args.event_cmd, shell=True, check=True, capture_output=True, env=env).stdout)
        return out
    if args.event:
        files = args.event if len(args.event) > 1 else args.event * 2
        return [open(f, "rb").read() for f in files[:2]]
    return []


def one_run(server, args, env, run_no, log):
    run = Run(events_for(args, run_no))
    server.current = run
    with run.cond:
        run.spawned = time.perf_counter()
        proc = subprocess.Popen([args.bin], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        run.pid = proc.pid
        deadline = time.monotonic() + args.timeout
        wanted = run.wanted
        try:
            while True:
                started = run.init_ms is not None
                finished = started and len(run.invoke_ms) >= wanted
                if finished or run.init_error is not None or proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    break
                run.cond.wait(0.05)
        finally:
            run.done = True
            run.cond.notify_all()
    proc.kill()
    proc.wait()
    server.current = None
    return run


def median(xs):
    return round(statistics.median(xs), 2) if xs else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="the bootstrap binary")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--event", action="append", help="event JSON served to the invocations (at most twice)")
    p.add_argument("--event-cmd", help="shell command printing each invocation's event (RUN, INVOKE set)")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra environment variable")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds one run may take")
    p.add_argument("--log", help="append the function's output here (default: discarded)")
    args = p.parse_args()
    extras = {}
    for kv in args.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"--env wants K=V, got {kv!r}")
        extras[k] = v
    if args.event and len(args.event) > 2:
        p.error("--event at most twice")

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = lambda_env(server.server_address[1], extras)
    bin_path = os.path.abspath(args.bin)
    args.bin = bin_path

    log = open(args.log, "ab") if args.log else tempfile.TemporaryFile()
    inits, hwms, firsts, seconds, failures = [], [], [], [], []
    for i in range(1, args.runs + 1):
        if not args.log:
            log.seek(0)
            log.truncate()
        run = one_run(server, args, env, i, log)
        if run.init_ms is None:
            log.flush()
            tail = ""
            if not args.log:
                log.seek(0)
                tail = log.read()[-2000:].decode("utf-8", "replace")
            reason = run.init_error or "no GET /invocation/next (it exited or timed out)"
            failures.append(f"run {i}: init failed: {reason}")
            print(f"run {i}: init failed: {reason}\n{tail}", file=sys.stderr)
            continue
        inits.append(run.init_ms)
        if run.hwm_kb is not None:
            hwms.append(run.hwm_kb / 1024)
        if len(run.invoke_ms) > 0:
            firsts.append(run.invoke_ms[0])
        if len(run.invoke_ms) > 1:
            seconds.append(run.invoke_ms[1])
        for e in run.invoke_errors:
            failures.append(f"run {i}: invocation error: {e}")
        if len(run.invoke_ms) < run.wanted:
            failures.append(f"run {i}: {run.wanted - len(run.invoke_ms)} invocation(s) not answered within {args.timeout}s")
        inv = " ".join(f"{x:.2f}" for x in run.invoke_ms)
        hwm = f"{run.hwm_kb / 1024:.1f} MB" if run.hwm_kb else "?"
        print(f"run {i}: init {run.init_ms:.2f} ms, peak RSS {hwm}" + (f", invocations {inv} ms" if inv else ""))
    server.shutdown()
    for f in failures:
        print(f, file=sys.stderr)
    result = {
        "bin": bin_path,
        "runs": args.runs,
        "init_ms_median": median(inits),
        "init_ms_min": round(min(inits), 2) if inits else None,
        "hwm_mb_median": median(hwms),
        "first_invoke_ms": median(firsts),
        "second_invoke_ms": median(seconds),
        "init_ms": [round(x, 2) for x in inits],
        "first_invoke_ms_all": [round(x, 2) for x in firsts],
        "second_invoke_ms_all": [round(x, 2) for x in seconds],
        "failures": len(failures),
    }
    print(json.dumps(result))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
