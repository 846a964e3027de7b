#!/usr/bin/env python3
"""Prints an API Gateway HTTP API event carrying a new, signed Katalo webhook (a unique
job per RUN/INVOKE), for `coldstart.py --event-cmd`. The secret is KATALO_WEBHOOK_SECRET
(default: the fixtures' test secret)."""

import base64
import hashlib
import hmac
import json
import os
import uuid

secret = os.environ.get("KATALO_WEBHOOK_SECRET", "whsec_fixture_secret_0001").encode()
job = f"job_coldstart_{os.environ.get('RUN', '0')}_{os.environ.get('INVOKE', '0')}_{uuid.uuid4().hex[:12]}"
body = json.dumps(
    {"event_type": "generation.completed", "job_id": job, "source_asset_id": "src_01JXAMPLE",
     "reference": "listing-123", "outputs": [], "failure": None, "metadata": {"tenant": "acme"}},
    separators=(",", ":"),
).encode()
signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
print(json.dumps({
    "version": "2.0",
    "routeKey": "POST /webhooks/katalo",
    "rawPath": "/webhooks/katalo",
    "rawQueryString": "",
    "headers": {"content-type": "application/json", "user-agent": "Katalo-Webhooks/1.0", "x-katalo-signature": signature},
    "requestContext": {
        "accountId": "123456789012", "apiId": "api1234", "domainName": "api1234.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "api1234",
        "http": {"method": "POST", "path": "/webhooks/katalo", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10",
                 "userAgent": "Katalo-Webhooks/1.0"},
        "requestId": f"req-{job}", "routeKey": "POST /webhooks/katalo", "stage": "$default",
        "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1795435200000,
    },
    "body": base64.b64encode(body).decode(),
    "isBase64Encoded": True,
}))
