/**
 * The agent's start/stop discipline in one place: steps start in the order given and stop in the
 * reverse. stop() goes on past a step that fails, so one failing feature cannot leave the session
 * connected or the board's lines held; every failure is logged where it happens and all of them are
 * reported together in one AgentError `agent_stop_failed`.
 */
import { AgentError, describeError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";

export interface Step {
  /** Names the step in logs and in `agent_stop_failed`'s context. */
  readonly name: string;
  start?(): unknown;
  stop?(): unknown;
}

export interface StepFailure {
  step: string;
  error: Record<string, unknown>;
}

export class Lifecycle {
  /** Steps whose start() was called, in order: only those are stopped. */
  private entered: Step[] = [];

  constructor(
    private readonly steps: readonly Step[],
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.entered.length > 0)
      throw new AgentError("agent_already_started", "start() called twice without stop()", {
        steps: this.entered.map((s) => s.name),
      });
    for (const step of this.steps) {
      // Counted before it runs: a start that fails half-way may already hold a line or a file.
      this.entered.push(step);
      await step.start?.();
    }
  }

  /** Rejects with AgentError `agent_stop_failed` (context.failed: each step and its error) after stopping all it can. */
  async stop(): Promise<void> {
    const steps = this.entered.reverse();
    this.entered = [];
    const failed: StepFailure[] = [];
    for (const step of steps) {
      try {
        await step.stop?.();
      } catch (err) {
        const error = describeError(err);
        this.log.error("stop step failed; stopping the rest", { step: step.name, error });
        failed.push({ step: step.name, error });
      }
    }
    if (failed.length > 0)
      throw new AgentError(
        "agent_stop_failed",
        `stopping failed at ${failed.map((f) => f.step).join(", ")}; every other step was stopped`,
        { failed },
      );
  }
}
