/**
 * A release on trial proves itself here, after the boot guard let it start: within
 * `update.healthDeadlineMs` the XMPP session must be bound and, when the agent publishes telemetry,
 * one batch acknowledged by the server (the config and the spool were read before this runs: a
 * start that fails on them never gets here, and the boot guard counts it). Then the update is
 * committed and releases other than the current and the previous one are removed. Past the deadline,
 * `current` goes back to the release the update came from and the agent restarts into it.
 */
import { describeError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";
import type { TimerHandle, Timers } from "../../kernel/timers.js";
import type { UpdateConfig } from "./config.js";
import { ReleaseLayout } from "./layout.js";
import { readUpdateState, type UpdateState, writeUpdateState } from "./state.js";

export interface TrialHealth {
  online(): boolean;
  /** Whether the agent publishes telemetry at all, and how many items the server acknowledged so far. */
  telemetry(): { publishes: boolean; acknowledged: number };
}

export interface TrialDeps {
  config: UpdateConfig;
  version: string;
  health: TrialHealth;
  timers: Timers;
  log: Logger;
  restart: (reason: string) => void;
  /** Told once the trial committed (the status item is published again to say so). */
  onCommitted?: () => void;
  now?: () => Date;
}

const POLL_MS = 1000;

export class TrialMonitor {
  private readonly layout: ReleaseLayout;
  private poll: TimerHandle | undefined;
  private deadline = 0;
  private trial: Extract<UpdateState, { phase: "trial" }> | undefined;

  constructor(private readonly deps: TrialDeps) {
    this.layout = new ReleaseLayout(deps.config.dir);
  }

  /** Starts watching when this agent is the release on trial. Returns whether it is. */
  start(): boolean {
    const state = readUpdateState(this.layout.root);
    if (state?.phase !== "trial" || state.to !== this.deps.version || this.layout.current() !== state.to) return false;
    this.trial = state;
    this.deadline = this.deps.timers.now() + this.deps.config.healthDeadlineMs;
    this.deps.log.info("update: on trial", {
      version: state.to,
      from: state.from,
      start: state.starts,
      of: state.maxStarts,
      deadlineMs: this.deps.config.healthDeadlineMs,
    });
    this.schedule();
    return true;
  }

  stop(): void {
    this.poll?.cancel();
    this.poll = undefined;
  }

  private schedule(): void {
    this.poll = this.deps.timers.setTimeout(() => this.check(), POLL_MS);
  }

  private check(): void {
    const trial = this.trial;
    if (!trial) return;
    const { health, log } = this.deps;
    const t = health.telemetry();
    const healthy = health.online() && (!t.publishes || t.acknowledged > 0);
    const at = (this.deps.now ?? (() => new Date()))().toISOString();
    try {
      if (healthy) {
        writeUpdateState(this.layout.root, { phase: "committed", version: trial.to, from: trial.from, at });
        const removed = this.layout.prune([trial.to, trial.from, this.layout.previous() ?? trial.from]);
        log.info("update: committed", { version: trial.to, from: trial.from, removed });
        this.trial = undefined;
        this.deps.onCommitted?.();
        return;
      }
      if (this.deps.timers.now() >= this.deadline) {
        const reason = health.online()
          ? `health check: no telemetry batch acknowledged within ${this.deps.config.healthDeadlineMs} ms`
          : `health check: not online within ${this.deps.config.healthDeadlineMs} ms`;
        this.layout.restore(trial.from);
        writeUpdateState(this.layout.root, { phase: "rolled-back", version: trial.from, failed: trial.to, reason, at });
        log.error("update: rolled back", { version: trial.from, failed: trial.to, reason });
        this.trial = undefined;
        this.deps.restart(`rollback to ${trial.from}`);
        return;
      }
    } catch (err) {
      log.error("update: trial bookkeeping failed", { error: describeError(err) });
    }
    this.schedule();
  }
}
