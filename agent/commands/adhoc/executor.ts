/**
 * Runs a command's handler once its values are complete, and turns whatever happens into the
 * answer docs/commands.md documents, with its audit record:
 * - the handler returns: `completed` (with the error note XEP-0050 requires if it reports failure);
 * - it rejects with a DeviceFailure: the command ran and the device side failed, `completed` with
 *   one `<note type='error'>CODE: message</note>`, audited `failed` (ports.ts);
 * - it rejects with anything else, a StanzaError included: a bug in the agent, internal-server-error;
 * - it outruns its timeout: internal-server-error (wait), since its effect is unknown.
 * The handler is raced against its timeout so no request ever hangs, and executions running at once
 * are bounded.
 */
import type { Element } from "ltx";
import { describeError } from "../../../kernel/errors.js";
import type { Logger } from "../../../kernel/log.js";
import type { TimerHandle, Timers } from "../../../kernel/timers.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import type { CommandsConfig } from "../config.js";
import { formToElement } from "../forms.js";
import { DeviceFailure } from "../ports.js";
import type { CommandDefinition, CommandResult, Values } from "../registry.js";
import { type AdhocAuditTrail, isAudited, markAudited } from "./audit-trail.js";
import { commandContext } from "./context.js";
import { commandElement } from "./protocol.js";
import { redactValues } from "./redact.js";

export type ExecutorLimits = Pick<CommandsConfig, "handlerTimeoutMs" | "maxConcurrentExecutions">;

export interface ExecutorOptions {
  limits: ExecutorLimits;
  timers: Timers;
  logger: Logger;
  audit: AdhocAuditTrail;
}

/** One run of a command, with every value validated. */
export interface Execution {
  def: CommandDefinition;
  requester: string;
  sessionid: string;
  /** The action that asked for the run, as audited (`execute`, `complete`). */
  action: string;
  values: Values;
  /** Fields whose values the audit record shows as "[redacted]". */
  secrets: ReadonlySet<string>;
  /** Arrival of the request (of the session's first request, for a multi-stage one). */
  t0: number;
}

export class CommandExecutor {
  private readonly limits: ExecutorLimits;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly audit: AdhocAuditTrail;
  private readonly running = new Set<AbortController>();
  readonly stats = {
    executions: 0,
    timeouts: 0,
    /** Commands that ran and failed on the device side (completed with an error note). */
    deviceFailures: 0,
    /** Handler bugs (internal-server-error). */
    errors: 0,
  };

  constructor(opts: ExecutorOptions) {
    this.limits = opts.limits;
    this.timers = opts.timers;
    this.logger = opts.logger;
    this.audit = opts.audit;
  }

  /** Handlers running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /**
   * Resolves with the `completed` <command/>, or rejects with the StanzaError to answer. A refusal
   * for the concurrency bound is not audited here (nothing ran: the caller records it "rejected");
   * every other outcome is.
   */
  async run(x: Execution): Promise<Element> {
    const { def, requester, sessionid, action, t0 } = x;
    if (this.running.size >= this.limits.maxConcurrentExecutions)
      throw new StanzaError("resource-constraint", "wait", "too many commands running; try again shortly");
    const params = redactValues(x.values.raw, x.secrets);
    const controller = new AbortController();
    this.running.add(controller);
    this.stats.executions++;
    const timeoutMs = def.timeoutMs ?? this.limits.handlerTimeoutMs;
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = this.timers.setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const work = def.run({ ...commandContext(def, requester, this.logger, controller.signal), values: x.values });
    try {
      const outcome = await Promise.race([work, timedOut]);
      if (outcome === "timeout") {
        this.stats.timeouts++;
        controller.abort(new Error("handler timeout"));
        const text = `${def.node} did not finish within ${timeoutMs} ms; its effect is unknown`;
        // The handler may still finish: say how, so the effect is known afterwards.
        work.then(
          (r) => this.logger.warn("command finished after its timeout", { node: def.node, sessionid, notes: r.notes }),
          (err) =>
            this.logger.warn("command failed after its timeout", {
              node: def.node,
              sessionid,
              error: describeError(err),
            }),
        );
        this.audit.record(requester, def.node, action, "timeout", t0, { sessionid, params, reason: text });
        throw markAudited(new StanzaError("internal-server-error", "wait", text));
      }
      return this.completed(x, outcome, params);
    } catch (err) {
      if (err instanceof StanzaError && isAudited(err)) throw err;
      if (err instanceof DeviceFailure) {
        // The command ran and the device side failed: an outcome, not an agent error (ports.ts).
        this.stats.deviceFailures++;
        this.logger.warn("command failed on the device", { node: def.node, sessionid, error: describeError(err) });
        const failed: CommandResult = { failed: true, notes: [{ type: "error", text: err.noteText }] };
        return this.completed(x, failed, params);
      }
      this.stats.errors++;
      const text = `${def.node} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.logger.error("command handler threw", { node: def.node, sessionid, error: describeError(err) });
      this.audit.record(requester, def.node, action, "error", t0, { sessionid, params, reason: text });
      throw markAudited(new StanzaError("internal-server-error", "cancel", text));
    } finally {
      timer?.cancel();
      this.running.delete(controller);
    }
  }

  /** Aborts every running handler's signal; their answers still go out as they settle. */
  abortAll(reason: Error): void {
    for (const c of this.running) c.abort(reason);
    this.running.clear();
  }

  private completed(x: Execution, result: CommandResult, params: Record<string, unknown>): Element {
    const { def, requester, sessionid, action, t0 } = x;
    const notes = [...(result.notes ?? [])];
    // "If a command completes but fails, the responder MUST include at least one <note type='error'/>".
    if (result.failed && !notes.some((n) => n.type === "error"))
      notes.push({ type: "error", text: `${def.node} failed` });
    const el = commandElement(def.node, sessionid, "completed", notes);
    if (result.form) el.cnode(formToElement(result.form));
    const errorNote = notes.find((n) => n.type === "error");
    this.audit.record(requester, def.node, action, result.failed ? "failed" : "completed", t0, {
      sessionid,
      params,
      ...(result.failed ? { reason: errorNote?.text } : {}),
      ...(notes.length > 0 && !result.failed ? { reason: notes.map((n) => n.text).join("; ") } : {}),
    });
    return el;
  }
}
