/**
 * iot-sim: runs a simulated sensor board on a real pseudo-terminal, so a developer can point the
 * agent (board.serial.<id>.path) or a terminal at it without hardware.
 *
 *   iot-sim run [--scenario FILE] [--link DIR] [--baud N]
 *   iot-sim check FILE
 *   iot-sim fleet ...   (fleet-sim/cli.ts; bin/iot-sim.js dispatches it)
 *   iot-sim --help
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../kernel/errors.js";
import { createLogger, type LogLevel } from "../kernel/log.js";
import { PtySimulator } from "./pty-sim.js";
import { createScenarioMcu, parseScenario, type Scenario, ScenarioRunner } from "./scenario.js";

export const USAGE = `Usage: iot-sim <command> [options]

Simulated sensor board (MCU) speaking the agent's framed serial protocol over a pseudo-terminal.

Commands:
  run              start the board and print the PTY path for the agent
  check FILE       validate a scenario file and exit
  fleet ...        N simulated devices, each the whole agent, against a server (iot-sim fleet --help)

Options for run:
  --scenario FILE  scenario (YAML, see docs/scenarios.md); default: two random-walk sensors, no faults
  --link DIR       directory for the PTY links (DIR/agent for the agent, DIR/device for the sim);
                   default: a fresh temporary directory
  --baud N         baud rate the simulator sets on its end (default 115200)
  --log-level L    debug | info | warn | error (default info; logs go to stderr as JSON lines)
  -h, --help       show this help

Needs socat on PATH. Stop with Ctrl-C.
`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); tests resolve it themselves. */
  untilStopped?: Promise<void>;
}

function loadScenario(file: string | undefined): Scenario {
  if (file === undefined) return parseScenario("", "(default)");
  return parseScenario(readFileSync(file, "utf8"), file);
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        scenario: { type: "string" },
        link: { type: "string" },
        baud: { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    io.err(`iot-sim: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || command === "help") {
    io.out(USAGE);
    return 0;
  }
  if (command === undefined) {
    io.err(USAGE);
    return 2;
  }
  try {
    if (command === "check") {
      const file = positionals[1];
      if (!file) {
        io.err("iot-sim check: missing FILE");
        return 2;
      }
      const s = loadScenario(file);
      io.out(`${file}: ok (${s.name}: ${Object.keys(s.sensors).length} sensors, ${s.steps.length} steps)`);
      return 0;
    }
    if (command !== "run") {
      io.err(`iot-sim: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
    }
    const baud = values.baud === undefined ? 115200 : Number(values.baud);
    if (!Number.isInteger(baud) || baud < 50 || baud > 4_000_000) {
      io.err(`iot-sim: --baud must be a whole number 50..4000000, got ${String(values.baud)}`);
      return 2;
    }
    const level = (values["log-level"] as LogLevel | undefined) ?? "info";
    if (!["debug", "info", "warn", "error"].includes(level)) {
      io.err("iot-sim: --log-level must be debug, info, warn or error");
      return 2;
    }
    const scenario = loadScenario(values.scenario as string | undefined);
    const logger = createLogger({ level, write: (l) => io.err(l.trimEnd()) }, { component: "iot-sim" });
    const ownDir = values.link === undefined;
    const dir = ownDir ? mkdtempSync(join(tmpdir(), "iot-sim-")) : resolve(values.link as string);
    if (!ownDir) mkdirSync(dir, { recursive: true });
    const mcu = createScenarioMcu(scenario);
    const sim = new PtySimulator({ mcu, dir, settings: { baudRate: baud } });
    const runner = new ScenarioRunner({ scenario, mcu, link: sim, logger });
    try {
      await sim.start();
      io.out(`agent-pty: ${sim.agentPath}`);
      io.out(
        `firmware: ${mcu.firmware}; protocol: ${scenario.protocol}; sensors: ${mcu.sensorNames().join(", ")}; scenario: ${scenario.name}`,
      );
      logger.info("simulator running", { agentPath: sim.agentPath, pid: sim.pty.pid });
      runner.start();
      await (io.untilStopped ?? new Promise<void>(() => {}));
    } finally {
      await runner.stop();
      await sim.stop();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      logger.info("simulator stopped", { counters: mcu.counters });
    }
    return 0;
  } catch (err) {
    io.err(`iot-sim: ${(err as Error).message}`);
    io.err(JSON.stringify(describeError(err)));
    return 1;
  }
}

/** Process entry: wires signals and stdio. */
export async function run(argv = process.argv.slice(2)): Promise<void> {
  const untilStopped = new Promise<void>((resolveStop) => {
    process.once("SIGINT", () => resolveStop());
    process.once("SIGTERM", () => resolveStop());
  });
  const code = await main(argv, {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    untilStopped,
  });
  process.exit(code);
}
