import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "./load.js";
import { ConfigError } from "../../kernel/errors.js";

const BASE = `device:
  id: pi-01
xmpp:
  jid: pi-01@iot.test
  password: x
`;

function problems(text: string): Array<{ path: string; line?: number; message: string }> {
  try {
    parseConfig(text, "agent.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.context.problems as Array<{ path: string; line?: number; message: string }>;
  }
  assert.fail("expected a ConfigError");
}

describe("board config section", () => {
  it("is optional and defaults to no hardware", () => {
    const { config } = parseConfig(BASE, "agent.yaml");
    assert.deepEqual(config.board, {
      gpio: { chip: undefined },
      maxPulseMs: 60_000,
      serial: {},
      outputs: {},
      inputs: {},
      channels: {},
      mqtt: undefined,
    });
  });

  it("fills defaults for a typical Pi board", () => {
    const { config } = parseConfig(
      `${BASE}board:
  serial:
    mcu0:
      path: /dev/serial/by-id/usb-mcu
      baudRate: 57600
  outputs:
    relay1: { source: gpio, line: 17, activeLow: true }
    fan: { source: serial, link: mcu0, actuator: fan }
  inputs:
    button: { line: 27, edge: falling }
  channels:
    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: 5000 }
    door: { source: gpio, input: button, kind: contact }
`,
      "agent.yaml",
    );
    const b = config.board;
    assert.equal(b.serial.mcu0!.parity, "none");
    assert.equal(b.serial.mcu0!.requestTimeoutMs, 1000);
    assert.deepEqual(b.serial.mcu0!.reopen, { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2 });
    assert.equal(b.inputs.button!.debounceMs, 20);
    assert.equal(b.channels.door!.intervalMs, 10_000);
    assert.equal(b.outputs.relay1!.initial, false);
  });

  it("names the key and line of every problem", () => {
    const ps = problems(`${BASE}board:
  serial:
    mcu0:
      path: /dev/ttyUSB0
      parity: mark
  outputs:
    relay1: { source: gpio }
    fan: { source: serial, link: mcu9, actuator: fan }
  inputs:
    button: { line: 17 }
  channels:
    t: { source: serial, link: mcu0, kind: temperature }
    d: { source: gpio, input: nope, kind: contact, sensor: x }
`);
    const by = Object.fromEntries(ps.map((p) => [p.path, p]));
    assert.match(by["board.serial.mcu0.parity"]!.message, /one of/);
    assert.equal(by["board.serial.mcu0.parity"]!.line, 10);
    assert.match(by["board.outputs.relay1.line"]!.message, /required for a gpio output/);
    assert.match(by["board.channels.t.sensor"]!.message, /required for a serial channel/);
    assert.match(by["board.channels.d.sensor"]!.message, /serial channels only/);
  });

  it("accepts line-protocol links for channels but not for actuators", () => {
    const ps = problems(`${BASE}board:
  serial:
    uno: { path: /dev/ttyACM0, protocol: line, baudRate: 9600 }
  outputs:
    led: { source: serial, link: uno, actuator: led }
  channels:
    t: { source: serial, link: uno, sensor: temperature, kind: temperature, stuckAfterMs: 1000 }
`);
    const by = Object.fromEntries(ps.map((p) => [p.path, p.message]));
    assert.match(by["board.outputs.led.link"]!, /line-protocol link; actuators need a framed link/);
    assert.match(by["board.channels.t.stuckAfterMs"]!, /framed links only/);
    const ok = parseConfig(`${BASE}board:\n  serial:\n    uno: { path: /dev/ttyACM0, protocol: line }\n`, "a.yaml");
    assert.equal(ok.config.board.serial.uno!.maxLineBytes, 256);
  });

  it("checks cross-references and pin ownership once the entries are valid", () => {
    const ps = problems(`${BASE}board:
  serial:
    mcu0: { path: /dev/ttyUSB0, reopen: { initialDelayMs: 5000, maxDelayMs: 1000 } }
  outputs:
    relay1: { source: gpio, line: 17 }
    fan: { source: serial, link: mcu9, actuator: fan }
  inputs:
    button: { line: 17 }
  channels:
    d: { source: gpio, input: nope, kind: contact }
`);
    const by = Object.fromEntries(ps.map((p) => [p.path, p.message]));
    assert.match(by["board.outputs.fan.link"]!, /names no link.*mcu0/);
    assert.match(by["board.channels.d.input"]!, /names no input.*button/);
    assert.match(by["board.inputs.button.line"]!, /already used by outputs.relay1/);
    assert.match(by["board.serial.mcu0.reopen.maxDelayMs"]!, />= initialDelayMs/);
  });
});
