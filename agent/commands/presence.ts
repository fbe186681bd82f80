/**
 * Presence subscription policy (RFC 6121 §3): the device approves subscription requests from
 * configured operators only, so they see it online/offline, and refuses everyone else. Other
 * presence types are left to the server and the session.
 */
import { Element } from "ltx";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { tryParseJid } from "../../xmpp/jid.js";
import type { Authorizer } from "./authorize.js";

export type SubscriptionDecision = { action: "ignore" } | { action: "approve" | "deny"; to: string; reply: Element };

/** Decides what to answer to one inbound stanza; pure, so it is tested without a session. */
export function decideSubscription(stanza: Element, authorizer: Authorizer): SubscriptionDecision {
  if (stanza.name !== "presence" || stanza.attrs.type !== "subscribe") return { action: "ignore" };
  const from = tryParseJid(String(stanza.attrs.from ?? ""));
  if (!from) return { action: "ignore" };
  // RFC 6121 §3.1.3: the contact answers the bare JID; approval is "subscribed", refusal "unsubscribed".
  const to = from.bare;
  if (authorizer.isOperator(to))
    return { action: "approve", to, reply: new Element("presence", { to, type: "subscribed" }) };
  return { action: "deny", to, reply: new Element("presence", { to, type: "unsubscribed" }) };
}

/** The slice of the XMPP session the policy needs; xmpp/session.ts satisfies it structurally. */
export interface PresenceSessionPort {
  send(stanza: Element): Promise<void>;
  on(event: "stanza", listener: (stanza: Element) => void): unknown;
  off(event: "stanza", listener: (stanza: Element) => void): unknown;
}

export class SubscriptionPolicy {
  private session: PresenceSessionPort | undefined;
  private readonly logger: Logger;
  readonly stats = { approved: 0, denied: 0 };
  private readonly listener = (stanza: Element) => this.onStanza(stanza);

  constructor(
    private readonly authorizer: Authorizer,
    deps: { logger?: Logger } = {},
  ) {
    this.logger = (deps.logger ?? silentLogger).child({ component: "subscriptions" });
  }

  start(session: PresenceSessionPort): void {
    if (this.session) return;
    this.session = session;
    session.on("stanza", this.listener);
  }

  stop(): void {
    this.session?.off("stanza", this.listener);
    this.session = undefined;
  }

  private onStanza(stanza: Element): void {
    const d = decideSubscription(stanza, this.authorizer);
    if (d.action === "ignore" || !this.session) return;
    if (d.action === "approve") this.stats.approved++;
    else this.stats.denied++;
    this.logger.info(d.action === "approve" ? "subscription approved" : "subscription refused", { from: d.to });
    this.session.send(d.reply).catch((err: unknown) => {
      this.logger.warn("could not answer a subscription request", { to: d.to, error: describeError(err) });
    });
  }
}
