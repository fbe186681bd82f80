/**
 * Device failures reach the operator as docs/commands.md promises, on every backend: the composed
 * agent (createAgent) with a simulated GPIO board, an MCU on a real socat PTY driven by the
 * serialport backend, and a Zigbee2MQTT-style plug on a real mosquitto; a slixmpp operator on a
 * real Prosody. Each failure answers `completed` with an error note starting with its documented
 * code, is audited `failed` (never `error`), and shows in the `status` counters.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Agent } from "../../agent/main.js";
import { SimulatedMcu } from "../../firmware-sim/mcu.js";
import { SimMqttDevices } from "../../firmware-sim/mqtt/devices.js";
import { PtySimulator } from "../../firmware-sim/pty-sim.js";
import { type MosquittoHandle, startMosquitto } from "../harness/mosquitto.js";
import { type CommandResponse, type FormValues, OperatorClient, OperatorError } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { agentConfigHead, startComposedAgent } from "../harness/composed-agent.js";
import { waitFor } from "../xmpp/helpers.js";

const DEVICE_PASS = "failures-dev-pass";

function configText(p: ProsodyHandle, broker: MosquittoHandle, ptyPath: string, dir: string): string {
  return `${agentConfigHead({ id: "fail-01", dataDir: join(dir, "state"), port: p.port, caFile: p.caFile, xmpp: ["reconnect: { initialDelayMs: 50, maxDelayMs: 500 }"] })}hardware: { gpio: sim, serial: serialport }
board:
  maxPulseMs: 5000
  serial:
    mcu0:
      path: ${ptyPath}
      requestTimeoutMs: 300
      reopen: { initialDelayMs: 50, maxDelayMs: 200 }
  mqtt:
    url: ${broker.url}
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 }
  outputs:
    relay: { source: gpio, line: 17 }
    fan: { source: serial, link: mcu0, actuator: fan }
    plug:
      source: mqtt
      mqtt:
        commandTopic: zigbee2mqtt/plug/set
        payloadOn: '{"state":"ON"}'
        payloadOff: '{"state":"OFF"}'
        stateTopic: zigbee2mqtt/plug
        stateJsonPath: state
        confirmTimeoutMs: 600
telemetry:
  enabled: false
`;
}

/** Polls an asynchronous condition (each try is a real command round trip). */
async function eventually(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface AuditLine {
  node: string;
  outcome: string;
  reason?: string;
}

describe("device failures reach the operator as documented, on every backend", () => {
  let prosody: ProsodyHandle;
  let broker: MosquittoHandle;
  let devices: SimMqttDevices;
  let mcu: SimulatedMcu;
  let pty: PtySimulator;
  let dir: TempDir;
  let agent: Agent;
  let op: OperatorClient;
  let device: string;

  const setOutput = (values: FormValues) => op.execute(device, "set-output", values);
  const errorNote = (step: CommandResponse): string => {
    assert.equal(step.status, "completed", JSON.stringify(step));
    const errors = step.notes.filter((n) => n.type === "error");
    assert.equal(errors.length, 1, JSON.stringify(step.notes));
    return errors[0]!.text;
  };
  const audit = (): AuditLine[] =>
    readFileSync(join(dir.path, "state", "audit.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AuditLine);
  /** The audit log is written asynchronously: wait for the record of the command just answered. */
  const lastAudit = async (): Promise<AuditLine> => {
    let last: AuditLine | undefined;
    await eventually(
      async () => {
        last = audit().at(-1);
        return last?.outcome === "failed";
      },
      3000,
      "the failed command in the audit log",
    );
    return last!;
  };
  const status = async (): Promise<Record<string, string>> => {
    const s = await op.execute(device, "status");
    return Object.fromEntries((s.form?.fields ?? []).map((f) => [f.var, f.values.join(" ")]));
  };

  before(async () => {
    [prosody, broker] = await Promise.all([startProsody(), startMosquitto()]);
    await Promise.all([prosody.register("fail-01", DEVICE_PASS), prosody.register("operator", "op-pass")]);
    devices = new SimMqttDevices({ url: broker.url, switches: [{ name: "plug", delayMs: 20 }] });
    await devices.start();
    dir = makeTempDir();
    mcu = new SimulatedMcu();
    pty = new PtySimulator({ mcu, dir: dir.path });
    await pty.start();
    ({ agent, jid: device } = await startComposedAgent({
      dir: dir.path,
      config: configText(prosody, broker, pty.agentPath, dir.path),
      password: DEVICE_PASS,
    }));
    op = await OperatorClient.login(prosody, "operator", "op-pass", { name: "failures-operator" });
    // Every backend works before we break it.
    for (const output of ["relay", "fan", "plug"])
      assert.equal((await setOutput({ output, value: true })).status, "completed", output);
  });

  after(async () => {
    await op?.stop();
    await agent?.stop();
    await pty?.stop();
    await devices?.stop();
    await broker?.dispose();
    await prosody?.stop();
    dir?.remove();
  });

  it("GPIO: a pulse longer than board.maxPulseMs is refused as pulse_out_of_range and changes nothing", async () => {
    await setOutput({ output: "relay", value: false });
    const step = await setOutput({ output: "relay", value: true, pulseMs: 10_000 });
    assert.match(errorNote(step), /^pulse_out_of_range: a pulse on relay must last 1\.\.5000 ms/);
    assert.equal(agent.sim!.gpio.level(17), 0);
    assert.equal(
      step.notes.some((n) => /Pulse started/.test(n.text)),
      false,
    );
    assert.equal((await lastAudit()).outcome, "failed");
    // A pulse within the bound starts, and says so.
    const ok = await setOutput({ output: "relay", value: true, pulseMs: 200 });
    assert.match(ok.notes.map((n) => n.text).join("\n"), /Pulse started: back to off after 200 ms/);
    assert.equal(agent.sim!.gpio.level(17), 1);
    await waitFor(() => agent.sim!.gpio.level(17) === 0, 10_000, "the pulse to end");
  });

  it("an output that is not on the board is a bad value: bad-request naming the field, nothing audited as run", async () => {
    await assert.rejects(
      setOutput({ output: "ghost", value: true }),
      (e: unknown) => e instanceof OperatorError && e.condition === "bad-request" && /output/.test(e.message),
    );
  });

  it("serial: a muted MCU fails set-output with serial_timeout; an unplugged one with serial_disconnected", async () => {
    mcu.setMuted(true);
    try {
      assert.match(errorNote(await setOutput({ output: "fan", value: false })), /^serial_timeout: /);
      assert.equal((await lastAudit()).outcome, "failed");
      assert.match(
        errorNote(await op.execute(device, "serial-command", { request: "ping", timeoutMs: 500 })),
        /^(serial_timeout|mcu_timeout): /,
      );
    } finally {
      mcu.setMuted(false);
    }
    await pty.unplug();
    try {
      const started = Date.now();
      assert.match(errorNote(await setOutput({ output: "fan", value: false })), /^serial_(disconnected|not_open): /);
      assert.ok(Date.now() - started < 2000, "fails at once, without waiting for a timeout");
    } finally {
      await pty.replug();
    }
    await eventually(
      async () => (await setOutput({ output: "fan", value: true })).notes.every((n) => n.type !== "error"),
      10_000,
      "the fan to answer after the replug",
    );
    assert.equal(mcu.actuator("fan"), 1);
  });

  it("MQTT: an unconfirmed switch fails with mqtt_confirm_timeout; a broker that is down with mqtt_offline, at once", async () => {
    devices.setIgnoreCommands("plug", true);
    try {
      assert.match(
        errorNote(await setOutput({ output: "plug", value: false })),
        /^mqtt_confirm_timeout: plug: the device did not report the state "off" on zigbee2mqtt\/plug within 600 ms/,
      );
      assert.equal((await lastAudit()).outcome, "failed");
    } finally {
      devices.setIgnoreCommands("plug", false);
    }
    assert.match(errorNote(await setOutput({ output: "plug", value: true, pulseMs: 60_000 })), /^pulse_out_of_range: /);
    await broker.stop();
    try {
      await eventually(
        async () => /not connected/.test((await status()).mqtt ?? ""),
        5000,
        "status to show the broker down",
      );
      const started = Date.now();
      assert.match(
        errorNote(await setOutput({ output: "plug", value: false })),
        /^mqtt_offline: not connected to mqtt:/,
      );
      assert.ok(Date.now() - started < 1000, "fails at once");
    } finally {
      await broker.restart();
    }
    await eventually(
      async () => (await setOutput({ output: "plug", value: false })).notes.every((n) => n.type !== "error"),
      10_000,
      "the plug to answer after the broker is back",
    );
    assert.equal(devices.switchState("plug"), false);
  });

  it("status shows every backend's health and counters in words; the audit says failed, never error", async () => {
    const s = await status();
    assert.match(s.gpio!, /^1 line held: relay \(gpio:[\w-]+\/17, out\); no errors$/);
    assert.match(
      s["serial.mcu0"]!,
      /^open; \d+ frames in, \d+ requests, [1-9]\d* reopens?; .*\d+ timeouts?.*\d+ unplugs?/,
    );
    assert.match(
      s.mqtt!,
      /^connected to mqtt:\/\/127\.0\.0\.1:\d+; \d+ messages, \d+ commands sent, [2-9]\d* connects; .*disconnects?/,
    );
    await eventually(
      async () => audit().filter((a) => a.outcome === "failed").length >= 6,
      3000,
      "six failed commands in the audit log",
    );
    const failures = audit().filter((a) => a.node === "set-output" || a.node === "serial-command");
    assert.equal(failures.filter((a) => a.outcome === "error").length, 0, JSON.stringify(failures));
    const failed = failures.filter((a) => a.outcome === "failed");
    assert.ok(failed.length >= 6, JSON.stringify(failed));
    for (const a of failed) assert.match(a.reason ?? "", /^[a-z]+_[a-z_]+: /);
  });
});
