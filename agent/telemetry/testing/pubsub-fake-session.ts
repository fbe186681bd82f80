/**
 * The session double with a pubsub service's owner state behind it, for telemetry's unit tests.
 *
 * A successful answer to an owner request about affiliations or subscriptions (XEP-0060 8.8, 8.9)
 * comes from a tiny model of each node: by default the device owns every node and nothing else is
 * affiliated; a test changes that with `affiliations` / `subscriptions`. A get lists the model, a
 * set changes it. Everything else is the generic double's (xmpp/testing/fake-session.ts).
 */
import { Element } from "ltx";
import { FakeSession } from "../../../xmpp/testing/index.js";
import { NS_PUBSUB_OWNER } from "../pubsub.js";

export class PubsubFakeSession extends FakeSession {
  /** Per node: bare JID -> affiliation. A node not in the map is owned by the device alone. */
  readonly affiliations = new Map<string, Map<string, string>>();
  /** Per node: the subscriptions an owner request lists. */
  readonly subscriptions = new Map<string, Array<{ jid: string; subid?: string }>>();

  /** The node's affiliations as the model holds them (created on first use: the device as owner). */
  nodeAffiliations(node: string): Map<string, string> {
    let m = this.affiliations.get(node);
    if (!m) {
      m = new Map([[this.jid!.split("/")[0]!, "owner"]]);
      this.affiliations.set(node, m);
    }
    return m;
  }

  /** The owner-state part of a result: an affiliations or subscriptions list, or a change applied. */
  protected override resultPayload(iq: Element): Element | undefined {
    const owner = iq.getChild("pubsub", NS_PUBSUB_OWNER);
    const affs = owner?.getChild("affiliations");
    if (affs) return this.affiliationsAnswer(iq.attrs.type, affs);
    const subs = owner?.getChild("subscriptions");
    if (subs) return this.subscriptionsAnswer(iq.attrs.type, subs);
    return undefined;
  }

  private affiliationsAnswer(type: unknown, affs: Element): Element | undefined {
    const node = String(affs.attrs.node);
    const model = this.nodeAffiliations(node);
    if (type === "set") {
      for (const a of affs.getChildren("affiliation")) {
        if (a.attrs.affiliation === "none") model.delete(String(a.attrs.jid));
        else model.set(String(a.attrs.jid), String(a.attrs.affiliation));
      }
      return undefined;
    }
    const list = new Element("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("affiliations", { node });
    for (const [jid, affiliation] of model) list.c("affiliation", { jid, affiliation });
    return list.root();
  }

  private subscriptionsAnswer(type: unknown, subs: Element): Element | undefined {
    const node = String(subs.attrs.node);
    const model = this.subscriptions.get(node) ?? [];
    if (type === "set") {
      const gone = new Set(subs.getChildren("subscription").map((x) => String(x.attrs.jid)));
      this.subscriptions.set(
        node,
        model.filter((x) => !gone.has(x.jid)),
      );
      return undefined;
    }
    const list = new Element("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("subscriptions", { node });
    for (const x of model)
      list.c("subscription", { jid: x.jid, subscription: "subscribed", ...(x.subid ? { subid: x.subid } : {}) });
    return list.root();
  }
}
