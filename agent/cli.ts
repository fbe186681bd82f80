/**
 * `iot-agent`: the command line users, systemd units and scripts rely on.
 *
 *   iot-agent run --config FILE        run the agent (foreground; systemd supervises it)
 *   iot-agent check-config FILE        validate a config, print problems with key and line
 *   iot-agent enroll BUNDLE [options]  enrol this device from a fleet bundle
 *   iot-agent --version | --help
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid config, a revoked device, or a
 * config this install cannot run (real GPIO without onoff installed): a restart cannot fix any of
 * these, and the systemd unit does not restart on 2 or 3.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, describeError } from "../kernel/errors.js";
import { loadConfig } from "./config/load.js";
import type { AgentConfig } from "./config/schema.js";
import { AGENT_NAME, AGENT_VERSION } from "./version.js";

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3 } as const;

const USAGE = `Usage: iot-agent <command> [options]

Commands:
  run --config FILE       Run the agent in the foreground.
  check-config FILE       Validate a config file (and the AGENT_* environment) and exit.
  enroll BUNDLE           Enrol this device from a fleet enrolment bundle (see iot-agent enroll --help).

Options:
  -h, --help              Show help (also: iot-agent <command> --help).
  -v, --version           Print the version.
      --data-formats      Print the on-disk data formats this version writes (JSON; docs/update.md).

Environment overrides (for systemd EnvironmentFile= and containers):
  AGENT_JID, AGENT_PASSWORD or AGENT_PASSWORD_FILE, AGENT_SERVER (host:port), AGENT_CA_FILE,
  AGENT_PUBSUB_SERVICE, AGENT_OPERATORS (comma-separated bare JIDs granted every command).

Docs: docs/configuration.md, docs/deployment.md`;

const RUN_USAGE = `Usage: iot-agent run --config FILE [--log-level LEVEL]

Runs the agent in the foreground until SIGTERM or SIGINT; logs JSON lines on stderr.
  -c, --config FILE     Config file (YAML). Required.
      --log-level LEVEL debug | info | warn | error (overrides log.level).`;

const CHECK_USAGE = `Usage: iot-agent check-config FILE

Validates FILE together with the AGENT_* environment. Prints every problem with its key and
line, or a summary of the effective settings. Also reports what this install lacks to run it
(e.g. GPIO wired but onoff not installed). Exit 0 when valid, 3 when not.`;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  env: process.env,
};

export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    io.out(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === "-v" || command === "--version") {
    io.out(`${AGENT_NAME} ${AGENT_VERSION}`);
    return EXIT.ok;
  }
  if (command === "--data-formats") {
    // What `iot-fleet release build` records in a release's manifest (docs/update.md).
    const { WRITES } = await import("./update/formats.js");
    io.out(JSON.stringify(WRITES));
    return EXIT.ok;
  }
  try {
    switch (command) {
      case "run":
        return await runCommand(rest, io);
      case "check-config":
        return await checkConfigCommand(rest, io);
      case "enroll":
        return await enrollCommand(rest, io);
      default:
        io.err(`iot-agent: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`iot-agent: ${err.message}`);
      return EXIT.config;
    }
    if (err instanceof UsageError) {
      io.err(`iot-agent: ${err.message}`);
      return EXIT.usage;
    }
    io.err(`iot-agent: ${JSON.stringify(describeError(err))}`);
    return EXIT.failure;
  }
}

class UsageError extends Error {}

type Options = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(args: string[], options: Options, usage: string) {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

async function runCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(
    args,
    { config: { type: "string", short: "c" }, "log-level": { type: "string" } },
    RUN_USAGE,
  );
  if (values.help) {
    io.out(RUN_USAGE);
    return EXIT.ok;
  }
  if (typeof values.config !== "string") throw new UsageError(`--config FILE is required\n\n${RUN_USAGE}`);
  const loaded = loadConfig(values.config, io.env);
  const level = values["log-level"];
  if (level !== undefined) {
    if (level !== "debug" && level !== "info" && level !== "warn" && level !== "error") {
      throw new UsageError(`--log-level must be debug, info, warn or error`);
    }
    loaded.config.log.level = level;
  }
  const { runAgent } = await import("./main.js");
  return runAgent(loaded);
}

async function checkConfigCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {}, CHECK_USAGE);
  if (values.help) {
    io.out(CHECK_USAGE);
    return EXIT.ok;
  }
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError(`check-config takes exactly one FILE\n\n${CHECK_USAGE}`);
  const { config, fromEnv } = loadConfig(file, io.env);
  const problems = await installProblems(config);
  if (problems.length > 0) {
    for (const p of problems) io.err(`${file}: valid, but cannot run here: ${p}`);
    return EXIT.config;
  }
  io.out(`${file}: valid`);
  io.out(`  device       ${config.device.id} (data in ${config.device.dataDir})`);
  io.out(`  jid          ${config.xmpp.jid}`);
  io.out(
    `  server       ${config.xmpp.server ?? "(DNS SRV of the JID's domain)"}${config.xmpp.directTls ? " direct TLS" : " STARTTLS"}`,
  );
  io.out(`  operators    ${config.operators.map((o) => o.jid).join(", ") || "(none: no one can run commands)"}`);
  if (fromEnv.size > 0) io.out(`  from env     ${[...fromEnv].join(", ")}`);
  return EXIT.ok;
}

/** Problems of this machine (not of the file) that would stop `run`: reported by check-config too. */
async function installProblems(config: AgentConfig): Promise<string[]> {
  const problems: string[] = [];
  const ca = config.xmpp.caFile;
  if (ca !== undefined) {
    let text: string | undefined;
    try {
      text = readFileSync(ca, "utf8");
    } catch (err) {
      problems.push(`xmpp.caFile ${ca} cannot be read: ${(err as Error).message}`);
    }
    if (text !== undefined && !text.includes("-----BEGIN CERTIFICATE-----"))
      problems.push(`xmpp.caFile ${ca} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  const { gpioInstallProblem } = await import("./main.js");
  const gpio = gpioInstallProblem(config);
  if (gpio) problems.push(gpio);
  return problems;
}

async function enrollCommand(args: string[], io: CliIo): Promise<number> {
  const { enrollMain } = await import("../provisioning/device/cli.js");
  return enrollMain(args, io);
}
