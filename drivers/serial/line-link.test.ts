import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { SimulatedMcu } from "../../firmware-sim/mcu.js";
import { SimSerialBackend } from "../../firmware-sim/serial-backend.js";
import { DriverError } from "../types.js";
import { LineSensorChannel, LineValues } from "./line-channel.js";
import { LineSerialLink } from "./line-link.js";

const flush = async () => {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
};

function setup() {
  const timers = new FakeTimers(1_700_000_000_000);
  const backend = new SimSerialBackend();
  const mcu = new SimulatedMcu({ protocol: "line", lineIntervalMs: 1000, timers, random: () => 0.5 });
  backend.addDevice("/dev/ttyACM0", mcu);
  const link = new LineSerialLink({
    id: "uno",
    path: "/dev/ttyACM0",
    backend,
    timers,
    reopen: { initialDelayMs: 100, maxDelayMs: 100, factor: 1 },
    random: () => 1,
  });
  const values = new LineValues(link, ["temperature", "humidity"], timers);
  values.start();
  const channel = (sensor: string) =>
    new LineSensorChannel({ id: `${sensor}-ch`, kind: sensor, unit: "", intervalMs: 1000, sensor, values, timers });
  return { timers, backend, mcu, link, values, channel };
}

async function tickSeconds(timers: FakeTimers, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    timers.advance(1000);
    await flush();
  }
}

describe("LineSerialLink + LineSensorChannel (in-memory sim)", () => {
  it("keeps the latest value per configured key; error before the first line", async () => {
    const { timers, link, channel } = setup();
    await link.open();
    const before = await channel("temperature").read();
    assert.equal(before.quality, "error");
    assert.equal(before.error?.code, "sensor_fault");
    await tickSeconds(timers, 1);
    const r = await channel("temperature").read();
    assert.deepEqual([r.quality, r.value, r.timestamp], ["good", 21.5, timers.now()]);
    assert.equal(link.stats().lines, 1);
    await link.close();
  });

  it("a disconnected sensor prints nan: counted malformed, the channel turns stale", async () => {
    const { timers, mcu, link, channel } = setup();
    await link.open();
    await tickSeconds(timers, 1);
    mcu.setSensorFault("humidity", "disconnected", true);
    await tickSeconds(timers, 4);
    const r = await channel("humidity").read();
    assert.equal(r.quality, "stale");
    assert.equal(r.error?.code, "sensor_stale");
    assert.equal(link.stats().malformedTokens, 4);
    assert.equal((await channel("temperature").read()).quality, "good");
    await link.close();
  });

  it("parses separators and comments, ignores unknown keys, bounds line length", () => {
    const { link, values } = setup();
    values.onLine("# boot banner v1.2");
    values.onLine("temperature:20.25, humidity=55;pressure=1013 junk");
    assert.equal(values.get("temperature")?.value, 20.25);
    assert.equal(values.get("humidity")?.value, 55);
    assert.equal(values.get("pressure"), undefined);
    assert.equal(link.malformedTokens, 1);
  });

  it("unplug: error at once, old values forgotten; replug: good again after the next line", async () => {
    const { timers, backend, link, channel } = setup();
    const events: string[] = [];
    link.on("unplug", (e) => events.push(`unplug:${e.error.code}`));
    link.on("replug", () => events.push("replug"));
    await link.open();
    await tickSeconds(timers, 1);
    backend.unplug("/dev/ttyACM0");
    const r = await channel("temperature").read();
    assert.equal(r.error?.code, "serial_disconnected");
    backend.replug("/dev/ttyACM0");
    timers.advance(100);
    await flush();
    assert.equal(link.state, "open");
    assert.equal((await channel("temperature").read()).quality, "error", "no value since the replug yet");
    await tickSeconds(timers, 1);
    assert.equal((await channel("temperature").read()).quality, "good");
    assert.deepEqual(events, ["unplug:serial_disconnected", "replug"]);
    await link.close();
  });

  it("writes lines and refuses embedded newlines", async () => {
    const { link } = setup();
    await link.open();
    await link.writeLine("led=1");
    assert.equal(link.stats().bytesOut, 6);
    await assert.rejects(
      link.writeLine("a\nb"),
      (e: unknown) => e instanceof DriverError && e.code === "driver_bad_argument",
    );
    await link.close();
  });
});
