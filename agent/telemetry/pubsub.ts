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

function iq(to: string | undefined): Element {
  // No "to" means the account's own bare JID: the PEP service (RFC 6120 10.3).
  return new Element("iq", to ? { type: "set", to } : { type: "set" });
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
  const el = new Element("iq", service ? { type: "get", to: service } : { type: "get" });
  el.c("pubsub", { xmlns: NS_PUBSUB_OWNER }).c("configure", { node });
  return el;
}

/** The field vars listed in a configuration form result (empty when there is no form). */
export function listedConfigFields(result: Element): Set<string> {
  const x = result.getChild("pubsub", NS_PUBSUB_OWNER)?.getChild("configure")?.getChild("x", NS_DATA);
  return new Set(
    (x?.getChildren("field") ?? []).map((f) => String(f.attrs.var ?? "")).filter((v) => v && v !== "FORM_TYPE"),
  );
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
