/**
 * `iot-fleet`: the fleet admin's command line. Every command has --help; errors print one line
 * with the error code and exit with a documented status (exit-codes.ts, docs/provisioning.md).
 * Progress lines go to stderr, results to stdout (JSON with --json, a table otherwise).
 *
 * Files live under the fleet home (--home, $IOT_FLEET_HOME, default ./fleet):
 *   ca/ca.key.pem (0600) ca/ca.cert.pem   fleet.json (0600, the store)   revocations.json (signed)
 *
 * This module only dispatches: cli/args.ts parses, cli/*-command(s).ts turn options into a call of
 * a use case (usecases/) and its result into lines.
 */
import { EXIT, exitCodeFor } from "./exit-codes.js";
import { type CommandName, parseCommandLine } from "./cli/args.js";
import { caInit, caShow } from "./cli/ca-commands.js";
import { releaseBuild } from "./cli/release-command.js";
import { updateCommand } from "./cli/update-command.js";
import { Context, type FleetDeps, type FleetIo } from "./cli/context.js";
import { GLOBAL_HELP, HELP, USAGE } from "./cli/help.js";
import { listCommand } from "./cli/list-command.js";
import { provisionCommand } from "./cli/provision-command.js";
import { revocationsCommand, revokeCommand } from "./cli/revoke-commands.js";
import { rotateCommand } from "./cli/rotate-command.js";
import { tagCommand } from "./cli/tag-command.js";
import { execCommand, jobCommand, jobsCommand } from "./cli/exec-command.js";
import { inventoryCommand } from "./cli/inventory-command.js";
import { watchCommand } from "./cli/watch-command.js";

export { parseDuration } from "./cli/args.js";
export type { FleetDeps, FleetIo } from "./cli/context.js";
export { describeCredentialPath } from "./cli/format.js";
export { USAGE } from "./cli/help.js";

const COMMANDS: Record<CommandName, (ctx: Context, positionals: string[]) => number | Promise<number>> = {
  "ca init": caInit,
  "ca show": caShow,
  "release build": releaseBuild,
  provision: provisionCommand,
  rotate: rotateCommand,
  revoke: revokeCommand,
  revocations: revocationsCommand,
  list: listCommand,
  tag: tagCommand,
  exec: execCommand,
  update: updateCommand,
  jobs: jobsCommand,
  job: jobCommand,
  inventory: inventoryCommand,
  watch: watchCommand,
};

export async function main(argv: string[], io: FleetIo, deps: FleetDeps = {}): Promise<number> {
  const line = parseCommandLine(argv);
  switch (line.kind) {
    case "overview":
      io.out(USAGE);
      return line.asked ? EXIT.ok : EXIT.usage;
    case "unknown":
      io.err(`iot-fleet: unknown command "${line.command}"\n\n${USAGE}`);
      return EXIT.usage;
    case "invalid":
      io.err(`iot-fleet ${line.command}: ${line.message}\n\n${HELP[line.command]}`);
      return EXIT.usage;
    case "help":
      io.out(`${HELP[line.command]}\n\n${GLOBAL_HELP}`);
      return EXIT.ok;
  }
  try {
    return await COMMANDS[line.command](new Context(line.options, io, deps), line.positionals);
  } catch (err) {
    const code = exitCodeFor(err);
    const errCode = (err as { code?: unknown } | undefined)?.code;
    const tag = typeof errCode === "string" ? ` [${errCode}]` : "";
    io.err(`iot-fleet ${line.command}: ${(err as Error).message ?? String(err)}${code === EXIT.usage ? "" : tag}`);
    return code;
  }
}
