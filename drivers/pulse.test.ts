import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../kernel/timers.js";
import { Pulser } from "./pulse.js";
import { DriverError } from "./types.js";

function target() {
  const levels: boolean[] = [];
  return {
    levels,
    t: {
      id: "relay",
      device: "test:relay",
      drive: async (v: boolean) => {
        levels.push(v);
      },
    },
  };
}

describe("Pulser: the one pulse rule", () => {
  it("refuses durations outside 1..max before driving anything", async () => {
    const x = target();
    const p = new Pulser(x.t, 1000, new FakeTimers());
    for (const ms of [0, -5, 1.5, 1001, Number.NaN])
      await assert.rejects(
        p.start(ms, true),
        (e: unknown) => e instanceof DriverError && e.code === "pulse_out_of_range",
      );
    assert.deepEqual(x.levels, []);
  });

  it("drives, then restores after the duration; a cancel ends it without restoring", async () => {
    const timers = new FakeTimers();
    const x = target();
    const p = new Pulser(x.t, 1000, timers);
    const { restored } = await p.start(100, true);
    assert.deepEqual(x.levels, [true]);
    timers.advance(100);
    await restored;
    assert.deepEqual(x.levels, [true, false]);
    const second = await p.start(500, false);
    p.cancel();
    await second.restored;
    timers.advance(1000);
    assert.deepEqual(x.levels, [true, false, false]);
    assert.equal(timers.pendingCount, 0);
  });

  it("a set() that overtakes a pulse while it is still starting keeps the level: no late restore", async () => {
    const timers = new FakeTimers();
    const levels: boolean[] = [];
    let release: (() => void) | undefined;
    const p = new Pulser(
      {
        id: "plug",
        device: "mqtt:plug/set",
        drive: (v) => {
          levels.push(v);
          return v ? new Promise<void>((r) => (release = r)) : Promise.resolve();
        },
      },
      1000,
      timers,
    );
    const starting = p.start(200, true);
    p.cancel(); // what set() does before driving its own level
    release!();
    const { restored } = await starting;
    await restored;
    timers.advance(1000);
    assert.deepEqual(levels, [true]);
    assert.equal(timers.pendingCount, 0);
  });

  it("a start that fails rejects, and nothing is scheduled", async () => {
    const timers = new FakeTimers();
    const p = new Pulser(
      {
        id: "fan",
        device: "serial:mcu0",
        drive: () => Promise.reject(new DriverError("serial_timeout", "no answer", { device: "serial:mcu0" })),
      },
      1000,
      timers,
    );
    await assert.rejects(p.start(100, true), (e: unknown) => e instanceof DriverError && e.code === "serial_timeout");
    assert.equal(timers.pendingCount, 0);
  });
});
