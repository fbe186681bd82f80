import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Element } from "ltx";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { isAgentError } from "../../kernel/errors.js";
import { createLogger } from "../../kernel/log.js";
import { FakeTimers } from "../../kernel/timers.js";
import { decodeReadings, decodeStatus } from "./codec.js";
import { type TelemetryConfig, telemetryConfigSchema } from "./config.js";
import { TelemetryService, telemetryNodes, telemetryReaders } from "./service.js";
import { PubsubFakeSession, settle } from "./testing/index.js";

const root = mkdtempSync(join(tmpdir(), "tsvc-"));
after(() => rmSync(root, { recursive: true, force: true }));

function config(store: "memory" | "file"): TelemetryConfig {
  const c = telemetryConfigSchema.parse({ spool: { store }, batch: { maxReadings: 2, maxAgeMs: 100 } }, new Ctx());
  assert.notEqual(c, INVALID);
  return c as TelemetryConfig;
}

describe("TelemetryService", () => {
  it("wires sampler -> batcher -> spool -> publisher, publishes status on start, reports status, stops cleanly", async () => {
    for (const store of ["memory", "file"] as const) {
      const session = new PubsubFakeSession();
      const timers = new FakeTimers(1_700_000_000_000);
      const svc = new TelemetryService({
        config: config(store),
        pubsub: { service: "pubsub.iot.test", nodePrefix: "devices/" },
        deviceId: "dev1",
        dataDir: join(root, store),
        session,
        source: {
          channels: () => [{ id: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 }],
          read: async () => ({ value: 21, quality: "good" }),
        },
        agentVersion: "0.1.0",
        firmwareVersion: () => "fw-9",
        timers,
      });
      assert.deepEqual(svc.nodes, telemetryNodes("devices/", "dev1"));
      await svc.start();
      for (let i = 0; i < 4; i++) {
        timers.advance(1000);
        await new Promise((r) => setTimeout(r, 20));
      }
      timers.advance(100); // the last batch's age limit
      // The file spool does real I/O: wait (in real time) for the pipeline to drain.
      for (let i = 0; i < 200 && (svc.status()?.publisher.publishedReadings ?? 0) < 4; i++)
        await new Promise((r) => setTimeout(r, 10));
      const items = session.requests
        .map((r) => r.getChild("pubsub")?.getChild("publish"))
        .filter((p): p is Element => p !== undefined && p.attrs.node === "devices/dev1/telemetry");
      const seqs = items.flatMap((p) =>
        decodeReadings(p.getChild("item")!.children[0] as Element).readings.map((r) => r.seq),
      );
      assert.deepEqual(seqs, [0, 1, 2, 3], store);
      assert.ok(
        session.requests.some((r) => r.toString().includes('id="current"')),
        "status item published",
      );
      const st = svc.status()!;
      assert.equal(st.service, "pubsub.iot.test");
      assert.equal(st.spool.batches, 0);
      assert.equal(st.publisher.publishedReadings, 4);
      svc.setInterval("temp0", 500);
      assert.equal(svc.deviceStatus().channels[0]!.intervalMs, 500);
      assert.throws(
        () => svc.setInterval("x", 500),
        (e: unknown) => isAgentError(e, "sampler_unknown_channel"),
      );
      const presence = svc.presenceChildren();
      assert.match(presence.map((c) => c.toString()).join(""), /online: 1 channel, firmware fw-9, agent 0.1.0/);
      await svc.stop();
      assert.equal(svc.status(), undefined);
      assert.equal(timers.pendingCount, 0, `${store}: stop() leaves no timers`);
      assert.equal(session.listenerCount("online"), 0);
    }
  });
});

/** A started service on a memory spool and fake timers, its log lines and presence states collected. */
async function started(
  over: Record<string, unknown>,
  operators: string[],
  session = new PubsubFakeSession(),
  dir = "readers",
) {
  const lines: Array<Record<string, unknown>> = [];
  const timers = new FakeTimers(1_700_000_000_000);
  const c = telemetryConfigSchema.parse({ spool: { store: "memory" }, ...over }, new Ctx());
  assert.notEqual(c, INVALID);
  const states: string[] = [];
  const svc = new TelemetryService({
    config: c as TelemetryConfig,
    pubsub: { service: "pubsub.iot.test", nodePrefix: "devices/" },
    operators,
    deviceId: "dev1",
    dataDir: join(root, dir),
    session,
    source: { channels: () => [], read: async () => ({ value: 0, quality: "good" }) },
    agentVersion: "0.1.0",
    timers,
    logger: createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) }),
    onStateChange: (s) => states.push(s),
  });
  await svc.start();
  return { svc, lines, session, timers, states };
}

describe("TelemetryService: readers and squatted nodes", () => {
  it("telemetryReaders: operator accounts and readers, folded and de-duplicated; domains apart", () => {
    assert.deepEqual(
      telemetryReaders(["Alice@iot.test", "ops.example.org", "bob@iot.test"], ["alice@iot.test", "dash@iot.test"]),
      { accounts: ["alice@iot.test", "bob@iot.test", "dash@iot.test"], domains: ["ops.example.org"] },
    );
  });

  it("warns once at start about operators given as a whole domain (whitelist), and not under presence", async () => {
    const a = await started({}, ["ops.example.org", "op@iot.test"]);
    const warns = a.lines.filter((l) => l.level === "warn" && /whole domain/.test(String(l.msg)));
    assert.equal(warns.length, 1);
    assert.deepEqual(warns[0]!.domains, ["ops.example.org"]);
    assert.match(String(warns[0]!.msg), /telemetry\.publish\.readers/);
    assert.match(String(warns[0]!.msg), /accessModel: presence/);
    assert.deepEqual(a.svc.status()!.access, { model: "whitelist", readers: ["op@iot.test"] });
    await a.svc.stop();
    const b = await started({ publish: { accessModel: "presence" } }, ["ops.example.org"]);
    assert.equal(b.lines.filter((l) => /whole domain/.test(String(l.msg))).length, 0);
    await b.svc.stop();
  });

  it("a squatted status node: reported in stateText and presence, re-checked on a timer, published once it is the device's", async () => {
    const session = new PubsubFakeSession();
    // The status node belongs to an intruder (Prosody lists it; the device is an admin).
    session.affiliations.set("devices/dev1/status", new Map([["intruder@iot.test", "owner"]]));
    session.policy = (iq) => {
      const create = iq.getChild("pubsub")?.getChild("create");
      return create?.attrs.node === "devices/dev1/status" && session.affiliations.has("devices/dev1/status")
        ? { error: "conflict" }
        : "result";
    };
    const t = await started({ publish: { retry: { initialDelayMs: 1000, maxDelayMs: 1000, factor: 1 } } }, [], session);
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
    assert.match(
      t.svc.stateText(),
      /^security fault: devices\/dev1\/status is owned by intruder@iot\.test, not by this device; not publishing there since 2023-11-14T22:13:20\.000Z \(1 check\)$/,
    );
    assert.equal(t.states.length, 1, "presence told once");
    assert.match(t.states[0]!, /security fault/);
    const statusPublishes = () =>
      session.requests.filter((r) => r.getChild("pubsub")?.getChild("publish")?.attrs.node === "devices/dev1/status");
    assert.equal(statusPublishes().length, 0);
    // The intruder's node is deleted; the service's own re-check finds the node free and publishes.
    session.affiliations.delete("devices/dev1/status");
    t.timers.advance(1000);
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(statusPublishes().length, 1);
    assert.equal(t.svc.stateText(), "publishing");
    assert.equal(t.states.at(-1), "publishing");
    await t.svc.stop();
    assert.equal(t.timers.pendingCount, 0);
  });
});

describe("TelemetryService: the status item kept fresh", () => {
  it("is published again every statusIntervalMs while online, with the spooled readings; not while offline", async () => {
    const session = new PubsubFakeSession();
    const { svc, timers } = await started({ publish: { statusIntervalMs: 60_000 } }, [], session, "status-refresh");
    await settle();
    const items = () =>
      session.requests
        .map((r) => r.getChild("pubsub")?.getChild("publish"))
        .filter((p) => p?.attrs.node === "devices/dev1/status")
        .map((p) => decodeStatus(p!.getChild("item")!.children[0] as Element));
    assert.equal(items().length, 1);
    assert.equal(items()[0]!.spooledReadings, 0);
    timers.advance(60_000);
    await settle();
    assert.equal(items().length, 2, "refreshed");
    session.setOnline(false);
    timers.advance(60_000);
    await settle();
    assert.equal(items().length, 2, "nothing while offline");
    await svc.stop();
    assert.equal(timers.pendingCount, 0);
  });
});

describe("TelemetryService: a status item that fails while online", () => {
  it("is published again after the backoff, not only on the next reconnect; offline it waits for online", async () => {
    const session = new PubsubFakeSession();
    const isStatusPublish = (iq: Element) =>
      iq.getChild("pubsub")?.getChild("publish")?.attrs.node === "devices/dev1/status";
    let failures = 1;
    session.policy = (iq) => (isStatusPublish(iq) && failures-- > 0 ? { code: "iq_timeout" } : "result");
    const { svc, timers } = await started(
      { publish: { retry: { initialDelayMs: 1000, maxDelayMs: 1000, factor: 1 } } },
      [],
      session,
      "status-retry",
    );
    await settle();
    const statusPublishes = () => session.requests.filter(isStatusPublish).length;
    assert.equal(statusPublishes(), 1, "the first one timed out");
    timers.advance(1000);
    await settle();
    assert.equal(statusPublishes(), 2, "sent again after the backoff");
    // Offline: a failure schedules nothing; the next online sends it.
    failures = 1;
    session.setOnline(false);
    await svc.publishStatus();
    timers.advance(5000);
    await settle();
    const offlineCount = statusPublishes();
    session.setOnline(true);
    await settle();
    assert.equal(statusPublishes(), offlineCount + 1, "sent on online");
    await svc.stop();
    assert.equal(timers.pendingCount, 0);
  });
});

describe("TelemetryService: memory in the status item", () => {
  it("publishes the injected figures in MiB with the status item, and reads none for presence", async () => {
    const session = new PubsubFakeSession();
    let reads = 0;
    const svc = new TelemetryService({
      config: config("memory"),
      pubsub: { service: "pubsub.iot.test", nodePrefix: "devices/" },
      deviceId: "dev1",
      dataDir: join(root, "memory-item"),
      session,
      source: { channels: () => [], read: async () => ({ value: 0, quality: "good" }) },
      agentVersion: "0.1.0",
      timers: new FakeTimers(1_700_000_000_000),
      memory: () => {
        reads++;
        return { rssBytes: 65_116_570, heapUsedBytes: 9_751_756 };
      },
    });
    await svc.start();
    await settle();
    const item = session.requests
      .map((r) => r.getChild("pubsub")?.getChild("publish"))
      .find((p) => p?.attrs.node === "devices/dev1/status")
      ?.getChild("item");
    assert.equal(item?.attrs.id, "current");
    assert.deepEqual(decodeStatus(item!.children[0] as Element).memory, { rssMiB: 62.1, heapUsedMiB: 9.3 });
    const before = reads;
    const presence = svc.presenceChildren();
    assert.equal(reads, before, "presence reads no memory figures");
    assert.doesNotMatch(presence.map((c) => c.toString()).join(""), /memory|MiB/);
    await svc.stop();
  });
});
