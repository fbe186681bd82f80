/**
 * An in-memory stand-in for XmppSession, for unit tests of what sits on top of a session
 * (telemetry, provisioning, commands). No stream and no server: the test decides every answer.
 *
 * - request() records the IQ (giving it an id, as the session does) and answers it through
 *   `responder`. The default responder follows `policy`, a scripted Answer per IQ: a result, a
 *   stanza error, a session error code, or "hold" until the test calls release(). A test that
 *   wants to build each answer itself sets its own responder.
 * - send() records the stanza.
 * - handleIq() registers a handler as the session's IQ router does; deliver() hands it an inbound IQ.
 * - setOnline() flips `online` and emits the session's typed "online"/"offline" events.
 * - setPassword() keeps the password the next login would use; retryNow() counts prompt reconnects.
 *
 * Errors have the session's shape (AgentError "iq_error" with condition/type/text in context), so
 * code under test handles them exactly as it would the real ones.
 */
import { EventEmitter } from "node:events";
import { Element } from "ltx";
import { AgentError } from "../../kernel/errors.js";
import type { IqHandler } from "../iq.js";
import type { SessionEvents } from "../session.js";
import { StanzaError } from "../stanza-error.js";

export type Answer =
  | "result"
  | "hold"
  /** An <iq type="error"> from the peer. */
  | { error: string; type?: string; text?: string }
  /** A failure of the session itself (iq_timeout, session_closed). */
  | { code: string }
  /** A result carrying this payload (e.g. a configuration form). */
  | { result: Element };

export type Responder = (iq: Element) => Element | Promise<Element>;

/** A request the policy said to hold: it stays unanswered until release(). */
export interface HeldRequest {
  iq: Element;
  resolve: (el: Element) => void;
  reject: (err: Error) => void;
}

/** The rejection a request gets when the peer answers with a stanza error, as the session builds it. */
export function iqError(condition: string, type = "cancel", text?: string): AgentError {
  return new AgentError("iq_error", `IQ failed: ${condition}${text ? ` (${text})` : ""}`, {
    condition,
    type,
    ...(text ? { text } : {}),
  });
}

export class FakeSession extends EventEmitter<SessionEvents> {
  jid: string | undefined = "dev1@iot.test/agent";
  online = true;
  readonly requests: Element[] = [];
  readonly sent: Element[] = [];
  readonly held: HeldRequest[] = [];
  /** Registered IQ handlers by "<type> <name> <xmlns>", the router's key. */
  readonly handlers = new Map<string, IqHandler>();
  /** What setPassword() was last given. */
  password: string | undefined;
  /** How often retryNow() was called. */
  retries = 0;
  /** Decides the default responder's answer to each IQ; default: an empty result. */
  policy: (iq: Element) => Answer = () => "result";
  /** Answers each IQ; a thrown error or a rejection reaches the caller as the request's rejection. */
  responder: Responder = (iq) => this.answerByPolicy(iq);
  private nextId = 1;

  constructor(responder?: Responder) {
    super();
    if (responder) this.responder = responder;
  }

  request(iq: Element): Promise<Element> {
    if (!iq.attrs.id) iq.attrs.id = `q${this.nextId++}`;
    this.requests.push(iq);
    try {
      return Promise.resolve(this.responder(iq));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async send(stanza: Element): Promise<void> {
    this.sent.push(stanza);
  }

  handleIq(type: "get" | "set", name: string, xmlns: string, handler: IqHandler): () => void {
    const key = `${type} ${name} ${xmlns}`;
    if (this.handlers.has(key))
      throw new AgentError("iq_handler_exists", `an IQ handler for ${key} is already registered`, { key });
    this.handlers.set(key, handler);
    return () => {
      if (this.handlers.get(key) === handler) this.handlers.delete(key);
    };
  }

  /**
   * Hands an inbound get/set to the handler registered for its payload and resolves with what the
   * handler answers; rejects with its error, or with service-unavailable when none is registered
   * (what the session's router would reply).
   */
  async deliver(iq: Element): Promise<Element | Element[] | undefined> {
    const child = iq.children.find((c): c is Element => typeof c !== "string");
    const handler = child && this.handlers.get(`${iq.attrs.type} ${child.name} ${child.attrs.xmlns ?? ""}`);
    if (!handler) throw new StanzaError("service-unavailable", "cancel");
    return handler(iq);
  }

  setPassword(password: string): void {
    this.password = password;
  }

  retryNow(): void {
    this.retries++;
  }

  setOnline(online: boolean): void {
    this.online = online;
    if (online) this.emit("online", { resumed: false, jid: this.jid ?? "" });
    else this.emit("offline", { reason: "test" });
  }

  /** Answers every held request with `answer` (default success). */
  release(answer: Answer = "result"): void {
    for (const p of this.held.splice(0)) this.answer(p, answer);
  }

  /**
   * The payload of a successful answer to `iq` that carries none of its own; none here. A double
   * that models some server state (pubsub affiliations, a roster) answers queries about it here.
   */
  protected resultPayload(_iq: Element): Element | undefined {
    return undefined;
  }

  private answerByPolicy(iq: Element): Promise<Element> {
    return new Promise((resolve, reject) => {
      const answer = this.policy(iq);
      const p = { iq, resolve, reject };
      if (answer === "hold") this.held.push(p);
      else queueMicrotask(() => this.answer(p, answer));
    });
  }

  private answer(p: HeldRequest, a: Answer): void {
    if (a === "result" || a === "hold" || "result" in a) {
      const iq = new Element("iq", { type: "result", id: p.iq.attrs.id });
      const payload = typeof a === "object" ? a.result : this.resultPayload(p.iq);
      if (payload) iq.cnode(payload);
      p.resolve(iq);
    } else if ("error" in a) p.reject(iqError(a.error, a.type, a.text));
    else p.reject(new AgentError(a.code, a.code, {}));
  }
}
