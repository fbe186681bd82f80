/**
 * Service discovery of the commands (XEP-0050 §2.2, §2.3): the commands node lists what the
 * requester may run, each command node answers disco#info. A stranger learns nothing, not even
 * which command nodes exist: it gets the same answer for an existing node as for a made-up one.
 * Registered by the composition root with xmpp/disco.ts, which owns the disco handlers.
 */
import { StanzaError } from "../../../xmpp/stanza-error.js";
import type { Authorizer } from "../authorize.js";
import type { CommandRegistry } from "../registry.js";
import { COMMAND_FEATURES, NS_COMMANDS } from "./protocol.js";

/** Shapes of xmpp/disco.ts's DiscoNodeProvider answers, restated so this room does not depend on that module. */
export interface DiscoInfoShape {
  identities: Array<{ category: string; type: string; name?: string }>;
  features: string[];
}
export interface DiscoItemShape {
  jid: string;
  node?: string;
  name?: string;
}

/** Structurally a DiscoNodeProvider of xmpp/disco.ts. Undefined means "not ours": item-not-found. */
export interface CommandDiscoProvider {
  info(requester: string, node: string): Promise<DiscoInfoShape | undefined>;
  items(requester: string, node: string): Promise<DiscoItemShape[] | undefined>;
}

export interface CommandDiscoOptions {
  registry: CommandRegistry;
  authorizer: Authorizer;
  /** The device's own full JID, for the `jid` of disco items. */
  ownJid: () => string | undefined;
}

export class CommandDisco implements CommandDiscoProvider {
  private readonly registry: CommandRegistry;
  private readonly authorizer: Authorizer;
  private readonly ownJid: () => string | undefined;

  constructor(opts: CommandDiscoOptions) {
    this.registry = opts.registry;
    this.authorizer = opts.authorizer;
    this.ownJid = opts.ownJid;
  }

  /** The commands node and every command node: the disco nodes to register this provider for. */
  nodes(): string[] {
    return [NS_COMMANDS, ...this.registry.list().map((d) => d.node)];
  }

  /**
   * "The responder is not required to send the same list of commands to all requesters": each sees
   * only what it may run, so an unauthorised account gets an empty list. Command nodes have no items.
   */
  async items(requester: string, node: string): Promise<DiscoItemShape[] | undefined> {
    if (node !== NS_COMMANDS) return this.registry.get(node) && this.authorizer.isOperator(requester) ? [] : undefined;
    const jid = this.ownJid() ?? "";
    return this.registry
      .list()
      .filter((d) => this.authorizer.mayRun(requester, d.node))
      .map((d) => ({ jid, node: d.node, name: d.name }));
  }

  /**
   * "A responder MUST at least provide <identity category='automation' type='command-node'/> and
   * <feature var='http://jabber.org/protocol/commands'/>, and SHOULD include <feature var='jabber:x:data'/>.
   * [...] If the command is not available to the requester, the responder SHOULD respond with a 403
   * "Forbidden" error."
   */
  async info(requester: string, node: string): Promise<DiscoInfoShape | undefined> {
    if (node === NS_COMMANDS)
      return { identities: [{ category: "automation", type: "command-list", name: "Commands" }], features: [] };
    const def = this.registry.get(node);
    // Forbidden would tell a stranger the node exists; an operator not granted it knows the device anyway.
    if (!def || !this.authorizer.isOperator(requester)) return undefined;
    if (!this.authorizer.mayRun(requester, def.node)) throw new StanzaError("forbidden", "cancel");
    return {
      identities: [{ category: "automation", type: "command-node", name: def.name }],
      features: [...COMMAND_FEATURES],
    };
  }
}
