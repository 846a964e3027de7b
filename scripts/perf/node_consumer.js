// The Node consumer from Katalo's docs ("Verify signatures"), in-process, for
// scripts/perf.sh: createHmac("sha256", secret).update(rawBody).digest("hex"),
// timingSafeEqual on the hex-decoded signatures, then JSON.parse of the body and the two
// fields the consumer branches on (event_type, job_id). The raw bodies are Buffers before
// the clock starts, as `Buffer.from(await request.arrayBuffer())` hands them over.
//
// Usage: node node_consumer.js BODIES_FILE SECRET
// Two warm-up passes (for the JIT), then 5 timed passes: `node wall_ns A B C D E` on stderr.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");

function verifyKataloWebhook(rawBody, signature, secret) {
  const expected = crypto.createHmac("sha256", secret).update(rawBody).digest("hex");
  const given = Buffer.from(signature, "hex");
  const wanted = Buffer.from(expected, "hex");
  return given.length === wanted.length && crypto.timingSafeEqual(given, wanted);
}

// 1 when the delivery verifies and carries a known event, else 0.
function consume(rawBody, signature, secret) {
  if (!signature || !verifyKataloWebhook(rawBody, signature, secret)) return 0;
  const event = JSON.parse(rawBody.toString("utf8"));
  if (event.event_type === "generation.completed") return event.job_id.length > 0 ? 1 : 0;
  if (event.event_type === "generation.failed") return event.job_id.length > 0 ? 1 : 0;
  return 0;
}

function pass(deliveries, secret) {
  let ok = 0;
  for (const [signature, body] of deliveries) ok += consume(body, signature, secret);
  return ok;
}

const [file, secret] = process.argv.slice(2);
if (!file || !secret) throw new Error("usage: node node_consumer.js BODIES_FILE SECRET");
const deliveries = fs
  .readFileSync(file, "utf8")
  .split("\n")
  .filter((line) => line.length > 0)
  .map((line) => {
    const tab = line.indexOf("\t");
    return [line.slice(0, tab), Buffer.from(line.slice(tab + 1), "utf8")];
  });
const n = deliveries.length;
for (let i = 0; i < 2; i++) if (pass(deliveries, secret) !== n) throw new Error("a delivery did not verify");
const ns = [];
for (let i = 0; i < 5; i++) {
  const start = process.hrtime.bigint();
  const ok = pass(deliveries, secret);
  ns.push((Number(process.hrtime.bigint() - start) / n).toFixed(1));
  if (ok !== n) throw new Error("a delivery did not verify");
}
process.stderr.write(`node wall_ns ${ns.join(" ")}\n`);
