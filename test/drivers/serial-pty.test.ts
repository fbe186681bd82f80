/**
 * The serial driver over real pseudo-terminals (socat), with the real serialport backend on the
 * agent side and the simulated MCU on the device side: round trips, baud settings, 1 MiB of noise
 * interleaved with frames, unplug/replug recovery through the Board.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Ctx } from "../../kernel/schema-dsl.js";
import { Board, type QualityChange } from "../../drivers/board.js";
import { type BoardConfig, boardConfigSchema } from "../../drivers/config.js";
import type { SerialPortHandle } from "../../drivers/serial/backend.js";
import { McuClient } from "../../drivers/serial/client.js";
import { encodeFrame, MSG } from "../../drivers/serial/codec.js";
import { FramedSerialLink } from "../../drivers/serial/link.js";
import { SerialportBackend } from "../../drivers/serial/serialport-backend.js";
import { DriverError, type Frame, type LineStats } from "../../drivers/types.js";
import { SimulatedMcu } from "../../firmware-sim/mcu.js";
import { PtySimulator } from "../../firmware-sim/pty-sim.js";
import { seededRandom } from "../../firmware-sim/random.js";
import { SocatPty } from "../../firmware-sim/pty.js";

const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "iot-serial-pty-"));
  dirs.push(d);
  return d;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function startSim(settings = {}) {
  const mcu = new SimulatedMcu({ firmware: "pty-fw 1.2.3" });
  const sim = new PtySimulator({ mcu, dir: tempDir(), settings });
  await sim.start();
  cleanups.push(() => sim.stop());
  return { mcu, sim };
}

describe("serial over a real PTY (socat + serialport)", () => {
  let mcu: SimulatedMcu;
  let sim: PtySimulator;
  let link: FramedSerialLink;
  let client: McuClient;

  before(async () => {
    ({ mcu, sim } = await startSim());
    link = new FramedSerialLink({ id: "mcu0", path: sim.agentPath, backend: new SerialportBackend() });
    client = new McuClient({ link, requestTimeoutMs: 2000 });
    client.start();
    await link.open();
    cleanups.push(() => link.close());
  });

  it("round-trips every request type, and all 256 byte values in a payload", async () => {
    assert.equal(await client.version(), "pty-fw 1.2.3");
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.deepEqual(await client.ping(all), all);
    assert.deepEqual(await client.inventory(), { sensors: ["temperature", "humidity"], actuators: ["fan", "heater"] });
    const t = await client.readSensor("temperature");
    assert.ok(t.value > -20 && t.value < 60);
    assert.equal(await client.setActuator("heater", 0.75), 0.75);
    assert.equal(mcu.actuator("heater"), 0.75);
    await assert.rejects(
      client.readSensor("nope"),
      (e: unknown) => e instanceof DriverError && e.code === "serial_remote_error",
    );
  });

  it("answers 500 sequential and 8 concurrent requests; reports round-trip time", async (t) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 500; i++) await client.ping(Buffer.from([i & 0xff]));
    const perRequestUs = Number(process.hrtime.bigint() - t0) / 500 / 1000;
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => client.ping(Buffer.from(`c${i}`))));
    assert.deepEqual(
      answers.map((a) => a.toString()),
      Array.from({ length: 8 }, (_, i) => `c${i}`),
    );
    t.diagnostic(`serial PTY round trip: ${perRequestUs.toFixed(0)} µs per request (sequential, 500 pings)`);
    assert.equal(link.stats().badCrc, 0);
  });

  it("survives noise, slow answers and corrupt frames from the device", async () => {
    await mcu.sendGarbage(4096);
    mcu.corruptNextFrames(1);
    await assert.rejects(
      client.request(MSG.VERSION, Buffer.alloc(0), 300),
      (e: unknown) => e instanceof DriverError && e.code === "serial_timeout",
    );
    mcu.setResponseDelay(50);
    assert.equal(await client.version(), "pty-fw 1.2.3");
    mcu.setResponseDelay(0);
    const s = link.stats();
    assert.equal(s.badCrc, 1);
    assert.ok(s.garbageBytes >= 4000, `garbage counted: ${s.garbageBytes}`);
  });
});

describe("1 MiB of random garbage interleaved with valid frames over a PTY", () => {
  it("decodes every valid frame, in order, and invents none", async (t) => {
    const pty = new SocatPty({ dir: tempDir() });
    await pty.start();
    cleanups.push(() => pty.stop());
    const backend = new SerialportBackend();
    const device: SerialPortHandle = await backend.open(pty.devicePath, {
      baudRate: 115200,
      dataBits: 8,
      parity: "none",
      stopBits: 1,
    });
    cleanups.push(() => device.close());
    // A long frame timeout: this test is about CRC/resync, not about giving up on slow frames.
    const link = new FramedSerialLink({
      id: "noise",
      path: pty.agentPath,
      backend,
      maxFrameBytes: 256,
      frameTimeoutMs: 5000,
    });
    cleanups.push(() => link.close());
    const got: Frame[] = [];
    link.on("frame", (f) => got.push(f));
    await link.open();

    const random = seededRandom(20240601);
    let garbage = 0;
    let sent = 0;
    const t0 = Date.now();
    while (garbage < 1024 * 1024) {
      const n = Math.floor(random() * 8192);
      const noise = Buffer.alloc(n);
      for (let i = 0; i < n; i++) noise[i] = Math.floor(random() * 256);
      garbage += n;
      const payload = Buffer.from(`frame ${sent} ${"x".repeat(sent % 200)}`);
      await device.write(Buffer.concat([noise, encodeFrame({ type: 0x90, seq: sent & 0xff, payload })]));
      sent++;
    }
    // Zero bytes hold no SYNC: they complete any bogus header that swallowed the last frame, so
    // the parser resyncs onto it without waiting for the frame timeout.
    await device.write(Buffer.alloc(300));
    await until(() => got.length >= sent, 20_000, `${sent} frames (got ${got.length})`);
    await new Promise((r) => setTimeout(r, 50));
    const ms = Date.now() - t0;
    assert.equal(got.length, sent, "no frame invented");
    got.forEach((f, i) => {
      assert.equal(f.seq, i & 0xff);
      assert.ok(f.payload.toString().startsWith(`frame ${i} `), `frame ${i} intact`);
    });
    const s = link.stats();
    assert.equal(s.framesIn, sent);
    assert.ok(s.garbageBytes >= garbage, `garbage counted ${s.garbageBytes} >= ${garbage}`);
    t.diagnostic(
      `1 MiB noise test: ${sent} frames in ${garbage} garbage bytes, ${ms} ms; badCrc=${s.badCrc} oversize=${s.oversizeFrames} partial=${s.partialFrames}`,
    );
  });
});

describe("baud settings over a PTY", () => {
  for (const settings of [
    { baudRate: 9600, dataBits: 8, parity: "none", stopBits: 1 },
    { baudRate: 57600, dataBits: 7, parity: "even", stopBits: 2 },
    { baudRate: 230400, dataBits: 8, parity: "odd", stopBits: 1 },
  ] as const) {
    it(`opens at ${settings.baudRate} ${settings.dataBits}${settings.parity[0]!.toUpperCase()}${settings.stopBits} and the OS reports that rate`, async () => {
      const { sim } = await startSim();
      const link = new FramedSerialLink({ id: "baud", path: sim.agentPath, backend: new SerialportBackend() });
      const client = new McuClient({ link });
      client.start();
      await link.open(settings);
      try {
        assert.equal(await link.actualBaudRate(), settings.baudRate);
        assert.deepEqual(link.settings, settings);
        // A PTY ignores the line settings for the bytes themselves; 8 data bits still pass.
        assert.equal(await client.version(), "pty-fw 1.2.3");
      } finally {
        client.stop();
        await link.close();
        await sim.stop();
      }
    });
  }

  it("reports an absent device as serial_open_failed and refuses a second opener (lock)", async () => {
    const missing = new FramedSerialLink({
      id: "x",
      path: join(tempDir(), "nothing"),
      backend: new SerialportBackend(),
    });
    await assert.rejects(
      missing.open(),
      (e: unknown) => e instanceof DriverError && e.code === "serial_open_failed" && e.device === "serial:x",
    );
    const { sim } = await startSim();
    const a = new FramedSerialLink({ id: "a", path: sim.agentPath, backend: new SerialportBackend() });
    const b = new FramedSerialLink({ id: "b", path: sim.agentPath, backend: new SerialportBackend() });
    await a.open();
    try {
      await assert.rejects(b.open(), (e: unknown) => e instanceof DriverError && e.code === "serial_open_failed");
    } finally {
      await a.close();
      await sim.stop();
    }
  });
});

describe("unplug and replug over a PTY, through the Board", () => {
  it("flags channels error on unplug, reopens with backoff, and reads again after replug", async (t) => {
    const { sim } = await startSim();
    const ctx = new Ctx();
    const config = boardConfigSchema.parse(
      {
        serial: {
          mcu0: {
            path: sim.agentPath,
            // Generous: this test is about unplug/replug, and a loaded CI machine can be slow to answer.
            requestTimeoutMs: 3000,
            reopen: { initialDelayMs: 20, maxDelayMs: 200, factor: 2 },
          },
        },
        channels: {
          temp: {
            source: "serial",
            link: "mcu0",
            sensor: "temperature",
            kind: "temperature",
            unit: "°C",
            intervalMs: 1000,
          },
        },
      },
      ctx,
    ) as BoardConfig;
    assert.deepEqual(ctx.issues, []);
    const board = new Board({ config, backends: { serial: new SerialportBackend() } });
    const events: string[] = [];
    const qualities: QualityChange[] = [];
    board.on("unplug", (e) => events.push(`unplug ${e.error.code}`));
    board.on("replug", (e) => events.push(`replug after ${e.attempts} attempt(s)`));
    board.on("quality", (q) => qualities.push(q));
    await board.start();
    cleanups.push(() => board.stop());
    const first = await board.channel("temp").read();
    assert.equal(first.quality, "good", `first read: ${first.error?.message ?? ""}`);

    const seen = () => `events ${JSON.stringify(events)}, qualities ${JSON.stringify(qualities.map((q) => q.quality))}`;
    await sim.unplug();
    await until(() => events.length >= 1, 5000, "unplug event");
    assert.equal(board.qualities().temp, "error", seen());
    const during = await board.channel("temp").read();
    assert.equal(during.quality, "error", seen());
    assert.equal(during.error?.code, "serial_disconnected", seen());

    const t0 = Date.now();
    await sim.replug();
    await until(() => events.length >= 2, 10_000, `replug event (${seen()})`);
    const recoveredMs = Date.now() - t0;
    const after = await board.channel("temp").read();
    assert.equal(after.quality, "good", `${seen()}, read after replug: ${after.error?.message ?? ""}`);
    assert.equal(events.length, 2, seen());
    assert.equal(events[0], "unplug serial_disconnected", seen());
    assert.match(events[1]!, /^replug after \d+ attempt/, seen());
    assert.deepEqual(
      qualities.map((q) => q.quality),
      ["good", "error", "good"],
      seen(),
    );
    const stats = board.stats().mcu0!;
    assert.equal(stats.link.unplugs, 1, seen());
    assert.equal(stats.link.reopens, 1, seen());
    t.diagnostic(`replug: link reopened ${recoveredMs} ms after the device came back (${events[1]})`);
    await board.stop();
  });
});

describe("line protocol over a PTY, through the Board", () => {
  it("reads key=value lines printed by the device, and counts its nan values", async () => {
    const mcu = new SimulatedMcu({ protocol: "line", lineIntervalMs: 20 });
    const sim = new PtySimulator({ mcu, dir: tempDir(), settings: { baudRate: 9600 } });
    await sim.start();
    cleanups.push(() => sim.stop());
    const ctx = new Ctx();
    const config = boardConfigSchema.parse(
      {
        serial: { uno: { path: sim.agentPath, protocol: "line", baudRate: 9600 } },
        channels: {
          t: { source: "serial", link: "uno", sensor: "temperature", kind: "temperature", unit: "°C", intervalMs: 100 },
          h: { source: "serial", link: "uno", sensor: "humidity", kind: "humidity", unit: "%", intervalMs: 100 },
        },
      },
      ctx,
    ) as BoardConfig;
    assert.deepEqual(ctx.issues, []);
    const board = new Board({ config, backends: { serial: new SerialportBackend() } });
    await board.start();
    cleanups.push(() => board.stop());
    const lineStats = () => {
      const st = board.stats().uno!;
      assert.equal(st.protocol, "line");
      return st.link as LineStats;
    };
    await until(() => lineStats().lines >= 2, 10_000, "two lines");
    const t = await board.channel("t").read();
    assert.equal(t.quality, "good");
    assert.ok(typeof t.value === "number" && t.value > -20 && t.value < 60);
    mcu.setSensorFault("humidity", "disconnected", true);
    await until(() => lineStats().malformedTokens >= 1, 10_000, "a nan token");
    assert.throws(
      () => board.client("uno"),
      (e: unknown) => e instanceof DriverError && e.code === "driver_bad_argument",
    );
    await board.stop();
  });
});
