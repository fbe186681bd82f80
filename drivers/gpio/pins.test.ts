import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { SimGpioBackend } from "../../firmware-sim/gpio.js";
import type { InputEdge } from "../types.js";
import { GpioInputPin, GpioOutputPin } from "./pins.js";

describe("GPIO pins on fake time", () => {
  it("pulse timing is exact: level at t0, restore at t0 + duration", async () => {
    const timers = new FakeTimers(1000);
    const gpio = new SimGpioBackend({ timers });
    const out = await GpioOutputPin.open(gpio, { id: "valve", line: 5 }, { timers });
    const p = (await out.pulse(250)).restored;
    timers.advance(249);
    assert.equal(gpio.level(5), 1);
    timers.advance(1);
    await p;
    assert.deepEqual(gpio.history(5), [
      { value: 0, at: 1000 },
      { value: 1, at: 1000 },
      { value: 0, at: 1250 },
    ]);
    await out.close();
    assert.equal(timers.pendingCount, 0);
  });

  it("activeLow inputs report logical edges; debounce 0 reports every change", async () => {
    const timers = new FakeTimers();
    const gpio = new SimGpioBackend({ timers });
    gpio.drive(6, 1);
    const inp = await GpioInputPin.open(gpio, { id: "btn", line: 6, activeLow: true, debounceMs: 0 }, { timers });
    const edges: InputEdge[] = [];
    inp.on("edge", (e) => edges.push(e));
    assert.equal(await inp.read(), false);
    gpio.drive(6, 0);
    gpio.drive(6, 1);
    assert.deepEqual(
      edges.map((e) => e.edge),
      ["rising", "falling"],
    );
    await inp.close();
  });

  it("a release bounce after a press gives one falling edge, timestamped when the level settled", async () => {
    const timers = new FakeTimers(0);
    const gpio = new SimGpioBackend({ timers });
    const inp = await GpioInputPin.open(gpio, { id: "btn", line: 6, debounceMs: 20 }, { timers });
    const edges: InputEdge[] = [];
    inp.on("edge", (e) => edges.push(e));
    gpio.bounce(6, 1, { count: 20, intervalMs: 1 });
    timers.advance(100);
    gpio.bounce(6, 0, { count: 20, intervalMs: 1 });
    timers.advance(100);
    assert.deepEqual(
      edges.map((e) => [e.edge, e.timestamp]),
      [
        ["rising", 39],
        ["falling", 139],
      ],
    );
    await inp.close();
    assert.equal(timers.pendingCount, 0);
  });
});
