/**
 * Walks a command through XEP-0050's actions (§3.3, §3.4): a request without sessionid either runs
 * the command at once (no stages, or every value submitted: several clients and most scripts only
 * do single-stage) or opens a session; a request with one moves it by next / prev / complete /
 * cancel. Errors are thrown as the StanzaError to answer; the request handler audits them.
 */
import type { Element } from "ltx";
import type { Logger } from "../../../kernel/log.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import type { DataForm } from "../forms.js";
import { type CommandDefinition, Values } from "../registry.js";
import type { AdhocAuditTrail } from "./audit-trail.js";
import { commandContext } from "./context.js";
import type { CommandExecutor } from "./executor.js";
import { type Action, cmdError, commandElement } from "./protocol.js";
import { redactValues } from "./redact.js";
import type { SessionStore } from "./session-store.js";
import {
  acceptedValues,
  acceptStage,
  type CommandSession,
  collectStages,
  executingElement,
  sessionSecrets,
  sessionValues,
  stageFields,
} from "./stages.js";

export interface SessionFlowOptions {
  store: SessionStore<CommandSession>;
  executor: CommandExecutor;
  audit: AdhocAuditTrail;
  logger: Logger;
  newSessionId: (node: string) => string;
}

/** One authorised, parsed request on a known command. */
export interface FlowRequest {
  def: CommandDefinition;
  requester: string;
  action: Action;
  form: DataForm | undefined;
  /** Arrival of the request. */
  t0: number;
}

export class SessionFlow {
  private readonly store: SessionStore<CommandSession>;
  private readonly executor: CommandExecutor;
  private readonly audit: AdhocAuditTrail;
  private readonly logger: Logger;
  private readonly newSessionId: (node: string) => string;

  constructor(opts: SessionFlowOptions) {
    this.store = opts.store;
    this.executor = opts.executor;
    this.audit = opts.audit;
    this.logger = opts.logger;
    this.newSessionId = opts.newSessionId;
  }

  /** A request without sessionid: run at once (no stages, or every value submitted), or open a session. */
  async begin(r: FlowRequest): Promise<Element> {
    const { def, requester, action, form, t0 } = r;
    const stages = def.stages ?? [];
    // A cancel before any session exists (a client cancelling a form it never submitted) has
    // nothing to undo: answer canceled, as XEP-0050 asks, rather than an error the client shows.
    if (action === "cancel") {
      this.audit.record(requester, def.node, "cancel", "canceled", t0);
      return commandElement(def.node, this.newSessionId(def.node), "canceled");
    }
    if (action === "prev")
      throw cmdError("bad-request", "modify", "bad-action", `${action} needs the sessionid of an open session`);
    const id = this.newSessionId(def.node);
    const ctx = commandContext(def, requester, this.logger);

    if (stages.length === 0 || (form && action !== "next")) {
      // Single-stage execution: every stage is filled from this one submission, defaults for the rest.
      const secrets = new Set<string>();
      const values = await collectStages(def, ctx, {
        from: 0,
        to: stages.length,
        values: new Values({}),
        form,
        secrets,
        strict: true,
      });
      // The id goes out with the answer: a later request on it is on an ended session.
      this.store.remember(id);
      return await this.executor.run({ def, requester, sessionid: id, action, values, secrets, t0 });
    }

    this.store.admit(requester);
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
      busy: false,
    };
    s.fields[0] = await stageFields(def, 0, ctx, new Values({}));
    this.store.add(s);
    if (form) {
      // action='next' with a form on the first request: take stage 1's values and move on. If
      // that is refused, the requester never learns this session's id: it must not stay open.
      try {
        return await this.step(s, "next", form, t0);
      } catch (err) {
        if (this.store.get(id) === s) this.store.end(s);
        throw err;
      }
    }
    this.logger.debug("command session opened", { node: def.node, requester, sessionid: id });
    return executingElement(s);
  }

  /** A request on session `sessionid`. */
  async resume(r: FlowRequest & { sessionid: string }): Promise<Element> {
    const { def, requester, sessionid, action, form, t0 } = r;
    const s = this.store.get(sessionid);
    // Cancelling what has already ended (completed, expired, evicted, or closed by an error) is
    // what a client does when it tidies up: it succeeds, and changes nothing.
    if (!s && action === "cancel") {
      this.audit.record(requester, def.node, "cancel", "canceled", t0, { sessionid });
      return commandElement(def.node, sessionid, "canceled");
    }
    if (!s) {
      // "<session-expired/>: The requesting JID specified a sessionid that is no longer active
      // (either because it was completed, canceled, or timed out)."
      if (this.store.hasEnded(sessionid))
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
    this.store.touch(s);
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
        this.store.end(s);
        this.audit.record(s.requester, s.node, "cancel", "canceled", t0, {
          sessionid: s.id,
          params: redactValues(acceptedValues(s), sessionSecrets(s)),
        });
        return commandElement(s.node, s.id, "canceled");
      }
      case "prev": {
        if (s.stage === 0) throw cmdError("bad-request", "modify", "bad-action", "already at the first stage");
        s.stage--;
        return executingElement(s);
      }
      case "next": {
        if (last) throw cmdError("bad-request", "modify", "bad-action", "this is the last stage: use complete");
        acceptStage(s, form);
        s.stage++;
        s.fields[s.stage] = await stageFields(
          s.def,
          s.stage,
          commandContext(s.def, s.requester, this.logger),
          sessionValues(s),
        );
        return executingElement(s);
      }
      default: {
        acceptStage(s, form);
        // complete before the last stage: the remaining stages take their defaults (or fail on required fields).
        const secrets = sessionSecrets(s);
        const values = await collectStages(s.def, commandContext(s.def, s.requester, this.logger), {
          from: s.stage + 1,
          to: s.stages,
          values: sessionValues(s),
          form: undefined,
          secrets,
        });
        this.store.end(s);
        return await this.executor.run({
          def: s.def,
          requester: s.requester,
          sessionid: s.id,
          action: "complete",
          values,
          secrets,
          t0: s.started,
        });
      }
    }
  }
}
