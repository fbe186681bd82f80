/**
 * The agent as it ships, laid out as an install (/opt/iot-agent): `scripts/build.mjs --outdir` writes
 * the esbuild bundle into .tmp/bench-memory/app/dist, and the bin/ launchers are copied beside it.
 * With no TypeScript sources next to bin/, bin/launch.js runs the bundle, as on a device. The
 * external packages (serialport, onoff) resolve from the checkout's node_modules, as `npm ci
 * --omit=dev` would place them beside dist/.
 *
 * The node flags come from deploy/iot-agent.service's ExecStart, read here, so the benchmark keeps
 * running the agent the way the unit does when the unit changes.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCommand } from "../../test/harness/process.js";
import { BenchError } from "../lib/errors.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const MEMORY_TMP = join(ROOT, ".tmp", "bench-memory");
export const APP = join(MEMORY_TMP, "app");

export interface Install {
  /** bin/iot-agent.js of the install. */
  agentBin: string;
  /** bin/iot-sim.js of the install (the simulated MCU, not measured). */
  simBin: string;
  /** Node flags of the systemd unit, in order. */
  nodeFlags: string[];
  /** Environment= lines of the unit (none today: MALLOC_ARENA_MAX and the like are not set). */
  unitEnv: Record<string, string>;
  /** Bytes of the agent entry plus every chunk it imports statically. */
  buildOutput: string;
}

/** The node flags and Environment= of deploy/iot-agent.service. */
export function unitSettings(): { nodeFlags: string[]; unitEnv: Record<string, string> } {
  const unit = readFileSync(join(ROOT, "deploy", "iot-agent.service"), "utf8");
  const exec = unit.split("\n").find((l) => l.startsWith("ExecStart="));
  if (!exec) throw new BenchError("bench_unit", "deploy/iot-agent.service has no ExecStart=");
  const words = exec.slice("ExecStart=".length).trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith("iot-agent.js"));
  if (script < 1 || !/\/node$/.test(words[0]!))
    throw new BenchError("bench_unit", `unexpected ExecStart= in deploy/iot-agent.service: ${exec}`);
  const unitEnv: Record<string, string> = {};
  for (const line of unit.split("\n")) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.match(/"[^"]*"|\S+/g) ?? []) {
      const p = pair.replace(/^"|"$/g, "");
      const eq = p.indexOf("=");
      if (eq > 0) unitEnv[p.slice(0, eq)] = p.slice(eq + 1);
    }
  }
  return { nodeFlags: words.slice(1, script), unitEnv };
}

/** `app`: where the install goes (default .tmp/bench-memory/app; diagnostics use their own). */
export async function buildInstall(app = APP): Promise<Install> {
  rmSync(app, { recursive: true, force: true });
  mkdirSync(join(app, "bin"), { recursive: true });
  const { stdout } = await runCommand(process.execPath, ["scripts/build.mjs", "--outdir", join(app, "dist")], {
    cwd: ROOT,
    env: { NODE_OPTIONS: "" },
    timeoutMs: 120_000,
  });
  for (const f of ["launch.js", "iot-agent.js", "iot-sim.js"]) copyFileSync(join(ROOT, "bin", f), join(app, "bin", f));
  // An install's own package.json: the launchers are ES modules.
  writeFileSync(join(app, "package.json"), `${JSON.stringify({ type: "module", private: true })}\n`);
  return {
    agentBin: join(app, "bin", "iot-agent.js"),
    simBin: join(app, "bin", "iot-sim.js"),
    ...unitSettings(),
    buildOutput: stdout.trim(),
  };
}
