/**
 * The boot guard: runs before every start of the service (ExecStartPre, its own short Node
 * process, from the base install, never from a release), so a release that crashes while Node
 * loads it is counted too. While a release is on trial it counts the starts; one start more than
 * the trial allows switches `current` back to the release the update came from, and the service
 * then starts that one. Outside a trial it does nothing.
 */
import { ReleaseLayout } from "./layout.js";
import { readUpdateState, writeUpdateState } from "./state.js";

export type GuardOutcome =
  | { action: "run"; version: string | undefined }
  | { action: "trial"; version: string; start: number; of: number }
  | { action: "rolled-back"; version: string; failed: string; reason: string };

export function bootGuard(layout: ReleaseLayout, now: () => Date = () => new Date()): GuardOutcome {
  const state = readUpdateState(layout.root);
  const current = layout.current();
  if (state?.phase !== "trial") return { action: "run", version: current };
  const at = now().toISOString();
  if (current !== state.to) {
    // A trial always runs a release under `current`; without it the base install runs.
    // The switch never happened (power cut between writing the trial and the symlink), or a
    // person moved `current`: the trial is over, and the release running is not the one tried.
    const reason = `current is ${current ?? "unset"}, not ${state.to} on trial (a power cut during the switch or the rollback)`;
    writeUpdateState(layout.root, {
      phase: "rolled-back",
      version: current ?? state.from,
      failed: state.to,
      reason,
      at,
    });
    return { action: "rolled-back", version: current ?? state.from, failed: state.to, reason };
  }
  const start = state.starts + 1;
  if (start > state.maxStarts) {
    const reason = `${state.maxStarts} starts without passing the health check`;
    layout.restore(state.from);
    writeUpdateState(layout.root, { phase: "rolled-back", version: state.from, failed: state.to, reason, at });
    return { action: "rolled-back", version: state.from, failed: state.to, reason };
  }
  writeUpdateState(layout.root, { ...state, starts: start });
  return { action: "trial", version: state.to, start, of: state.maxStarts };
}

/**
 * For the launcher (bin/launch.js): runs the guard on DIR and says which release directory to
 * start, or undefined for the base install.
 */
export function guard(dir: string): { runFrom: string | undefined; outcome: GuardOutcome } {
  const layout = new ReleaseLayout(dir);
  const outcome = bootGuard(layout);
  const current = layout.current();
  return { runFrom: current !== undefined && layout.has(current) ? layout.dirOf(current) : undefined, outcome };
}
