/**
 * Runs the GPIO contract against the simulator (always) and against onoff on a real board (only
 * with GPIO present and a loopback wire declared in IOT_GPIO_LOOPBACK="OUT:IN", e.g. "17:27" for
 * BCM 17 wired to BCM 27; the cases otherwise show as skipped with the reason).
 */
import { FakeTimers, realTimers } from "../../kernel/timers.js";
import type { GpioLine } from "../../drivers/gpio/backend.js";
import { OnoffGpioBackend } from "../../drivers/gpio/onoff-backend.js";
import { SimGpioBackend } from "../../firmware-sim/gpio.js";
import { gpioContract } from "./gpio-contract.js";

gpioContract("simulator backend", async () => {
  const timers = new FakeTimers(1_700_000_000_000);
  const backend = new SimGpioBackend({ timers });
  return {
    backend,
    timers,
    outputLine: 17,
    inputLine: 27,
    async wait(ms) {
      for (let i = 0; i < ms; i++) {
        timers.advance(1);
        await Promise.resolve();
      }
      await new Promise((r) => setImmediate(r));
    },
    async driveInput(v) {
      backend.drive(27, v);
    },
    async close() {},
  };
});

const onoff = new OnoffGpioBackend();
const loopback = /^(\d+):(\d+)$/.exec(process.env.IOT_GPIO_LOOPBACK ?? "");
const realSkip = !onoff.accessible
  ? `no GPIO on this machine (${onoff.unavailableReason})`
  : !loopback
    ? 'GPIO present but no loopback wire declared: set IOT_GPIO_LOOPBACK="OUT:IN" (two header lines wired together) to run these'
    : false;

gpioContract(
  "onoff backend on real hardware",
  async () => {
    // The contract uses lines A (output under test) and B (input under test); the harness drives B
    // through the wire from `drive` and the contract's output is observed by reading it back.
    const [, driveLine, inputLine] = loopback!;
    const backend = new OnoffGpioBackend();
    const driver: GpioLine = await new OnoffGpioBackend().open({
      line: Number(driveLine),
      direction: "out",
      initial: 0,
    });
    return {
      backend,
      timers: realTimers,
      outputLine: Number(process.env.IOT_GPIO_SPARE ?? 22),
      inputLine: Number(inputLine),
      wait: (ms) => new Promise((r) => setTimeout(r, ms)),
      driveInput: (v) => driver.write(v),
      close: () => driver.close(),
    };
  },
  { skip: realSkip },
);
