// nats.js JetStream (@nats-io/jetstream) stream and consumer scenarios: `node js.mjs <url> <scenario>`.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describeError, expectError, main } from "./common.mjs";

// Stream and consumer info without what differs per run or per server (times, server names).
function streamInfo(si) {
  const { created, ts, cluster, ...rest } = si;
  const { first_ts, last_ts, ...state } = si.state;
  return { ...rest, state };
}

function consumerInfo(ci, { maskName = false } = {}) {
  const { created, ts, cluster, ...rest } = ci;
  const seq = ({ last_active, ...s }) => s;
  const out = { ...rest, delivered: seq(ci.delivered), ack_floor: seq(ci.ack_floor) };
  if (maskName) {
    out.name = "<ordered>";
    const { name, ...config } = ci.config;
    out.config = config;
  }
  return out;
}

const counts = (ci) => ({
  delivered: ci.delivered.stream_seq, delivered_consumer: ci.delivered.consumer_seq,
  ack_floor: ci.ack_floor.stream_seq, ack_floor_consumer: ci.ack_floor.consumer_seq,
  num_pending: ci.num_pending, num_ack_pending: ci.num_ack_pending,
  num_redelivered: ci.num_redelivered, num_waiting: ci.num_waiting,
});

// A delivered message as [stream, consumer, subject, data, stream seq, consumer seq, deliveries,
// pending] (the last five from the ack reply subject the server made).
const msg = (m, { maskConsumer = false } = {}) => {
  if (m.seq !== m.info.streamSequence || m.redelivered !== m.info.deliveryCount > 1) {
    throw new Error(`inconsistent delivery info: ${m.reply}`);
  }
  return [m.info.stream, maskConsumer ? "<ordered>" : m.info.consumer, m.subject, m.string(),
    m.info.streamSequence, m.info.deliverySequence, m.info.deliveryCount, m.info.pending];
};

async function fill(js, subjects, n) {
  for (let i = 1; i <= n; i++) await js.publish(subjects[(i - 1) % subjects.length], `m${i}`);
}

const scenarios = {
  // jsm.streams: add (and again, idempotent, and with another config), info, list, names,
  // find, update, purge, getMessage, deleteMessage, delete.
  async streams(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const r = {};
    r.add = streamInfo(await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] }));
    // The same config again is accepted and answers the same info.
    const again = streamInfo(await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] }));
    r.add_again_same = JSON.stringify(again) === JSON.stringify(r.add);
    r.add_conflict = await expectError("add with another config",
      () => jsm.streams.add({ name: "ORDERS", subjects: ["other.>"] }));
    r.add_overlap = await expectError("add with overlapping subjects",
      () => jsm.streams.add({ name: "OVERLAP", subjects: ["orders.new"] }));
    await jsm.streams.add({ name: "EVENTS", subjects: ["events.*"], storage: "memory", max_msgs: 3 });
    await fill(js, ["orders.new", "orders.paid"], 4);
    for (let i = 1; i <= 5; i++) await js.publish("events.e", `e${i}`);
    const info = streamInfo(await jsm.streams.info("ORDERS"));
    r.info_config_same = JSON.stringify(info.config) === JSON.stringify(r.add.config);
    r.info = { ...info, config: undefined };
    r.info_subjects = (await jsm.streams.info("ORDERS", { subjects_filter: ">" })).state.subjects;
    r.events_state = streamInfo(await jsm.streams.info("EVENTS")).state;
    const listed = [];
    for await (const si of jsm.streams.list()) listed.push(si.config.name);
    r.list = listed.sort();
    const names = [];
    for await (const n of jsm.streams.names()) names.push(n);
    r.names = names.sort();
    const filtered = [];
    for await (const n of jsm.streams.names("events.x")) filtered.push(n);
    r.names_by_subject = filtered;
    r.find = await jsm.streams.find("orders.new");
    r.find_missing = await expectError("find a subject no stream has", () => jsm.streams.find("nothing.here"));
    r.update = streamInfo(await jsm.streams.update("ORDERS", { subjects: ["orders.>", "refunds.>"] })).config.subjects;
    r.update_storage = await expectError("change the storage type",
      () => jsm.streams.update("ORDERS", { subjects: ["orders.>"], storage: "memory" }));
    const sm = await jsm.streams.getMessage("ORDERS", { seq: 2 });
    r.get_seq = { subject: sm.subject, seq: sm.seq, data: sm.string() };
    const last = await jsm.streams.getMessage("ORDERS", { last_by_subj: "orders.new" });
    r.get_last = { subject: last.subject, seq: last.seq, data: last.string() };
    r.get_missing = await jsm.streams.getMessage("ORDERS", { seq: 99 }).catch((e) => ({ error: e.message }));
    r.delete_msg = await jsm.streams.deleteMessage("ORDERS", 1);
    r.state_after_delete = streamInfo(await jsm.streams.info("ORDERS")).state;
    r.purge_filter = await jsm.streams.purge("ORDERS", { filter: "orders.paid" });
    r.purge_all = await jsm.streams.purge("ORDERS");
    r.state_after_purge = streamInfo(await jsm.streams.info("ORDERS")).state;
    r.delete = await jsm.streams.delete("ORDERS");
    r.info_deleted = await expectError("info of a deleted stream", () => jsm.streams.info("ORDERS"));
    r.delete_missing = await expectError("delete a missing stream", () => jsm.streams.delete("ORDERS"));
    r.bad_name = await expectError("a stream name with a dot", () => jsm.streams.add({ name: "A.B" }));
    return r;
  },

  // jsm.streams.deleteMessage of sequences that are gone or were never there, file and memory.
  async delete_msg(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const r = {};
    for (const storage of ["file", "memory"]) {
      await jsm.streams.add({ name: storage, subjects: [`${storage}.>`], storage });
      await fill(js, [`${storage}.x`], 5);
      const out = {};
      for (const [what, seq] of [["first", 1], ["first_again", 1], ["middle", 3], ["middle_again", 3],
        ["last", 5], ["last_again", 5], ["beyond_last", 9]]) {
        out[what] = await jsm.streams.deleteMessage(storage, seq).catch((e) => describeError(e));
      }
      out.state = streamInfo(await jsm.streams.info(storage)).state;
      r[storage] = out;
    }
    return r;
  },

  // js.publish: msgID dedupe, the expect headers, and publishing where no stream listens.
  async publish(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "P", subjects: ["p.>"] });
    const r = {};
    r.first = await js.publish("p.a", "1", { msgID: "id-1" });
    r.duplicate = await js.publish("p.a", "1 again", { msgID: "id-1" });
    r.second = await js.publish("p.b", "2", { msgID: "id-2" });
    r.expect_last_msg_id_ok = await js.publish("p.a", "2b", { msgID: "id-2b", expect: { lastMsgID: "id-2" } });
    r.expect_last_msg_id_wrong = await expectError("wrong lastMsgID",
      () => js.publish("p.a", "x", { expect: { lastMsgID: "id-1" } }));
    r.expect_last_seq_ok = await js.publish("p.a", "3", { expect: { lastSequence: 3 } });
    r.expect_last_seq_wrong = await expectError("wrong lastSequence",
      () => js.publish("p.a", "x", { expect: { lastSequence: 1 } }));
    r.expect_last_subject_seq_ok = await js.publish("p.b", "4", { expect: { lastSubjectSequence: 2 } });
    r.expect_last_subject_seq_wrong = await expectError("wrong lastSubjectSequence",
      () => js.publish("p.b", "x", { expect: { lastSubjectSequence: 2 } }));
    r.expect_last_msg_id_after_plain = await expectError("lastMsgID after a message without an id",
      () => js.publish("p.a", "x", { expect: { lastMsgID: "id-2b" } }));
    r.expect_stream_ok = await js.publish("p.a", "6", { expect: { streamName: "P" } });
    r.expect_stream_wrong = await expectError("wrong streamName",
      () => js.publish("p.a", "x", { expect: { streamName: "Q" } }));
    r.no_stream = await expectError("publish where no stream listens",
      () => js.publish("nowhere", "x", { retries: 0, timeout: 1000 }));
    r.state = streamInfo(await jsm.streams.info("P")).state;
    return r;
  },

  // A durable pull consumer: fetch with max_messages, next(), consume(), acks, and the
  // consumer's info (num_pending, ack_floor) along the way.
  async pull(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "Q", subjects: ["q.*"] });
    await fill(js, ["q.a", "q.b"], 10);
    const r = {};
    r.add = consumerInfo(await jsm.consumers.add("Q", {
      durable_name: "worker", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000,
    }));
    const c = await js.consumers.get("Q", "worker");
    const fetched = [];
    for await (const m of await c.fetch({ max_messages: 3, expires: 5000 })) {
      fetched.push(msg(m));
      m.ack();
    }
    r.fetch = fetched;
    const m4 = await c.next({ expires: 5000 });
    r.next = msg(m4);
    r.next_ackack = await m4.ackAck();
    r.after_next = counts(await c.info());
    const consumed = [];
    const iter = await c.consume({ max_messages: 2 });
    for await (const m of iter) {
      consumed.push(msg(m));
      await m.ackAck();
      if (consumed.length === 6) break;
    }
    r.consume = consumed;
    // num_waiting after leaving consume() is pull_after_consume's subject, not this one's.
    const { num_waiting, ...after } = counts(await c.info());
    r.after_consume = after;
    const { num_waiting: _, ...info } = consumerInfo(await c.info());
    r.info = info;
    const listed = [];
    for await (const ci of jsm.consumers.list("Q")) listed.push(ci.name);
    r.list = listed;
    r.missing = await expectError("get a missing consumer", () => js.consumers.get("Q", "nobody"));
    r.delete = await c.delete();
    r.info_deleted = await expectError("info of a deleted consumer", () => jsm.consumers.info("Q", "worker"));
    return r;
  },

  // An idle pull consumer: a fetch with a short expiry ends empty, next() returns null, and
  // a message published later reaches the next next().
  async pull_idle(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "I", subjects: ["i"] });
    await fill(js, ["i"], 2);
    await jsm.consumers.add("I", { durable_name: "idle", ack_policy: AckPolicy.Explicit });
    const c = await js.consumers.get("I", "idle");
    const r = { fetch: [] };
    for await (const m of await c.fetch({ max_messages: 5, expires: 1000 })) {
      r.fetch.push(msg(m));
      m.ack();
    }
    const empty = [];
    for await (const m of await c.fetch({ max_messages: 5, expires: 1000 })) empty.push(msg(m));
    r.fetch_empty = empty;
    r.next_empty = await c.next({ expires: 1000 });
    r.idle = counts(await c.info());
    const pending = c.next({ expires: 5000 });
    await js.publish("i", "late");
    const late = await pending;
    r.next_late = late && msg(late);
    r.before_late_ack = counts(await c.info());
    await late?.ackAck();
    r.after_late_ack = counts(await c.info());
    return r;
  },

  // After a consume() loop is left (break), its outstanding pull request has no subscriber
  // any more: a message published later goes to the next request that does (here next()).
  async pull_after_consume(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "C", subjects: ["c"] });
    await fill(js, ["c"], 3);
    await jsm.consumers.add("C", { durable_name: "w", ack_policy: AckPolicy.Explicit });
    const c = await js.consumers.get("C", "w");
    const consumed = [];
    for await (const m of await c.consume({ max_messages: 10 })) {
      consumed.push(m.seq);
      await m.ackAck();
      if (consumed.length === 3) break;
    }
    const r = { consumed, after_break: counts(await c.info()) };
    await js.publish("c", "later");
    const m = await c.next({ expires: 3000 });
    r.next = m && msg(m);
    await m?.ackAck();
    r.after_next = counts(await c.info());
    return r;
  },

  // Acks other than ack: nak (redelivered), term, working, and an unacked fetch leaving
  // ack_floor behind; then ack_floor and num_ack_pending in the consumer info.
  async acks(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "A", subjects: ["a"] });
    await fill(js, ["a"], 6);
    await jsm.consumers.add("A", { durable_name: "d", ack_policy: AckPolicy.Explicit, max_deliver: 3 });
    const c = await js.consumers.get("A", "d");
    const first = [];
    for await (const m of await c.fetch({ max_messages: 4, expires: 5000 })) first.push(m);
    first[0].ack();
    first[1].nak();
    first[2].term("bad");
    first[3].working();
    await nc.flush();
    const r = { first: first.map(msg), after_first: counts(await c.info()) };
    const second = [];
    for await (const m of await c.fetch({ max_messages: 3, expires: 5000 })) {
      second.push(msg(m));
      await m.ackAck();
    }
    r.second = second;
    r.after_second = counts(await c.info());
    await first[3].ackAck();
    r.after_all = counts(await c.info());
    return r;
  },

  // Ordered consumers (js.consumers.get with no name) read the stream in order: consume()
  // over everything, a filtered one, fetch(), next(), and one starting at the last per subject.
  async ordered(nc) {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "O", subjects: ["o.*"] });
    await fill(js, ["o.a", "o.b", "o.c"], 30);
    const r = {};
    const oc = await js.consumers.get("O");
    const seen = [];
    const iter = await oc.consume({ max_messages: 7 });
    for await (const m of iter) {
      seen.push(m.seq);
      if (seen.length === 30) break;
    }
    r.consume_seqs = seen;
    r.consume_in_order = seen.every((s, i) => s === i + 1);
    const filtered = await js.consumers.get("O", { filter_subjects: ["o.b"] });
    const fseen = [];
    for await (const m of await filtered.consume()) {
      fseen.push(`${m.subject}:${m.string()}:${m.info.pending}`);
      if (fseen.length === 10) break;
    }
    r.filtered = fseen;
    const fo = await js.consumers.get("O", { deliver_policy: DeliverPolicy.LastPerSubject });
    const last = [];
    for await (const m of await fo.fetch({ max_messages: 10, expires: 1000 })) last.push(`${m.subject}:${m.string()}`);
    r.last_per_subject = last;
    const no = await js.consumers.get("O", { opt_start_seq: 29, deliver_policy: DeliverPolicy.StartSequence });
    r.next = [(await no.next({ expires: 2000 }))?.seq, (await no.next({ expires: 2000 }))?.seq,
      await no.next({ expires: 1000 })];
    const info = await oc.info(true);
    r.info_cached = consumerInfo(info, { maskName: true });
    return r;
  },
};

await main(scenarios);
