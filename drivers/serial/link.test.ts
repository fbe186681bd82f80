import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { SimulatedMcu } from "../../firmware-sim/mcu.js";
import { SimSerialBackend } from "../../firmware-sim/serial-backend.js";
import { DriverError } from "../types.js";
import { McuClient } from "./client.js";
import { encodeFrame, MSG } from "./codec.js";
import { FramedSerialLink } from "./link.js";

const tick = () => new Promise<void>((r) => setImmediate(r));
const code = (c: string) => (e: unknown) => e instanceof DriverError && e.code === c;

function setup(opts: { maxInFlight?: number } = {}) {
  const timers = new FakeTimers(1_700_000_000_000);
  const backend = new SimSerialBackend();
  const mcu = new SimulatedMcu({ timers, random: () => 0.5, firmware: "test-fw 2.0" });
  backend.addDevice("/dev/ttySIM0", mcu);
  const link = new FramedSerialLink({
    id: "mcu0",
    path: "/dev/ttySIM0",
    backend,
    timers,
    settings: { baudRate: 57600 },
    reopen: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, minDelayMs: 10 },
    random: () => 1,
  });
  const client = new McuClient({ link, timers, requestTimeoutMs: 500, maxInFlight: opts.maxInFlight ?? 8 });
  client.start();
  return { timers, backend, mcu, link, client };
}

describe("FramedSerialLink + McuClient (in-memory sim backend)", () => {
  it("opens with the given settings and round-trips every request type", async () => {
    const { backend, mcu, link, client } = setup();
    await link.open({ parity: "even" });
    assert.deepEqual(backend.settings("/dev/ttySIM0"), { baudRate: 57600, dataBits: 8, parity: "even", stopBits: 1 });
    assert.equal(await link.actualBaudRate(), 57600);
    assert.equal(await client.version(), "test-fw 2.0");
    assert.deepEqual(await client.ping(Buffer.from([0, 0xa5, 0x5a, 0xff])), Buffer.from([0, 0xa5, 0x5a, 0xff]));
    assert.deepEqual(await client.inventory(), { sensors: ["temperature", "humidity"], actuators: ["fan", "heater"] });
    assert.deepEqual(await client.readSensor("temperature"), { value: 21.5, ageMs: 0 });
    assert.equal(await client.setActuator("fan", 1), 1);
    assert.equal(mcu.actuator("fan"), 1);
    assert.equal(await client.getActuator("fan"), 1);
    await assert.rejects(client.readSensor("pressure"), code("serial_remote_error"));
    mcu.setSensorFault("humidity", "disconnected", true);
    await assert.rejects(
      client.readSensor("humidity", "hum"),
      (e: unknown) =>
        code("sensor_fault")(e) && (e as DriverError).channel === "hum" && (e as DriverError).device === "serial:mcu0",
    );
    assert.equal(client.stats().remoteErrors, 2);
    await link.close();
    await assert.rejects(client.version(), code("serial_not_open"));
  });

  it("times out, bounds in-flight requests, and counts late answers as unmatched", async () => {
    const { timers, mcu, link, client } = setup({ maxInFlight: 2 });
    await link.open();
    mcu.setResponseDelay(800);
    const a = client.version();
    const b = client.version();
    await assert.rejects(client.version(), code("serial_busy"));
    await tick();
    timers.advance(500);
    await assert.rejects(a, code("serial_timeout"));
    await assert.rejects(b, code("serial_timeout"));
    timers.advance(300);
    await tick();
    assert.deepEqual(
      { ...client.stats() },
      { requests: 2, responses: 0, timeouts: 2, busy: 1, remoteErrors: 0, unmatchedResponses: 2 },
    );
    await link.close();
  });

  it("counts noise and bad CRC from the device and still answers", async () => {
    const { backend, mcu, link, client } = setup();
    await link.open();
    const side = backend.deviceSide("/dev/ttySIM0")!;
    await side.write(Buffer.from("boot: hello\r\n\x00\xff"));
    mcu.corruptNextFrames(1);
    const first = client.ping();
    const second = client.version();
    // The corrupted answer to the first request is dropped by CRC; the second still arrives.
    assert.equal(await second, "test-fw 2.0");
    const stats = link.stats();
    assert.equal(stats.badCrc, 1);
    assert.ok(stats.garbageBytes >= 15);
    first.catch(() => {});
    await link.close();
  });

  it("reports unplug, fails waiting requests, and reopens with backoff on replug", async () => {
    const { timers, backend, link, client } = setup();
    const events: string[] = [];
    link.on("unplug", (e) => events.push(`unplug:${e.error.code}`));
    link.on("replug", (e) => events.push(`replug:${e.attempts}`));
    await link.open();
    const pending = client.version();
    backend.unplug("/dev/ttySIM0");
    await assert.rejects(pending, code("serial_disconnected"));
    assert.equal(link.state, "unplugged");
    await assert.rejects(client.version(), code("serial_disconnected"));
    // Attempts at 100, +200, +400 ms fail while the device is absent.
    timers.advance(100);
    await tick();
    timers.advance(200);
    await tick();
    backend.replug("/dev/ttySIM0");
    timers.advance(400);
    await tick();
    assert.equal(link.state, "open");
    assert.deepEqual(events, ["unplug:serial_disconnected", "replug:3"]);
    assert.equal(await client.version(), "test-fw 2.0");
    assert.equal(link.stats().unplugs, 1);
    assert.equal(link.stats().reopens, 1);
    await link.close();
    assert.equal(timers.pendingCount, 0);
  });

  it("start() tolerates an absent device and keeps retrying; close() stops the retries", async () => {
    const timers = new FakeTimers();
    const backend = new SimSerialBackend();
    const link = new FramedSerialLink({
      id: "x",
      path: "/dev/none",
      backend,
      timers,
      reopen: { initialDelayMs: 50, maxDelayMs: 50, factor: 1 },
    });
    const unplugs: string[] = [];
    link.on("unplug", (e) => unplugs.push(e.error.code));
    await assert.rejects(link.open(), code("serial_open_failed"));
    await link.start();
    assert.equal(link.state, "unplugged");
    assert.deepEqual(unplugs, ["serial_open_failed"]);
    assert.equal(timers.pendingCount, 1);
    await link.close();
    assert.equal(timers.pendingCount, 0);
  });

  it("refuses frames above maxFrameBytes before they reach the wire", async () => {
    const { link } = setup();
    await link.open();
    await assert.rejects(
      link.writeFrame({ type: MSG.PING, seq: 1, payload: Buffer.alloc(2000) }),
      code("serial_frame_too_large"),
    );
    assert.equal(encodeFrame({ type: 1, seq: 1, payload: Buffer.alloc(2000) }).length, 2009);
    await link.close();
  });
});
