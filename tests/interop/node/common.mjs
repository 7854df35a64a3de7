// Shared by the nats.js interop scripts (run by tests/interop/test_nats_js.py).
//
// A script is `node <script>.mjs <server-url> <scenario>`: it connects with nats.js, runs the
// one scenario, prints its result as one JSON line on stdout and exits 0; on any error it prints
// the error on stderr and exits 1. Results hold only what is deterministic on any server (no
// times, no server/nuid ids), so the test expects the same JSON from nats-server and actor-nats.

import { connect } from "@nats-io/transport-node";

// A hung scenario fails on its own (the test's subprocess timeout is the second line).
const SCENARIO_TIMEOUT_MS = 20_000;

export function describeError(err) {
  // Only what is stable across servers: class, message, and the JetStream API error if any.
  const out = { error: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
  if (typeof err?.apiError === "function") {
    const api = err.apiError();
    out.api = { code: api.code, err_code: api.err_code, description: api.description };
  }
  return out;
}

// Runs `fn()` and returns its error (described), or throws if it did not fail.
export async function expectError(what, fn) {
  try {
    await fn();
  } catch (err) {
    return describeError(err);
  }
  throw new Error(`${what}: expected an error, got success`);
}

// Reads up to `n` values from an async iterable, giving up after `ms`. nats.js iterators can be
// iterated only once, so one reader per iterable is kept, with any `next()` still pending.
const readers = new WeakMap();
export async function take(iterable, n, ms = 5000) {
  let reader = readers.get(iterable);
  if (!reader) {
    reader = { it: iterable[Symbol.asyncIterator](), pending: null, done: false };
    readers.set(iterable, reader);
  }
  const out = [];
  const deadline = Date.now() + ms;
  while (out.length < n && !reader.done) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    if (!reader.pending) reader.pending = reader.it.next();
    let timer;
    const r = await Promise.race([
      reader.pending,
      new Promise((resolve) => { timer = setTimeout(() => resolve({ timeout: true }), left); }),
    ]);
    clearTimeout(timer);
    if (r.timeout) break;
    reader.pending = null;
    if (r.done) { reader.done = true; break; }
    out.push(r.value);
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const text = (u8) => new TextDecoder().decode(u8);

// `main(scenarios)`: picks the scenario named on the command line, runs it with a connection
// (`fn(nc)`), prints `JSON.stringify(result)` and closes the connection.
export async function main(scenarios) {
  const [url, name] = process.argv.slice(2);
  const fn = scenarios[name];
  if (!url || !fn) {
    console.error(`usage: node ${process.argv[1]} <url> <${Object.keys(scenarios).join("|")}>`);
    process.exit(2);
  }
  const watchdog = setTimeout(() => {
    console.error(`scenario ${name} timed out after ${SCENARIO_TIMEOUT_MS} ms`);
    process.exit(3);
  }, SCENARIO_TIMEOUT_MS);
  watchdog.unref();
  let nc;
  try {
    nc = await connect({ servers: url, timeout: 5000, reconnect: false });
    const result = await fn(nc);
    process.stdout.write(JSON.stringify(result) + "\n");
    await nc.close();
    process.exit(0);
  } catch (err) {
    console.error(`scenario ${name} failed: ${err?.stack ?? err}`);
    if (err?.cause) console.error(`cause: ${err.cause?.stack ?? err.cause}`);
    try { await nc?.close(); } catch { /* already failing */ }
    process.exit(1);
  }
}
