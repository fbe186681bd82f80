/**
 * The narrow view of the XMPP session that telemetry needs. xmpp/session.ts (XmppSession)
 * satisfies it structurally; unit tests use the in-memory double (agent/telemetry/testing). Only
 * the session's event types come from xmpp, so listeners get the payloads it really emits.
 */
import type { Element } from "ltx";
import type { SessionEvents } from "../../xmpp/session.js";

export interface SessionPort {
  /** Bound full JID once online. */
  readonly jid: string | undefined;
  readonly online: boolean;
  /**
   * Sends an <iq type=get|set> and resolves with the result. Rejects with AgentError code
   * "iq_error" (context.condition, context.type, context.text), "iq_timeout" or "session_closed".
   */
  request(iq: Element, opts?: { timeoutMs?: number }): Promise<Element>;
  /** Queues a message/presence; resolves once the server acknowledged it (XEP-0198). */
  send(stanza: Element): Promise<void>;
  on(event: "online", listener: (...args: SessionEvents["online"]) => void): unknown;
  on(event: "offline", listener: (...args: SessionEvents["offline"]) => void): unknown;
  off(event: "online", listener: (...args: SessionEvents["online"]) => void): unknown;
  off(event: "offline", listener: (...args: SessionEvents["offline"]) => void): unknown;
}
