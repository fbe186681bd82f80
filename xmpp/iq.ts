/**
 * IQ semantics (RFC 6120 §8.2.3): every get/set gets exactly one result or error.
 * - IqCaller: our requests, matched to answers by id (and sender), each with a deadline and a
 *   bound on how many may be outstanding.
 * - IqRouter: requests to us, dispatched by (type, child name, child namespace); unknown ones get
 *   <service-unavailable/> (RFC 6120 §8.4), a failing handler gets <internal-server-error/>.
 */
import { Element } from "ltx";
import { AgentError, describeError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import type { TimerHandle, Timers } from "../kernel/timers.js";
import { StanzaError } from "./stanza-error.js";

export type IqHandler = (iq: Element) => Promise<Element | Element[] | undefined>;

interface Pending {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: TimerHandle;
  to: string | undefined;
}

export class IqCaller {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private readonly prefix = Math.random().toString(36).slice(2, 8);

  constructor(
    private readonly deps: {
      timers: Timers;
      maxPending: number;
      defaultTimeoutMs: number;
      /** Our own bare JID and domain: answers from them may omit `from` (RFC 6120 §10.3.3). */
      self: () => { bare: string | undefined; domain: string };
    },
  ) {}

  get outstanding(): number {
    return this.pending.size;
  }

  nextId(): string {
    return `${this.prefix}-${++this.seq}`;
  }

  /** Registers a request; the caller sends `iq` afterwards. */
  track(iq: Element, timeoutMs = this.deps.defaultTimeoutMs): Promise<Element> {
    if (this.pending.size >= this.deps.maxPending) {
      return Promise.reject(
        new AgentError("iq_too_many", `too many outstanding IQ requests (${this.deps.maxPending})`, {
          max: this.deps.maxPending,
        }),
      );
    }
    if (!iq.attrs.id) iq.attrs.id = this.nextId();
    const id = String(iq.attrs.id);
    if (this.pending.has(id))
      return Promise.reject(new AgentError("iq_duplicate_id", `IQ id ${id} is already in use`, { id }));
    const to = iq.attrs.to as string | undefined;
    return new Promise<Element>((resolve, reject) => {
      const timer = this.deps.timers.setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentError("iq_timeout", `no answer to IQ ${id} within ${timeoutMs} ms`, { id, to, timeoutMs }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, to });
    });
  }

  /** Whether `iq` (type result/error) answers one of our pending requests (id and sender match). */
  awaits(iq: Element): boolean {
    const id = iq.attrs.id as string | undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    return p !== undefined && this.fromMatches(iq.attrs.from as string | undefined, p.to);
  }

  /** The pending request `iq` answers (matched by id and sender), taken off the list. */
  private take(iq: Element): (Pending & { id: string }) | undefined {
    const id = iq.attrs.id as string | undefined;
    if (!id) return undefined;
    const p = this.pending.get(id);
    if (!p || !this.fromMatches(iq.attrs.from as string | undefined, p.to)) return undefined;
    this.pending.delete(id);
    p.timer.cancel();
    return { ...p, id };
  }

  /**
   * An answer to one of ours that could not be read (skipped over a limit): the request fails now
   * with `err` rather than at its timeout. Returns true when it matched a request.
   */
  failAnswer(iq: Element, err: Error): boolean {
    const p = this.take(iq);
    p?.reject(err);
    return p !== undefined;
  }

  /** Returns true when `iq` (type result/error) answered one of ours. */
  handleAnswer(iq: Element): boolean {
    const p = this.take(iq);
    if (!p) return false;
    const id = p.id;
    if (iq.attrs.type === "result") p.resolve(iq);
    else {
      const se = StanzaError.fromStanza(iq);
      p.reject(
        new AgentError("iq_error", `IQ ${id} failed: ${se.condition}${se.text ? ` (${se.text})` : ""}`, {
          id,
          to: p.to,
          condition: se.condition,
          type: se.type,
          ...(se.text ? { text: se.text } : {}),
        }),
      );
    }
    return true;
  }

  /** Rejects a single request (e.g. it could not be queued). */
  fail(id: string, err: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.timer.cancel();
    p.reject(err);
  }

  rejectAll(err: Error): void {
    for (const [id, p] of this.pending) {
      p.timer.cancel();
      p.reject(err);
      this.pending.delete(id);
    }
  }

  private fromMatches(from: string | undefined, to: string | undefined): boolean {
    const { bare, domain } = this.deps.self();
    const norm = (s: string | undefined) => s?.toLowerCase();
    if (to === undefined) return from === undefined || norm(from) === norm(domain) || norm(from) === norm(bare);
    if (from === undefined) return norm(to) === norm(bare) || norm(to) === norm(domain);
    return norm(from) === norm(to);
  }
}

export class IqRouter {
  private readonly handlers = new Map<string, IqHandler>();
  private running = 0;

  constructor(
    private readonly deps: {
      log: Logger;
      /** Sends a reply; `request` is what it answers (the session ranks replies by who asked). */
      send: (iq: Element, request: Element) => void;
      /** Inbound requests handled at once; more are answered <resource-constraint/>. */
      maxConcurrent: number;
    },
  ) {}

  register(type: "get" | "set", name: string, xmlns: string, handler: IqHandler): () => void {
    const key = `${type} ${name} ${xmlns}`;
    if (this.handlers.has(key))
      throw new AgentError("iq_handler_exists", `an IQ handler for ${key} is already registered`, { key });
    this.handlers.set(key, handler);
    return () => {
      if (this.handlers.get(key) === handler) this.handlers.delete(key);
    };
  }

  /** Handles an inbound get/set. */
  dispatch(iq: Element): void {
    const type = iq.attrs.type as string;
    const children = iq.children.filter((c): c is Element => typeof c !== "string");
    // RFC 6120 §8.2.3: a get or set MUST contain exactly one payload element.
    if (children.length !== 1) {
      this.reply(iq, undefined, new StanzaError("bad-request", "modify", "an IQ request must carry exactly one child"));
      return;
    }
    const child = children[0]!;
    const handler = this.handlers.get(`${type} ${child.getName()} ${child.attrs.xmlns ?? ""}`);
    if (!handler) {
      this.reply(iq, undefined, new StanzaError("service-unavailable", "cancel"));
      return;
    }
    if (this.running >= this.deps.maxConcurrent) {
      this.reply(iq, undefined, new StanzaError("resource-constraint", "wait", "too many requests in progress"));
      return;
    }
    this.running++;
    // Through a promise even when the handler throws synchronously: every IQ gets its answer, and
    // `running` is always given back.
    new Promise<Element | Element[] | undefined>((resolve) => resolve(handler(iq)))
      .then(
        (payload) => this.reply(iq, payload),
        (err: unknown) => {
          if (err instanceof StanzaError) this.reply(iq, undefined, err);
          else {
            this.deps.log.error("IQ handler failed", {
              from: iq.attrs.from,
              xmlns: child.attrs.xmlns,
              error: describeError(err),
            });
            this.reply(
              iq,
              undefined,
              new StanzaError("internal-server-error", "cancel", "the handler failed; see the device log"),
            );
          }
        },
      )
      .finally(() => {
        this.running--;
      });
  }

  private reply(req: Element, payload: Element | Element[] | undefined, error?: StanzaError): void {
    if (error) {
      this.deps.send(iqErrorReply(req, error), req);
      return;
    }
    const res = iqReplyTo(req, "result");
    if (Array.isArray(payload)) for (const p of payload) res.cnode(p);
    else if (payload) res.cnode(payload);
    this.deps.send(res, req);
  }
}

function iqReplyTo(req: Element, type: "result" | "error"): Element {
  const res = new Element("iq", { type, id: req.attrs.id });
  if (req.attrs.from) res.attrs.to = req.attrs.from;
  return res;
}

/** The <iq type='error'/> answering `req` (RFC 6120 §8.3). */
export function iqErrorReply(req: Element, error: StanzaError): Element {
  return iqReplyTo(req, "error").cnode(error.toElement()).root();
}
