/**
 * The node flags and Environment= of the systemd unit (deploy/iot-agent.service), read from the file,
 * so that what runs the agent "as it ships" (the demo, bench/memory.ts) follows the unit when it
 * changes.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const UNIT_FILE = fileURLToPath(new URL("../deploy/iot-agent.service", import.meta.url));

/** The node flags (in order) and the Environment= variables of the unit. */
export function unitSettings(): { nodeFlags: string[]; unitEnv: Record<string, string> } {
  const unit = readFileSync(UNIT_FILE, "utf8");
  const exec = unit.split("\n").find((l) => l.startsWith("ExecStart="));
  if (!exec) throw new Error("deploy/iot-agent.service has no ExecStart=");
  const words = exec.slice("ExecStart=".length).trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith("iot-agent.js"));
  if (script < 1 || !/\/node$/.test(words[0]!))
    throw new Error(`unexpected ExecStart= in deploy/iot-agent.service: ${exec}`);
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
