/**
 * The MQTT telemetry mirror against a real mosquitto: the broker is stopped for a while during
 * publishing and restarted. Every reading reaches an MQTT subscriber EXACTLY once by sequence number
 * (the mirror's QoS 2 flows survive the restart in its persistent session; the subscriber is QoS 2
 * with a persistent session too, so the broker keeps its queue across the restart), and XMPP
 * publishing (a fake session here; the real one is in e2e-xmpp.test.ts) went on meanwhile.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Element } from "ltx";
import mqtt, { type MqttClient } from "mqtt";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { type TelemetryConfig, telemetryConfigSchema } from "../../agent/telemetry/config.js";
import { MqttMirror, mirrorTopics } from "../../agent/telemetry/mqtt-mirror.js";
import { type MqttMirrorConfig, mqttMirrorConfigSchema } from "../../agent/telemetry/mqtt-mirror-config.js";
import type { ChannelSource } from "../../agent/telemetry/sampler.js";
import { TelemetryService } from "../../agent/telemetry/service.js";
import { PubsubFakeSession } from "../../agent/telemetry/testing/index.js";
import { MqttConnection } from "../../drivers/mqtt/connection.js";
import { type MosquittoHandle, startMosquitto } from "../harness/mosquitto.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { sleep, testLogger, waitFor } from "../xmpp/helpers.js";

function parse<T>(schema: { parse(v: unknown, c: Ctx): unknown }, raw: unknown): T {
  const ctx = new Ctx();
  const r = schema.parse(raw, ctx);
  assert.notEqual(r, INVALID, JSON.stringify(ctx.issues));
  return r as T;
}

/** Every seq in the readings items the fake XMPP session was asked to publish. */
function xmppSeqs(session: PubsubFakeSession): number[] {
  const out: number[] = [];
  for (const iq of session.requests) {
    const payload = iq.getChild("pubsub")?.getChild("publish")?.getChild("item")?.getChild("readings");
    if (payload) for (const r of decodeReadings(payload as Element).readings) out.push(r.seq);
  }
  return out;
}

describe("MQTT mirror across a broker outage", () => {
  let broker: MosquittoHandle;
  let dir: TempDir;
  let sub: MqttClient;
  const received: number[] = [];

  before(async () => {
    broker = await startMosquitto();
    dir = makeTempDir();
    // A persistent session (clean: false, QoS 2): mosquitto keeps what arrives for it across its
    // restart and delivers each message once (MQTT.js emits a QoS 2 message once, on PUBREL).
    sub = await mqtt.connectAsync(broker.url, { clientId: "mirror-check", clean: false, reconnectPeriod: 100 });
    sub.on("error", () => undefined);
    sub.on("message", (_t, payload) => received.push((JSON.parse(payload.toString()) as { seq: number }).seq));
    await sub.subscribeAsync("iot/dev1/channel/#", { qos: 2 });
  });

  after(async () => {
    sub?.end(true);
    await broker?.dispose();
    dir?.remove();
  });

  it("every reading arrives exactly once (by seq) after the broker was down for a while; XMPP kept publishing", async () => {
    let producing = true;
    let n = 0;
    const source: ChannelSource = {
      channels: () => [
        { id: "temp", kind: "temperature", unit: "°C", intervalMs: 20 },
        { id: "hum", kind: "humidity", unit: "%", intervalMs: 20 },
      ],
      async read() {
        if (!producing) return { value: null, quality: "error" };
        return { value: n++ % 100, quality: "good" };
      },
    };
    const session = new PubsubFakeSession();
    const config = parse<TelemetryConfig>(telemetryConfigSchema, {
      spool: { store: "file", fsync: "never" },
      batch: { maxReadings: 10, maxAgeMs: 100 },
      sampler: { minIntervalMs: 10 },
    });
    const mirrorConfig = parse<MqttMirrorConfig>(mqttMirrorConfigSchema, {
      enabled: true,
      broker: { url: broker.url, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } },
      spool: { store: "file" },
      inFlight: 16,
    });
    const topics = mirrorTopics("iot/", "dev1");
    const port = new MqttConnection({
      config: mirrorConfig.broker!,
      clientId: "dev1-mirror",
      persistentSession: { expiryS: mirrorConfig.sessionExpiryS },
      will: { topic: topics.availability, payload: "offline", retain: true, qos: 1 },
      birth: { topic: topics.availability, payload: "online", retain: true, qos: 1 },
      logger: testLogger(),
    });
    const mirror = new MqttMirror({
      config: mirrorConfig,
      deviceId: "dev1",
      port,
      dataDir: join(dir.path, "telemetry"),
      logger: testLogger(),
    });
    const svc = new TelemetryService({
      config,
      pubsub: { service: "pubsub.iot.test", nodePrefix: "devices/" },
      deviceId: "dev1",
      dataDir: join(dir.path, "telemetry"),
      session,
      source,
      agentVersion: "test",
      logger: testLogger(),
      mirror,
    });
    await svc.start();
    try {
      await waitFor(() => received.length >= 50, 10_000, "mirrored readings before the outage");
      // Freeze the broker first so the outage cuts QoS 2 flows in every state (PUBLISH unread,
      // PUBREC sent, PUBREL unread) rather than hitting an idle link: SIGSTOP, let the mirror fill
      // its window, then SIGTERM (graceful: the database is saved) and SIGCONT so it can act on it.
      const proc = broker.process();
      assert.ok(proc);
      proc.killGroup("SIGSTOP");
      await waitFor(() => mirror.stats().inFlight >= mirrorConfig.inFlight, 5_000, "the in-flight window to fill");
      proc.killGroup("SIGCONT");
      await new Promise((r) => setImmediate(r));
      await broker.stop();
      const xmppAtOutage = xmppSeqs(session).length;
      const mirroredAtOutage = mirror.stats().publishedReadings;
      const heldAtOutage = mirror.stats().inFlight;
      // XMPP keeps publishing while the broker is down: wait for 50 readings to go that way.
      await waitFor(() => xmppSeqs(session).length - xmppAtOutage >= 50, 15_000, "XMPP to publish during the outage");
      const duringOutage = xmppSeqs(session).length - xmppAtOutage;
      assert.equal(mirror.stats().publishedReadings, mirroredAtOutage, "nothing acknowledged while the broker is down");
      assert.ok((mirror.stats().spool?.readings ?? 0) >= 50, "the outage's readings wait in the mirror spool");
      await broker.restart();
      await sleep(500);
      producing = false;
      await sleep(200);
      await waitFor(
        () => mirror.stats().spool?.readings === 0 && mirror.stats().inFlight === 0,
        20_000,
        "the mirror spool to drain",
      );
      const sent = xmppSeqs(session).sort((a, b) => a - b);
      const sentGood = new Set(sent);
      await waitFor(() => new Set(received).size >= sentGood.size, 20_000, "the subscriber to get every seq");
      // A late duplicate would come right behind; give it the chance to show.
      await sleep(300);
      const got = new Set(received);
      const missing = [...sentGood].filter((s) => !got.has(s));
      // Sampling goes on (error-quality readings): seqs after the XMPP snapshot may have arrived since.
      const lastSent = sent[sent.length - 1] ?? -1;
      const extra = [...got].filter((s) => s <= lastSent && !sentGood.has(s));
      const duplicates = received.length - got.size;
      console.log(
        `mirror outage: ${sentGood.size} readings, ${duringOutage} produced during the outage, ${heldAtOutage} QoS 2 flows open when the broker stopped; subscriber got ${received.length} messages, ${duplicates} duplicates`,
      );
      assert.deepEqual(missing, [], "every reading arrived on MQTT");
      assert.deepEqual(extra, []);
      const seen = new Set<number>();
      const twice = received.filter((s) => seen.has(s) || !seen.add(s));
      assert.deepEqual(twice, [], "no reading arrived twice");
      assert.equal(duplicates, 0);
    } finally {
      await svc.stop();
    }
  });
});
