// bench/clients/node_fetch.mjs: the Node alternative — the built-in fetch
// (undici, keep-alive default agent), JSON.stringify and res.json(), one
// create after another. Same request as the module: same target, the same
// body bytes (re-encoded every call), same headers.
//   BENCH_URL=... BENCH_BODY=... node bench/clients/node_fetch.mjs N WARMUP
// Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
import { randomUUID } from "node:crypto";

const n = Number(process.argv[2]);
const warmup = Number(process.argv[3] || 0);
const url = process.env.BENCH_URL;
const token = process.env.BENCH_TOKEN;
const body = JSON.parse(process.env.BENCH_BODY);

async function create() {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      authorization: "Bearer " + token,
      "content-type": "application/json",
      accept: "application/json",
      "idempotency-key": randomUUID(),
    },
    body: JSON.stringify(body),
  });
  const group = await res.json();
  if (res.status !== 201 || !group.id) {
    process.stderr.write(`node fetch: HTTP ${res.status}\n`);
    process.exit(1);
  }
}

for (let i = 0; i < warmup; i++) await create();
const started = process.hrtime.bigint();
for (let i = 0; i < n; i++) await create();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(`ok ${n} ${seconds.toFixed(6)}\n`);
