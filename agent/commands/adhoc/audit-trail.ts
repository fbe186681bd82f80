/**
 * One audit record per command attempt, in one shape: the duration from the request's arrival on
 * the engine's clock, and empty extras left out so a record stays small.
 */
import type { Timers } from "../../../kernel/timers.js";
import type { StanzaError } from "../../../xmpp/stanza-error.js";
import type { AuditOutcome, AuditSink } from "../audit.js";

export interface AuditExtra {
  sessionid?: string;
  params?: Record<string, unknown>;
  reason?: string | undefined;
}

export class AdhocAuditTrail {
  constructor(
    private readonly sink: AuditSink,
    private readonly timers: Timers,
  ) {}

  record(
    requester: string,
    node: string,
    action: string,
    outcome: AuditOutcome,
    t0: number,
    extra: AuditExtra = {},
  ): void {
    this.sink.record({
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

/**
 * Errors whose record is already written (the executor writes timeout and error with the
 * parameters): the request handler writes a "rejected" record for every other StanzaError, and
 * one attempt must not leave two records.
 */
const alreadyAudited = new WeakSet<StanzaError>();

export function markAudited(err: StanzaError): StanzaError {
  alreadyAudited.add(err);
  return err;
}

export function isAudited(err: StanzaError): boolean {
  return alreadyAudited.has(err);
}
