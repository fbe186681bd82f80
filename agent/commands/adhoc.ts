/**
 * XEP-0050 ad-hoc commands (https://xmpp.org/extensions/xep-0050.html), version 1.2 text quoted.
 *
 * The facade of the command engine: it parses a <command/> request, authorises it, and routes it.
 * Authorisation comes first and every attempt is audited. The work is done by one module per job,
 * under ./adhoc/:
 * - protocol.ts: the namespace, actions, <command/> answers and XEP-0050 errors;
 * - session-flow.ts: single-stage runs, and sessions moved by execute / next / prev / complete / cancel;
 * - stages.ts: each stage as a form, submissions validated against it;
 * - session-store.ts: open sessions, bounded in total and per requester, with idle timeouts;
 * - executor.ts: the handler raced against its timeout, bounded concurrency, outcomes as answers;
 * - disco-provider.ts: the commands list and command nodes in service discovery;
 * - audit-trail.ts, redact.ts: the audit record, and what of a request may be written down.
 */
import { randomUUID } from "node:crypto";
import type { Element } from "ltx";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type Timers } from "../../kernel/timers.js";
import { StanzaError } from "../../xmpp/stanza-error.js";
import { AdhocAuditTrail, isAudited } from "./adhoc/audit-trail.js";
import {
  CommandDisco,
  type CommandDiscoProvider,
  type DiscoInfoShape,
  type DiscoItemShape,
} from "./adhoc/disco-provider.js";
import { CommandExecutor } from "./adhoc/executor.js";
import { type Action, cmdError, isAction, NS_COMMANDS } from "./adhoc/protocol.js";
import { redactSecretFields } from "./adhoc/redact.js";
import { SessionFlow } from "./adhoc/session-flow.js";
import { SessionStore } from "./adhoc/session-store.js";
import type { CommandSession } from "./adhoc/stages.js";
import type { AuditOutcome, AuditSink } from "./audit.js";
import type { Authorizer } from "./authorize.js";
import { type CommandsConfig, DEFAULT_COMMANDS_CONFIG } from "./config.js";
import { type DataForm, FormError, findForm, parseForm } from "./forms.js";
import type { CommandRegistry } from "./registry.js";

export type { DiscoInfoShape, DiscoItemShape } from "./adhoc/disco-provider.js";
export { COMMAND_FEATURES, cmdError, commandElement, NS_COMMANDS } from "./adhoc/protocol.js";

/** The slice of the XMPP session this module needs; xmpp/session.ts satisfies it structurally. */
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

export interface AdhocStats {
  executions: number;
  /** Refused before anything ran: bad values, action or session, limits. */
  rejected: number;
  forbidden: number;
  timeouts: number;
  /** Commands that ran and failed on the device side (completed with an error note). */
  deviceFailures: number;
  /** Handler bugs, and failures outside a handler (internal-server-error). */
  errors: number;
  expired: number;
  /** Idle sessions ended to make room for a newer one of the same requester. */
  evicted: number;
}

export class AdhocCommands {
  private readonly registry: CommandRegistry;
  private readonly authorizer: Authorizer;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly audit: AdhocAuditTrail;
  private readonly store: SessionStore<CommandSession>;
  private readonly executor: CommandExecutor;
  private readonly flow: SessionFlow;
  private readonly disco: CommandDisco;
  private readonly counts = { rejected: 0, forbidden: 0, errors: 0 };
  private unregister: (() => void) | undefined;

  constructor(opts: AdhocOptions) {
    const limits: AdhocLimits = { ...pickLimits(DEFAULT_COMMANDS_CONFIG), ...opts.limits };
    this.registry = opts.registry;
    this.authorizer = opts.authorizer;
    this.timers = opts.timers ?? realTimers;
    this.logger = (opts.logger ?? silentLogger).child({ component: "adhoc" });
    this.audit = new AdhocAuditTrail(opts.audit, this.timers);
    this.store = new SessionStore<CommandSession>({
      limits,
      timers: this.timers,
      logger: this.logger,
      onEnded: (s, end) =>
        this.audit.record(s.requester, s.node, end.action, "expired", s.started, {
          sessionid: s.id,
          reason: end.reason,
        }),
    });
    this.executor = new CommandExecutor({ limits, timers: this.timers, logger: this.logger, audit: this.audit });
    this.flow = new SessionFlow({
      store: this.store,
      executor: this.executor,
      audit: this.audit,
      logger: this.logger,
      newSessionId: opts.newSessionId ?? ((node) => `${node}:${randomUUID()}`),
    });
    this.disco = new CommandDisco({
      registry: this.registry,
      authorizer: this.authorizer,
      ownJid: opts.ownJid ?? (() => undefined),
    });
  }

  start(session: CommandSessionPort): void {
    if (this.unregister) return;
    this.unregister = session.handleIq("set", "command", NS_COMMANDS, (iq) => this.handle(iq));
  }

  stop(): void {
    this.unregister?.();
    this.unregister = undefined;
    this.store.clear();
    this.executor.abortAll(new Error("agent stopping"));
  }

  get openSessions(): number {
    return this.store.size;
  }

  /** A snapshot of the counters since construction. */
  get stats(): Readonly<AdhocStats> {
    const ex = this.executor.stats;
    return {
      executions: ex.executions,
      rejected: this.counts.rejected,
      forbidden: this.counts.forbidden,
      timeouts: ex.timeouts,
      deviceFailures: ex.deviceFailures,
      errors: ex.errors + this.counts.errors,
      expired: this.store.stats.expired,
      evicted: this.store.stats.evicted,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Disco hooks, called by the lead's disco module (which owns the disco#info/#items handlers).

  /** disco#items for `node`, or undefined when the node is not ours (the disco module answers item-not-found). */
  discoItems(requester: string, node: string): Promise<DiscoItemShape[] | undefined> {
    return this.disco.items(requester, node);
  }

  /** disco#info for `node`, or undefined when the node is not ours; forbidden for an operator not granted it. */
  discoInfo(requester: string, node: string): Promise<DiscoInfoShape | undefined> {
    return this.disco.info(requester, node);
  }

  /** Structurally a DiscoNodeProvider of xmpp/disco.ts: register it for every node of discoNodes(). */
  get discoProvider(): CommandDiscoProvider {
    // Bound, so a caller holding only the functions still reaches this engine's registry.
    return { info: (r, n) => this.disco.info(r, n), items: (r, n) => this.disco.items(r, n) };
  }

  /** The commands node and every command node: the disco nodes this module answers for. */
  discoNodes(): string[] {
    return this.disco.nodes();
  }

  // -------------------------------------------------------------------------------------------

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
    const reject = (outcome: AuditOutcome, err: StanzaError): never => {
      if (outcome === "forbidden") this.counts.forbidden++;
      else this.counts.rejected++;
      this.audit.record(requester, node ?? "", rawAction, outcome, t0, {
        ...(sessionid ? { sessionid } : {}),
        reason: err.text ?? err.condition,
      });
      throw err;
    };

    // Non-operators learn nothing, not even which nodes exist.
    if (!requester || !this.authorizer.isOperator(requester))
      reject("forbidden", new StanzaError("forbidden", "cancel", "you are not an operator of this device"));
    // "The 'node' attribute uniquely identifies the command. This attribute MUST be present."
    if (!cmd || !node) reject("rejected", cmdError("bad-request", "modify", "malformed-action", "missing node"));
    if (!isAction(rawAction))
      reject("rejected", cmdError("bad-request", "modify", "malformed-action", `unknown action ${rawAction}`));
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

    const request = { def: def!, requester, action: rawAction as Action, form, t0 };
    try {
      if (sessionid === undefined) return await this.flow.begin(request);
      return await this.flow.resume({ ...request, sessionid });
    } catch (err) {
      if (err instanceof StanzaError) {
        if (!isAudited(err)) reject("rejected", err);
        throw err;
      }
      // Outside a handler (e.g. a port failing while a stage's form is built): still an answer, never a hang.
      this.counts.errors++;
      this.logger.error("command request failed", { node, sessionid, error: describeError(err) });
      const text = `${node} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.audit.record(requester, node!, rawAction, "error", t0, {
        ...(sessionid ? { sessionid } : {}),
        reason: text,
      });
      throw new StanzaError("internal-server-error", "cancel", text);
    }
  }
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
