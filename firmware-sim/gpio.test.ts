import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../kernel/timers.js";
import { DriverError } from "../drivers/types.js";
import { SimGpioBackend } from "./gpio.js";

const code = (c: string) => (e: unknown) => e instanceof DriverError && e.code === c;

describe("SimGpioBackend", () => {
  it("keeps the rules of real GPIO", async () => {
    const gpio = new SimGpioBackend({ chips: [{ label: "chip0", ngpio: 8 }] });
    await assert.rejects(gpio.open({ line: 8, direction: "in" }), code("gpio_line_out_of_range"));
    await assert.rejects(gpio.open({ line: 1, direction: "in", chip: "nope" }), code("gpio_no_chip"));
    const inp = await gpio.open({ line: 1, direction: "in" });
    await assert.rejects(gpio.open({ line: 1, direction: "out" }), code("gpio_line_busy"));
    await assert.rejects(inp.write(1), code("gpio_wrong_direction"));
    await inp.close();
    await assert.rejects(inp.read(), code("gpio_unexported"));
    assert.throws(() => inp.watch(() => {}), code("gpio_unexported"));
  });

  it("records output history with timestamps and lets tests drive inputs", async () => {
    const timers = new FakeTimers(1000);
    const gpio = new SimGpioBackend({ timers });
    const out = await gpio.open({ line: 17, direction: "out", initial: 0 });
    timers.advance(5);
    await out.write(1);
    assert.deepEqual(gpio.history(17), [
      { value: 0, at: 1000 },
      { value: 1, at: 1005 },
    ]);
    assert.throws(() => gpio.drive(17, 0), code("gpio_wrong_direction"));
    const inp = await gpio.open({ line: 27, direction: "in" });
    const seen: number[] = [];
    inp.watch((v) => seen.push(v));
    gpio.bounce(27, 1, { count: 5, intervalMs: 1 });
    timers.advance(10);
    assert.deepEqual(seen, [1, 0, 1, 0, 1]);
    assert.equal(await inp.read(), 1);
  });

  it("is per instance: two boards share nothing", async () => {
    const a = new SimGpioBackend();
    const b = new SimGpioBackend();
    await a.open({ line: 4, direction: "out" });
    await b.open({ line: 4, direction: "out" });
    assert.equal(a.isOpen(4) && b.isOpen(4), true);
  });
});
