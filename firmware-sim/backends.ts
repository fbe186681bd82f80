/**
 * Simulated backends for a whole board config, for an entrypoint's `--sim` mode or tests: a
 * SimGpioBackend and a SimSerialBackend with one SimulatedMcu (speaking each link's protocol)
 * behind every configured serial path. No socat needed; use `iot-sim run` for a real PTY.
 */
import { realTimers, type Timers } from "../kernel/timers.js";
import type { BoardConfig } from "../drivers/config.js";
import { SimGpioBackend } from "./gpio.js";
import { SimulatedMcu } from "./mcu.js";
import type { LinkControl } from "./pty-sim.js";
import { createScenarioMcu, type Scenario, ScenarioRunner } from "./scenario.js";
import { SimSerialBackend } from "./serial-backend.js";

export interface SimBoard {
  gpio: SimGpioBackend;
  serial: SimSerialBackend;
  /** The MCU behind each serial link id. */
  mcus: Map<string, SimulatedMcu>;
  /** Unplug/replug control per link id, for scenarios and tests. */
  cables: Map<string, LinkControl>;
  /** Starts scenario runners (if a scenario was given). */
  start(): void;
  stop(): Promise<void>;
}

export interface SimBoardOptions {
  timers?: Timers;
  /** Played on every link's MCU (its `protocol` key is overridden by each link's config). */
  scenario?: Scenario;
  random?: () => number;
}

export function createSimBoard(config: BoardConfig, options: SimBoardOptions = {}): SimBoard {
  const timers = options.timers ?? realTimers;
  const gpio = new SimGpioBackend({
    timers,
    ...(config.gpio.chip ? { chips: [{ label: config.gpio.chip, ngpio: 64 }] } : {}),
  });
  const serial = new SimSerialBackend();
  const mcus = new Map<string, SimulatedMcu>();
  const cables = new Map<string, LinkControl>();
  const runners: ScenarioRunner[] = [];
  for (const [id, link] of Object.entries(config.serial)) {
    // The MCU serves the sensors and actuators the config asks of it, unless a scenario says otherwise.
    const sensors = Object.fromEntries(
      Object.values(config.channels)
        .filter((c) => c.source === "serial" && c.link === id)
        .map((c) => [c.sensor!, { unit: c.unit, start: 20, walk: 0.1, periodMs: 1000 }]),
    );
    const actuators = Object.fromEntries(
      Object.values(config.outputs)
        .filter((o) => o.source === "serial" && o.link === id)
        .map((o) => [o.actuator!, 0]),
    );
    const mcu = options.scenario
      ? createScenarioMcu(
          { ...options.scenario, protocol: link.protocol },
          { timers, ...(options.random ? { random: options.random } : {}) },
        )
      : new SimulatedMcu({
          protocol: link.protocol,
          sensors,
          actuators,
          timers,
          ...(options.random ? { random: options.random } : {}),
        });
    serial.addDevice(link.path, mcu);
    mcus.set(id, mcu);
    const cable: LinkControl = {
      unplug: async () => serial.unplug(link.path),
      replug: async () => serial.replug(link.path),
    };
    cables.set(id, cable);
    if (options.scenario) runners.push(new ScenarioRunner({ scenario: options.scenario, mcu, link: cable, timers }));
  }
  return {
    gpio,
    serial,
    mcus,
    cables,
    start: () => {
      for (const r of runners) r.start();
    },
    stop: async () => {
      await Promise.all(runners.map((r) => r.stop()));
    },
  };
}
