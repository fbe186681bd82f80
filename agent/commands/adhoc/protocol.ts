/**
 * XEP-0050's wire vocabulary (https://xmpp.org/extensions/xep-0050.html, version 1.2 text quoted):
 * the namespace, the actions, the <command/> answer and the errors with their specific conditions.
 * The engine's other modules build answers only through these, so the wire shape lives in one place.
 */
import { Element } from "ltx";
import { StanzaError, type StanzaErrorCondition, type StanzaErrorType } from "../../../xmpp/stanza-error.js";
import { describeProblem, type FieldProblem, NS_DATA } from "../forms.js";
import type { Note } from "../registry.js";

export const NS_COMMANDS = "http://jabber.org/protocol/commands";
/** Features the device's disco#info must list for commands to be found. */
export const COMMAND_FEATURES = [NS_COMMANDS, NS_DATA] as const;

export type Action = "execute" | "cancel" | "prev" | "next" | "complete";
const ACTIONS: readonly string[] = ["execute", "cancel", "prev", "next", "complete"];

/** "The value of 'action' MUST be one of the following: execute, cancel, prev, next, complete." */
export function isAction(action: string): action is Action {
  return ACTIONS.includes(action);
}

export function commandElement(
  node: string,
  sessionid: string,
  status: "executing" | "completed" | "canceled",
  notes: readonly Note[] = [],
): Element {
  const el = new Element("command", { xmlns: NS_COMMANDS, node, sessionid, status });
  for (const n of notes) el.c("note", { type: n.type }).t(n.text);
  return el;
}

/** A stanza error carrying one of XEP-0050's specific conditions (§4.6 "Possible Errors"). */
export function cmdError(
  condition: StanzaErrorCondition,
  type: StanzaErrorType,
  specific: "malformed-action" | "bad-action" | "bad-locale" | "bad-payload" | "bad-sessionid" | "session-expired",
  text: string,
): StanzaError {
  return new StanzaError(condition, type, text, new Element(specific, { xmlns: NS_COMMANDS }));
}

/** bad-request + <bad-payload/>, with a text naming every bad field and why. */
export function badValues(problems: FieldProblem[]): StanzaError {
  return cmdError("bad-request", "modify", "bad-payload", problems.map(describeProblem).join("; "));
}
