/**
 * Stanza errors (RFC 6120 §8.3): a handler throws one, the session answers with
 * <iq type="error"><error type=...><condition xmlns=...stanzas/><text/>...</error></iq>.
 * Application-specific conditions (e.g. XEP-0050's <bad-sessionid/>) ride along as `appCondition`.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";

export const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

export type StanzaErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";
export type StanzaErrorCondition =
  | "bad-request"
  | "conflict"
  | "feature-not-implemented"
  | "forbidden"
  | "gone"
  | "internal-server-error"
  | "item-not-found"
  | "jid-malformed"
  | "not-acceptable"
  | "not-allowed"
  | "not-authorized"
  | "policy-violation"
  | "recipient-unavailable"
  | "redirect"
  | "registration-required"
  | "remote-server-not-found"
  | "remote-server-timeout"
  | "resource-constraint"
  | "service-unavailable"
  | "subscription-required"
  | "undefined-condition"
  | "unexpected-request";

export class StanzaError extends AgentError {
  constructor(
    readonly condition: StanzaErrorCondition,
    readonly type: StanzaErrorType,
    readonly text?: string,
    readonly appCondition?: Element,
  ) {
    super("stanza_error", text ?? condition, { condition, type, ...(text ? { text } : {}) });
  }

  toElement(): Element {
    const el = new Element("error", { type: this.type });
    el.c(this.condition, { xmlns: NS_STANZAS });
    if (this.text) el.c("text", { xmlns: NS_STANZAS }).t(this.text);
    if (this.appCondition) el.cnode(this.appCondition);
    return el;
  }

  /** Reads the <error/> child of an error stanza. */
  static fromStanza(stanza: Element): StanzaError {
    const err = stanza.getChild("error");
    const type = (err?.attrs.type as StanzaErrorType | undefined) ?? "cancel";
    let condition: StanzaErrorCondition = "undefined-condition";
    let text: string | undefined;
    let app: Element | undefined;
    for (const child of err?.children ?? []) {
      if (typeof child === "string") continue;
      if (child.attrs.xmlns === NS_STANZAS) {
        if (child.name === "text") text = child.text();
        else condition = child.name as StanzaErrorCondition;
      } else app = child;
    }
    return new StanzaError(condition, type, text, app);
  }
}
