import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OnoffGpioBackend } from "../../drivers/gpio/onoff-backend.js";
import { SerialportBackend } from "../../drivers/serial/serialport-backend.js";
import { SimGpioBackend } from "../../firmware-sim/gpio.js";
import { silentLogger } from "../../kernel/log.js";
import { FakeTimers, realTimers } from "../../kernel/timers.js";
import { parseConfig } from "../config/load.js";
import { FirmwareVersion } from "./firmware-version.js";
import { chooseBackends, composeHardware, mcuLinkId, mqttConnector } from "./hardware.js";

function config(hardware: string, board = "") {
  return parseConfig(
    `device:
  id: hw-01
  dataDir: /tmp/hw-01
xmpp:
  jid: hw-01@iot.test
  password: x
hardware: ${hardware}
${board}`,
    "agent.yaml",
  ).config;
}

const MCU_BOARD = `board:
  serial:
    mcu0: { path: /dev/ttyAMA0, protocol: framed }
  outputs:
    relay: { source: gpio, line: 17 }
`;

describe("hardware step", () => {
  it("hardware sim/sim: both backends come from one simulated board", async () => {
    const { backends, sim } = await chooseBackends(config("{ gpio: sim, serial: sim }", MCU_BOARD));
    assert.ok(sim);
    assert.equal(backends.gpio, sim.gpio);
    assert.equal(backends.serial, sim.serial);
    assert.deepEqual([...sim.mcus.keys()], ["mcu0"]);
  });

  it("hardware onoff/serialport: real drivers and no simulator", async () => {
    // The board uses no GPIO, so this holds whether or not onoff is installed here.
    const { backends, sim } = await chooseBackends(
      config(
        "{ gpio: onoff, serial: serialport }",
        "board:\n  serial:\n    mcu0: { path: /dev/ttyAMA0, protocol: framed }\n",
      ),
    );
    assert.equal(sim, undefined);
    assert.ok(backends.gpio instanceof OnoffGpioBackend);
    assert.ok(backends.serial instanceof SerialportBackend);
  });

  it("a board without serial links gets no serial driver, one without MQTT devices no MQTT client", async () => {
    const { backends } = await chooseBackends(config("{ gpio: onoff, serial: serialport }"));
    assert.equal(backends.serial, undefined);
    const deps = { log: silentLogger, timers: new FakeTimers() };
    // No board.mqtt: MQTT.js is not even imported (bench/memory.ts measures what that saves).
    assert.equal(await mqttConnector(config("{ gpio: sim, serial: sim }", MCU_BOARD), deps), undefined);
    const withBroker = await mqttConnector(
      config("{ gpio: sim, serial: sim }", "board:\n  mqtt: { url: 'mqtt://127.0.0.1:1' }\n"),
      deps,
    );
    assert.equal(typeof withBroker, "function");
  });

  it("mixed: simulated pins with the real serial driver (the demo's PTY)", async () => {
    const { backends, sim } = await chooseBackends(config("{ gpio: sim, serial: serialport }", MCU_BOARD));
    assert.ok(sim);
    assert.ok(backends.gpio instanceof SimGpioBackend);
    assert.ok(backends.serial instanceof SerialportBackend);
  });

  it("backends given by the caller replace the config's choice: no simulator is made", async () => {
    const gpio = new SimGpioBackend();
    const hw = await composeHardware(config("{ gpio: onoff, serial: serialport }", MCU_BOARD), {
      log: silentLogger,
      timers: new FakeTimers(),
      backends: { gpio },
    });
    assert.equal(hw.sim, undefined);
    assert.equal(hw.mcuLink, "mcu0");
  });

  it("the MCU link is the first framed one", () => {
    assert.equal(
      mcuLinkId(
        config(
          "{ gpio: sim, serial: sim }",
          `board:
  serial:
    gps: { path: /dev/ttyS1, protocol: line }
    mcu1: { path: /dev/ttyS2, protocol: framed }
`,
        ),
      ),
      "mcu1",
    );
    assert.equal(mcuLinkId(config("{ gpio: sim, serial: sim }")), undefined);
  });

  it("a simulated board starts, reports its firmware version, and releases its lines at stop", async () => {
    const hw = await composeHardware(config("{ gpio: sim, serial: sim }", MCU_BOARD), {
      log: silentLogger,
      timers: realTimers,
    });
    const firmware = new FirmwareVersion(hw.board, hw.mcuLink, silentLogger);
    hw.sim!.start();
    await hw.board.start();
    try {
      assert.equal(hw.sim!.gpio.isOpen(17), true);
      await firmware.refresh();
      assert.match(firmware.current ?? "", /\S/);
    } finally {
      await hw.board.stop();
      await hw.sim!.stop();
    }
    assert.equal(hw.sim!.gpio.isOpen(17), false);
  });
});

describe("FirmwareVersion", () => {
  it("keeps the last version when the MCU stops answering, and asks nothing without an MCU link", async () => {
    const answers: Array<string | Error> = ["fw 1.0", new Error("timeout")];
    let asked = 0;
    const board = {
      client: () => ({
        async version() {
          asked++;
          const a = answers.shift()!;
          if (a instanceof Error) throw a;
          return a;
        },
      }),
    };
    const fw = new FirmwareVersion(board, "mcu0", silentLogger);
    assert.equal(fw.current, undefined);
    await fw.refresh();
    await fw.refresh();
    assert.equal(fw.current, "fw 1.0");
    await new FirmwareVersion(board, undefined, silentLogger).refresh();
    assert.equal(asked, 2);
  });
});
