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
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { unitSettings } from "../../scripts/unit-settings.js";
import { runCommand } from "../../test/harness/process.js";

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
  /** What scripts/build.mjs printed: each bundle and its size. */
  buildOutput: string;
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
  // The launchers and bin/package.json, which makes them CommonJS (scripts/build.mjs says why).
  for (const f of ["launch.js", "iot-agent.js", "iot-sim.js", "package.json"])
    copyFileSync(join(ROOT, "bin", f), join(app, "bin", f));
  writeFileSync(join(app, "package.json"), `${JSON.stringify({ private: true })}\n`);
  return {
    agentBin: join(app, "bin", "iot-agent.js"),
    simBin: join(app, "bin", "iot-sim.js"),
    ...unitSettings(),
    buildOutput: stdout.trim(),
  };
}
