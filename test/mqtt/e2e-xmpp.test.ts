/**
 * MQTT devices in the whole agent: createAgent with a board of MQTT channels and an MQTT switch
 * (played by firmware-sim/mqtt on a real mosquitto), a real Prosody and a slixmpp operator. The
 * sensor's readings reach the operator's pubsub subscription; set-output switches the MQTT switch
 * and answers with its confirmed state. The MQTT mirror runs too, so both uplinks are exercised.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "ltx";
import mqtt from "mqtt";
import type { Agent } from "../../agent/main.js";
import { decodeReadings } from "../../agent/telemetry/codec.js";
import { SimMqttDevices } from "../../firmware-sim/mqtt/devices.js";
import { type MosquittoHandle, startMosquitto } from "../harness/mosquitto.js";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent } from "../harness/composed-agent.js";
import { waitFor } from "../xmpp/helpers.js";

const DEVICE_PASS = "mqtt-dev-pass";

function configText(p: ProsodyHandle, broker: MosquittoHandle, dir: string): string {
  return `${agentConfigHead({ id: "mq-01", dataDir: join(dir, "state"), port: p.port, caFile: p.caFile, xmpp: ["reconnect: { initialDelayMs: 50, maxDelayMs: 500 }"] })}board:
  mqtt:
    url: ${broker.url}
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 }
  channels:
    living-temp: { source: mqtt, kind: temperature, intervalMs: 300, mqtt: { topic: zigbee2mqtt/living } }
  outputs:
    lamp:
      source: mqtt
      mqtt:
        commandTopic: zigbee2mqtt/lamp/set
        payloadOn: '{"state":"ON"}'
        payloadOff: '{"state":"OFF"}'
        stateTopic: zigbee2mqtt/lamp
        stateJsonPath: state
        confirmTimeoutMs: 3000
telemetry:
  batch: { maxReadings: 5, maxAgeMs: 300 }
  publish: { maxItems: 10 }
mqttMirror:
  enabled: true
  broker: { url: ${broker.url} }
  topicPrefix: fleet/
`;
}

describe("MQTT devices through the composed agent, XMPP operator and pubsub", () => {
  let prosody: ProsodyHandle;
  let broker: MosquittoHandle;
  let sim: SimMqttDevices;
  let dir: TempDir;
  let agent: Agent;
  let op: OperatorClient;
  let deviceJid: string;

  before(async () => {
    [prosody, broker] = await Promise.all([startProsody({ pubsubAdmins: ["mq-01@iot.test"] }), startMosquitto()]);
    await prosody.register("mq-01", DEVICE_PASS);
    await prosody.register("operator", "op-pass");
    sim = new SimMqttDevices({
      url: broker.url,
      sensors: [{ name: "living", periodMs: 250, temperature: 19 }],
      switches: [{ name: "lamp", delayMs: 50 }],
    });
    await sim.start();
    dir = makeTempDir();
    ({ agent, jid: deviceJid } = await startComposedAgent({
      dir: dir.path,
      config: configText(prosody, broker, dir.path),
      password: DEVICE_PASS,
    }));
    op = await OperatorClient.login(prosody, "operator", "op-pass", { name: "mqtt-operator" });
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await sim?.stop();
    await broker?.dispose();
    await prosody?.stop();
    dir?.remove();
  });

  it("a Zigbee2MQTT-style sensor's readings reach an XMPP pubsub subscriber, with the unit from discovery", async () => {
    await op.subscribe("pubsub.iot.test", "devices/mq-01/telemetry");
    const values: number[] = [];
    await waitFor(
      () => {
        values.length = 0;
        for (const ev of op.pubsubItems()) {
          if (ev.node !== "devices/mq-01/telemetry" || !ev.payload) continue;
          for (const r of decodeReadings(parse(ev.payload)).readings)
            if (r.channelId === "living-temp" && r.quality === "good") {
              assert.equal(r.unit, "°C");
              values.push(r.value as number);
            }
        }
        return values.length >= 3;
      },
      15_000,
      "three good living-temp readings at the subscriber",
    );
    assert.ok(
      values.every((v) => v > 10 && v < 30),
      values.join(","),
    );
  });

  it("set-output from the operator switches the MQTT switch and reports its confirmed state", async () => {
    const on = await op.execute(deviceJid, "set-output", { output: "lamp", value: true });
    assert.equal(on.status, "completed", JSON.stringify(on.notes));
    assert.equal(sim.switchState("lamp"), true);
    const fields = Object.fromEntries((on.form?.fields ?? []).map((f) => [f.var, f.values.join(" ")]));
    assert.equal(fields.value, "on");
    const off = await op.execute(deviceJid, "set-output", { output: "lamp", value: false });
    assert.equal(off.status, "completed");
    assert.equal(sim.switchState("lamp"), false);
    // A switch that does not answer: the command completes with the reason as an error note
    // (test/commands/device-failures.test.ts covers every backend's failures).
    sim.setIgnoreCommands("lamp", true);
    const lost = await op.execute(deviceJid, "set-output", { output: "lamp", value: true });
    assert.equal(lost.status, "completed");
    assert.match(lost.notes.find((n) => n.type === "error")?.text ?? "", /^mqtt_confirm_timeout: lamp: /);
    sim.setIgnoreCommands("lamp", false);
  });

  it("the same readings are mirrored to MQTT with availability online", async () => {
    const c = await mqtt.connectAsync(broker.url, { clientId: "e2e-mirror-check" });
    try {
      const got = new Map<string, string>();
      c.on("message", (t, p) => got.set(t, p.toString()));
      await c.subscribeAsync(["fleet/mq-01/availability", "fleet/mq-01/channel/living-temp"], { qos: 1 });
      await waitFor(() => got.size === 2, 10_000, "retained availability and last value");
      assert.equal(got.get("fleet/mq-01/availability"), "online");
      const last = JSON.parse(got.get("fleet/mq-01/channel/living-temp")!) as { seq: number; unit: string };
      assert.equal(last.unit, "°C");
      assert.ok(Number.isInteger(last.seq));
    } finally {
      c.end(true);
    }
  });
});
