import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { FakeTimers } from "../../kernel/timers.js";
import { type MqttBrokerConfig, mqttBrokerSchema, mqttOutputSchema } from "./config.js";
import { MqttDeviceHub } from "./hub.js";
import { FakeMqttLink } from "./testing.js";

function broker(extra: Record<string, unknown> = {}): MqttBrokerConfig {
  const ctx = new Ctx();
  const r = mqttBrokerSchema.parse({ url: "mqtt://127.0.0.1:1883", ...extra }, ctx);
  assert.notEqual(r, INVALID, JSON.stringify(ctx.issues));
  return r as MqttBrokerConfig;
}

function output(raw: Record<string, unknown>) {
  const r = mqttOutputSchema.parse(raw, new Ctx());
  assert.notEqual(r, INVALID);
  return r as Exclude<typeof r, typeof INVALID>;
}

function setup(brokerExtra: Record<string, unknown> = {}) {
  const timers = new FakeTimers(1_000_000);
  const link = new FakeMqttLink();
  const hub = new MqttDeviceHub({ link, broker: broker({ discovery: { waitMs: 0 }, ...brokerExtra }), timers });
  return { timers, link, hub };
}

describe("MQTT sensor channels", () => {
  it("reads a JSON path, a plain value and booleans; quality follows the broker and the device", async () => {
    const { timers, link, hub } = setup();
    const temp = hub.addChannel({
      id: "t",
      kind: "temperature",
      unit: "°C",
      intervalMs: 1000,
      staleAfterMs: 60_000,
      mqtt: { topic: "z2m/s1", jsonPath: "temperature" },
    });
    const contact = hub.addChannel({
      id: "c",
      kind: "contact",
      unit: "",
      intervalMs: 1000,
      mqtt: { topic: "z2m/s1", jsonPath: "contact" },
    });
    const plain = hub.addChannel({
      id: "p",
      kind: "power",
      unit: "W",
      intervalMs: 1000,
      mqtt: { topic: "tasmota/power", jsonPath: undefined },
    });
    await hub.start();
    assert.equal(link.subscriptions.get("z2m/s1"), 0);
    assert.equal((await temp.read()).quality, "error", "no value yet");
    link.setConnected(true);
    link.deliver("z2m/s1", JSON.stringify({ temperature: 21.5, contact: true }));
    link.deliver("tasmota/power", " 12.5\n");
    assert.deepEqual(
      [(await temp.read()).value, (await contact.read()).value, (await plain.read()).value],
      [21.5, 1, 12.5],
    );
    assert.equal((await temp.read()).quality, "good");
    timers.advance(60_001);
    const quiet = await temp.read();
    assert.equal(quiet.quality, "stale");
    assert.equal(quiet.error?.context.reason, "device_quiet");
    assert.equal(quiet.value, 21.5);
    link.deliver("z2m/s1", JSON.stringify({ temperature: 22 }));
    assert.equal((await temp.read()).quality, "good");
    link.setConnected(false);
    const off = await temp.read();
    assert.equal(off.quality, "stale");
    assert.equal(off.error?.context.reason, "broker_offline");
    await hub.stop();
  });

  it("counts malformed JSON, wrong types and oversize payloads, keeps the last good value", async () => {
    const { link, hub } = setup({ maxPayloadBytes: 64 });
    const t = hub.addChannel({
      id: "t",
      kind: "temperature",
      unit: "",
      intervalMs: 1000,
      mqtt: { topic: "x", jsonPath: "v" },
    });
    await hub.start();
    link.setConnected(true);
    link.deliver("x", '{"v": 3}');
    assert.equal((await t.read()).value, 3);
    for (const bad of ["{not json", '{"v": "warm"}', '{"v": null}', '{"v": [1]}', "[]", `{"v": ${"1".repeat(100)}}`]) {
      link.deliver("x", bad);
      const r = await t.read();
      assert.equal(r.value, 3, bad);
    }
    const st = hub.stats();
    assert.equal(st.malformed, 1);
    assert.equal(st.wrongType, 4);
    assert.equal(st.oversize, 1);
    assert.equal(st.topics.x!.messages, 7);
  });

  it("a flood keeps only the newest payload and counts the superseded ones", async () => {
    const { link, hub } = setup();
    const t = hub.addChannel({ id: "t", kind: "k", unit: "", intervalMs: 1000, mqtt: { topic: "f", jsonPath: "v" } });
    await hub.start();
    link.setConnected(true);
    for (let i = 0; i < 10_000; i++) link.deliver("f", i % 3 === 1 ? "garbage" : `{"v":${i}}`);
    assert.equal((await t.read()).value, 9999);
    const st = hub.stats();
    assert.equal(st.superseded, 9999);
    assert.equal(st.malformed, 0, "superseded payloads are never parsed");
  });

  it("applies Home Assistant discovery (unit, value path, expire_after) without overriding the config", async () => {
    const { timers, link, hub } = setup();
    const t = hub.addChannel({
      id: "t",
      kind: "temperature",
      unit: "",
      intervalMs: 1000,
      mqtt: { topic: "zigbee2mqtt/s1", jsonPath: undefined },
    });
    const h = hub.addChannel({
      id: "h",
      kind: "humidity",
      unit: "pct",
      intervalMs: 1000,
      mqtt: { topic: "zigbee2mqtt/s1", jsonPath: "humidity" },
    });
    await hub.start();
    assert.ok(link.subscriptions.has("homeassistant/+/+/config"));
    link.setConnected(true);
    link.deliver(
      "homeassistant/sensor/s1/temperature/config",
      JSON.stringify({
        stat_t: "~",
        "~": "zigbee2mqtt/s1",
        val_tpl: "{{ value_json.temperature }}",
        unit_of_meas: "°C",
        dev_cla: "temperature",
        exp_aft: 30,
      }),
    );
    link.deliver(
      "homeassistant/sensor/s1/humidity/config",
      JSON.stringify({
        state_topic: "zigbee2mqtt/s1",
        value_template: "{{ value_json['humidity'] | float }}",
        unit_of_measurement: "%",
      }),
    );
    link.deliver("homeassistant/sensor/s1/bad/config", "{oops");
    assert.equal(t.unit, "°C");
    assert.equal(t.jsonPath, "temperature");
    assert.equal(t.staleAfterMs, 30_000);
    assert.equal(h.unit, "pct", "config wins");
    link.deliver("zigbee2mqtt/s1", '{"temperature": 19.5, "humidity": 40}');
    assert.equal((await t.read()).value, 19.5);
    assert.equal((await h.read()).value, 40);
    timers.advance(30_001);
    assert.equal((await t.read()).quality, "stale");
    assert.equal(hub.stats().discovery.invalid, 1);
  });

  it("rate-limits discovery messages", async () => {
    const { link, hub } = setup({ discovery: { waitMs: 0, maxPerSecond: 10 } });
    hub.addChannel({ id: "t", kind: "k", unit: "", intervalMs: 1000, mqtt: { topic: "a", jsonPath: undefined } });
    await hub.start();
    link.setConnected(true);
    for (let i = 0; i < 100; i++) link.deliver(`homeassistant/sensor/n${i}/config`, '{"state_topic":"q"}');
    assert.equal(hub.stats().discovery.dropped, 90);
  });
});

describe("MQTT outputs", () => {
  it("set() publishes and resolves when the state topic confirms; read() returns the confirmed state", async () => {
    const { link, hub } = setup();
    const sw = hub.addOutput(
      "lamp",
      output({
        commandTopic: "z2m/lamp/set",
        payloadOn: '{"state":"ON"}',
        payloadOff: '{"state":"OFF"}',
        stateTopic: "z2m/lamp",
        stateJsonPath: "state",
      }),
    );
    await hub.start();
    assert.equal(link.subscriptions.get("z2m/lamp"), 1);
    link.setConnected(true);
    await assert.rejects(sw.read(), { code: "mqtt_state_unknown" });
    link.onPublish = (topic, payload) => {
      const on = JSON.parse(payload).state === "ON";
      queueMicrotask(() => link.deliver("z2m/lamp", JSON.stringify({ state: on ? "ON" : "OFF", linkquality: 80 })));
      assert.equal(topic, "z2m/lamp/set");
    };
    await sw.set(true);
    assert.equal(await sw.read(), true);
    assert.deepEqual(link.published.at(-1)?.opts, { qos: 1, retain: false });
    await sw.set(false);
    assert.equal(await sw.read(), false);
  });

  it("times out when the device does not confirm, and fails at once when offline", async () => {
    const { timers, link, hub } = setup();
    const sw = hub.addOutput("lamp", output({ commandTopic: "c", stateTopic: "s", confirmTimeoutMs: 500 }));
    await hub.start();
    await assert.rejects(sw.set(true), { code: "mqtt_offline" });
    link.setConnected(true);
    const p = sw.set(true);
    const check = assert.rejects(p, { code: "mqtt_confirm_timeout" });
    await Promise.resolve();
    link.deliver("s", "OFF");
    link.deliver("s", "banana");
    timers.advance(501);
    await check;
    assert.equal(await sw.read(), false);
    assert.equal(hub.stats().wrongType, 1);
  });

  it("without a state topic, resolves on PUBACK and pulses back", async () => {
    const { timers, link, hub } = setup();
    const sw = hub.addOutput("relay", output({ commandTopic: "cmd" }));
    await hub.start();
    link.setConnected(true);
    const pulse = (await sw.pulse(1000, true)).restored;
    assert.equal(await sw.read(), true);
    timers.advance(1000);
    await pulse;
    assert.equal(await sw.read(), false);
    assert.deepEqual(
      link.published.map((p) => p.payload),
      ["ON", "OFF"],
    );
  });
});

describe("MQTT config", () => {
  it("rejects wildcard topics, password without username, TLS files on plain mqtt", () => {
    const ctx = new Ctx();
    mqttBrokerSchema.parse({ url: "mqtt://h:1883", password: "x", caFile: "/ca.pem" }, ctx);
    const msgs = ctx.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    assert.match(msgs, /username: is required with a password/);
    assert.match(msgs, /caFile: needs an mqtts:\/\/ url/);
    const c2 = new Ctx();
    mqttOutputSchema.parse({ commandTopic: "a/+/set", stateOn: "x" }, c2);
    assert.match(
      c2.issues.map((i) => i.message).join("\n"),
      /without wildcards[\s\S]*needs a stateTopic|needs a stateTopic[\s\S]*without wildcards|without wildcards/,
    );
  });
});
