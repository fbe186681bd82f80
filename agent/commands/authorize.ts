/**
 * Who may run which command. Operators come from the root config (`operators: [{ jid, commands }]`):
 * a bare JID names one account, a domain names every account on it; `commands` lists the nodes that
 * operator may run, "*" meaning all. Everyone else may run nothing: their command list is empty and
 * an execute is answered `forbidden` without running anything.
 */
import { tryParseJid } from "../../xmpp/jid.js";

export interface OperatorRule {
  /** "alice@example.org" (one account) or "example.org" (a whole domain). */
  jid: string;
  commands: readonly string[];
}

interface CompiledRule {
  bare?: string;
  domain?: string;
  all: boolean;
  nodes: Set<string>;
}

export class Authorizer {
  private readonly rules: CompiledRule[];

  constructor(operators: readonly OperatorRule[]) {
    this.rules = operators.flatMap((op) => {
      const j = tryParseJid(op.jid);
      // The config schema already checked the shape; a JID the strict parser refuses grants nothing.
      if (!j || j.resource !== undefined) return [];
      return [
        {
          ...(j.local === undefined ? { domain: j.domain } : { bare: j.bare }),
          all: op.commands.includes("*"),
          nodes: new Set(op.commands),
        },
      ];
    });
  }

  /** True when some operator rule matches this requester (whatever it may run). */
  isOperator(requester: string): boolean {
    return this.matching(requester).length > 0;
  }

  mayRun(requester: string, node: string): boolean {
    return this.matching(requester).some((r) => r.all || r.nodes.has(node));
  }

  private matching(requester: string): CompiledRule[] {
    const j = tryParseJid(requester);
    if (!j || j.local === undefined) return []; // servers and components are never operators
    return this.rules.filter((r) => (r.bare !== undefined ? r.bare === j.bare : r.domain === j.domain));
  }
}
