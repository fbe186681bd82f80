import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx } from "../kernel/schema-dsl.js";
import { FakeTimers } from "../kernel/timers.js";
import { Board } from "../drivers/board.js";
import { type BoardConfig, boardConfigSchema } from "../drivers/config.js";
import { createSimBoard } from "./backends.js";
import { parseScenario } from "./scenario.js";

const flush = () => new Promise<void>((r) => setImmediate(r));

function config(raw: unknown): BoardConfig {
  const ctx = new Ctx();
  const v = boardConfigSchema.parse(raw, ctx);
  assert.deepEqual(ctx.issues, []);
  return v as BoardConfig;
}

const RAW = {
  serial: { mcu0: { path: "/dev/ttyUSB0" }, uno: { path: "/dev/ttyACM0", protocol: "line" } },
  outputs: { relay: { source: "gpio", line: 17 }, pump: { source: "serial", link: "mcu0", actuator: "pump" } },
  channels: {
    soil: { source: "serial", link: "mcu0", sensor: "soil", kind: "moisture", unit: "%", intervalMs: 1000 },
    light: { source: "serial", link: "uno", sensor: "light", kind: "illuminance", unit: "lx", intervalMs: 1000 },
  },
};

describe("createSimBoard", () => {
  it("serves any board config with no hardware and no socat", async () => {
    const timers = new FakeTimers(1_700_000_000_000);
    const cfg = config(RAW);
    const sim = createSimBoard(cfg, { timers, random: () => 0.5 });
    const board = new Board({ config: cfg, backends: { gpio: sim.gpio, serial: sim.serial }, timers });
    await board.start();
    assert.equal((await board.channel("soil").read()).value, 20);
    await board.output("pump").set(true);
    assert.equal(sim.mcus.get("mcu0")!.actuator("pump"), 1);
    timers.advance(1000);
    await flush();
    await flush();
    assert.equal((await board.channel("light").read()).quality, "good");
    await sim.cables.get("mcu0")!.unplug();
    assert.equal(board.qualities().soil, "error");
    await board.stop();
    await sim.stop();
  });

  it("plays a scenario on every link", async () => {
    const timers = new FakeTimers(0);
    const cfg = config({ serial: { mcu0: { path: "/dev/x" } } });
    const scenario = parseScenario("steps:\n  - { at: 100, action: set, sensor: temperature, value: 99 }\n");
    const sim = createSimBoard(cfg, { timers, scenario });
    sim.start();
    timers.advance(100);
    await flush();
    assert.equal(sim.mcus.get("mcu0")!.sensorValue("temperature"), 99);
    await sim.stop();
  });
});
