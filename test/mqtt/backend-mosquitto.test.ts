/**
 * The MQTT hardware backend against a real mosquitto on loopback: Zigbee2MQTT-style devices played
 * by firmware-sim/mqtt appear as Board channels and outputs; the broker going away turns readings
 * stale and they recover; garbage and a flood of 10,000 messages/s are counted, not fatal; TLS
 * with username/password and a client certificate.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import mqtt from "mqtt";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { Board } from "../../drivers/board.js";
import { type BoardConfig, boardConfigSchema } from "../../drivers/config.js";
import { type MqttBrokerConfig, mqttBrokerSchema } from "../../drivers/mqtt/config.js";
import { MqttConnection } from "../../drivers/mqtt/connection.js";
import { SimMqttDevices } from "../../firmware-sim/mqtt/devices.js";
import { type MosquittoHandle, startMosquitto } from "../harness/mosquitto.js";
import { makeTempDir } from "../harness/tmp.js";
import { testLogger, waitFor } from "../xmpp/helpers.js";

function boardConfig(url: string): BoardConfig {
  const ctx = new Ctx();
  const r = boardConfigSchema.parse(
    {
      mqtt: { url, reconnect: { initialDelayMs: 50, maxDelayMs: 300 }, maxPayloadBytes: 4096 },
      channels: {
        "living-temp": { source: "mqtt", kind: "temperature", intervalMs: 1000, mqtt: { topic: "zigbee2mqtt/living" } },
        "living-hum": {
          source: "mqtt",
          kind: "humidity",
          unit: "%",
          intervalMs: 1000,
          mqtt: { topic: "zigbee2mqtt/living", jsonPath: "humidity" },
        },
      },
      outputs: {
        lamp: {
          source: "mqtt",
          mqtt: {
            commandTopic: "zigbee2mqtt/lamp/set",
            payloadOn: '{"state":"ON"}',
            payloadOff: '{"state":"OFF"}',
            stateTopic: "zigbee2mqtt/lamp",
            stateJsonPath: "state",
            confirmTimeoutMs: 1500,
          },
        },
      },
    },
    ctx,
  );
  assert.notEqual(r, INVALID, JSON.stringify(ctx.issues));
  return r as BoardConfig;
}

describe("MQTT devices on a real mosquitto", () => {
  let broker: MosquittoHandle;
  let sim: SimMqttDevices;
  let board: Board;

  before(async () => {
    broker = await startMosquitto();
    sim = new SimMqttDevices({
      url: broker.url,
      sensors: [{ name: "living", periodMs: 200, expireAfterS: 60 }],
      switches: [{ name: "lamp", delayMs: 30 }],
    });
    await sim.start();
    const config = boardConfig(broker.url);
    board = new Board({
      config,
      backends: {
        mqtt: (c) => new MqttConnection({ config: c, clientId: "test-board", logger: testLogger() }),
      },
      logger: testLogger(),
    });
    await board.start();
  });

  after(async () => {
    await board?.stop();
    await sim?.stop();
    await broker?.dispose();
  });

  it("a Zigbee2MQTT-style sensor appears as channels, with unit and path from discovery", async () => {
    const temp = board.channel("living-temp");
    assert.equal(temp.unit, "°C", "unit from the retained discovery message, read before start() returned");
    await waitFor(() => board.mqtt()!.stats().topics["zigbee2mqtt/living"]!.messages > 0, 5000, "a sensor message");
    const r = await temp.read();
    assert.equal(r.quality, "good", JSON.stringify(r));
    assert.ok(typeof r.value === "number" && r.value > 10 && r.value < 30, String(r.value));
    const h = await board.channel("living-hum").read();
    assert.equal(h.quality, "good");
    assert.equal(h.unit, "%");
  });

  it("set-output's path: the switch is commanded and its confirmed state is read back", async () => {
    const lamp = board.output("lamp");
    await lamp.set(true);
    assert.equal(sim.switchState("lamp"), true);
    assert.equal(await lamp.read(), true);
    await lamp.set(false);
    assert.equal(await lamp.read(), false);
    sim.setIgnoreCommands("lamp", true);
    await assert.rejects(lamp.set(true), { code: "mqtt_confirm_timeout" });
    sim.setIgnoreCommands("lamp", false);
  });

  it("readings turn stale while the broker is down and good again after it returns", async () => {
    await broker.stop();
    await waitFor(() => !board.mqtt()!.link.connected, 5000, "the agent to notice");
    const r = await board.channel("living-temp").read();
    assert.equal(r.quality, "stale");
    assert.equal(r.error?.context.reason, "broker_offline");
    await assert.rejects(board.output("lamp").set(true), { code: "mqtt_offline" });
    await broker.restart();
    await waitFor(() => board.mqtt()!.link.connected, 10_000, "reconnect");
    const before = board.mqtt()!.stats().topics["zigbee2mqtt/living"]!.messages;
    await waitFor(
      () => board.mqtt()!.stats().topics["zigbee2mqtt/living"]!.messages > before,
      10_000,
      "fresh sensor messages (the sim reconnects too)",
    );
    assert.equal((await board.channel("living-temp").read()).quality, "good");
  });

  it("garbage, wrong types, oversize and a 10,000 msg/s flood: counted, bounded, never fatal", async () => {
    const flooder = await mqtt.connectAsync(broker.url, { clientId: "flooder" });
    try {
      const hub = board.mqtt()!;
      const topic = "zigbee2mqtt/living";
      const temp = board.channel("living-temp");
      // The simulated sensor publishes every 200 ms and may replace a bad payload before it is read:
      // publish each bad payload, read at once, and repeat until its counter moved.
      const counted = async (payload: string | Buffer, counter: "malformed" | "wrongType" | "oversize") => {
        for (let i = 0; i < 20 && hub.stats().topics[topic]![counter] === 0; i++) {
          const seen = hub.stats().topics[topic]!.messages;
          await flooder.publishAsync(topic, payload);
          await waitFor(() => hub.stats().topics[topic]!.messages > seen, 5000, "the bad payload");
          await temp.read();
        }
        assert.ok(hub.stats().topics[topic]![counter] > 0, `${counter} counted`);
      };
      await counted("{oops", "malformed");
      await counted('{"temperature":"hot"}', "wrongType");
      await counted("x".repeat(5000), "oversize");
      await counted(Buffer.from([0xff, 0xfe, 0]), "malformed");
      global.gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      const rssBefore = process.memoryUsage().rss;
      const start = Date.now();
      const total = 10_000;
      let sent = 0;
      // 10,000 messages within about one second, in slices so the flooder's socket keeps draining.
      while (sent < total) {
        for (let i = 0; i < 500; i++, sent++)
          flooder.publish(topic, sent % 2 ? `{"temperature": ${sent % 7}}` : "not json at all", { qos: 0 });
        await new Promise((r) => setTimeout(r, 40));
      }
      const sendMs = Date.now() - start;
      const base = hub.stats().topics[topic]!.messages;
      await flooder.publishAsync(topic, '{"temperature": 42.5, "humidity": 50}', { qos: 1 });
      await waitFor(
        () => {
          const r = hub.stats();
          return r.topics[topic]!.messages >= base + 1 && r.connected;
        },
        10_000,
        "the flood to be received",
      );
      await waitFor(() => hub.stats().topics[topic]!.messages >= total, 10_000, "all flood messages");
      const r = await board.channel("living-temp").read();
      const st = hub.stats().topics[topic]!;
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      console.log(
        `flood: ${total} msgs sent in ${sendMs} ms; received ${st.messages}, superseded ${st.superseded}, malformed ${st.malformed}, wrongType ${st.wrongType}, oversize ${st.oversize}; heap +${Math.round(heapGrowth / 1024)} KiB, rss +${Math.round(rssGrowth / 1024)} KiB`,
      );
      assert.ok(st.superseded >= total - 50, `superseded ${st.superseded}`);
      assert.ok(st.malformed >= 1 && st.wrongType >= 1 && st.oversize >= 1);
      assert.ok(heapGrowth < 32 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
      assert.equal(hub.stats().connected, true);
      assert.ok(r.value === 42.5 || r.quality === "good", JSON.stringify(r));
    } finally {
      flooder.end(true);
    }
  });
});

describe("MQTT connection security", () => {
  it("connects over TLS with username/password and a client certificate; a wrong password stays offline, logged", async () => {
    const broker = await startMosquitto({
      tls: true,
      requireClientCert: true,
      auth: { username: "dev", password: "s3cret" },
    });
    const tmp = makeTempDir();
    const cert = broker.certificate!;
    const pw = join(tmp.path, "pw");
    writeFileSync(pw, "s3cret\n", { mode: 0o600 });
    const cfg = (password: string): MqttBrokerConfig => {
      const ctx = new Ctx();
      const r = mqttBrokerSchema.parse(
        {
          url: broker.url,
          username: "dev",
          ...(password === "file" ? { passwordFile: pw } : { password }),
          caFile: cert.caFile,
          certFile: cert.certFile,
          keyFile: cert.keyFile,
          tlsServername: "localhost",
          reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
        },
        ctx,
      );
      assert.notEqual(r, INVALID, JSON.stringify(ctx.issues));
      return r as MqttBrokerConfig;
    };
    const good = new MqttConnection({ config: cfg("file"), clientId: "tls-good" });
    const bad = new MqttConnection({ config: cfg("wrong"), clientId: "tls-bad" });
    try {
      const got: string[] = [];
      good.on("message", (m) => got.push(m.payload.toString()));
      good.subscribe("t/echo", 1);
      good.start();
      bad.start();
      await waitFor(() => good.connected, 10_000, "TLS connection");
      await waitFor(() => good.stats().connects === 1, 5000, "connect counted");
      await new Promise((r) => setTimeout(r, 100));
      await good.publish("t/echo", "hello", { qos: 1, retain: false });
      await waitFor(() => got.includes("hello"), 5000, "echo");
      await waitFor(() => bad.stats().lastError !== undefined, 10_000, "an error for the wrong password");
      assert.equal(bad.connected, false);
      assert.match(bad.stats().lastError!.message, /auth|Not authorized|Bad User Name or Password/i);
      await assert.rejects(bad.publish("t/echo", "x", { qos: 1, retain: false }), { code: "mqtt_offline" });
    } finally {
      await good.stop();
      await bad.stop();
      await broker.dispose();
      tmp.remove();
    }
  });

  it("an unreadable credentials file is a clear mqtt_config error at start", () => {
    const ctx = new Ctx();
    const r = mqttBrokerSchema.parse(
      { url: "mqtt://127.0.0.1:1", username: "u", passwordFile: "/nonexistent/pw" },
      ctx,
    );
    const c = new MqttConnection({ config: r as MqttBrokerConfig, clientId: "x" });
    assert.throws(() => c.start(), { code: "mqtt_config" });
  });
});
