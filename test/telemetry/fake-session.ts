/**
 * In-memory SessionPort for telemetry unit tests: records every IQ and answers through a policy the
 * test sets (result, stanza error, timeout, or hold until released).
 */
import { EventEmitter } from "node:events";
import { Element } from "ltx";
import { AgentError } from "../../agent/core/errors.js";
import type { SessionPort } from "../../agent/telemetry/session-port.js";

export type Answer =
  | "result"
  | "hold"
  | { error: string; type?: string; text?: string }
  | { code: string }
  /** A result carrying this payload (e.g. a configuration form). */
  | { result: Element };

interface Pending {
  iq: Element;
  resolve: (el: Element) => void;
  reject: (err: Error) => void;
}

export class FakeSession extends EventEmitter implements SessionPort {
  jid: string | undefined = "dev1@iot.test/agent";
  online = true;
  readonly requests: Element[] = [];
  readonly held: Pending[] = [];
  readonly sent: Element[] = [];
  /** Decides the answer to each IQ; default: success. */
  policy: (iq: Element) => Answer = () => "result";
  private nextId = 1;

  request(iq: Element): Promise<Element> {
    if (!iq.attrs.id) iq.attrs.id = `q${this.nextId++}`;
    this.requests.push(iq);
    return new Promise((resolve, reject) => {
      const answer = this.policy(iq);
      const p = { iq, resolve, reject };
      if (answer === "hold") this.held.push(p);
      else queueMicrotask(() => this.answer(p, answer));
    });
  }

  async send(stanza: Element): Promise<void> {
    this.sent.push(stanza);
  }

  /** Answers every held request with `answer` (default success). */
  release(answer: Answer = "result"): void {
    for (const p of this.held.splice(0)) this.answer(p, answer);
  }

  setOnline(online: boolean): void {
    this.online = online;
    if (online) this.emit("online", { resumed: false });
    else this.emit("offline", { reason: "test" });
  }

  private answer(p: Pending, a: Answer): void {
    if (a === "result" || a === "hold") p.resolve(new Element("iq", { type: "result", id: p.iq.attrs.id }));
    else if ("result" in a) {
      const iq = new Element("iq", { type: "result", id: p.iq.attrs.id });
      iq.cnode(a.result);
      p.resolve(iq);
    } else if ("error" in a)
      p.reject(
        new AgentError("iq_error", `IQ failed: ${a.error}`, {
          condition: a.error,
          type: a.type ?? "cancel",
          ...(a.text ? { text: a.text } : {}),
        }),
      );
    else p.reject(new AgentError(a.code, a.code, {}));
  }
}

/** Lets queued promise callbacks and microtasks run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
