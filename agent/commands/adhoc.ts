/**
 * XEP-0050 ad-hoc commands (https://xmpp.org/extensions/xep-0050.html), version 1.2 text quoted.
 *
 * Drives the commands of a CommandRegistry: disco (items under the commands node, info per command),
 * and execution, either as a multi-stage session (execute / next / prev / complete / cancel with a
 * sessionid) or in one request with every value already submitted (field-facts: several clients and
 * most scripts only do single-stage). Authorisation comes first, every attempt is audited, sessions
 * time out, and a handler is raced against its timeout so no request ever hangs.
 */
import { randomUUID } from "node:crypto";
import { Element } from "ltx";
import { describeError } from "../core/errors.js";
import { type Logger, silentLogger } from "../core/log.js";
import { realTimers, type TimerHandle, type Timers } from "../core/timers.js";
import { StanzaError, type StanzaErrorCondition, type StanzaErrorType } from "../xmpp/stanza-error.js";
import type { AuditOutcome, AuditSink } from "./audit.js";
import type { Authorizer } from "./authorize.js";
import { type CommandsConfig, DEFAULT_COMMANDS_CONFIG } from "./config.js";
import {
  type DataForm,
  describeProblem,
  type FieldProblem,
  type FieldValues,
  FormError,
  type FormField,
  findForm,
  formToElement,
  NS_DATA,
  parseForm,
  validateSubmission,
} from "./forms.js";
import { DeviceFailure } from "./ports.js";
import {
  type CommandContext,
  type CommandDefinition,
  type CommandRegistry,
  type CommandResult,
  type Note,
  paramToField,
  stageParams,
  Values,
} from "./registry.js";

export const NS_COMMANDS = "http://jabber.org/protocol/commands";
/** Features the device's disco#info must list for commands to be found. */
export const COMMAND_FEATURES = [NS_COMMANDS, NS_DATA] as const;

/** Shapes of agent/xmpp/disco.ts's DiscoNodeProvider answers, restated so this room does not depend on that module. */
export interface DiscoInfoShape {
  identities: Array<{ category: string; type: string; name?: string }>;
  features: string[];
}
export interface DiscoItemShape {
  jid: string;
  node?: string;
  name?: string;
}

type Action = "execute" | "cancel" | "prev" | "next" | "complete";
const ACTIONS: readonly string[] = ["execute", "cancel", "prev", "next", "complete"];

/** The slice of the XMPP session this module needs; agent/xmpp/session.ts satisfies it structurally. */
export interface CommandSessionPort {
  handleIq(
    type: "get" | "set",
    name: string,
    xmlns: string,
    handler: (iq: Element) => Promise<Element | Element[] | undefined>,
  ): () => void;
}

export type AdhocLimits = Pick<
  CommandsConfig,
  "sessionTimeoutMs" | "maxSessionsPerRequester" | "maxSessions" | "handlerTimeoutMs" | "maxConcurrentExecutions"
>;

export interface AdhocOptions {
  registry: CommandRegistry;
  authorizer: Authorizer;
  audit: AuditSink;
  limits?: Partial<AdhocLimits>;
  timers?: Timers;
  logger?: Logger;
  /** The device's own full JID, for the `jid` of disco items (the lead passes `() => session.jid`). */
  ownJid?: () => string | undefined;
  newSessionId?: (node: string) => string;
}

interface CommandSession {
  id: string;
  node: string;
  def: CommandDefinition;
  requester: string;
  stages: number;
  stage: number;
  /** The fields sent for each stage reached so far. */
  fields: FormField[][];
  /** Raw submitted values per stage, to re-show them after `prev` ("MAY present remembered values"). */
  submitted: Array<Map<string, string[]> | undefined>;
  /** Accepted (typed) values per stage. */
  accepted: Array<FieldValues | undefined>;
  started: number;
  /** Time of the last request on this session: the per-requester bound evicts the least recent. */
  lastActive: number;
  timer: TimerHandle;
  busy: boolean;
}

/** Ended session ids remembered to answer <session-expired/> instead of <bad-sessionid/>. */
const ENDED_IDS_KEPT = 256;

export class AdhocCommands {
  private readonly registry: CommandRegistry;
  private readonly authorizer: Authorizer;
  private readonly audit: AuditSink;
  private readonly limits: AdhocLimits;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly ownJid: () => string | undefined;
  private readonly newSessionId: (node: string) => string;
  private readonly sessions = new Map<string, CommandSession>();
  private readonly ended = new Set<string>();
  private readonly running = new Set<AbortController>();
  private unregister: (() => void) | undefined;
  readonly stats = {
    executions: 0,
    rejected: 0,
    forbidden: 0,
    timeouts: 0,
    /** Commands that ran and failed on the device side (completed with an error note). */
    deviceFailures: 0,
    /** Handler bugs (internal-server-error). */
    errors: 0,
    expired: 0,
    /** Idle sessions ended to make room for a newer one of the same requester. */
    evicted: 0,
  };

  constructor(opts: AdhocOptions) {
    this.registry = opts.registry;
    this.authorizer = opts.authorizer;
    this.audit = opts.audit;
    this.limits = { ...pickLimits(DEFAULT_COMMANDS_CONFIG), ...opts.limits };
    this.timers = opts.timers ?? realTimers;
    this.logger = (opts.logger ?? silentLogger).child({ component: "adhoc" });
    this.ownJid = opts.ownJid ?? (() => undefined);
    this.newSessionId = opts.newSessionId ?? ((node) => `${node}:${randomUUID()}`);
  }

  start(session: CommandSessionPort): void {
    if (this.unregister) return;
    this.unregister = session.handleIq("set", "command", NS_COMMANDS, (iq) => this.handle(iq));
  }

  stop(): void {
    this.unregister?.();
    this.unregister = undefined;
    for (const s of this.sessions.values()) s.timer.cancel();
    this.sessions.clear();
    for (const c of this.running) c.abort(new Error("agent stopping"));
    this.running.clear();
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  // -------------------------------------------------------------------------------------------
  // Disco hooks, called by the lead's disco module (which owns the disco#info/#items handlers).

  /**
   * disco#items for `node`, or undefined when the node is not ours (the disco module answers item-not-found).
   * "The responder is not required to send the same list of commands to all requesters": each sees
   * only what it may run, so an unauthorised account gets an empty list. Command nodes have no items.
   */
  async discoItems(requester: string, node: string): Promise<DiscoItemShape[] | undefined> {
    // A non-operator learns nothing, not even which command nodes exist: item-not-found for all.
    if (node !== NS_COMMANDS) return this.registry.get(node) && this.authorizer.isOperator(requester) ? [] : undefined;
    const jid = this.ownJid() ?? "";
    return this.registry
      .list()
      .filter((d) => this.authorizer.mayRun(requester, d.node))
      .map((d) => ({ jid, node: d.node, name: d.name }));
  }

  /**
   * disco#info for `node`, or undefined when the node is not ours.
   * "A responder MUST at least provide <identity category='automation' type='command-node'/> and
   * <feature var='http://jabber.org/protocol/commands'/>, and SHOULD include <feature var='jabber:x:data'/>.
   * [...] If the command is not available to the requester, the responder SHOULD respond with a 403
   * "Forbidden" error."
   */
  async discoInfo(requester: string, node: string): Promise<DiscoInfoShape | undefined> {
    if (node === NS_COMMANDS)
      return { identities: [{ category: "automation", type: "command-list", name: "Commands" }], features: [] };
    const def = this.registry.get(node);
    // A non-operator gets the same item-not-found for an existing node as for a made-up one; an
    // operator not granted this node gets forbidden (XEP-0050), as they know the device anyway.
    if (!def || !this.authorizer.isOperator(requester)) return undefined;
    if (!this.authorizer.mayRun(requester, def.node)) throw new StanzaError("forbidden", "cancel");
    return {
      identities: [{ category: "automation", type: "command-node", name: def.name }],
      features: [...COMMAND_FEATURES],
    };
  }

  /** Structurally a DiscoNodeProvider of agent/xmpp/disco.ts: register it for every node of discoNodes(). */
  get discoProvider(): {
    info(requester: string, node: string): Promise<DiscoInfoShape | undefined>;
    items(requester: string, node: string): Promise<DiscoItemShape[] | undefined>;
  } {
    return { info: (r, n) => this.discoInfo(r, n), items: (r, n) => this.discoItems(r, n) };
  }

  /** The commands node and every command node: the disco nodes this module answers for. */
  discoNodes(): string[] {
    return [NS_COMMANDS, ...this.registry.list().map((d) => d.node)];
  }

  // -------------------------------------------------------------------------------------------
  // Execution

  /** Answers one <iq type='set'><command/></iq>: resolves with the <command/> result child or throws a StanzaError. */
  async handle(iq: Element): Promise<Element> {
    const t0 = this.timers.now();
    const requester = String(iq.attrs.from ?? "");
    const cmd = iq.getChild("command", NS_COMMANDS);
    const node = cmd?.attrs.node as string | undefined;
    const sessionid = (cmd?.attrs.sessionid as string | undefined) || undefined;
    const rawAction = (cmd?.attrs.action as string | undefined) ?? "execute";
    // What a client really sent, for interop work (log.level debug): clients differ (docs/commands.md).
    // Only operators' requests, and bounded: a stranger must not be able to fill the log.
    if (this.logger.isLevelEnabled("debug") && requester && this.authorizer.isOperator(requester))
      this.logger.debug("command request", { from: requester, xml: redactSecretFields(iq.toString().slice(0, 4096)) });
    const reject = (outcome: AuditOutcome, err: StanzaError, params?: Record<string, unknown>): never => {
      if (outcome === "forbidden") this.stats.forbidden++;
      else this.stats.rejected++;
      this.auditRecord(requester, node ?? "", rawAction, outcome, t0, {
        ...(sessionid ? { sessionid } : {}),
        ...(params ? { params } : {}),
        reason: err.text ?? err.condition,
      });
      throw err;
    };

    // Non-operators learn nothing, not even which nodes exist.
    if (!requester || !this.authorizer.isOperator(requester))
      reject("forbidden", new StanzaError("forbidden", "cancel", "you are not an operator of this device"));
    // "The 'node' attribute uniquely identifies the command. This attribute MUST be present."
    if (!cmd || !node) reject("rejected", cmdError("bad-request", "modify", "malformed-action", "missing node"));
    // "The value of 'action' MUST be one of the following: execute, cancel, prev, next, complete."
    if (!ACTIONS.includes(rawAction))
      reject("rejected", cmdError("bad-request", "modify", "malformed-action", `unknown action ${rawAction}`));
    const action = rawAction as Action;
    const def = this.registry.get(node!);
    if (!def) reject("rejected", new StanzaError("item-not-found", "cancel", `no command ${node}`));
    if (!this.authorizer.mayRun(requester, node!))
      reject("forbidden", new StanzaError("forbidden", "cancel", `you may not run ${node}`));

    let form: DataForm | undefined;
    const x = findForm(cmd!);
    if (x) {
      try {
        form = parseForm(x);
      } catch (err) {
        if (err instanceof FormError) reject("rejected", cmdError("bad-request", "modify", "bad-payload", err.message));
        throw err;
      }
      // "The requester SHOULD NOT use a 'jabber:x:data' type other than 'submit'. Responders SHOULD
      // consider any <x type='cancel'/> to be <x type='submit'/>."
    }

    try {
      if (sessionid === undefined) return await this.begin(def!, requester, action, form, t0);
      return await this.continue(def!, requester, sessionid, action, form, t0);
    } catch (err) {
      if (err instanceof StanzaError) {
        if (!(err as { audited?: boolean }).audited) reject("rejected", err);
        throw err;
      }
      // Outside a handler (e.g. a port failing while a stage's form is built): still an answer, never a hang.
      this.stats.errors++;
      this.logger.error("command request failed", { node, sessionid, error: describeError(err) });
      const text = `${node} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.auditRecord(requester, node!, rawAction, "error", t0, { ...(sessionid ? { sessionid } : {}), reason: text });
      throw new StanzaError("internal-server-error", "cancel", text);
    }
  }

  /** A request without sessionid: run at once (no stages, or every value submitted), or open a session. */
  private async begin(
    def: CommandDefinition,
    requester: string,
    action: Action,
    form: DataForm | undefined,
    t0: number,
  ): Promise<Element> {
    const stages = def.stages ?? [];
    // A cancel before any session exists (a client cancelling a form it never submitted) has
    // nothing to undo: answer canceled, as XEP-0050 asks, rather than an error the client shows.
    if (action === "cancel") {
      this.auditRecord(requester, def.node, "cancel", "canceled", t0, {});
      return commandElement(def.node, this.newSessionId(def.node), "canceled");
    }
    if (action === "prev")
      throw cmdError("bad-request", "modify", "bad-action", `${action} needs the sessionid of an open session`);
    const id = this.newSessionId(def.node);
    const ctx = this.context(def, requester);

    if (stages.length === 0 || (form && action !== "next")) {
      // Single-stage execution: every stage is filled from this one submission, defaults for the rest.
      const secrets = new Set<string>();
      const values = await this.collect(def, ctx, stages.length, 0, new Values({}), form, secrets, true);
      return await this.run(def, requester, id, action, values, secrets, t0);
    }

    this.checkSessionBounds(requester);
    const s: CommandSession = {
      id,
      node: def.node,
      def,
      requester,
      stages: stages.length,
      stage: 0,
      fields: [],
      submitted: [],
      accepted: [],
      started: t0,
      lastActive: t0,
      timer: this.sessionTimer(id),
      busy: false,
    };
    try {
      s.fields[0] = await this.fieldsFor(s, 0);
    } catch (err) {
      s.timer.cancel();
      throw err;
    }
    this.sessions.set(id, s);
    if (form) {
      // action='next' with a form on the first request: take stage 1's values and move on. If
      // that is refused, the requester never learns this session's id: it must not stay open.
      try {
        return await this.step(s, "next", form, t0);
      } catch (err) {
        if (this.sessions.get(id) === s) this.end(s);
        throw err;
      }
    }
    this.logger.debug("command session opened", { node: def.node, requester, sessionid: id });
    return this.executing(s);
  }

  private async continue(
    def: CommandDefinition,
    requester: string,
    sessionid: string,
    action: Action,
    form: DataForm | undefined,
    t0: number,
  ): Promise<Element> {
    const s = this.sessions.get(sessionid);
    // Cancelling what has already ended (completed, expired, evicted, or closed by an error) is
    // what a client does when it tidies up: it succeeds, and changes nothing.
    if (!s && action === "cancel") {
      this.auditRecord(requester, def.node, "cancel", "canceled", t0, { sessionid });
      return commandElement(def.node, sessionid, "canceled");
    }
    if (!s) {
      // "<session-expired/>: The requesting JID specified a sessionid that is no longer active
      // (either because it was completed, canceled, or timed out)."
      if (this.ended.has(sessionid))
        throw cmdError("not-allowed", "cancel", "session-expired", `session ${sessionid} has ended`);
      throw cmdError("bad-request", "modify", "bad-sessionid", `no session ${sessionid}`);
    }
    // "Each session [...] SHOULD be valid only between one requester/responder pair", and "the 'node'
    // value used in <command/> [must] exactly match": another JID or node is a bad sessionid.
    if (s.requester !== requester || s.node !== def.node)
      throw cmdError("bad-request", "modify", "bad-sessionid", `session ${sessionid} is not yours or not ${def.node}`);
    // A stage may await a port; a second request racing it would see half-updated state.
    if (s.busy)
      throw new StanzaError("unexpected-request", "wait", `session ${sessionid} is still busy with a request`);
    s.timer.cancel();
    s.timer = this.sessionTimer(s.id);
    s.lastActive = this.timers.now();
    s.busy = true;
    try {
      return await this.step(s, action, form, t0);
    } finally {
      s.busy = false;
    }
  }

  private async step(s: CommandSession, action: Action, form: DataForm | undefined, t0: number): Promise<Element> {
    const last = s.stage === s.stages - 1;
    // "If there is an <actions/> element [...] The action 'execute' is always allowed, and is
    // equivalent to" the default we advertised: next before the last stage, complete on it.
    const effective: Action = action === "execute" ? (last ? "complete" : "next") : action;
    switch (effective) {
      case "cancel": {
        // "The responder MUST reply with the success of the command" (status='canceled').
        this.end(s);
        this.auditRecord(s.requester, s.node, "cancel", "canceled", t0, {
          sessionid: s.id,
          params: redactValues(mergeAccepted(s), secretVars(s.fields.flat())),
        });
        return commandElement(s.node, s.id, "canceled");
      }
      case "prev": {
        if (s.stage === 0) throw cmdError("bad-request", "modify", "bad-action", "already at the first stage");
        s.stage--;
        return this.executing(s);
      }
      case "next": {
        if (last) throw cmdError("bad-request", "modify", "bad-action", "this is the last stage: use complete");
        this.accept(s, form);
        s.stage++;
        s.fields[s.stage] = await this.fieldsFor(s, s.stage);
        return this.executing(s);
      }
      default: {
        this.accept(s, form);
        // complete before the last stage: the remaining stages take their defaults (or fail on required fields).
        const ctx = this.context(s.def, s.requester);
        const secrets = secretVars(s.fields.flat());
        const values = await this.collect(
          s.def,
          ctx,
          s.stages,
          s.stage + 1,
          new Values(mergeAccepted(s)),
          undefined,
          secrets,
        );
        this.end(s);
        return await this.run(s.def, s.requester, s.id, "complete", values, secrets, s.started);
      }
    }
  }

  /** Validates `form` against the current stage's fields and stores the result (session stays open on error). */
  private accept(s: CommandSession, form: DataForm | undefined): void {
    const r = validateSubmission(s.fields[s.stage]!, form);
    if (!r.ok) throw badValues(r.problems);
    s.accepted[s.stage] = r.values;
    s.submitted[s.stage] = new Map((form?.fields ?? []).filter((f) => f.var).map((f) => [f.var!, f.values]));
    s.accepted.length = s.stage + 1; // later stages may depend on this one: recompute them
  }

  /**
   * Validates stages [from, to) against one submission (or none: defaults), stage by stage, since a
   * stage's fields may depend on earlier values. With `strict`, submitted fields that belong to no
   * stage are problems too.
   */
  private async collect(
    def: CommandDefinition,
    ctx: CommandContext,
    to: number,
    from: number,
    values: Values,
    form: DataForm | undefined,
    secrets: Set<string>,
    strict = false,
  ): Promise<Values> {
    const stages = def.stages ?? [];
    const known = new Set<string>(["FORM_TYPE"]);
    let acc = values;
    for (let i = from; i < to; i++) {
      const fields = (await stageParams(stages[i]!, { ...ctx, values: acc })).map(paramToField);
      for (const f of fields) if (f.var) known.add(f.var);
      for (const v of secretVars(fields)) secrets.add(v);
      const mine = form
        ? { ...form, fields: form.fields.filter((f) => f.var && fields.some((d) => d.var === f.var)) }
        : undefined;
      const r = validateSubmission(fields, mine);
      if (!r.ok) throw badValues(r.problems);
      acc = acc.merge(r.values);
    }
    if (strict) {
      const unknown = (form?.fields ?? []).filter((f) => f.var && f.type !== "fixed" && !known.has(f.var));
      if (unknown.length > 0)
        throw badValues(
          unknown.map((f) => ({ field: f.var!, message: `is not a field of ${def.node}` }) satisfies FieldProblem),
        );
    }
    return acc;
  }

  private async run(
    def: CommandDefinition,
    requester: string,
    sessionid: string,
    action: string,
    values: Values,
    secrets: Set<string>,
    t0: number,
  ): Promise<Element> {
    if (this.running.size >= this.limits.maxConcurrentExecutions)
      throw new StanzaError("resource-constraint", "wait", "too many commands running; try again shortly");
    const params = redactValues(values.raw, secrets);
    const controller = new AbortController();
    this.running.add(controller);
    this.remember(sessionid);
    this.stats.executions++;
    const timeoutMs = def.timeoutMs ?? this.limits.handlerTimeoutMs;
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = this.timers.setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const work = def.run({ ...this.context(def, requester, controller.signal), values });
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
        this.auditRecord(requester, def.node, action, "timeout", t0, { sessionid, params, reason: text });
        throw audited(new StanzaError("internal-server-error", "wait", text));
      }
      return this.completed(def, requester, sessionid, action, outcome, params, t0);
    } catch (err) {
      if (err instanceof StanzaError && (err as { audited?: boolean }).audited) throw err;
      if (err instanceof DeviceFailure) {
        // The command ran and the device side failed: an outcome, not an agent error (ports.ts).
        this.stats.deviceFailures++;
        this.logger.warn("command failed on the device", { node: def.node, sessionid, error: describeError(err) });
        const failed: CommandResult = { failed: true, notes: [{ type: "error", text: err.noteText }] };
        return this.completed(def, requester, sessionid, action, failed, params, t0);
      }
      this.stats.errors++;
      const text = `${def.node} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.logger.error("command handler threw", { node: def.node, sessionid, error: describeError(err) });
      this.auditRecord(requester, def.node, action, "error", t0, { sessionid, params, reason: text });
      throw audited(new StanzaError("internal-server-error", "cancel", text));
    } finally {
      timer?.cancel();
      this.running.delete(controller);
    }
  }

  private completed(
    def: CommandDefinition,
    requester: string,
    sessionid: string,
    action: string,
    result: CommandResult,
    params: Record<string, unknown>,
    t0: number,
  ): Element {
    const notes = [...(result.notes ?? [])];
    // "If a command completes but fails, the responder MUST include at least one <note type='error'/>".
    if (result.failed && !notes.some((n) => n.type === "error"))
      notes.push({ type: "error", text: `${def.node} failed` });
    const el = commandElement(def.node, sessionid, "completed", notes);
    if (result.form) el.cnode(formToElement(result.form));
    const errorNote = notes.find((n) => n.type === "error");
    this.auditRecord(requester, def.node, action, result.failed ? "failed" : "completed", t0, {
      sessionid,
      params,
      ...(result.failed ? { reason: errorNote?.text } : {}),
      ...(notes.length > 0 && !result.failed ? { reason: notes.map((n) => n.text).join("; ") } : {}),
    });
    return el;
  }

  // -------------------------------------------------------------------------------------------

  private executing(s: CommandSession): Element {
    const stage = s.def.stages![s.stage]!;
    const last = s.stage === s.stages - 1;
    const el = commandElement(s.node, s.id, "executing");
    // "The <command/> SHOULD include an <actions/> element"; "The 'execute' attribute [...] MUST equal
    // one of the 'action' attribute values" and "SHOULD NOT specify a value that does not match one of the allowed actions".
    const actions = el.c("actions", { execute: last ? "complete" : "next" });
    if (s.stage > 0) actions.c("prev");
    if (!last) actions.c("next");
    if (last) actions.c("complete");
    const remembered = s.submitted[s.stage];
    const fields = s.fields[s.stage]!.map((f) =>
      f.var && remembered?.has(f.var) ? { ...f, values: remembered.get(f.var)! } : f,
    );
    el.cnode(
      formToElement({
        type: "form",
        title: stage.title ?? s.def.name,
        ...(stage.instructions ? { instructions: [stage.instructions] } : {}),
        fields,
      }),
    );
    return el;
  }

  private async fieldsFor(s: CommandSession, stage: number): Promise<FormField[]> {
    const ctx = { ...this.context(s.def, s.requester), values: new Values(mergeAccepted(s)) };
    return (await stageParams(s.def.stages![stage]!, ctx)).map(paramToField);
  }

  private checkSessionBounds(requester: string): void {
    // Sessions per requester are bounded, but a client that never cancels (profanity after an
    // error, a script that gives up) must not lock its operator out: a new session evicts the
    // requester's least recently used idle one. Only when all of them are busy is it refused.
    const mine = [...this.sessions.values()].filter((s) => s.requester === requester);
    if (mine.length >= this.limits.maxSessionsPerRequester) {
      const idle = mine.filter((s) => !s.busy).sort((a, b) => a.lastActive - b.lastActive);
      const excess = mine.length - this.limits.maxSessionsPerRequester + 1;
      if (idle.length < excess)
        throw new StanzaError(
          "not-allowed",
          "wait",
          `you have ${mine.length} command sessions busy (max ${this.limits.maxSessionsPerRequester}); try again shortly`,
        );
      for (const s of idle.slice(0, excess)) {
        this.end(s);
        this.stats.evicted++;
        this.logger.info("command session evicted by a newer one", { node: s.node, requester, sessionid: s.id });
        this.auditRecord(s.requester, s.node, "evict", "expired", s.started, {
          sessionid: s.id,
          reason: `replaced by a new session (max ${this.limits.maxSessionsPerRequester} per requester)`,
        });
      }
    }
    if (this.sessions.size >= this.limits.maxSessions)
      throw new StanzaError("resource-constraint", "wait", "too many open command sessions; try again later");
  }

  private sessionTimer(id: string): TimerHandle {
    return this.timers.setTimeout(() => {
      const s = this.sessions.get(id);
      if (!s) return;
      this.end(s);
      this.stats.expired++;
      this.logger.info("command session timed out", { node: s.node, requester: s.requester, sessionid: id });
      this.auditRecord(s.requester, s.node, "timeout", "expired", s.started, {
        sessionid: id,
        reason: `no request for ${this.limits.sessionTimeoutMs} ms`,
      });
    }, this.limits.sessionTimeoutMs);
  }

  private end(s: CommandSession): void {
    s.timer.cancel();
    this.sessions.delete(s.id);
    this.remember(s.id);
  }

  private remember(id: string): void {
    this.ended.add(id);
    if (this.ended.size > ENDED_IDS_KEPT) this.ended.delete(this.ended.values().next().value!);
  }

  private context(def: CommandDefinition, requester: string, signal?: AbortSignal): CommandContext {
    return {
      requester,
      node: def.node,
      logger: this.logger.child({ command: def.node }),
      signal: signal ?? new AbortController().signal,
    };
  }

  private auditRecord(
    requester: string,
    node: string,
    action: string,
    outcome: AuditOutcome,
    t0: number,
    extra: { sessionid?: string; params?: Record<string, unknown>; reason?: string | undefined },
  ): void {
    this.audit.record({
      t: new Date().toISOString(),
      requester,
      node,
      action,
      outcome,
      durationMs: Math.max(0, this.timers.now() - t0),
      ...(extra.sessionid ? { sessionid: extra.sessionid } : {}),
      ...(extra.params && Object.keys(extra.params).length > 0 ? { params: extra.params } : {}),
      ...(extra.reason !== undefined ? { reason: extra.reason } : {}),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Builders

export function commandElement(
  node: string,
  sessionid: string,
  status: "executing" | "completed" | "canceled",
  notes: readonly Note[] = [],
): Element {
  const el = new Element("command", { xmlns: NS_COMMANDS, node, sessionid, status });
  for (const n of notes) el.c("note", { type: n.type }).t(n.text);
  return el;
}

/** A stanza error carrying one of XEP-0050's specific conditions (§4.6 "Possible Errors"). */
export function cmdError(
  condition: StanzaErrorCondition,
  type: StanzaErrorType,
  specific: "malformed-action" | "bad-action" | "bad-locale" | "bad-payload" | "bad-sessionid" | "session-expired",
  text: string,
): StanzaError {
  return new StanzaError(condition, type, text, new Element(specific, { xmlns: NS_COMMANDS }));
}

/** bad-request + <bad-payload/>, with a text naming every bad field and why. */
function badValues(problems: FieldProblem[]): StanzaError {
  return cmdError("bad-request", "modify", "bad-payload", problems.map(describeProblem).join("; "));
}

function audited(err: StanzaError): StanzaError {
  (err as { audited?: boolean }).audited = true;
  return err;
}

function mergeAccepted(s: CommandSession): FieldValues {
  return Object.assign({}, ...s.accepted.slice(0, s.stage + 1).filter(Boolean));
}

/** Values of text-private fields never reach the audit log. */
function secretVars(fields: readonly FormField[]): Set<string> {
  return new Set(fields.filter((f) => f.type === "text-private" && f.var).map((f) => f.var!));
}

function redactValues(values: Readonly<FieldValues>, secret: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = secret.has(k) ? "[redacted]" : v;
  return out;
}

function pickLimits(c: CommandsConfig): AdhocLimits {
  return {
    sessionTimeoutMs: c.sessionTimeoutMs,
    maxSessionsPerRequester: c.maxSessionsPerRequester,
    maxSessions: c.maxSessions,
    handlerTimeoutMs: c.handlerTimeoutMs,
    maxConcurrentExecutions: c.maxConcurrentExecutions,
  };
}

/** Values of fields whose name says secret (password, pin, token, key) never reach a log line. */
function redactSecretFields(xml: string): string {
  return xml.replace(
    /(<field\b[^>]*\bvar=(["'])[^"']*(?:pass|secret|pin|token|key)[^"']*\2[^>]*>)[\s\S]*?(<\/field>)/gi,
    "$1[redacted]$3",
  );
}
