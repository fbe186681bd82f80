/**
 * The narrow view of the XMPP session that telemetry needs. xmpp/session.ts (XmppSession)
 * satisfies it structurally; unit tests use test fakes. Telemetry never imports xmpp.
 */
import type { Element } from "ltx";

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
  // biome-ignore lint/suspicious/noExplicitAny: structural match with the session's typed emitter
  on(event: "online" | "offline", listener: (arg: any) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: structural match with the session's typed emitter
  off(event: "online" | "offline", listener: (arg: any) => void): unknown;
}
