/**
 * The hardware step of the composition root: backends picked by the config's `hardware` section
 * (real drivers or the simulator), and the Board over them.
 *
 * Each backend's code is imported only when the config uses it: the simulator when `hardware` asks
 * for it, serialport when the board has serial links, MQTT.js when it has MQTT devices. Loaded code
 * stays resident for the life of the process (its source text, bytecode and the library's own
 * tables), so a device pays only for what it drives (docs/benchmarks.md, bench/memory.ts).
 */
import { Board, type BoardBackends } from "../../drivers/board.js";
import type { BoardConfig } from "../../drivers/config.js";
import { boardUsesGpio } from "../../drivers/config.js";
import { OnoffGpioBackend, onoffAvailability } from "../../drivers/gpio/onoff-backend.js";
import type { SerialBackend } from "../../drivers/serial/backend.js";
import type { SimBoard } from "../../firmware-sim/backends.js";
import { ConfigError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import type { AgentConfig } from "../config/schema.js";

export interface Hardware {
  board: Board;
  /** The simulated board when `hardware` selects the simulator (tests and the demo drive it). */
  sim: SimBoard | undefined;
  /** The first framed serial link: the microcontroller that reports the firmware version. */
  mcuLink: string | undefined;
}

export interface HardwareDeps {
  log: Logger;
  timers: Timers;
  /** Replaces the backends chosen by `hardware` (tests). */
  backends?: BoardBackends;
}

/**
 * A board wired to real GPIO on an install where onoff was skipped (no compiler at `npm ci`) can
 * never start: say so as a config-level error (exit 3, no restart loop) with the fix, instead of
 * failing at the first pin. A broken build (e.g. after a Node.js upgrade) is reported by the pin.
 */
export function gpioInstallProblem(config: AgentConfig): string | undefined {
  if (config.hardware.gpio !== "onoff" || !boardUsesGpio(config.board)) return undefined;
  const onoff = onoffAvailability();
  return onoff.state === "not-installed"
    ? `hardware.gpio is onoff and the board uses GPIO, but ${onoff.reason}`
    : undefined;
}

export async function chooseBackends(
  config: AgentConfig,
): Promise<{ backends: BoardBackends; sim: SimBoard | undefined }> {
  const { gpio, serial } = config.hardware;
  const problem = gpioInstallProblem(config);
  if (problem) throw new ConfigError("gpio_not_installed", problem, { path: "hardware.gpio" });
  const sim =
    gpio === "sim" || serial === "sim"
      ? (await import("../../firmware-sim/backends.js")).createSimBoard(config.board)
      : undefined;
  return {
    sim,
    backends: {
      gpio:
        gpio === "sim"
          ? sim!.gpio
          : new OnoffGpioBackend(config.board.gpio.chip ? { defaultChip: config.board.gpio.chip } : {}),
      serial: serial === "sim" ? sim!.serial : await serialportBackend(config.board),
    },
  };
}

/** The serialport driver, loaded only for a board with serial links (its binding is native code). */
async function serialportBackend(board: BoardConfig): Promise<SerialBackend | undefined> {
  if (Object.keys(board.serial).length === 0) return undefined;
  const { SerialportBackend } = await import("../../drivers/serial/serialport-backend.js");
  return new SerialportBackend();
}

export function mcuLinkId(config: AgentConfig): string | undefined {
  return Object.entries(config.board.serial).find(([, l]) => l.protocol === "framed")?.[0];
}

/** Connections to board.mqtt through MQTT.js, loaded only for a board with MQTT devices. */
export async function mqttConnector(
  config: AgentConfig,
  deps: Pick<HardwareDeps, "log" | "timers">,
): Promise<BoardBackends["mqtt"]> {
  if (!config.board.mqtt) return undefined;
  const { MqttConnection } = await import("../../drivers/mqtt/connection.js");
  return (c) =>
    new MqttConnection({ config: c, clientId: `${config.device.id}-board`, timers: deps.timers, logger: deps.log });
}

export async function composeHardware(config: AgentConfig, deps: HardwareDeps): Promise<Hardware> {
  const { log, timers } = deps;
  const chosen = deps.backends ? { backends: deps.backends, sim: undefined } : await chooseBackends(config);
  // MQTT devices always talk to a real broker (the simulator plays devices on that broker: firmware-sim/mqtt).
  const mqtt = chosen.backends.mqtt ?? (await mqttConnector(config, deps));
  const backends: BoardBackends = { ...chosen.backends, ...(mqtt ? { mqtt } : {}) };
  return {
    board: new Board({ config: config.board, backends, timers, logger: log }),
    sim: chosen.sim,
    mcuLink: mcuLinkId(config),
  };
}
