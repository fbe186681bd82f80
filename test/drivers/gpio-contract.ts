/**
 * The GPIO driver contract: one suite, run against every GpioBackend (the simulator here; onoff on
 * a real board with a loopback wire). It drives DigitalOutput/DigitalInput (drivers/gpio/pins.ts)
 * on the backend, so it checks the behaviour the rest of the agent relies on, not backend details.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Timers } from "../../kernel/timers.js";
import type { Bit, GpioBackend } from "../../drivers/gpio/backend.js";
import { GpioInputPin, GpioOutputPin } from "../../drivers/gpio/pins.js";
import { DriverError, type InputEdge } from "../../drivers/types.js";

export interface GpioHarness {
  backend: GpioBackend;
  timers: Timers;
  /** Lets time pass (advances fake time, or sleeps on real hardware). */
  wait(ms: number): Promise<void>;
  /** An output line and an input line to use; on hardware they are wired to other lines the harness drives/reads. */
  outputLine: number;
  inputLine: number;
  /** Sets the level the input line sees (sim: drive(); hardware: the loopback output). */
  driveInput(value: Bit): Promise<void>;
  /** Releases whatever the harness opened. */
  close(): Promise<void>;
}

export interface GpioContractOptions {
  /** When set, every case is skipped with this reason (printed by the runner). */
  skip?: string | false;
}

const code = (c: string) => (e: unknown) => e instanceof DriverError && e.code === c;

export function gpioContract(name: string, make: () => Promise<GpioHarness>, opts: GpioContractOptions = {}): void {
  const skip = opts.skip || false;
  const withHarness = (fn: (h: GpioHarness) => Promise<void>) => async () => {
    const h = await make();
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  };

  describe(`GPIO contract: ${name}`, () => {
    it(
      "output: set, read back, activeLow",
      { skip },
      withHarness(async (h) => {
        const out = await GpioOutputPin.open(
          h.backend,
          { id: "relay", line: h.outputLine, activeLow: true },
          { timers: h.timers },
        );
        try {
          assert.equal(await out.read(), false);
          await out.set(true);
          assert.equal(await out.read(), true);
          await out.set(false);
          assert.equal(await out.read(), false);
        } finally {
          await out.close();
        }
        await assert.rejects(out.read(), code("gpio_unexported"));
      }),
    );

    it(
      "output: pulse holds the level for its duration, then restores; set() cuts it short",
      { skip },
      withHarness(async (h) => {
        const out = await GpioOutputPin.open(h.backend, { id: "buzzer", line: h.outputLine }, { timers: h.timers });
        try {
          let done = false;
          const p = (await out.pulse(60)).restored.then(() => {
            done = true;
          });
          await h.wait(30);
          assert.equal(await out.read(), true);
          assert.equal(done, false);
          await h.wait(50);
          await p;
          assert.equal(await out.read(), false);
          const q = (await out.pulse(1000)).restored;
          await h.wait(10);
          await out.set(false);
          await q;
          await h.wait(20);
          assert.equal(await out.read(), false);
          await assert.rejects(out.pulse(10_000_000), code("pulse_out_of_range"));
          await assert.rejects(out.pulse(0), code("pulse_out_of_range"));
          await assert.rejects(out.pulse(2.5), code("pulse_out_of_range"));
        } finally {
          await out.close();
        }
      }),
    );

    it(
      "input: reports rising and falling edges, filtered",
      { skip },
      withHarness(async (h) => {
        const inp = await GpioInputPin.open(
          h.backend,
          { id: "door", line: h.inputLine, edge: "falling", debounceMs: 5 },
          { timers: h.timers },
        );
        const edges: InputEdge[] = [];
        inp.on("edge", (e) => edges.push(e));
        try {
          await h.driveInput(1);
          await h.wait(20);
          assert.equal(await inp.read(), true);
          await h.driveInput(0);
          await h.wait(20);
          assert.deepEqual(
            edges.map((e) => [e.inputId, e.edge, e.value]),
            [["door", "falling", false]],
          );
        } finally {
          await inp.close();
        }
      }),
    );

    it(
      "input: a 20-bounce press yields exactly one edge",
      { skip },
      withHarness(async (h) => {
        await h.driveInput(0);
        const inp = await GpioInputPin.open(
          h.backend,
          { id: "button", line: h.inputLine, edge: "both", debounceMs: 20 },
          { timers: h.timers },
        );
        const edges: InputEdge[] = [];
        inp.on("edge", (e) => edges.push(e));
        try {
          // 20 level changes 1 ms apart ending high: a press with contact bounce.
          for (let i = 0; i < 20; i++) {
            await h.driveInput(i % 2 === 0 ? 1 : 0);
            await h.wait(1);
          }
          await h.driveInput(1);
          await h.wait(60);
          assert.deepEqual(
            edges.map((e) => e.edge),
            ["rising"],
          );
          assert.equal(await inp.read(), true);
        } finally {
          await inp.close();
        }
      }),
    );

    it(
      "rules: an input cannot be written, a line opens once",
      { skip },
      withHarness(async (h) => {
        const line = await h.backend.open({ line: h.inputLine, direction: "in", edge: "none" });
        try {
          await assert.rejects(line.write(1), code("gpio_wrong_direction"));
          await assert.rejects(h.backend.open({ line: h.inputLine, direction: "in" }), code("gpio_line_busy"));
        } finally {
          await line.close();
        }
      }),
    );
  });
}
