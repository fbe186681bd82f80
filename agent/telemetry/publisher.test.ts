import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { appendFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentError } from "../../kernel/errors.js";
import { createLogger } from "../../kernel/log.js";
import { FakeTimers } from "../../kernel/timers.js";
import { decodeReadings, decodeStatus } from "./codec.js";
import { type DeadLetter, type DeadLetterSink, FileDeadLetters } from "./dead-letter.js";
import { PubsubError } from "./errors.js";
import { type PublishedInfo, type PublisherOptions, TelemetryPublisher } from "./publisher.js";
import { NS_PUBSUB } from "./pubsub.js";
import type { Reading } from "./reading.js";
import { MemorySpoolStore } from "./spool.js";
import { PubsubFakeSession, settle } from "./testing/index.js";

const NODES = { telemetry: "devices/dev1/telemetry", status: "devices/dev1/status" };
const reading = (seq: number): Reading => ({
  seq,
  channelId: "temp0",
  value: seq / 2,
  unit: "°C",
  timestamp: 1_700_000_000_000 + seq,
  quality: "good",
});
const batch = (first: number, n: number) => Array.from({ length: n }, (_, i) => reading(first + i));

function kind(iq: Element): string {
  const ps = iq.getChild("pubsub");
  return ps?.children.filter((c): c is Element => typeof c !== "string")[0]?.name ?? "?";
}
const publishes = (s: PubsubFakeSession) => s.requests.filter((r) => kind(r) === "publish");
/** The requests that are not the owner and readers checks every ensure makes (node-guard.ts). */
const flow = (s: PubsubFakeSession) =>
  s.requests.map(kind).filter((k) => k !== "affiliations" && k !== "subscriptions");
const itemIds = (s: PubsubFakeSession) =>
  publishes(s).map((r) => r.getChild("pubsub")!.getChild("publish")!.getChild("item")!.attrs.id as string);

async function setup(
  opts: { inFlight?: number; service?: string | undefined; extra?: Partial<PublisherOptions> } = {},
) {
  const session = new PubsubFakeSession();
  const spool = new MemorySpoolStore();
  const timers = new FakeTimers();
  const publisher = new TelemetryPublisher({
    session,
    spool,
    deviceId: "dev1",
    service: "service" in opts ? opts.service : "pubsub.iot.test",
    nodes: NODES,
    inFlight: opts.inFlight ?? 4,
    timers,
    random: () => 0.5,
    retry: { initialDelayMs: 1000, maxDelayMs: 8000, factor: 2 },
    ...opts.extra,
  });
  const published: PublishedInfo[] = [];
  const failures: AgentError[] = [];
  publisher.on("published", (p) => published.push(p));
  publisher.on("failure", (e) => failures.push(e));
  return { session, spool, timers, publisher, published, failures };
}

describe("TelemetryPublisher", () => {
  it("creates the node once, publishes batches in order with stable ids, and empties the spool on results", async () => {
    const t = await setup();
    for (let i = 0; i < 6; i++) await t.spool.append(batch(i * 10, 3));
    t.publisher.start();
    await settle();
    assert.equal(t.session.requests.filter((r) => kind(r) === "create").length, 1);
    // Created, then checked: the owner list (ours alone) and, under whitelist, the subscriptions.
    assert.deepEqual(t.session.requests.slice(0, 3).map(kind), ["create", "affiliations", "subscriptions"]);
    const create = t.session.requests[0]!;
    assert.equal(create.attrs.to, "pubsub.iot.test");
    assert.equal(create.getChild("pubsub", NS_PUBSUB)!.getChild("create")!.attrs.node, NODES.telemetry);
    assert.deepEqual(itemIds(t.session), ["r-0-2", "r-10-12", "r-20-22", "r-30-32", "r-40-42", "r-50-52"]);
    const payload = publishes(t.session)[0]!.getChild("pubsub")!.getChild("publish")!.getChild("item")!
      .children[0] as Element;
    assert.deepEqual(decodeReadings(payload).readings, batch(0, 3));
    assert.equal(t.spool.stats().batches, 0);
    assert.equal(t.published.length, 6);
    assert.equal(t.publisher.stats().publishedReadings, 18);
    // New readings are picked up on notify().
    await t.spool.append(batch(100, 1));
    t.publisher.notify();
    await settle();
    assert.deepEqual(itemIds(t.session).at(-1), "r-100-100");
    t.publisher.stop();
  });

  it("keeps at most inFlight publishes outstanding", async () => {
    const t = await setup({ inFlight: 2 });
    t.session.policy = (iq) => (kind(iq) === "publish" ? "hold" : "result");
    for (let i = 0; i < 5; i++) await t.spool.append(batch(i * 10, 1));
    t.publisher.start();
    await settle();
    assert.equal(t.session.held.length, 2);
    assert.equal(t.publisher.stats().inFlight, 2);
    t.session.release();
    await settle();
    assert.equal(t.session.held.length, 2);
    t.session.release();
    await settle();
    t.session.release();
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-0-0", "r-10-10", "r-20-20", "r-30-30", "r-40-40"]);
    assert.equal(t.spool.stats().batches, 0);
    t.publisher.stop();
  });

  it("pauses while offline and resumes on online", async () => {
    const t = await setup();
    t.session.online = false;
    await t.spool.append(batch(1, 2));
    t.publisher.start();
    await settle();
    assert.equal(t.session.requests.length, 0);
    assert.equal(t.publisher.state, "offline");
    t.session.setOnline(true);
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-1-2"]);
    t.publisher.stop();
  });

  it("a forbidden node creation is a clear typed error; readings stay spooled and it retries with backoff", async () => {
    const t = await setup();
    t.session.policy = (iq) => (kind(iq) === "create" ? { error: "forbidden", type: "auth" } : "result");
    await t.spool.append(batch(1, 3));
    t.publisher.start();
    await settle();
    assert.equal(t.failures.length, 1);
    const err = t.failures[0]!;
    assert.ok(err instanceof PubsubError);
    assert.equal(err.code, "pubsub_forbidden");
    assert.deepEqual(
      [err.context.node, err.context.service, err.context.operation, err.context.condition],
      [NODES.telemetry, "pubsub.iot.test", "create", "forbidden"],
    );
    assert.match(err.message, /refused to create node devices\/dev1\/telemetry on pubsub\.iot\.test: forbidden/);
    assert.equal(t.spool.stats().readings, 3);
    assert.equal(t.publisher.state, "backoff");
    assert.equal(t.publisher.stats().lastError?.condition, "forbidden");
    // A reconnect does not short-cut the wait after a refusal.
    t.session.setOnline(true);
    await settle();
    assert.equal(t.session.requests.length, 1);
    // The admin fixes the ACL; the next attempt goes through.
    t.session.policy = () => "result";
    t.timers.advance(1000);
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-1-3"]);
    assert.equal(t.spool.stats().readings, 0);
    t.publisher.stop();
  });

  it("a refused publish keeps the batch and re-sends it under the same id", async () => {
    const t = await setup();
    let refuse = 2;
    t.session.policy = (iq) => (kind(iq) === "publish" && refuse-- > 0 ? { error: "forbidden" } : "result");
    await t.spool.append(batch(1, 3));
    t.publisher.start();
    await settle();
    assert.equal(t.failures[0]?.code, "pubsub_forbidden");
    assert.equal(t.failures[0]?.context.operation, "publish");
    assert.equal(t.spool.stats().readings, 3);
    t.timers.advance(1000);
    await settle();
    t.timers.advance(2000);
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-1-3", "r-1-3", "r-1-3"]);
    assert.equal(t.spool.stats().readings, 0);
    t.publisher.stop();
  });

  it("timeouts are retried in order with backoff; a reconnect retries at once", async () => {
    const t = await setup({ inFlight: 3 });
    let fail = true;
    t.session.policy = (iq) => (kind(iq) === "publish" && fail ? { code: "iq_timeout" } : "result");
    for (let i = 0; i < 3; i++) await t.spool.append(batch(i * 10, 1));
    t.publisher.start();
    await settle();
    assert.equal(t.failures.length, 3);
    assert.equal(t.failures[0]!.code, "iq_timeout");
    fail = false;
    t.session.setOnline(true);
    await settle();
    assert.deepEqual(itemIds(t.session).slice(3), ["r-0-0", "r-10-10", "r-20-20"]);
    assert.equal(t.spool.stats().batches, 0);
    t.publisher.stop();
  });

  it("re-creates the node after item-not-found", async () => {
    const t = await setup();
    let gone = true;
    t.session.policy = (iq) => {
      if (kind(iq) !== "publish" || !gone) return "result";
      gone = false;
      return { error: "item-not-found" };
    };
    await t.spool.append(batch(1, 1));
    t.publisher.start();
    await settle();
    t.timers.advance(1000);
    await settle();
    assert.deepEqual(flow(t.session), ["create", "publish", "create", "publish"]);
    t.publisher.stop();
  });

  it("on a publish-options conflict it configures the node, or else publishes without options", async () => {
    const t = await setup();
    t.session.policy = (iq) => {
      const k = kind(iq);
      if (k === "publish" && iq.getChild("pubsub")!.getChild("publish-options")) return { error: "conflict" };
      if (k === "configure") return { error: "forbidden" };
      return "result";
    };
    await t.spool.append(batch(1, 1));
    t.publisher.start();
    await settle();
    t.timers.advance(1000);
    await settle();
    assert.deepEqual(flow(t.session), ["create", "publish", "configure", "publish"]);
    assert.equal(t.spool.stats().batches, 0);
    t.publisher.stop();
  });

  it("PEP: requests go to the account itself (no 'to')", async () => {
    const t = await setup({ service: undefined });
    await t.spool.append(batch(1, 1));
    t.publisher.start();
    await settle();
    assert.ok(t.session.requests.every((r) => r.attrs.to === undefined));
    assert.equal(t.publisher.stats().service, "(PEP)");
    t.publisher.stop();
  });

  it("publishes the status item as 'current' on a one-item node", async () => {
    const t = await setup();
    t.publisher.start();
    await t.publisher.publishStatus({
      device: "dev1",
      state: "online",
      timestamp: 1_700_000_000_000,
      agentVersion: "0.1.0",
      channels: [{ id: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 }],
    });
    const pub = publishes(t.session).at(-1)!;
    const publish = pub.getChild("pubsub")!.getChild("publish")!;
    assert.equal(publish.attrs.node, NODES.status);
    assert.equal(publish.getChild("item")!.attrs.id, "current");
    assert.equal(decodeStatus(publish.getChild("item")!.children[0] as Element).channels[0]!.unit, "°C");
    const create = t.session.requests.find((r) => kind(r) === "create" && r.toString().includes(NODES.status))!;
    assert.match(create.toString(), /pubsub#max_items<\/field>|var="pubsub#max_items"><value>1<\/value>/);
    t.session.policy = () => ({ error: "forbidden" });
    await assert.rejects(
      t.publisher.publishStatus({ device: "dev1", state: "online", timestamp: 0, agentVersion: "0.1.0", channels: [] }),
      (e: unknown) => e instanceof PubsubError && e.code === "pubsub_forbidden",
    );
    t.publisher.stop();
  });

  it("stop() cancels its retry timer and listeners", async () => {
    const t = await setup();
    t.session.policy = () => ({ error: "forbidden" });
    await t.spool.append(batch(1, 1));
    t.publisher.start();
    await settle();
    assert.equal(t.timers.pendingCount, 1);
    t.publisher.stop();
    assert.equal(t.timers.pendingCount, 0);
    assert.equal(t.session.listenerCount("online"), 0);
  });
});

describe("TelemetryPublisher on a server that refuses publish-options (ejabberd 23.01)", () => {
  // What ejabberd 23.01 answers, verbatim (test/interop/servers.test.ts runs the real one).
  const refusal = {
    error: "resource-constraint",
    type: "wait",
    text: "Unknown field 'pubsub#max_items' of type 'http://jabber.org/protocol/pubsub#publish-options'",
  };
  const configForm = (node: string, maxItems = "10", accessModel = "open") =>
    parse(
      `<pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="${node}"><x xmlns="jabber:x:data" type="form">` +
        `<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
        `<field var="pubsub#max_items"><value>${maxItems}</value></field><field var="pubsub#access_model"><value>${accessModel}</value></field>` +
        `</x></configure></pubsub>`,
    );
  const hasOptions = (iq: Element) => Boolean(iq.getChild("pubsub")?.getChild("publish-options"));

  it("configures the existing node from the listed fields once, re-sends at once without options, and logs once", async () => {
    const warnings: string[] = [];
    const t = await setup({
      extra: { logger: createLogger({ level: "warn", write: (line) => warnings.push(JSON.parse(line).msg) }) },
    });
    const { publisher, published } = t;
    // The server's node configuration: what an earlier run (and the old default, open) left.
    const configured = new Set<string>();
    t.session.policy = (iq) => {
      const k = kind(iq);
      const node = String(iq.getChild("pubsub")!.getChild(k)?.attrs.node);
      if (k === "create") return { error: "conflict" }; // made by an earlier run
      if (k === "configure" && iq.attrs.type === "get")
        return { result: configured.has(node) ? configForm(node, "256", "whitelist") : configForm(node) };
      if (k === "configure") configured.add(node);
      if (k === "publish" && hasOptions(iq)) return refusal;
      return "result";
    };
    for (let i = 0; i < 3; i++) await t.spool.append(batch(i * 10, 2));
    publisher.start();
    await settle();
    assert.deepEqual(
      published.map((p) => p.itemId),
      ["r-0-1", "r-10-11", "r-20-21"],
    );
    assert.equal(t.timers.pendingCount, 0, "no backoff: the data was not at fault");
    assert.equal(warnings.filter((w) => /refuses publish-options/.test(w)).length, 1);
    // The node was configured with the fields its form lists, and only those.
    const submit = t.session.requests.find((r) => kind(r) === "configure" && r.attrs.type === "set")!;
    const vars = submit
      .getChild("pubsub")!
      .getChild("configure")!
      .getChild("x")!
      .getChildren("field")
      .map((f) => f.attrs.var);
    assert.deepEqual(vars, ["FORM_TYPE", "pubsub#max_items", "pubsub#access_model"]);
    assert.match(submit.toString(), /var="pubsub#access_model"><value>whitelist</);
    // Once: the next ensure (after publish-options were dropped) finds the form as wanted.
    const submits = () =>
      t.session.requests.filter((r) => kind(r) === "configure" && r.attrs.type === "set").map((r) => r.toString());
    assert.equal(submits().length, 1);
    // The status item goes without options as well.
    await publisher.publishStatus({
      device: "dev1",
      state: "online",
      timestamp: 0,
      agentVersion: "0.1.0",
      channels: [],
    });
    // Only the first window (3 batches dispatched before the first refusal came back) carried options.
    assert.equal(publishes(t.session).filter(hasOptions).length, 3);
    assert.equal(hasOptions(publishes(t.session).at(-1)!), false);
    assert.equal(submits().filter((x) => x.includes("devices/dev1/status")).length, 1, "the status node, once");
    publisher.stop();
  });

  it("a refusal that has nothing to do with options keeps them and backs off", async () => {
    const t = await setup();
    t.session.policy = (iq) => (kind(iq) === "publish" ? { error: "resource-constraint", type: "wait" } : "result");
    await t.spool.append(batch(0, 2));
    t.publisher.start();
    await settle();
    assert.equal(t.failures.length, 1);
    assert.equal(t.publisher.state, "backoff");
    t.session.policy = () => "result";
    t.timers.advance(1000);
    await settle();
    assert.ok(publishes(t.session).every(hasOptions));
    t.publisher.stop();
  });
});

describe("TelemetryPublisher dead letters: a batch refused for good does not hold the fleet's data back", () => {
  class MemoryDeadLetters implements DeadLetterSink {
    readonly letters: DeadLetter[] = [];
    full = false;
    async append(l: DeadLetter) {
      if (this.full) return false;
      this.letters.push(l);
      return true;
    }
    counts() {
      return { batches: this.letters.length, readings: this.letters.reduce((n, l) => n + l.readings.length, 0) };
    }
  }

  async function withSink(sink: MemoryDeadLetters) {
    const t = await setup({
      extra: {
        retry: { initialDelayMs: 1000, maxDelayMs: 1000, factor: 1 },
        deadLetter: { sink, afterTries: 3, afterMs: 3_600_000 },
      },
    });
    // The server refuses one item, always (e.g. a payload its policy rejects).
    t.session.policy = (iq) =>
      kind(iq) === "publish" && itemIds({ requests: [iq] } as PubsubFakeSession)[0] === "r-10-11"
        ? { error: "policy-violation", type: "modify" }
        : "result";
    return { ...t, itemIds: () => t.published.map((p) => p.itemId) };
  }

  it("after 3 refusals the batch moves to the dead letters, and the readings behind it are published", async () => {
    const sink = new MemoryDeadLetters();
    const t = await withSink(sink);
    for (let i = 0; i < 3; i++) await t.spool.append(batch(i * 10, 2));
    t.publisher.start();
    await settle();
    assert.deepEqual(t.itemIds(), ["r-0-1", "r-20-21"]);
    assert.equal(t.publisher.stats().blocked?.condition, "policy-violation");
    assert.equal(t.publisher.stats().blocked?.tries, 1);
    for (let i = 0; i < 2; i++) {
      t.timers.advance(1000);
      await settle();
    }
    assert.equal(sink.letters.length, 1);
    assert.equal(sink.letters[0]!.itemId, "r-10-11");
    assert.equal(sink.letters[0]!.error.condition, "policy-violation");
    assert.equal(sink.letters[0]!.error.tries, 3);
    assert.deepEqual(sink.letters[0]!.readings, batch(10, 2));
    assert.equal(t.spool.stats().batches, 0, "nothing left in the spool");
    assert.equal(t.publisher.stats().blocked, undefined);
    assert.deepEqual(t.publisher.stats().deadLettered, { batches: 1, readings: 2 });
    // New readings flow on.
    await t.spool.append(batch(30, 1));
    t.publisher.notify();
    await settle();
    assert.equal(t.itemIds().at(-1), "r-30-30");
    t.publisher.stop();
  });

  it("a full dead-letter file drops nothing: the batch stays spooled and the publisher reports itself blocked", async () => {
    const sink = new MemoryDeadLetters();
    sink.full = true;
    const t = await withSink(sink);
    await t.spool.append(batch(10, 2));
    t.publisher.start();
    await settle();
    for (let i = 0; i < 4; i++) {
      t.timers.advance(1000);
      await settle();
    }
    assert.equal(t.spool.stats().batches, 1);
    assert.equal(t.publisher.stats().blocked?.deadLetterFull, true);
    t.publisher.stop();
  });
});

describe("FileDeadLetters", () => {
  it("appends durably, counts across reopen, ignores a torn last line, refuses past its bound", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dead-letters-"));
    try {
      const path = join(dir, "telemetry", "dead-letter.jsonl");
      const letter = (first: number): DeadLetter => ({
        at: "2026-11-30T00:00:00.000Z",
        itemId: `r-${first}-${first + 1}`,
        node: NODES.telemetry,
        service: "pubsub.iot.test",
        firstSeq: first,
        lastSeq: first + 1,
        error: { code: "pubsub_forbidden", condition: "policy-violation", message: "x", tries: 3, since: "" },
        readings: batch(first, 2),
      });
      const a = new FileDeadLetters(path, 4096);
      assert.equal(await a.append(letter(0)), true);
      assert.equal(await a.append(letter(10)), true);
      appendFileSync(path, '{"itemId":"r-20-');
      const b = new FileDeadLetters(path, 4096);
      assert.deepEqual(b.counts(), { batches: 2, readings: 4 });
      let refused = 0;
      for (let i = 0; i < 20; i++) if (!(await b.append(letter(100 + i * 10)))) refused++;
      assert.ok(refused > 0, "the bound holds");
      assert.ok(statSync(path).size <= 4096);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("TelemetryPublisher: the device owns its nodes (node squatting)", () => {
  const SELF = "dev1@iot.test";
  class Letters implements DeadLetterSink {
    readonly letters: DeadLetter[] = [];
    async append(l: DeadLetter) {
      this.letters.push(l);
      return true;
    }
    counts() {
      return { batches: this.letters.length, readings: this.letters.reduce((n, l) => n + l.readings.length, 0) };
    }
  }

  async function squatSetup(extra: Partial<PublisherOptions> = {}) {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Letters();
    const t = await setup({
      extra: {
        logger: createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) }),
        deadLetter: { sink, afterTries: 1, afterMs: 3_600_000 },
        ...extra,
      },
    });
    const ownership: Array<{ node: string; owned: boolean }> = [];
    t.publisher.on("ownership", (o) => ownership.push(o));
    return { ...t, lines, sink, ownership };
  }

  it("a node whose owner list the server refuses the device: nothing published, reported, spooled, re-checked with backoff, resumed when the node is gone", async () => {
    const t = await squatSetup();
    // The intruder's node exists; the device is no owner, so the owner-only request is refused (ejabberd).
    let squatted = true;
    t.session.policy = (iq) => {
      const k = kind(iq);
      if (k === "create") return squatted ? { error: "conflict" } : "result";
      if (k === "affiliations" && squatted)
        return { error: "forbidden", type: "auth", text: "Owner privileges required" };
      return "result";
    };
    for (let i = 0; i < 3; i++) await t.spool.append(batch(i * 10, 2));
    t.publisher.start();
    await settle();
    assert.equal(publishes(t.session).length, 0, "nothing published into the squatter's node");
    const err = t.failures[0]!;
    assert.ok(err instanceof PubsubError);
    assert.equal(err.code, "pubsub_node_not_owned");
    assert.deepEqual(
      [err.context.reason, err.context.condition, err.context.node],
      ["not-owner", "forbidden", NODES.telemetry],
    );
    assert.match(err.message, /devices\/dev1\/telemetry on pubsub\.iot\.test is not this device's/);
    const sq = t.publisher.stats().squatted!;
    assert.equal(sq.length, 1);
    assert.equal(sq[0]!.node, NODES.telemetry);
    assert.equal(sq[0]!.checks, 1);
    assert.equal(t.publisher.state, "backoff");
    assert.deepEqual(t.ownership, [{ node: NODES.telemetry, owned: false }]);
    const fault = t.lines.filter((l) => l.level === "error" && /security fault/.test(String(l.msg)));
    assert.equal(fault.length, 1, "one error line when the fault is found");
    assert.equal(fault[0]!.node, NODES.telemetry);
    assert.equal(t.spool.stats().readings, 6);
    assert.equal(t.sink.letters.length, 0);
    // A reconnect does not short-cut the wait; the timer re-checks (and finds it still so).
    const before = t.session.requests.length;
    t.session.setOnline(true);
    await settle();
    assert.equal(t.session.requests.length, before);
    t.timers.advance(1000);
    await settle();
    assert.equal(t.publisher.stats().squatted![0]!.checks, 2);
    assert.equal(publishes(t.session).length, 0);
    assert.equal(t.sink.letters.length, 0, "never a dead letter for it");
    // An admin deletes the squatter's node: the next check creates the device's own and drains the spool.
    squatted = false;
    t.timers.advance(2000);
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-0-1", "r-10-11", "r-20-21"]);
    assert.equal(t.spool.stats().readings, 0);
    assert.equal(t.publisher.stats().squatted, undefined);
    assert.deepEqual(t.ownership.at(-1), { node: NODES.telemetry, owned: true });
    assert.ok(t.lines.some((l) => l.level === "info" && /the device's again/.test(String(l.msg))));
    t.publisher.stop();
  });

  it("an owner list that names someone else (Prosody answers an admin device for any node) is a fault too", async () => {
    const t = await squatSetup();
    t.session.policy = (iq) => (kind(iq) === "create" ? { error: "conflict" } : "result");
    t.session.affiliations.set(NODES.telemetry, new Map([["intruder@iot.test", "owner"]]));
    await t.spool.append(batch(1, 2));
    t.publisher.start();
    await settle();
    assert.equal(publishes(t.session).length, 0);
    const sq = t.publisher.stats().squatted![0]!;
    assert.deepEqual([sq.reason, sq.owners], ["not-owner", ["intruder@iot.test"]]);
    assert.match(t.failures[0]!.message, /owned by intruder@iot\.test, not by this device/);
    t.publisher.stop();
  });

  it("a co-owner is trusted only when the config names it", async () => {
    for (const trusted of [[], ["Admin@iot.test"]]) {
      const t = await squatSetup({ trustedOwners: trusted });
      t.session.affiliations.set(
        NODES.telemetry,
        new Map([
          [SELF, "owner"],
          ["admin@iot.test", "owner"],
        ]),
      );
      await t.spool.append(batch(1, 2));
      t.publisher.start();
      await settle();
      if (trusted.length === 0) {
        assert.equal(publishes(t.session).length, 0);
        assert.deepEqual(t.publisher.stats().squatted![0]!.owners, ["admin@iot.test"]);
        assert.equal(t.publisher.stats().squatted![0]!.reason, "untrusted-owner");
      } else {
        assert.deepEqual(itemIds(t.session), ["r-1-2"]);
        assert.equal(t.publisher.stats().squatted, undefined);
      }
      t.publisher.stop();
    }
  });

  it("a server that cannot list owners leaves ownership unverifiable: nothing is published", async () => {
    const t = await squatSetup();
    t.session.policy = (iq) => {
      if (kind(iq) === "create") return { error: "conflict" };
      return kind(iq) === "affiliations" ? { error: "feature-not-implemented" } : "result";
    };
    await t.spool.append(batch(1, 2));
    t.publisher.start();
    await settle();
    assert.equal(publishes(t.session).length, 0);
    assert.equal(t.publisher.stats().squatted![0]!.reason, "unverifiable");
    t.publisher.stop();
  });

  it("a publish refused mid-run re-checks the owner before anything becomes a dead letter (afterTries 1)", async () => {
    const t = await squatSetup();
    // The node is ours at first; then an admin deletes it and an intruder re-creates it between two publishes.
    let intruder = false;
    t.session.policy = (iq) => {
      const k = kind(iq);
      if (k === "create") return intruder ? { error: "conflict" } : "result";
      if (k === "publish" && intruder) return { error: "forbidden", type: "auth" };
      return "result";
    };
    await t.spool.append(batch(0, 2));
    t.publisher.start();
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-0-1"]);
    intruder = true;
    t.session.affiliations.set(NODES.telemetry, new Map([["intruder@iot.test", "owner"]]));
    await t.spool.append(batch(10, 2));
    t.publisher.notify();
    await settle();
    assert.equal(t.sink.letters.length, 0, "not dead-lettered: the refusal was the squatter's");
    assert.equal(t.spool.stats().readings, 2);
    assert.equal(t.publisher.stats().squatted![0]!.owners[0], "intruder@iot.test");
    assert.equal(t.publisher.stats().blocked, undefined);
    for (let i = 0; i < 3; i++) {
      t.timers.advance(8000);
      await settle();
    }
    assert.equal(t.sink.letters.length, 0);
    assert.equal(itemIds(t.session).filter((id) => id === "r-10-11").length, 1, "sent once, before the re-check");
    t.publisher.stop();
  });

  it("a refusal on a node the device does own still becomes a dead letter after the bound", async () => {
    const t = await squatSetup();
    t.session.policy = (iq) => (kind(iq) === "publish" ? { error: "policy-violation", type: "modify" } : "result");
    await t.spool.append(batch(0, 2));
    t.publisher.start();
    await settle();
    assert.equal(t.sink.letters.length, 1);
    assert.equal(t.publisher.stats().squatted, undefined);
    t.publisher.stop();
  });

  it("PEP: no owner check; the readers are still made members", async () => {
    // PEP nodes are the account's own: the owner list is read for the readers, never judged.
    const pep = await squatSetup({ readers: ["op@iot.test"], service: undefined });
    pep.session.policy = (iq) => (kind(iq) === "create" ? { error: "conflict" } : "result");
    pep.session.affiliations.set(NODES.telemetry, new Map([["other@iot.test", "owner"]]));
    await pep.spool.append(batch(1, 2));
    pep.publisher.start();
    await settle();
    assert.deepEqual(itemIds(pep.session), ["r-1-2"]);
    assert.ok(pep.session.requests.every((r) => r.attrs.to === undefined));
    assert.equal(pep.session.nodeAffiliations(NODES.telemetry).get("op@iot.test"), "member");
    pep.publisher.stop();
  });

  it("brings the members in step: readers added, stale members removed, their subscriptions first; owners, publishers, outcasts kept", async () => {
    const t = await squatSetup({ readers: ["Alice@iot.test", "bob@iot.test"] });
    t.session.policy = (iq) => (kind(iq) === "create" ? { error: "conflict" } : "result");
    t.session.affiliations.set(
      NODES.telemetry,
      new Map([
        [SELF, "owner"],
        ["bob@iot.test", "member"],
        ["gone@iot.test", "member"],
        ["pub@iot.test", "publisher"],
        ["banned@iot.test", "outcast"],
      ]),
    );
    t.session.subscriptions.set(NODES.telemetry, [
      { jid: "gone@iot.test/laptop", subid: "s1" },
      { jid: "stranger@iot.test" }, // from the days the node was open
      { jid: "bob@iot.test" },
      { jid: "pub@iot.test" },
    ]);
    await t.spool.append(batch(1, 2));
    t.publisher.start();
    await settle();
    assert.deepEqual([...t.session.nodeAffiliations(NODES.telemetry)].sort(), [
      ["alice@iot.test", "member"],
      ["banned@iot.test", "outcast"],
      ["bob@iot.test", "member"],
      [SELF, "owner"],
      ["pub@iot.test", "publisher"],
    ]);
    assert.deepEqual(
      t.session.subscriptions.get(NODES.telemetry)!.map((x) => x.jid),
      ["bob@iot.test", "pub@iot.test"],
    );
    const sets = t.session.requests.filter(
      (r) => r.attrs.type === "set" && ["affiliations", "subscriptions"].includes(kind(r)),
    );
    assert.deepEqual(
      sets.filter((r) => r.toString().includes(NODES.telemetry)).map(kind),
      ["subscriptions", "affiliations"],
      "subscriptions removed before the affiliation change (Prosody 0.12 refuses it otherwise)",
    );
    assert.match(sets[0]!.toString(), /subid="s1"/);
    assert.deepEqual(itemIds(t.session), ["r-1-2"]);
    const info = t.lines.find((l) => /readers brought in step/.test(String(l.msg)) && l.node === NODES.telemetry)!;
    assert.deepEqual(
      [info.added, info.removed, info.unsubscribed],
      [["alice@iot.test"], ["gone@iot.test"], ["gone@iot.test/laptop", "stranger@iot.test"]],
    );
    t.publisher.stop();
  });

  it("open: nobody is made a member and no subscription is touched; the owner check still runs", async () => {
    const t = await squatSetup({ readers: ["op@iot.test"], nodeConfig: { accessModel: "open" } });
    t.session.subscriptions.set(NODES.telemetry, [{ jid: "anyone@iot.test" }]);
    await t.spool.append(batch(1, 2));
    t.publisher.start();
    await settle();
    assert.deepEqual(t.session.requests.slice(0, 2).map(kind), ["create", "affiliations"]);
    assert.ok(
      !t.session.requests.some(
        (r) => kind(r) === "subscriptions" || (kind(r) === "affiliations" && r.attrs.type === "set"),
      ),
    );
    assert.deepEqual(itemIds(t.session), ["r-1-2"]);
    t.publisher.stop();
  });

  it("an affiliation change answered with an error counts as done when the list shows it done (Prosody 0.12); else it is logged and publishing goes on", async () => {
    for (const applied of [true, false]) {
      const t = await squatSetup({ readers: ["op@iot.test"] });
      t.session.policy = (iq) => {
        if (kind(iq) === "affiliations" && iq.attrs.type === "set") {
          if (applied) t.session.nodeAffiliations(NODES.telemetry).set("op@iot.test", "member");
          return { error: "forbidden", type: "auth" };
        }
        return "result";
      };
      await t.spool.append(batch(1, 2));
      t.publisher.start();
      await settle();
      assert.deepEqual(itemIds(t.session), ["r-1-2"], "publishing goes on");
      const errors = t.lines.filter((l) => l.level === "error" && /readers of a pubsub node/.test(String(l.msg)));
      assert.equal(errors.length, applied ? 0 : 1);
      t.publisher.stop();
    }
  });

  it("the status node is checked too: a squatted status node rejects publishStatus with pubsub_node_not_owned", async () => {
    const t = await squatSetup();
    t.session.affiliations.set(NODES.status, new Map([["intruder@iot.test", "owner"]]));
    t.session.policy = (iq) =>
      kind(iq) === "create" && iq.toString().includes(NODES.status) ? { error: "conflict" } : "result";
    t.publisher.start();
    await assert.rejects(
      t.publisher.publishStatus({ device: "dev1", state: "online", timestamp: 0, agentVersion: "0.1.0", channels: [] }),
      (e: unknown) => e instanceof PubsubError && e.code === "pubsub_node_not_owned",
    );
    assert.equal(publishes(t.session).length, 0);
    assert.deepEqual(
      t.publisher.stats().squatted!.map((s) => s.node),
      [NODES.status],
    );
    // Telemetry to the device's own telemetry node is not held back by it.
    await t.spool.append(batch(1, 2));
    t.publisher.notify();
    await settle();
    assert.deepEqual(itemIds(t.session), ["r-1-2"]);
    t.publisher.stop();
  });

  it("an existing open node on a server that will not list its subscribers (ejabberd PEP) is deleted and re-created as whitelist", async () => {
    for (const listable of [false, true]) {
      const t = await squatSetup({ readers: ["op@iot.test"], service: undefined });
      let exists = true;
      let model = "open";
      t.session.policy = (iq) => {
        const k = kind(iq);
        if (k === "create") {
          if (exists) return { error: "conflict" };
          exists = true;
          return "result";
        }
        if (k === "delete") exists = false;
        if (k === "configure" && iq.attrs.type === "get")
          return {
            result: parse(
              `<pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="x"><x xmlns="jabber:x:data" type="form">` +
                `<field var="pubsub#access_model"><value>${model}</value></field></x></configure></pubsub>`,
            ),
          };
        if (k === "configure") model = "whitelist";
        if (k === "subscriptions" && iq.attrs.type === "get" && !listable) return { error: "feature-not-implemented" };
        return "result";
      };
      await t.spool.append(batch(1, 2));
      t.publisher.start();
      await settle();
      assert.deepEqual(itemIds(t.session), ["r-1-2"]);
      const telemetryFlow = t.session.requests
        .filter((r) => r.toString().includes(NODES.telemetry))
        .map((r) => `${kind(r)} ${r.attrs.type}`);
      if (listable) assert.ok(!telemetryFlow.includes("delete set"), "listed subscribers are pruned instead");
      else {
        assert.deepEqual(telemetryFlow.slice(0, 8), [
          "create set",
          "configure get",
          "configure set",
          "affiliations get",
          "subscriptions get",
          "affiliations set",
          "delete set",
          "create set",
        ]);
        assert.ok(t.lines.some((l) => l.level === "warn" && /deleting and re-creating/.test(String(l.msg))));
      }
      t.publisher.stop();
    }
  });
});
