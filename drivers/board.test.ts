import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx, INVALID } from "../kernel/schema-dsl.js";
import { FakeTimers } from "../kernel/timers.js";
import { SimGpioBackend } from "../firmware-sim/gpio.js";
import { SimulatedMcu } from "../firmware-sim/mcu.js";
import { SimSerialBackend } from "../firmware-sim/serial-backend.js";
import { Board, type QualityChange } from "./board.js";
import { type BoardConfig, boardConfigSchema } from "./config.js";
import { DriverError, type InputEdge } from "./types.js";

const tick = () => new Promise<void>((r) => setImmediate(r));

function boardConfig(raw: unknown): BoardConfig {
  const ctx = new Ctx();
  const v = boardConfigSchema.parse(raw, ctx);
  assert.notEqual(v, INVALID, JSON.stringify(ctx.issues));
  return v as BoardConfig;
}

const RAW = {
  serial: { mcu0: { path: "/dev/ttySIM0", reopen: { initialDelayMs: 100, maxDelayMs: 100, factor: 1 } } },
  outputs: {
    relay: { source: "gpio", line: 17, activeLow: true },
    fan: { source: "serial", link: "mcu0", actuator: "fan" },
  },
  inputs: { button: { line: 27, debounceMs: 20 } },
  channels: {
    temp: { source: "serial", link: "mcu0", sensor: "temperature", kind: "temperature", unit: "°C", intervalMs: 1000 },
    hum: {
      source: "serial",
      link: "mcu0",
      sensor: "humidity",
      kind: "humidity",
      unit: "%",
      intervalMs: 1000,
      stuckAfterMs: 5000,
    },
    door: { source: "gpio", input: "button", kind: "contact" },
  },
};

function setup() {
  const timers = new FakeTimers(1_700_000_000_000);
  const gpio = new SimGpioBackend({ timers });
  const serial = new SimSerialBackend();
  const mcu = new SimulatedMcu({ timers, random: () => 0.9 });
  serial.addDevice("/dev/ttySIM0", mcu);
  const board = new Board({ config: boardConfig(RAW), backends: { gpio, serial }, timers, random: () => 1 });
  const qualities: QualityChange[] = [];
  const edges: InputEdge[] = [];
  board.on("quality", (q) => qualities.push(q));
  board.on("edge", (e) => edges.push(e));
  return { timers, gpio, serial, mcu, board, qualities, edges };
}

describe("Board", () => {
  it("builds everything from config on the given backends and releases it on stop", async () => {
    const { gpio, mcu, board } = setup();
    assert.throws(
      () => board.channel("temp"),
      (e: unknown) => e instanceof DriverError && e.code === "driver_not_started",
    );
    await board.start();
    assert.deepEqual(
      board.channels().map((c) => [c.id, c.kind, c.unit, c.intervalMs]),
      [
        ["temp", "temperature", "°C", 1000],
        ["hum", "humidity", "%", 1000],
        ["door", "contact", "", 10_000],
      ],
    );
    // activeLow: logical off is electrical high.
    assert.equal(gpio.level(17), 1);
    await board.output("relay").set(true);
    assert.equal(gpio.level(17), 0);
    assert.equal(await board.output("relay").read(), true);
    await board.output("fan").set(true);
    assert.equal(mcu.actuator("fan"), 1);
    assert.equal(await board.output("fan").read(), true);
    const r = await board.channel("temp").read();
    assert.equal(r.quality, "good");
    assert.equal(r.value, 21.5);
    assert.equal(await board.client("mcu0").version(), "iot-sim-mcu 1.0.0");
    await board.stop();
    assert.equal(gpio.isOpen(17) || gpio.isOpen(27), false);
    assert.equal(board.links().length, 0);
  });

  it("reports debounced input edges and digital channel values", async () => {
    const { timers, gpio, board, edges } = setup();
    await board.start();
    gpio.bounce(27, 1, { count: 20, intervalMs: 1 });
    timers.advance(100);
    assert.deepEqual(
      edges.map((e) => [e.inputId, e.edge, e.value]),
      [["button", "rising", true]],
    );
    assert.equal((await board.channel("door").read()).value, 1);
    await board.stop();
  });

  it("flags a link's channels as error on unplug and back to good after replug", async () => {
    const { timers, serial, board, qualities } = setup();
    const seen: string[] = [];
    board.on("unplug", (e) => seen.push(`unplug:${e.linkId}`));
    board.on("replug", (e) => seen.push(`replug:${e.linkId}`));
    await board.start();
    await board.channel("temp").read();
    serial.unplug("/dev/ttySIM0");
    assert.deepEqual(board.qualities(), { temp: "error", hum: "error", door: undefined });
    const r = await board.channel("temp").read();
    assert.equal(r.quality, "error");
    assert.equal(r.error?.code, "serial_disconnected");
    assert.equal(r.error?.channel, "temp");
    serial.replug("/dev/ttySIM0");
    timers.advance(100);
    await tick();
    assert.equal((await board.channel("temp").read()).quality, "good");
    assert.deepEqual(seen, ["unplug:mcu0", "replug:mcu0"]);
    assert.deepEqual(
      qualities.filter((q) => q.channelId === "temp").map((q) => `${q.previous}->${q.quality}`),
      ["undefined->good", "good->error", "error->good"],
    );
    assert.equal(board.stats().mcu0!.link.unplugs, 1);
    await board.stop();
    assert.equal(timers.pendingCount, 0);
  });

  it("marks a stuck or frozen sensor stale and a faulty one error", async () => {
    const { timers, mcu, board } = setup();
    await board.start();
    mcu.setSensorFault("humidity", "stuck", true);
    await board.channel("hum").read();
    timers.advance(5000);
    const stuck = await board.channel("hum").read();
    assert.equal(stuck.quality, "stale");
    assert.equal(stuck.error?.code, "sensor_stale");
    mcu.setSensorFault("temperature", "frozen", true);
    timers.advance(3001);
    const frozen = await board.channel("temp").read();
    assert.equal(frozen.quality, "stale");
    // The timestamp is when the MCU last sampled, not when we asked.
    assert.equal(frozen.timestamp, 1_700_000_000_000);
    mcu.setSensorFault("temperature", "disconnected", true);
    const fault = await board.channel("temp").read();
    assert.deepEqual([fault.quality, fault.value, fault.error?.code], ["error", null, "sensor_fault"]);
    await board.stop();
  });

  it("refuses to start without a backend the config needs, and rolls back a failed start", async () => {
    const timers = new FakeTimers();
    await assert.rejects(
      new Board({ config: boardConfig(RAW), backends: { gpio: new SimGpioBackend() }, timers }).start(),
      (e: unknown) => e instanceof DriverError && e.code === "driver_backend_missing",
    );
    const gpio = new SimGpioBackend({ chips: [{ label: "small", ngpio: 20 }] });
    const board = new Board({ config: boardConfig(RAW), backends: { gpio, serial: new SimSerialBackend() }, timers });
    await assert.rejects(
      board.start(),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_line_out_of_range",
    );
    assert.equal(gpio.isOpen(17), false);
  });
});
