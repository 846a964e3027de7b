#!/usr/bin/env python3
"""Deterministic signed Katalo webhooks for scripts/perf.sh.

Writes N deliveries, one `<hex HMAC-SHA256 of the body><TAB><raw body>` line each, so
the floor, genhook's receiver loop and the Node consumer verify and parse the same bytes.
The bodies have the shape of Katalo's webhooks (tests/src/lib.rs `webhook()`) with what
real deliveries carry: ULID-style ids, a presigned S3 output URL, echoed metadata, and
about 10% `generation.failed` with a failure object instead of outputs; 600-900 bytes.
Seeded: the same N gives the same file on every machine.

Usage: bodies.py N OUT [SECRET]     (sizes summary on stderr)
"""

import hashlib
import hmac
import json
import random
import sys

SECRET = "whsec_perf_benchmark_0001"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
WORDS = ["hero", "lifestyle", "studio", "white-background", "summer-campaign", "catalog", "variant", "thumbnail"]


def ulid(rng):
    return "01JX" + "".join(rng.choice(CROCKFORD) for _ in range(22))


def presigned_url(rng, job_id):
    """An S3 presigned GET URL as Katalo hands out outputs."""
    signature = "".join(rng.choice("0123456789abcdef") for _ in range(64))
    stamp = f"20261123T{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}Z"
    return (
        f"https://katalo-outputs.s3.us-east-1.amazonaws.com/org_01JXAMPLE7Q3/{job_id}/output-0.png"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIA2EXAMPLE7Q3XZ4NB%2F20261123%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date={stamp}&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )


def webhook(rng, i):
    job_id = f"job_{i}_{ulid(rng)}"
    failed = rng.random() < 0.10
    metadata = {
        "tenant": rng.choice(["acme", "globex", "initech", "umbrella"]),
        "listing_id": f"lst_{rng.randrange(10**9):09d}",
        "user_id": f"usr_{ulid(rng)}",
        "tags": rng.sample(WORDS, rng.randrange(1, 5)),
    }
    if failed:
        outputs = []
        failure = {
            "code": rng.choice(["source_unusable", "policy_rejected", "generation_timeout"]),
            "message": "The source asset could not be processed after the maximum number of attempts; "
            "upload a sharper image or contact support with the job id.",
            "retryable": False,
        }
        metadata["note"] = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(14, 30)))
    else:
        outputs = [{"url": presigned_url(rng, job_id)}]
        failure = None
        metadata["note"] = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 11)))
    body = {
        "event_type": "generation.failed" if failed else "generation.completed",
        "job_id": job_id,
        "source_asset_id": f"src_{ulid(rng)}",
        "reference": f"listing-{rng.randrange(10**6)}",
        "outputs": outputs,
        "failure": failure,
        "metadata": metadata,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    n, out = int(sys.argv[1]), sys.argv[2]
    secret = (sys.argv[3] if len(sys.argv) == 4 else SECRET).encode()
    rng = random.Random(12)
    sizes, failed = [], 0
    with open(out, "w") as f:
        for i in range(n):
            body = webhook(rng, i)
            assert b"\t" not in body and b"\n" not in body
            failed += b'"generation.failed"' in body
            f.write(hmac.new(secret, body, hashlib.sha256).hexdigest() + "\t" + body.decode() + "\n")
            sizes.append(len(body))
    sizes.sort()
    if sizes:
        print(
            f"{n} bodies, {sizes[0]}-{sizes[-1]} bytes (median {sizes[n // 2]}), {failed} generation.failed",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
