// Shared by the bin/ launchers (CommonJS, see bin/package.json: an ES module here would load
// Node's ESM loader into every agent process, ~3 MiB of RSS; scripts/build.mjs). An installed copy
// (no TypeScript sources beside it) runs the bundle dist/NAME.cjs. A source checkout runs the
// sources through tsx, so an old dist/ never shadows newer code; IOT_USE_DIST=1 runs the bundle
// there too (the demo does, to run as it ships). Each CLI module exports main(argv, io) -> exit code.
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");

const root = join(__dirname, "..");

/** `stoppable`: the CLI runs until SIGINT/SIGTERM and is handed a promise for that (iot-sim). */
async function launch(name, source, { stoppable = false } = {}) {
  // `iot-agent --help | head` closes our stdout early: that is not an error worth a stack trace.
  process.stdout.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  const bundle = join(root, "dist", `${name}.cjs`);
  const checkout = existsSync(join(root, source));
  const useDist = existsSync(bundle) && (!checkout || process.env.IOT_USE_DIST === "1");
  const release = name === "iot-agent" && process.argv[2] === "run" ? await bootGuard(useDist) : undefined;
  let cli;
  if (release) {
    cli = require(join(release, "dist", `${name}.cjs`));
  } else if (useDist) {
    cli = require(bundle);
  } else {
    await import("tsx/esm");
    cli = await import(pathToFileURL(join(root, source)).href);
  }
  const io = {
    out: (s) => process.stdout.write(`${s}\n`),
    err: (s) => process.stderr.write(`${s}\n`),
    env: process.env,
    // A progress line rewritten in place, only where stderr is a terminal.
    ...(process.stderr.isTTY ? { ttyErr: (s) => process.stderr.write(s) } : {}),
    // Ctrl-C / SIGTERM handled by the command while `fn` is installed (a second one exits as usual).
    onInterrupt: (fn) => {
      const once = () => {
        off();
        fn();
      };
      const off = () => {
        process.off("SIGINT", once);
        process.off("SIGTERM", once);
      };
      process.on("SIGINT", once);
      process.on("SIGTERM", once);
      return off;
    },
  };
  if (stoppable) {
    // Listening for the signals replaces Node's default exit, so only CLIs that stop themselves do.
    io.untilStopped = new Promise((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
  }
  process.exitCode = await cli.main(process.argv.slice(2), io);
}

/**
 * Over-the-air updates (docs/update.md): with IOT_AGENT_RELEASES_DIR set (deploy/iot-agent.service),
 * `iot-agent run` first runs the boot guard of this base install, which counts the starts of a
 * release on trial and rolls back one that does not prove itself, then starts the release under
 * DIR/current (its own bundle), or this install when there is none. Returns that release's
 * directory, or undefined. Counting here, before the release's code is loaded, catches a release
 * that crashes while Node loads it.
 */
async function bootGuard(useDist) {
  const dir = process.env.IOT_AGENT_RELEASES_DIR;
  if (!dir) return undefined;
  let guard;
  if (useDist) guard = require(join(root, "dist", "iot-boot-guard.cjs"));
  else {
    await import("tsx/esm");
    guard = await import(pathToFileURL(join(root, "agent/update/boot-guard.ts")).href);
  }
  // One structured line, like the agent's own log (kernel/log.ts), before the agent exists.
  const log = (level, fields) =>
    process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, msg: "boot guard", ...fields })}\n`);
  try {
    const { runFrom, outcome } = guard.guard(dir);
    log(outcome.action === "rolled-back" ? "error" : "info", outcome);
    return runFrom;
  } catch (err) {
    // The bookkeeping failed (a full or read-only disk): start what `current` names, uncounted.
    const current = join(dir, "current");
    log("error", { error: String(err), runFrom: existsSync(current) ? current : "base install" });
    return existsSync(current) ? current : undefined;
  }
}

/** Runs a CLI; a failure to start it at all (a missing bundle, a broken install) exits 1 with the stack. */
function run(name, source, options) {
  launch(name, source, options).catch((err) => {
    process.exitCode = 1;
    console.error(err);
  });
}

module.exports = { run };
