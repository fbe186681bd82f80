/**
 * What the device knows about its last update, in ROOT/update-state.json (written atomically):
 *
 *   trial        `to` is current but has not yet proved itself; `starts` counts the service starts
 *                since the switch (the boot guard counts them before Node loads the agent);
 *   committed    `version` passed its health check;
 *   rolled-back  `failed` did not, and `current` points back at `version`; `reason` says why.
 *
 * The device reports it (status item, the `update` command) until the next update replaces it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../kernel/fsutil.js";
import type { UpdateOutcome } from "../telemetry/codec.js";

export type UpdateState =
  | { phase: "trial"; from: string; to: string; starts: number; maxStarts: number; switchedAt: string }
  | { phase: "committed"; version: string; from: string; at: string }
  | { phase: "rolled-back"; version: string; failed: string; reason: string; at: string };

export const STATE_FILE = "update-state.json";

export function readUpdateState(root: string): UpdateState | undefined {
  const file = join(root, STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as UpdateState;
    return s && typeof s === "object" && typeof s.phase === "string" ? s : undefined;
  } catch {
    // A torn file cannot happen (atomic writes); anything else unreadable is treated as no update.
    return undefined;
  }
}

export function writeUpdateState(root: string, state: UpdateState): void {
  writeFileAtomic(join(root, STATE_FILE), `${JSON.stringify(state)}\n`, 0o600);
}

/** What the status item says of the last update (agent/telemetry/codec.ts <update/>), if any. */
export function updateOutcomeOf(root: string): UpdateOutcome | undefined {
  const s = readUpdateState(root);
  if (s === undefined) return undefined;
  if (s.phase === "trial") return { state: "trial", version: s.to };
  if (s.phase === "committed") return { state: "committed", version: s.version };
  return { state: "rolled-back", version: s.version, failed: s.failed, reason: s.reason };
}
