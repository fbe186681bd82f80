/**
 * XEP-0030 Service Discovery (answering side) and XEP-0115 Entity Capabilities.
 * Other modules add features and node providers (e.g. ad-hoc commands own the
 * http://jabber.org/protocol/commands node); this module owns the disco IQ handlers.
 */
import { createHash } from "node:crypto";
import { Element } from "ltx";
import { StanzaError } from "./stanza-error.js";

export const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
export const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
export const NS_CAPS = "http://jabber.org/protocol/caps";

export interface Identity {
  category: string;
  type: string;
  name?: string;
}

export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

/** Answers disco for one node (or a family of nodes), given who asks. */
export interface DiscoNodeProvider {
  /** Return undefined for "no such node" (item-not-found). */
  info?(requester: string, node: string): Promise<{ identities: Identity[]; features: string[] } | undefined>;
  items?(requester: string, node: string): Promise<DiscoItem[] | undefined>;
}

export class Disco {
  private readonly features = new Set<string>([NS_DISCO_INFO, NS_DISCO_ITEMS]);
  private readonly providers = new Map<string, DiscoNodeProvider>();
  private capsNode = "https://github.com/xmpp-iot-agent";
  private cachedVer: string | undefined;

  constructor(private readonly identity: Identity) {}

  addFeature(...features: string[]): void {
    for (const f of features) this.features.add(f);
    this.cachedVer = undefined;
  }

  /** The provider answers for `node` exactly, and for nodes under `node` + "/" or "#". */
  addNode(node: string, provider: DiscoNodeProvider): void {
    this.providers.set(node, provider);
  }

  setCapsNode(node: string): void {
    this.capsNode = node;
  }

  /** XEP-0115 §5.1 verification string: identities, then features, sorted, each followed by '<'. */
  capsVer(): string {
    if (this.cachedVer) return this.cachedVer;
    const id = this.identity;
    let s = `${id.category}/${id.type}//${id.name ?? ""}<`;
    for (const f of [...this.features].sort()) s += `${f}<`;
    this.cachedVer = createHash("sha1").update(s, "utf8").digest("base64");
    return this.cachedVer;
  }

  /** The <c/> element for presence. */
  capsElement(): Element {
    return new Element("c", { xmlns: NS_CAPS, hash: "sha-1", node: this.capsNode, ver: this.capsVer() });
  }

  private provider(node: string): DiscoNodeProvider | undefined {
    const exact = this.providers.get(node);
    if (exact) return exact;
    for (const [prefix, p] of this.providers) {
      if (node.startsWith(`${prefix}/`) || node.startsWith(`${prefix}#`)) return p;
    }
    return undefined;
  }

  /**
   * `anonymous`: leave the identity's name (the software's name) out, for a requester who may not
   * learn what runs here (xmpp.softwareVersionTo). The features stay: they are what any client
   * needs to talk to the device at all.
   */
  async handleInfo(iq: Element, opts: { anonymous?: boolean } = {}): Promise<Element> {
    const query = iq.getChild("query", NS_DISCO_INFO)!;
    const node = query.attrs.node as string | undefined;
    const res = new Element("query", { xmlns: NS_DISCO_INFO });
    if (node && node !== `${this.capsNode}#${this.capsVer()}`) {
      res.attrs.node = node;
      const info = await this.provider(node)?.info?.(String(iq.attrs.from ?? ""), node);
      if (!info) throw new StanzaError("item-not-found", "cancel");
      for (const i of info.identities) res.c("identity", compact(i));
      for (const f of info.features) res.c("feature", { var: f });
      return res;
    }
    if (node) res.attrs.node = node;
    const { name: _name, ...unnamed } = this.identity;
    res.c("identity", compact(opts.anonymous ? unnamed : this.identity));
    for (const f of [...this.features].sort()) res.c("feature", { var: f });
    return res;
  }

  async handleItems(iq: Element): Promise<Element> {
    const query = iq.getChild("query", NS_DISCO_ITEMS)!;
    const node = query.attrs.node as string | undefined;
    const res = new Element("query", { xmlns: NS_DISCO_ITEMS });
    if (!node) return res;
    res.attrs.node = node;
    const items = await this.provider(node)?.items?.(String(iq.attrs.from ?? ""), node);
    if (!items) throw new StanzaError("item-not-found", "cancel");
    for (const it of items) res.c("item", compact(it));
    return res;
  }
}

function compact(o: object): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = String(v);
  return out;
}
