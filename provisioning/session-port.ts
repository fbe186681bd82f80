/**
 * The narrow view of an XMPP session this room needs. xmpp/session.ts's XmppSession satisfies
 * it structurally; unit tests use an in-memory fake (xmpp-admin.test.ts).
 */
import type { Element } from "ltx";

export interface SessionPort {
  /** Bound full JID once online. */
  readonly jid: string | undefined;
  readonly online: boolean;
  /** Rejects with AgentError "iq_error" (context.condition/type/text), "iq_timeout" or "session_closed". */
  request(iq: Element, opts?: { timeoutMs?: number }): Promise<Element>;
  send(stanza: Element): Promise<void>;
  /** Inbound messages and presences (pubsub notifications for `iot-fleet watch`); optional for fakes. */
  on?(event: "stanza", listener: (el: Element) => void): unknown;
  off?(event: "stanza", listener: (el: Element) => void): unknown;
  handleIq(
    type: "get" | "set",
    name: string,
    xmlns: string,
    handler: (iq: Element) => Promise<Element | Element[] | undefined>,
  ): () => void;
}

/**
 * A session whose future logins can use a new password. The device's rotation handler calls this
 * after the server accepted the change, so a later reconnect (or a failed resumption) logs in with
 * the new secret. Optional: absent means the caller must restart the session to pick it up.
 */
export interface PasswordUpdatable {
  setPassword?(password: string): void;
  /** Forgets a stored XEP-0484 FAST token (a revoked device keeps nothing that logs in). */
  dropFastToken?(reason: string): void;
}
