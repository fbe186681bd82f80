import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError } from "../../kernel/errors.js";
import { FakeTimers } from "../../kernel/timers.js";
import { type DigitalInput, type DigitalOutput, DriverError, type SensorChannel } from "../../drivers/types.js";
import { describeBackend } from "./builtin/status.js";
import {
  ChannelNotFoundError,
  hardwareFromHal,
  hardwareStatusOf,
  type McuClientLike,
  mcuPortFrom,
} from "./hal-adapter.js";
import { DeviceFailure } from "./ports.js";

class FakeOutput implements DigitalOutput {
  level = false;
  pulses: Array<[number, boolean]> = [];
  failRead = false;
  constructor(readonly id: string) {}
  async set(v: boolean) {
    this.level = v;
  }
  refusePulse = false;
  async pulse(ms: number, v = true) {
    if (this.refusePulse)
      throw new DriverError("pulse_out_of_range", "a pulse on relay must last 1..1000 ms", { device: "gpio:x/17" });
    this.pulses.push([ms, v]);
    this.level = v;
    return { restored: new Promise<void>(() => {}) };
  }
  async read() {
    if (this.failRead) throw new Error("gpio read failed");
    return this.level;
  }
}

const sensor: SensorChannel = {
  id: "temp",
  kind: "temperature",
  unit: "°C",
  intervalMs: 1000,
  read: async () => ({ channelId: "temp", value: 21.5, unit: "°C", timestamp: 5, quality: "good" }),
};
const input = { id: "button", edgeFilter: "both", read: async () => true } as unknown as DigitalInput;

describe("hardwareFromHal", () => {
  const relay = new FakeOutput("relay");
  const hw = hardwareFromHal(() => ({
    sensors: [sensor],
    inputs: [input],
    outputs: [relay],
    outputKinds: { relay: "relay" },
  }));

  it("lists sensors, inputs and outputs", async () => {
    assert.deepEqual(await hw.listChannels(), [
      { id: "temp", direction: "sensor", kind: "temperature", unit: "°C", intervalMs: 1000 },
      { id: "button", direction: "input", kind: "input" },
      { id: "relay", direction: "output", kind: "relay" },
    ]);
  });

  it("reads sensors and digital pins, and names unknown ids", async () => {
    assert.equal((await hw.read("temp")).value, 21.5);
    assert.equal((await hw.read("button")).value, true);
    await assert.rejects(hw.read("nope"), ChannelNotFoundError);
  });

  it("sets an output and reports before/after; a pulse is started, not awaited", async () => {
    relay.level = false;
    assert.deepEqual(await hw.setOutput("relay", true), { outputId: "relay", previous: false, value: true });
    const p = await hw.setOutput("relay", false, { pulseMs: 200 });
    assert.deepEqual(p, { outputId: "relay", previous: true, value: false, pulseMs: 200, restoresTo: true });
    assert.deepEqual(relay.pulses, [[200, false]]);
    relay.failRead = true;
    assert.equal((await hw.setOutput("relay", true)).previous, undefined);
    relay.failRead = false;
    await assert.rejects(hw.setOutput("temp", true), ChannelNotFoundError);
  });

  it("a refused pulse is the command's failure (DeviceFailure with the driver's code), not a claimed pulse", async () => {
    relay.refusePulse = true;
    try {
      await assert.rejects(
        hw.setOutput("relay", true, { pulseMs: 5000 }),
        (e: unknown) => e instanceof DeviceFailure && e.code === "pulse_out_of_range" && e.cause instanceof DriverError,
      );
    } finally {
      relay.refusePulse = false;
    }
  });

  it("typed hardware errors become DeviceFailures; a bug in a driver stays a bug", async () => {
    const broken = new FakeOutput("broken");
    broken.set = async () => {
      throw new DriverError("serial_timeout", "no answer within 1000 ms", { device: "serial:mcu0" });
    };
    const buggy = new FakeOutput("buggy");
    buggy.set = async () => {
      throw new TypeError("undefined is not a function");
    };
    const port = hardwareFromHal(() => ({ sensors: [], inputs: [], outputs: [broken, buggy] }));
    await assert.rejects(
      port.setOutput("broken", true),
      (e: unknown) => e instanceof DeviceFailure && e.noteText === "serial_timeout: no answer within 1000 ms",
    );
    await assert.rejects(port.setOutput("buggy", true), TypeError);
  });
});

describe("mcuPortFrom", () => {
  const client: McuClientLike = {
    ping: async () => Buffer.from("pong"),
    version: async () => "fw 1.0",
    inventory: async () => ({ sensors: ["temperature"], actuators: ["fan"] }),
    readSensor: async (n) => ({ value: n.length, ageMs: 3 }),
    getActuator: async () => 1,
    setActuator: async (_n, v) => v,
  };

  it("maps the documented requests and checks arguments", async () => {
    const port = mcuPortFrom(() => client);
    assert.equal(await port.request("ping", undefined, 1000), "pong");
    assert.equal(await port.request("list", undefined, 1000), "sensors: temperature; actuators: fan");
    assert.equal(await port.request("read", "temperature", 1000), "11 (age 3 ms)");
    assert.equal(await port.request("set", "fan=0.5", 1000), "applied 0.5");
    assert.equal(await port.request("set", "fan 1", 1000), "applied 1");
    await assert.rejects(
      port.request("set", "fan", 1000),
      (e: unknown) => e instanceof AgentError && e.code === "mcu_bad_argument",
    );
    await assert.rejects(
      port.request("read", "", 1000),
      (e: unknown) => e instanceof AgentError && e.code === "mcu_bad_argument",
    );
    await assert.rejects(
      port.request("reboot", undefined, 1000),
      (e: unknown) => e instanceof AgentError && e.code === "mcu_unknown_request",
    );
    await assert.rejects(
      mcuPortFrom(() => undefined).request("ping", undefined, 1000),
      (e: unknown) => e instanceof AgentError && e.code === "mcu_unavailable",
    );
  });

  it("gives up at the operator's timeout even if the driver waits longer", async () => {
    const timers = new FakeTimers();
    const port = mcuPortFrom(() => ({ ...client, version: () => new Promise<string>(() => {}) }), { timers });
    const p = port.request("version", undefined, 250);
    const check = assert.rejects(p, (e: unknown) => e instanceof AgentError && e.code === "mcu_timeout");
    timers.advance(250);
    await check;
    assert.equal(timers.pendingCount, 0);
  });
});

describe("hardwareStatusOf", () => {
  it("words each backend's state and counters for a person, trouble only when there is some", () => {
    const zero = { framesIn: 0, framesOut: 0, garbageBytes: 0, badCrc: 0, partialFrames: 0, oversizeFrames: 0 };
    const rows = hardwareStatusOf({
      gpioLines: () => [
        { id: "relay", device: "gpio:sim/17", direction: "out" },
        { id: "door", device: "gpio:sim/27", direction: "in" },
      ],
      stats: () => ({
        mcu0: {
          protocol: "framed",
          state: "open",
          link: { ...zero, framesIn: 1204, badCrc: 3, bytesIn: 0, bytesOut: 0, unplugs: 0, reopens: 1 },
          requests: { requests: 12, responses: 11, timeouts: 1, busy: 0, remoteErrors: 0, unmatchedResponses: 0 },
        },
      }),
      mqtt: () => ({
        link: {
          url: "mqtt://127.0.0.1:1884",
          stats: () => ({
            url: "mqtt://127.0.0.1:1884",
            clientId: "x",
            connected: false,
            connects: 2,
            disconnects: 2,
            messagesIn: 9,
            published: 4,
            publishFailures: 0,
            busy: 0,
            inFlight: 0,
            lastError: { message: "connect ECONNREFUSED 127.0.0.1:1884", at: 1 },
          }),
        },
        stats: () => ({
          connected: false,
          messages: 9,
          superseded: 2,
          oversize: 1,
          malformed: 0,
          wrongType: 0,
          unmatched: 0,
          discovery: { accepted: 0, applied: 0, dropped: 0, invalid: 0 },
          topics: {},
        }),
      }),
    });
    assert.deepEqual(
      rows.map((r) => [r.id, r.label, describeBackend(r)]),
      [
        ["gpio", "GPIO", "2 lines held: relay (gpio:sim/17, out), door (gpio:sim/27, in); no errors"],
        ["serial.mcu0", "Serial mcu0", "open; 1204 frames in, 12 requests, 1 reopen; 1 timeout, 3 bad CRC"],
        [
          "mqtt",
          "MQTT devices",
          "not connected to mqtt://127.0.0.1:1884 (connect ECONNREFUSED 127.0.0.1:1884); 9 messages, 4 commands sent, 2 connects; 1 oversize, 2 replaced before read, 2 disconnects",
        ],
      ],
    );
  });
});
