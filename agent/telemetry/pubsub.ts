/**
 * XEP-0060 (Publish-Subscribe) stanzas the device needs: create+configure, owner configure, and
 * publish with publish-options. https://xmpp.org/extensions/xep-0060.html
 *
 * XEP-0060 rules this code relies on (paraphrased, section numbers for reference):
 * - 7.1.3.3: publishing to a node that does not exist fails with <item-not-found/> (unless the
 *   service auto-creates, as PEP does) -> the publisher re-runs node creation on item-not-found.
 * - 7.1.5: if the node exists and publish-options preconditions are not met, the publish fails with
 *   <conflict/> + <precondition-not-met/> -> on <conflict/> the publisher tries to configure the
 *   node, and if it may not, publishes without the options rather than hold readings back.
 * - 7.1.2: publishing with an ItemID that already exists overwrites that item -> stable item ids
 *   make a re-send idempotent.
 * - 8.1: create fails with <forbidden/> without the privilege, <conflict/> if the node exists.
 * - 8.2: the owner asks for the node's configuration form and submits it; a server lists the
 *   fields it supports, so the agent sends only those (configure after reading the form).
 * - 7.1.5: publish-options are optional: a server may not support them at all
 *   (<feature-not-implemented/>), or not some field. ejabberd 23.01 answers an unknown field
 *   (pubsub#max_items) with <resource-constraint/> and the text "Unknown field ... publish-options".
 *   The publisher then configures the node once and publishes without options.
 * - 8.9.1: a node owner retrieves the node's affiliations with <affiliations node=.../> in the
 *   #owner namespace; a requester that is not an owner gets <forbidden/>, a missing node
 *   <item-not-found/>. The list never holds "none" -> node-guard.ts judges ownership from it.
 * - 8.9.2: the owner changes affiliations with a delta (only the changed entries); "none" removes
 *   an entity from the list (8.9.3). 4.5: under the whitelist access model an entity may subscribe
 *   and retrieve items only if the owner made it a "member".
 * - 8.8: the owner lists the node's subscriptions and sets one to "none" to remove it. Prosody 0.12
 *   and ejabberd 23.01 both keep a subscription when its JID's affiliation goes back to "none"
 *   (and keep delivering to it), so the guard removes those subscriptions itself. ejabberd 23.01
 *   does not list a PEP node's subscriptions (feature-not-implemented) but does remove one.
 * - 8.4: the owner deletes a node; its items and subscriptions go with it.
 */
import { Element } from "ltx";

export const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
export const NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner";
export const NS_DATA = "jabber:x:data";
const NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config";
const PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options";

export type AccessModel = "open" | "presence" | "roster" | "whitelist";

export interface NodeConfig {
  /** pubsub#persist_items: keep items so late subscribers can fetch history. */
  persistItems: boolean;
  /** pubsub#max_items: how many items the node keeps ("max" = the server's limit). */
  maxItems: number | "max";
  /** pubsub#access_model: who may subscribe and fetch. */
  accessModel: AccessModel;
}

function iq(to: string | undefined, type: "get" | "set" = "set"): Element {
  // No "to" means the account's own bare JID: the PEP service (RFC 6120 10.3).
  return new Element("iq", to ? { type, to } : { type });
}

/** The node_config / publish-options fields the agent sets, by field var. */
export function configFields(config: NodeConfig): Array<[string, string]> {
  return [
    ["pubsub#persist_items", config.persistItems ? "true" : "false"],
    ["pubsub#max_items", String(config.maxItems)],
    ["pubsub#access_model", config.accessModel],
  ];
}

/** `only`: the field vars the server's form lists (XEP-0060 8.2); others are left out. */
function form(formType: string, config: NodeConfig, only?: ReadonlySet<string>): Element {
  const x = new Element("x", { xmlns: NS_DATA, type: "submit" });
  const field = (v: string, value: string, type?: string) =>
    x
      .c("field", type ? { var: v, type } : { var: v })
      .c("value")
      .t(value);
  field("FORM_TYPE", formType, "hidden");
  for (const [v, value] of configFields(config)) if (!only || only.has(v)) field(v, value);
  return x;
}

/** <create node/> with <configure/> in one request (XEP-0060 8.1.3). */
export function buildCreate(service: string | undefined, node: string, config: NodeConfig): Element {
  const el = iq(service);
  const ps = el.c("pubsub", { xmlns: NS_PUBSUB });
  ps.c("create", { node });
  ps.c("configure").cnode(form(NODE_CONFIG, config));
  return el;
}

/** Owner deletion of a node (XEP-0060 8.4). */
export function buildDelete(service: string | undefined, node: string): Element {
  const el = iq(service);
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("delete", { node });
  return el;
}

/** Owner configuration of an existing node (XEP-0060 8.2.4); `only`: the fields the server's form lists. */
export function buildConfigure(
  service: string | undefined,
  node: string,
  config: NodeConfig,
  only?: ReadonlySet<string>,
): Element {
  const el = iq(service);
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER })
    .c("configure", { node })
    .cnode(form(NODE_CONFIG, config, only));
  return el;
}

/** Request for a node's configuration form (XEP-0060 8.2.1). */
export function buildConfigureRequest(service: string | undefined, node: string): Element {
  const el = iq(service, "get");
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("configure", { node });
  return el;
}

/** The field vars listed in a configuration form result (empty when there is no form). */
export function listedConfigFields(result: Element): Set<string> {
  return new Set(configFormValues(result).keys());
}

/** Each field the configuration form lists (FORM_TYPE left out), with its current value ("" when it has none). */
export function configFormValues(result: Element): Map<string, string> {
  const x = result.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild("configure")?.getChild("x", NS_DATA);
  const out = new Map<string, string>();
  for (const f of x?.getChildren("field") ?? []) {
    const v = String(f.attrs.var ?? "");
    if (v && v !== "FORM_TYPE") out.set(v, f.getChildText("value") ?? "");
  }
  return out;
}

const BOOLEAN_TRUE = new Set(["1", "true"]);

/**
 * The listed fields whose value differs from `config` (XEP-0004 booleans may read "1" or "true").
 * A `maxItems` of "max" matches any value: the form shows the server's number, not "max".
 */
export function configDiffers(listed: ReadonlyMap<string, string>, config: NodeConfig): string[] {
  const out: string[] = [];
  for (const [v, want] of configFields(config)) {
    const have = listed.get(v);
    if (have === undefined) continue;
    if (v === "pubsub#persist_items") {
      if (BOOLEAN_TRUE.has(have) !== config.persistItems) out.push(v);
    } else if (v === "pubsub#max_items") {
      if (config.maxItems !== "max" && have !== want) out.push(v);
    } else if (have !== want) out.push(v);
  }
  return out;
}

/** XEP-0060 affiliations (4.1); "none" is never listed, only sent to remove an entity. */
export type Affiliation = "owner" | "publisher" | "publish-only" | "member" | "none" | "outcast";
const AFFILIATIONS: ReadonlySet<string> = new Set(["owner", "publisher", "publish-only", "member", "none", "outcast"]);

export interface AffiliationEntry {
  jid: string;
  affiliation: Affiliation;
}

/** Owner request for a node's affiliations (XEP-0060 8.9.1). */
export function buildAffiliationsRequest(service: string | undefined, node: string): Element {
  const el = iq(service, "get");
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("affiliations", { node });
  return el;
}

/** Owner change of affiliations: only the changed entries (XEP-0060 8.9.2). */
export function buildAffiliationsSet(
  service: string | undefined,
  node: string,
  changes: readonly AffiliationEntry[],
): Element {
  const el = iq(service);
  const affs = el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("affiliations", { node });
  for (const c of changes) affs.c("affiliation", { jid: c.jid, affiliation: c.affiliation });
  return el;
}

/**
 * The affiliations in an owner affiliations result. Entries without a JID or with an affiliation
 * XEP-0060 does not define are left out (a judge of ownership must not guess what they mean).
 */
export function parseAffiliations(result: Element): AffiliationEntry[] {
  const list = result.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild("affiliations");
  const out: AffiliationEntry[] = [];
  for (const a of list?.getChildren("affiliation") ?? []) {
    const jid = String(a.attrs.jid ?? "");
    const affiliation = String(a.attrs.affiliation ?? "");
    if (jid && AFFILIATIONS.has(affiliation)) out.push({ jid, affiliation: affiliation as Affiliation });
  }
  return out;
}

export interface SubscriptionEntry {
  jid: string;
  subscription: string;
  subid?: string;
}

/** Owner request for a node's subscriptions (XEP-0060 8.8.1). */
export function buildSubscriptionsRequest(service: string | undefined, node: string): Element {
  const el = iq(service, "get");
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("subscriptions", { node });
  return el;
}

/** Owner removal of subscriptions: each set to "none" (XEP-0060 8.8.2), with its subid when it has one. */
export function buildSubscriptionsRemoval(
  service: string | undefined,
  node: string,
  subs: readonly SubscriptionEntry[],
): Element {
  const el = iq(service);
  const list = el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("subscriptions", { node });
  for (const s of subs)
    list.c("subscription", { jid: s.jid, subscription: "none", ...(s.subid ? { subid: s.subid } : {}) });
  return el;
}

/** The subscriptions in an owner subscriptions result. */
export function parseSubscriptions(result: Element): SubscriptionEntry[] {
  const list = result.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild("subscriptions");
  const out: SubscriptionEntry[] = [];
  for (const s of list?.getChildren("subscription") ?? []) {
    const jid = String(s.attrs.jid ?? "");
    if (!jid) continue;
    const subid = s.attrs.subid ? String(s.attrs.subid) : undefined;
    out.push({ jid, subscription: String(s.attrs.subscription ?? "subscribed"), ...(subid ? { subid } : {}) });
  }
  return out;
}

/** Publish one item; with `options` the server checks (or, for PEP, applies) the node config. */
export function buildPublish(
  service: string | undefined,
  node: string,
  itemId: string,
  payload: Element,
  options?: NodeConfig,
): Element {
  const el = iq(service);
  const ps = el.c("pubsub", { xmlns: NS_PUBSUB });
  ps.c("publish", { node }).c("item", { id: itemId }).cnode(payload);
  if (options) ps.c("publish-options").cnode(form(PUBLISH_OPTIONS, options));
  return el;
}
