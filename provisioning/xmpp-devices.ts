/**
 * The job runner's DevicePort over the admin's session: who is online (XEP-0133
 * get-online-users-list, one request per domain: the server knows without any presence
 * subscription on the admin's roster), and a device's ad-hoc command (XEP-0050) with its form.
 */
import { Element } from "ltx";
import { forEachBounded } from "../kernel/bounded.js";
import { isAgentError } from "../kernel/errors.js";
import type { DevicePort } from "./jobs/runner.js";
import { ProvisioningError } from "./errors.js";
import type { SessionPort } from "./session-port.js";
import { type AdhocOptions, type AdhocResult, executeAdhoc, onlineUsers } from "./xmpp-admin.js";

export function xmppDevices(session: SessionPort, opts: AdhocOptions = {}): DevicePort {
  /** The command run with one form filled in; a command that asks for a second stage is not for a job. */
  const completed = async (
    fullJid: string,
    node: string,
    fields: Record<string, string | string[]>,
    timeoutMs: number,
  ): Promise<AdhocResult> => {
    const r = await executeAdhoc(session, fullJid, node, fields, { timeoutMs });
    if (r.status !== "completed")
      throw new ProvisioningError(
        "adhoc_failed",
        `${node} on ${fullJid} answered status "${r.status || "(none)"}" after the form: a job fills in one form only`,
        { to: fullJid, node, note: `status ${r.status || "(none)"} after one form: not run to completion` },
      );
    return r;
  };
  return {
    async online(domains) {
      const online = new Set<string>();
      for (const domain of domains)
        for (const jid of await onlineUsers(session, domain, opts)) online.add(jid.split("/")[0]!.toLowerCase());
      return online;
    },
    async execute(fullJid, node, fields, timeoutMs) {
      return (await completed(fullJid, node, fields, timeoutMs)).notes.map((n) => n.text);
    },
    async form(fullJid, node, fields, timeoutMs) {
      return (await completed(fullJid, node, fields, timeoutMs)).values;
    },
    async statusItem(service, node, timeoutMs) {
      const iq = new Element("iq", { type: "get", to: service })
        .c("pubsub", { xmlns: NS_PUBSUB })
        .c("items", { node, max_items: "1" })
        .root();
      let answer: Element;
      try {
        answer = await session.request(iq, { timeoutMs });
      } catch (err) {
        if (isAgentError(err, "iq_error")) {
          const condition = String(err.context.condition ?? "undefined-condition");
          if (condition === "item-not-found") return undefined;
          throw new ProvisioningError(
            "adhoc_failed",
            `${service} refused the items of ${node}: ${condition}`,
            { service, node, condition },
            { cause: err },
          );
        }
        if (isAgentError(err, "iq_timeout"))
          throw new ProvisioningError(
            "xmpp_timeout",
            `${service} did not answer for ${node}`,
            { service, node },
            { cause: err },
          );
        throw err;
      }
      const item = answer.getChild("pubsub", NS_PUBSUB)?.getChild("items")?.getChild("item");
      return item?.children.find((c): c is Element => typeof c !== "string");
    },
    async watch(targets, onItem, opts) {
      const me = session.jid;
      if (!me || !session.on || !session.off)
        throw new ProvisioningError("xmpp_stream", "this session cannot receive notifications");
      // Notifications go to this full JID only: nothing piles up for the admin's account elsewhere.
      const wanted = new Set(targets.map((t) => t.node));
      const listener = (el: Element) => {
        if (!el.is("message")) return;
        const items = el.getChild("event", NS_PUBSUB_EVENT)?.getChild("items");
        const node = items?.attrs.node as string | undefined;
        if (!items || !node || !wanted.has(node)) return;
        for (const item of items.getChildren("item"))
          for (const payload of item.children) if (typeof payload !== "string") onItem(node, payload);
      };
      session.on("stanza", listener);
      const subscribed: Array<{ service: string; node: string }> = [];
      const pubsubIq = (service: string, verb: "subscribe" | "unsubscribe", node: string) =>
        new Element("iq", { type: "set", to: service })
          .c("pubsub", { xmlns: NS_PUBSUB })
          .c(verb, { node, jid: me })
          .root();
      await forEachBounded(targets, opts.concurrency, async (t) => {
        try {
          await session.request(pubsubIq(t.service, "subscribe", t.node), { timeoutMs: opts.timeoutMs });
          subscribed.push(t);
        } catch (err) {
          opts.onRefused(
            t.node,
            isAgentError(err, "iq_error") ? String(err.context.condition) : (err as Error).message,
          );
        }
      });
      return {
        subscribed: subscribed.length,
        async stop() {
          session.off?.("stanza", listener);
          // Best effort: a subscription left behind only reaches this full JID, which is gone.
          await forEachBounded(subscribed, opts.concurrency, (t) =>
            session
              .request(pubsubIq(t.service, "unsubscribe", t.node), { timeoutMs: opts.timeoutMs })
              .then(() => undefined)
              .catch(() => undefined),
          );
        },
      };
    },
  };
}

const NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event";
const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
