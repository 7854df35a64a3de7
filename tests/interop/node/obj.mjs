// nats.js object store (@nats-io/obj) scenarios: `node obj.mjs <url> <scenario>`.
import { createHash } from "node:crypto";
import { Objm } from "@nats-io/obj";
import { jetstreamManager } from "@nats-io/jetstream";
import { expectError, main, take, text } from "./common.mjs";

// The digest nats.js writes: "SHA-256=" + base64url (padded) of the SHA-256.
const digestOf = (u8) =>
  "SHA-256=" + createHash("sha256").update(u8).digest("base64").replace(/\+/g, "-").replace(/\//g, "_");

// Pseudo-random bytes from a fixed seed (xorshift32): incompressible, and the same on every run,
// so digests can be part of the expected result.
function randomBytes(n, seed = 0x9e3779b9) {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed >>> 0;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, n);
}

const info = (i) =>
  i === null ? null : {
    bucket: i.bucket, name: i.name, description: i.description, size: i.size, chunks: i.chunks,
    digest: i.digest, deleted: i.deleted, has_nuid: typeof i.nuid === "string" && i.nuid.length > 0,
    has_mtime: typeof i.mtime === "string" && !Number.isNaN(Date.parse(i.mtime)),
    max_chunk_size: i.options?.max_chunk_size, revision: i.revision,
    metadata: i.metadata,
  };

// A listed object as [name, size, chunks, digest, deleted].
const brief = (i) => [i.name, i.size ?? null, i.chunks ?? null, i.digest ?? null, i.deleted ?? null];

async function readAll(rs) {
  const parts = [];
  for await (const c of rs) parts.push(c);
  return Buffer.concat(parts);
}

const scenarios = {
  // A 10 MB object of random bytes: put from a stream, info, get back identical, list, delete.
  async big(nc) {
    const os = await new Objm(nc).create("big");
    const data = randomBytes(10 * 1024 * 1024);
    const rs = new ReadableStream({
      // Hand it over in uneven pieces, as a file or socket would.
      start(controller) {
        for (let off = 0; off < data.length; off += 300_001) {
          controller.enqueue(new Uint8Array(data.subarray(off, Math.min(off + 300_001, data.length))));
        }
        controller.close();
      },
    });
    const r = {};
    const put = await os.put({ name: "blob.bin", description: "ten megabytes" }, rs);
    r.put = info(put);
    r.digest_matches = put.digest === digestOf(data);
    r.info_same_as_put = JSON.stringify(info(await os.info("blob.bin"))) === JSON.stringify(r.put);
    const got = await os.get("blob.bin");
    const back = await readAll(got.data);
    r.get_error = (await got.error)?.message ?? null;
    r.get_identical = Buffer.compare(back, data) === 0;
    r.get_size = back.length;
    const blob = await os.getBlob("blob.bin");
    r.get_blob_identical = Buffer.compare(Buffer.from(blob), data) === 0;
    r.list = (await os.list()).map(brief);
    const st = await os.status();
    r.status = {
      bucket: st.bucket, description: st.description, ttl: st.ttl, storage: st.storage,
      replicas: st.replicas, sealed: st.sealed, size: st.size, backingStore: st.backingStore,
      compression: st.compression, messages: st.streamInfo.state.messages,
    };
    r.delete = await os.delete("blob.bin");
    r.info_after_delete = info(await os.info("blob.bin"));
    r.get_after_delete = await os.get("blob.bin");
    r.list_after_delete = (await os.list()).map(brief);
    r.messages_after_delete = (await os.status()).streamInfo.state.messages;
    return r;
  },

  // Small objects (empty, one chunk, a few chunks with a small chunk size), update, links.
  async small(nc) {
    const objm = new Objm(nc);
    const os = await objm.create("small", { description: "small things" });
    const r = {};
    const enc = new TextEncoder();
    r.put_hello = info(await os.putBlob({ name: "hello.txt" }, enc.encode("hello world")));
    r.put_empty = info(await os.putBlob({ name: "empty" }, new Uint8Array(0)));
    const chunked = randomBytes(1000);
    r.put_chunked = info(await os.putBlob({ name: "chunked", options: { max_chunk_size: 128 } }, chunked));
    r.chunked_digest_matches = r.put_chunked.digest === digestOf(chunked);
    r.get_hello = text(await os.getBlob("hello.txt"));
    r.get_empty = (await os.getBlob("empty")).length;
    r.get_chunked_identical = Buffer.compare(Buffer.from(await os.getBlob("chunked")), chunked) === 0;
    r.replace_hello = info(await os.putBlob({ name: "hello.txt" }, enc.encode("hello again")));
    r.get_replaced = text(await os.getBlob("hello.txt"));
    await os.update("empty", { name: "empty", description: "nothing here", metadata: { k: "v" } });
    r.info_updated = info(await os.info("empty"));
    r.link = info(await os.link("hello-link", await os.info("hello.txt")));
    r.get_via_link = text(await os.getBlob("hello-link"));
    r.missing = await os.info("missing");
    r.list = (await os.list()).map(brief).sort((a, b) => a[0].localeCompare(b[0]));
    r.messages = (await os.status()).streamInfo.state.messages;
    const jsm = await jetstreamManager(nc);
    r.stream_config = (await jsm.streams.info("OBJ_small")).config;
    const names = [];
    for await (const s of objm.list()) names.push(s.bucket);
    r.buckets = names;
    r.destroyed = await os.destroy();
    return r;
  },

  // seal(): the bucket stays readable, and a put or delete fails with the sealed-stream error.
  async sealed(nc) {
    const os = await new Objm(nc).create("sealed");
    const enc = new TextEncoder();
    await os.putBlob({ name: "kept" }, enc.encode("still here"));
    const st = await os.seal();
    const r = { sealed: st.sealed, stream_sealed: st.streamInfo.config.sealed };
    r.get_after_seal = text(await os.getBlob("kept"));
    r.put_sealed = await expectError("put into a sealed bucket",
      () => os.putBlob({ name: "late" }, enc.encode("x")));
    r.delete_sealed = await expectError("delete from a sealed bucket", () => os.delete("kept"));
    r.list_after = (await os.list()).map((i) => i.name);
    r.messages = (await os.status()).streamInfo.state.messages;
    return r;
  },

  // watch(): existing objects with includeHistory, then later puts and deletes.
  async watch(nc) {
    const os = await new Objm(nc).create("watched");
    const enc = new TextEncoder();
    await os.putBlob({ name: "a" }, enc.encode("1"));
    await os.putBlob({ name: "b" }, enc.encode("2"));
    const hist = await os.watch({ includeHistory: true });
    const updates = await os.watch();
    const noDeletes = await os.watch({ ignoreDeletes: true });
    const initial = await take(hist, 2);
    await os.putBlob({ name: "a" }, enc.encode("3"));
    await os.delete("b");
    await os.putBlob({ name: "c" }, enc.encode("4"));
    const w = (i) => ({ name: i.name, size: i.size, deleted: i.deleted, isUpdate: i.isUpdate });
    const r = {
      history: [...initial, ...(await take(hist, 3))].map(w),
      updates: (await take(updates, 3)).map(w),
      no_deletes: (await take(noDeletes, 2)).map(w),
    };
    r.extra = (await Promise.all([hist, updates, noDeletes].map((x) => take(x, 1, 300)))).map((x) => x.length);
    for (const x of [hist, updates, noDeletes]) x.stop();
    return r;
  },
};

await main(scenarios);
