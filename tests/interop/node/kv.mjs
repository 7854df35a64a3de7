// nats.js key-value store (@nats-io/kv) scenarios: `node kv.mjs <url> <scenario>`.
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { expectError, main, sleep, take, text } from "./common.mjs";

// Entries as [key, value, revision, operation, length]; watch entries add isUpdate and delta.
const entry = (e) => (e === null ? null : [e.key, text(e.value), e.revision, e.operation, e.length]);
const watchEntry = (e) => [...entry(e), e.isUpdate, e.delta];

async function collectKeys(kv, filter) {
  const keys = [];
  for await (const k of await kv.keys(filter)) keys.push(k);
  return keys.sort();
}

async function collectHistory(kv, key) {
  const out = [];
  for await (const e of await kv.history({ key })) out.push(entry(e));
  return out;
}

const scenarios = {
  // put/get, update with the right and a wrong revision, create on an existing key.
  async basic(nc) {
    const kvm = new Kvm(nc);
    const kv = await kvm.create("basic", { history: 5 });
    const r = {};
    r.put1 = await kv.put("color", "red");
    r.get1 = entry(await kv.get("color"));
    r.update_ok = await kv.update("color", "blue", r.put1);
    r.update_wrong = await expectError("update with a stale revision", () => kv.update("color", "green", r.put1));
    r.create_existing = await expectError("create on an existing key", () => kv.create("color", "green"));
    r.create_new = await kv.create("size", "L");
    r.get_color = entry(await kv.get("color"));
    r.get_rev1 = entry(await kv.get("color", { revision: 1 }));
    r.get_missing = entry(await kv.get("missing"));
    r.put_json = await kv.put("user.1", JSON.stringify({ name: "ada" }));
    r.get_json = (await kv.get("user.1")).json();
    r.empty_value = await kv.put("empty", new Uint8Array(0));
    r.get_empty = entry(await kv.get("empty"));
    r.invalid_key = await expectError("put with an invalid key", () => kv.put("bad key", "x"));
    return r;
  },

  // delete (DEL marker), create over a deleted key, purge (PURGE rollup), history, keys().
  async delete_purge(nc) {
    const kv = await new Kvm(nc).create("dp", { history: 10 });
    const r = {};
    for (const v of ["1", "2", "3"]) await kv.put("a", v);
    await kv.put("b", "x");
    await kv.put("c.d", "y");
    r.keys_before = await collectKeys(kv);
    r.keys_filtered = await collectKeys(kv, "c.>");
    await kv.delete("a");
    r.get_deleted = entry(await kv.get("a"));
    r.history_a = await collectHistory(kv, "a");
    r.keys_after_delete = await collectKeys(kv);
    r.create_over_deleted = await kv.create("a", "again");
    r.get_recreated = entry(await kv.get("a"));
    await kv.purge("b");
    r.get_purged = entry(await kv.get("b"));
    r.history_b = await collectHistory(kv, "b");
    r.keys_after_purge = await collectKeys(kv);
    r.delete_wrong_rev = await expectError("delete with a stale revision",
      () => kv.delete("c.d", { previousSeq: 1 }));
    const st = await kv.status();
    r.status = { values: st.values, history: st.history };
    r.history_all = (await collectHistory(kv, ">")).map(([k, , rev, op]) => `${k}:${op}:${rev}`);
    return r;
  },

  // watch() with the default (last values then updates), updates only, and all history.
  async watch(nc) {
    const kv = await new Kvm(nc).create("w", { history: 5 });
    await kv.put("k1", "a");
    await kv.put("k1", "b");
    await kv.put("k2", "c");
    const last = await kv.watch();
    const updates = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    const all = await kv.watch({ include: KvWatchInclude.AllHistory });
    const filtered = await kv.watch({ key: "k2" });
    const noDeletes = await kv.watch({ ignoreDeletes: true, include: KvWatchInclude.UpdatesOnly });
    // Let the watchers' consumers start before the later writes.
    const initial = await take(last, 2);
    const initialAll = await take(all, 3);
    const initialFiltered = await take(filtered, 1);
    // Each later write is awaited on every watcher that gets it before the next one, so the
    // delta (pending) an entry carries does not depend on how fast the server delivers.
    const got = { last: [], updates: [], all: [], filtered: [], noDeletes: [] };
    const watchers = { last, updates, all, filtered, noDeletes };
    const step = async (write, names) => {
      await write();
      for (const n of names) got[n].push(...await take(watchers[n], 1));
    };
    await step(() => kv.put("k1", "d"), ["last", "updates", "all", "noDeletes"]);
    await step(() => kv.delete("k2"), ["last", "updates", "all", "filtered"]);
    await step(() => kv.put("k3", "e"), ["last", "updates", "all", "noDeletes"]);
    const r = {
      last: [...initial, ...got.last].map(watchEntry),
      updates: got.updates.map(watchEntry),
      all: [...initialAll, ...got.all].map(watchEntry),
      filtered: [...initialFiltered, ...got.filtered].map(watchEntry),
      no_deletes: got.noDeletes.map(watchEntry),
    };
    // Nothing more arrives on any watcher.
    r.extra = (await Promise.all([last, updates, all, filtered, noDeletes].map((w) => take(w, 1, 300))))
      .map((xs) => xs.length);
    for (const w of [last, updates, all, filtered, noDeletes]) w.stop();
    const empty = await (await new Kvm(nc).create("w_empty")).watch();
    r.empty_bucket_watch = (await take(empty, 1, 500)).length;
    empty.stop();
    return r;
  },

  // A bucket with a ttl: the stream's max_age, entries expire, status() after expiry.
  async ttl(nc) {
    const kv = await new Kvm(nc).create("t", { ttl: 1000 });
    const jsm = await jetstreamManager(nc);
    const si = await jsm.streams.info("KV_t");
    const r = { max_age: si.config.max_age, duplicate_window: si.config.duplicate_window };
    await kv.put("x", "1");
    await kv.put("y", "2");
    r.before = entry(await kv.get("x"));
    const st1 = await kv.status();
    r.values_before = st1.values;
    r.ttl = st1.ttl;
    await sleep(2200);
    r.after = entry(await kv.get("x"));
    r.keys_after = await collectKeys(kv);
    r.values_after = (await kv.status()).values;
    return r;
  },

  // status() and the backing stream's config as nats.js creates it, list(), open(), destroy().
  async status(nc) {
    const kvm = new Kvm(nc);
    const kv = await kvm.create("st", { history: 3, max_bytes: 1 << 20, maxValueSize: 1024, description: "d" });
    await kv.put("a", "1");
    await kv.put("a", "2");
    await kv.put("b", "3");
    const st = await kv.status();
    const r = {
      status: {
        bucket: st.bucket, values: st.values, history: st.history, ttl: st.ttl,
        backingStore: st.backingStore, storage: st.storage, replicas: st.replicas,
        description: st.description, max_bytes: st.max_bytes, maxValueSize: st.maxValueSize,
        size: st.size, compression: st.compression,
      },
      config: st.streamInfo.config,
      state: { ...st.streamInfo.state, first_ts: undefined, last_ts: undefined },
    };
    r.too_big = await expectError("value larger than maxValueSize", () => kv.put("big", new Uint8Array(2048)));
    const opened = await kvm.open("st");
    r.opened_get = entry(await opened.get("a"));
    await kvm.create("st2");
    const names = [];
    for await (const s of kvm.list()) names.push(s.bucket);
    r.list = names.sort();
    r.destroyed = await kv.destroy();
    const after = [];
    for await (const s of kvm.list()) after.push(s.bucket);
    r.list_after_destroy = after.sort();
    r.open_missing = await expectError("open a missing bucket", () => kvm.open("nope").then((k) => k.status()));
    return r;
  },
};

await main(scenarios);
