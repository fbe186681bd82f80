/**
 * The one pulse rule, as the Board wires it for every output kind: board.maxPulseMs bounds GPIO
 * pins, MCU actuators and MQTT switches alike; a refused pulse drives nothing; a pulse whose start
 * fails rejects with the device's code and schedules no restore. pulse() rejecting is what makes
 * set-output answer with an error instead of "Pulse started" (agent/commands/hal-adapter.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx, INVALID } from "../kernel/schema-dsl.js";
import { AgentError } from "../kernel/errors.js";
import { FakeTimers } from "../kernel/timers.js";
import { SimGpioBackend } from "../firmware-sim/gpio.js";
import { SimulatedMcu } from "../firmware-sim/mcu.js";
import { SimSerialBackend } from "../firmware-sim/serial-backend.js";
import { Board } from "./board.js";
import { type BoardConfig, boardConfigSchema } from "./config.js";
import type { GpioBackend } from "./gpio/backend.js";
import { FakeMqttLink } from "./mqtt/testing.js";
import { DriverError } from "./types.js";

const MAX_PULSE_MS = 500;
const REQUEST_TIMEOUT_MS = 100;
const tick = () => new Promise<void>((r) => setImmediate(r));

function boardConfig(): BoardConfig {
  const ctx = new Ctx();
  const v = boardConfigSchema.parse(
    {
      maxPulseMs: MAX_PULSE_MS,
      serial: { mcu0: { path: "/dev/ttySIM0", requestTimeoutMs: REQUEST_TIMEOUT_MS } },
      mqtt: { url: "mqtt://127.0.0.1:1883", discovery: { enabled: false } },
      outputs: {
        relay: { source: "gpio", line: 17 },
        fan: { source: "serial", link: "mcu0", actuator: "fan" },
        plug: { source: "mqtt", mqtt: { commandTopic: "z2m/plug/set" } },
      },
    },
    ctx,
  );
  assert.notEqual(v, INVALID, JSON.stringify(ctx.issues));
  return v as BoardConfig;
}

/** The simulator, with a switch that makes every write fail like a line that went away. */
function gpioWithFailingWrites(timers: FakeTimers) {
  const sim = new SimGpioBackend({ timers });
  const state = { failWrites: false };
  const backend: GpioBackend = {
    name: "sim-failing",
    accessible: true,
    async open(request) {
      const line = await sim.open(request);
      return {
        device: line.device,
        direction: line.direction,
        read: () => line.read(),
        write: (v) =>
          state.failWrites
            ? Promise.reject(new DriverError("gpio_io", "write failed", { device: line.device }))
            : line.write(v),
        watch: (l) => line.watch(l),
        close: () => line.close(),
      };
    },
  };
  return { sim, backend, state };
}

async function setup() {
  const timers = new FakeTimers(1_700_000_000_000);
  const gpio = gpioWithFailingWrites(timers);
  const serial = new SimSerialBackend();
  const mcu = new SimulatedMcu({ timers, actuators: { fan: 0 } });
  serial.addDevice("/dev/ttySIM0", mcu);
  const link = new FakeMqttLink();
  const board = new Board({
    config: boardConfig(),
    backends: { gpio: gpio.backend, serial, mqtt: () => link },
    timers,
    random: () => 1,
  });
  await board.start();
  link.setConnected(true);
  return { timers, gpio, mcu, link, board };
}

const code = (c: string, output: string) => (e: unknown) =>
  e instanceof DriverError && e.code === c && e.channel === output;

describe("every output kind follows the one pulse rule of the Board", () => {
  it("refuses a pulse outside 1..board.maxPulseMs on GPIO, serial and MQTT outputs, driving nothing", async () => {
    const { gpio, mcu, link, board } = await setup();
    for (const id of ["relay", "fan", "plug"])
      for (const ms of [0, 2.5, MAX_PULSE_MS + 1]) {
        await assert.rejects(
          board.output(id).pulse(ms),
          (e: unknown) => code("pulse_out_of_range", id)(e) && (e as DriverError).context.maxPulseMs === MAX_PULSE_MS,
          `${id} ${ms} ms`,
        );
      }
    assert.deepEqual(gpio.sim.history(17), [{ value: 0, at: 1_700_000_000_000 }]);
    assert.equal(mcu.actuator("fan"), 0);
    assert.equal(mcu.requestCounters().requests, 0);
    assert.deepEqual(link.published, []);
    await board.stop();
  });

  it("a pulse whose start fails rejects with the device's code and never restores later", async () => {
    const { timers, gpio, mcu, link, board } = await setup();

    gpio.state.failWrites = true;
    await assert.rejects(board.output("relay").pulse(200), code("gpio_io", "relay"));
    gpio.state.failWrites = false;

    mcu.setMuted(true);
    const fan = board.output("fan").pulse(200);
    const fanFailed = assert.rejects(fan, (e: unknown) => e instanceof DriverError && e.code === "serial_timeout");
    await tick();
    timers.advance(REQUEST_TIMEOUT_MS);
    await fanFailed;
    mcu.setMuted(false);

    link.setConnected(false);
    await assert.rejects(
      board.output("plug").pulse(200),
      (e: unknown) => e instanceof AgentError && e.code === "mqtt_offline",
    );
    link.setConnected(true);

    // A failed start schedules nothing: no restore is driven once the pulse would have ended.
    timers.advance(1000);
    await tick();
    assert.deepEqual(gpio.sim.history(17), [{ value: 0, at: 1_700_000_000_000 }]);
    assert.equal(mcu.actuator("fan"), 0);
    assert.deepEqual(link.published, []);
    await board.stop();
  });

  it("a pulse within the bound resolves once the level is applied, and restores after its duration", async () => {
    const { timers, gpio, mcu, link, board } = await setup();
    const started = await Promise.all(["relay", "fan", "plug"].map((id) => board.output(id).pulse(200)));
    assert.equal(gpio.sim.level(17), 1);
    assert.equal(mcu.actuator("fan"), 1);
    assert.deepEqual(
      link.published.map((p) => p.payload),
      ["ON"],
    );
    timers.advance(200);
    await Promise.all(started.map((s) => s.restored));
    assert.equal(gpio.sim.level(17), 0);
    assert.equal(mcu.actuator("fan"), 0);
    assert.deepEqual(
      link.published.map((p) => p.payload),
      ["ON", "OFF"],
    );
    await board.stop();
  });
});
