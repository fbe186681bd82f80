/**
 * An in-memory SessionPort for unit tests: `request` answers from a responder function (or
 * throws AgentErrors shaped like the session's), `handleIq` handlers are kept so tests can deliver IQs.
 */
import type { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import type { PasswordUpdatable, SessionPort } from "./session-port.js";

export type Responder = (iq: Element) => Element | Promise<Element>;

export class FakeSession implements SessionPort, PasswordUpdatable {
  jid: string | undefined = "dev1@iot.test/agent";
  online = true;
  readonly sent: Element[] = [];
  readonly requests: Element[] = [];
  readonly handlers = new Map<string, (iq: Element) => Promise<Element | Element[] | undefined>>();
  password: string | undefined;

  constructor(public responder: Responder = () => Promise.reject(new Error("no responder"))) {}

  async request(iq: Element): Promise<Element> {
    this.requests.push(iq);
    return this.responder(iq);
  }

  async send(stanza: Element): Promise<void> {
    this.sent.push(stanza);
  }

  handleIq(
    type: "get" | "set",
    name: string,
    xmlns: string,
    handler: (iq: Element) => Promise<Element | Element[] | undefined>,
  ): () => void {
    const key = `${type} ${name} ${xmlns}`;
    this.handlers.set(key, handler);
    return () => this.handlers.delete(key);
  }

  setPassword(password: string): void {
    this.password = password;
  }
}

export function iqError(condition: string, type = "cancel", text?: string): AgentError {
  return new AgentError("iq_error", text ?? condition, { condition, type, ...(text ? { text } : {}) });
}
