import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeFrame, MSG } from "../drivers/serial/codec.js";
import { FakeTimers } from "../kernel/timers.js";
import { createScenarioMcu, parseScenario, ScenarioError, ScenarioRunner, type ScenarioStep } from "./scenario.js";
import { SimSerialBackend } from "./serial-backend.js";

const flush = () => new Promise<void>((r) => setImmediate(r));

const TEXT = `name: test
seed: 7
firmware: fw 9
sensors:
  temperature: { unit: "°C", start: 20, walk: 0 }
actuators: { fan: 0 }
steps:
  - { at: 100, action: set, sensor: temperature, value: 30 }
  - { at: 200, action: disconnect, sensor: temperature }
  - { at: 300, action: reconnect, sensor: temperature }
  - { at: 400, action: slow, delayMs: 50 }
  - { at: 500, action: unplug }
  - { at: 600, action: replug }
`;

describe("scenarios", () => {
  it("parses with defaults and builds a seeded MCU", () => {
    const s = parseScenario(TEXT);
    assert.equal(s.firmware, "fw 9");
    assert.equal(s.sensors.temperature!.periodMs, 1000);
    const mcu = createScenarioMcu(s, { timers: new FakeTimers() });
    assert.equal(mcu.firmware, "fw 9");
    assert.equal(mcu.sensorValue("temperature"), 20);
    assert.deepEqual(parseScenario("").steps, []);
  });

  it("reports every problem with its key and line", () => {
    try {
      parseScenario(
        `sensors:
  t: { start: 1 }
steps:
  - { at: 10, action: explode }
  - { at: 20, action: set, sensor: t }
  - { at: 30, action: stuck, sensor: nope }
  - { at: -1, action: mute }
`,
        "s.yaml",
      );
      assert.fail("expected ScenarioError");
    } catch (err) {
      assert.ok(err instanceof ScenarioError);
      const ps = err.context.problems as Array<{ path: string; line?: number; message: string }>;
      const by = Object.fromEntries(ps.map((p) => [p.path, p]));
      assert.equal(by["steps[0].action"]?.line, 4);
      assert.match(by["steps[1].value"]!.message, /required for action set/);
      assert.match(by["steps[3].at"]!.message, />= 0/);
      assert.match(err.message, /s\.yaml:4: steps\[0\]\.action/);
    }
    assert.throws(() => parseScenario("steps: [ {"), ScenarioError);
  });

  it("plays steps in order on fake time, including unplug/replug through the link control", async () => {
    const timers = new FakeTimers();
    const s = parseScenario(TEXT);
    const mcu = createScenarioMcu(s, { timers });
    const cable: string[] = [];
    const ran: string[] = [];
    const runner = new ScenarioRunner({
      scenario: s,
      mcu,
      timers,
      link: { unplug: async () => void cable.push("unplug"), replug: async () => void cable.push("replug") },
      onStep: (step: ScenarioStep, err) => ran.push(`${step.action}${err ? "!" : ""}`),
    });
    runner.start();
    timers.advance(100);
    await flush();
    assert.equal(mcu.sensorValue("temperature"), 30);
    timers.advance(500);
    await flush();
    assert.deepEqual(ran, ["set", "disconnect", "reconnect", "slow", "unplug", "replug"]);
    assert.deepEqual(cable, ["unplug", "replug"]);
    await runner.stop();
    assert.equal(timers.pendingCount, 0);
  });

  it("with startOn: first-request, time runs from the board's first request, however late the agent comes", async () => {
    const timers = new FakeTimers();
    const s = parseScenario("startOn: first-request\nsteps:\n  - { at: 100, action: mute }\n");
    const mcu = createScenarioMcu(s, { timers });
    const ran: string[] = [];
    const runner = new ScenarioRunner({ scenario: s, mcu, timers, onStep: (st) => ran.push(st.action) });
    runner.start();
    timers.advance(60_000);
    await flush();
    assert.deepEqual(ran, [], "nothing played before the agent spoke");
    const backend = new SimSerialBackend();
    backend.addDevice("/dev/sim0", mcu);
    const port = await backend.open("/dev/sim0", { baudRate: 115200, dataBits: 8, stopBits: 1, parity: "none" });
    await port.write(encodeFrame({ type: MSG.VERSION, seq: 1, payload: Buffer.alloc(0) }));
    await flush();
    assert.equal(mcu.counters.requests, 1);
    timers.advance(99);
    await flush();
    assert.deepEqual(ran, []);
    timers.advance(1);
    await flush();
    assert.deepEqual(ran, ["mute"], "played 100 ms after the first request");
    await runner.stop();
    await port.close();
    assert.throws(
      () => parseScenario("protocol: line\nstartOn: first-request\n", "l.yaml"),
      /l\.yaml:2: startOn: first-request needs protocol framed/,
    );
  });

  it("repeats when repeatEveryMs is set and stops cleanly", async () => {
    const timers = new FakeTimers();
    const s = parseScenario(
      "repeatEveryMs: 100\nsteps:\n  - { at: 10, action: mute }\n  - { at: 60, action: unmute }\n",
    );
    const ran: string[] = [];
    const runner = new ScenarioRunner({
      scenario: s,
      mcu: createScenarioMcu(s, { timers }),
      timers,
      onStep: (st) => ran.push(st.action),
    });
    runner.start();
    for (let i = 0; i < 30; i++) {
      timers.advance(10);
      await flush();
    }
    assert.deepEqual(ran, ["mute", "unmute", "mute", "unmute", "mute", "unmute"]);
    await runner.stop();
    assert.equal(timers.pendingCount, 0);
  });
});
