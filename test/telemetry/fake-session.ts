/**
 * In-memory SessionPort for telemetry unit tests: records every IQ and answers through a policy the
 * test sets (result, stanza error, timeout, or hold until released).
 *
 * A "result" to an owner request about affiliations or subscriptions (XEP-0060 8.8, 8.9) is
 * answered from a tiny model of the node's owner state: by default the device owns every node and
 * nothing else is affiliated; a test changes that with `affiliations` / `subscriptions`.
 */
import { EventEmitter } from "node:events";
import { Element } from "ltx";
import { AgentError } from "../../kernel/errors.js";
import { NS_PUBSUB_OWNER } from "../../agent/telemetry/pubsub.js";
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
  /** Per node: bare JID -> affiliation. A node not in the map is owned by the device alone. */
  readonly affiliations = new Map<string, Map<string, string>>();
  /** Per node: the subscriptions an owner request lists. */
  readonly subscriptions = new Map<string, Array<{ jid: string; subid?: string }>>();
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
  private ownerResult(iq: Element): Element | undefined {
    const owner = iq.getChild("pubsub", NS_PUBSUB_OWNER);
    const affs = owner?.getChild("affiliations");
    const subs = owner?.getChild("subscriptions");
    if (affs) {
      const node = String(affs.attrs.node);
      const model = this.nodeAffiliations(node);
      if (iq.attrs.type === "set") {
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
    if (subs) {
      const node = String(subs.attrs.node);
      const model = this.subscriptions.get(node) ?? [];
      if (iq.attrs.type === "set") {
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
    return undefined;
  }

  private answer(p: Pending, a: Answer): void {
    if (a === "result" || a === "hold") {
      const iq = new Element("iq", { type: "result", id: p.iq.attrs.id });
      const payload = this.ownerResult(p.iq);
      if (payload) iq.cnode(payload);
      p.resolve(iq);
    } else if ("result" in a) {
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
