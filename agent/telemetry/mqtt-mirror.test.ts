import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { AgentError } from "../../kernel/errors.js";
import { FakeTimers } from "../../kernel/timers.js";
import { type MirrorBrokerPort, MqttMirror } from "./mqtt-mirror.js";
import { type MqttMirrorConfig, mqttMirrorConfigSchema } from "./mqtt-mirror-config.js";
import type { Reading } from "./reading.js";
import { MemorySpoolStore } from "./spool.js";

class FakePort implements MirrorBrokerPort {
  connected = true;
  readonly sent: Array<{ topic: string; payload: string; retain: boolean; settle: (err?: Error) => void }> = [];
  private listeners = new Set<() => void>();
  /** "ack": PUBACK at once; "hold": the test settles. */
  mode: "ack" | "hold" = "ack";
  start() {}
  async stop() {}
  on(_e: "connect", l: () => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    if (!this.connected) return Promise.reject(new AgentError("mqtt_offline", "offline"));
    return new Promise((resolve, reject) => {
      const settle = (err?: Error) => (err ? reject(err) : resolve());
      this.sent.push({ topic, payload, retain: opts.retain, settle });
      if (this.mode === "ack") queueMicrotask(() => settle());
    });
  }
  /** The connection drops: everything held fails, as MqttConnection does. */
  drop() {
    this.connected = false;
    for (const s of this.sent.splice(0)) s.settle(new AgentError("mqtt_publish_failed", "closed"));
  }
  reconnect() {
    this.connected = true;
    for (const l of this.listeners) l();
  }
}

function config(extra: Record<string, unknown> = {}): MqttMirrorConfig {
  const ctx = new Ctx();
  const r = mqttMirrorConfigSchema.parse(
    { enabled: true, broker: { url: "mqtt://127.0.0.1:1883" }, spool: { store: "memory" }, ...extra },
    ctx,
  );
  assert.notEqual(r, INVALID, JSON.stringify(ctx.issues));
  return r as MqttMirrorConfig;
}

const readings = (from: number, n: number, ch = "t"): Reading[] =>
  Array.from({ length: n }, (_, i) => ({
    seq: from + i,
    channelId: ch,
    value: from + i,
    unit: "°C",
    timestamp: 1000 + i,
    quality: "good" as const,
  }));

const settle = () => new Promise((r) => setImmediate(r));

describe("MqttMirror", () => {
  it("publishes each reading once on its channel topic (QoS 1, retained) and empties its spool", async () => {
    const port = new FakePort();
    const spool = new MemorySpoolStore();
    const m = new MqttMirror({
      config: config(),
      deviceId: "d1",
      port,
      dataDir: "/nonexistent",
      spool,
      timers: new FakeTimers(),
    });
    await m.start();
    await m.append(readings(1, 3));
    await m.append(readings(4, 2, "h"));
    await settle();
    assert.deepEqual(
      port.sent.map((s) => [s.topic, JSON.parse(s.payload).seq, s.retain]),
      [
        ["iot/d1/channel/t", 1, true],
        ["iot/d1/channel/t", 2, true],
        ["iot/d1/channel/t", 3, true],
        ["iot/d1/channel/h", 4, true],
        ["iot/d1/channel/h", 5, true],
      ],
    );
    assert.deepEqual(JSON.parse(port.sent[0]!.payload), {
      seq: 1,
      value: 1,
      unit: "°C",
      timestamp: 1000,
      quality: "good",
    });
    assert.equal(spool.stats().batches, 0);
    assert.equal(m.stats().ackedBatches, 2);
    await m.stop();
    assert.equal(port.sent.at(-1)?.topic, "iot/d1/availability");
    assert.equal(port.sent.at(-1)?.payload, "offline");
  });

  it("keeps the window bounded, survives a drop, re-sends only unacknowledged readings after reconnect", async () => {
    const port = new FakePort();
    port.mode = "hold";
    const spool = new MemorySpoolStore();
    const m = new MqttMirror({
      config: config({ inFlight: 4 }),
      deviceId: "d1",
      port,
      dataDir: "/x",
      spool,
      timers: new FakeTimers(),
    });
    await m.start();
    await m.append(readings(1, 10));
    await settle();
    assert.equal(port.sent.length, 4, "window of 4");
    port.sent[0]!.settle();
    port.sent[1]!.settle();
    await settle();
    assert.equal(m.stats().publishedReadings, 2);
    port.drop(); // 4 in flight (3..6) fail
    await settle();
    await m.append(readings(11, 5)); // while offline: spooled only
    await settle();
    assert.equal(port.sent.length, 0);
    assert.equal(m.stats().state, "offline");
    port.mode = "ack";
    port.reconnect();
    for (let i = 0; i < 10; i++) await settle();
    const seqs = port.sent.map((s) => JSON.parse(s.payload).seq as number);
    assert.deepEqual(seqs, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert.equal(spool.stats().batches, 0);
  });

  it("a refusal while connected waits with backoff, then retries", async () => {
    const port = new FakePort();
    const timers = new FakeTimers();
    const spool = new MemorySpoolStore();
    let refuse = true;
    const orig = port.publish.bind(port);
    port.publish = (t, p, o) =>
      refuse ? Promise.reject(new AgentError("mqtt_publish_failed", "not authorized")) : orig(t, p, o);
    const m = new MqttMirror({ config: config(), deviceId: "d1", port, dataDir: "/x", spool, timers, random: () => 1 });
    await m.start();
    await m.append(readings(1, 2));
    await settle();
    assert.equal(m.stats().state, "backoff");
    refuse = false;
    timers.advance(1000);
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(
      port.sent.map((s) => JSON.parse(s.payload).seq),
      [1, 2],
    );
    assert.equal(m.stats().lastError?.code, "mqtt_publish_failed");
  });

  it("config: off by default; enabled needs a broker", () => {
    const ctx = new Ctx();
    const d = mqttMirrorConfigSchema.parse(undefined, ctx) as MqttMirrorConfig;
    assert.equal(d.enabled, false);
    const c2 = new Ctx();
    mqttMirrorConfigSchema.parse({ enabled: true }, c2);
    assert.match(c2.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join(), /broker: is required/);
  });
});
