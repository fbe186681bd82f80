/**
 * Per-sender inbound budgets: a flood costs the sender, not the device. Every inbound stanza from
 * an account spends a token from that sender's bucket (keyed by bare JID, so many resources of one
 * account share it); strangers also share one bucket between them all, so a thousand accounts get
 * no more than one. Operators get a larger bucket of their own. The server, its components (the
 * pubsub service) and the device's own account are never throttled.
 *
 * Over budget, a stanza is dropped (still counted for stream management by the session: it was
 * received). An IQ request gets <resource-constraint/> at most once per second per sender, so
 * answering a flood never becomes a flood of our own.
 */
import { realTimers, type Timers } from "../kernel/timers.js";
import { tryParseJid } from "./jid.js";

export interface TokenBucketConfig {
  /** Sustained stanzas per second. */
  perSecond: number;
  /** Stanzas accepted at once after a quiet spell. */
  burst: number;
}

export interface InboundBudgetConfig {
  operator: TokenBucketConfig;
  stranger: TokenBucketConfig;
  /** Shared by every non-operator sender together. */
  strangersTotal: TokenBucketConfig;
  /** Senders remembered at once (least recently seen forgotten first). */
  maxSenders: number;
}

export type SenderClass = "trusted" | "operator" | "stranger";

export type Admission =
  | { admitted: true; cls: SenderClass }
  | {
      admitted: false;
      cls: SenderClass;
      sender: string /** Worth an error reply (rate-limited per sender). */;
      answer: boolean;
    };

export interface InboundBudgetStats {
  droppedFromOperators: number;
  droppedFromStrangers: number;
  /** The sender with the most drops since start (bare JID) and its count. */
  topDropped: { sender: string; dropped: number } | undefined;
  sendersTracked: number;
}

class Bucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly cfg: TokenBucketConfig,
    now: number,
  ) {
    this.tokens = cfg.burst;
    this.at = now;
  }

  peek(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.at);
    this.at = now;
    this.tokens = Math.min(this.cfg.burst, this.tokens + (elapsed * this.cfg.perSecond) / 1000);
  }
}

interface SenderState {
  bucket: Bucket;
  dropped: number;
  lastAnsweredAt: number;
}

const ANSWER_EVERY_MS = 1000;

export class InboundBudget {
  private readonly timers: Timers;
  private readonly senders = new Map<string, SenderState>();
  private readonly strangers: Bucket;
  private readonly counters = { droppedFromOperators: 0, droppedFromStrangers: 0 };
  private top: { sender: string; dropped: number } | undefined;

  constructor(
    private readonly cfg: InboundBudgetConfig,
    private readonly deps: {
      /** The device's own bare JID and domain: never throttled. */
      self: () => { bare: string | undefined; domain: string };
      isOperator: (jid: string) => boolean;
      timers?: Timers;
    },
  ) {
    this.timers = deps.timers ?? realTimers;
    this.strangers = new Bucket(cfg.strangersTotal, this.timers.now());
  }

  classify(from: string | undefined): SenderClass {
    if (from === undefined || from === "") return "trusted";
    const j = tryParseJid(from);
    // A JID the parser refuses came through the server anyway: treat it as a stranger's.
    if (!j) return "stranger";
    const { bare, domain } = this.deps.self();
    const d = domain.toLowerCase();
    if (j.local === undefined) {
      // Our server and its components (pubsub.<domain>, ...); a remote server is a stranger.
      return j.domain === d || j.domain.endsWith(`.${d}`) ? "trusted" : "stranger";
    }
    if (bare !== undefined && j.bare === bare.toLowerCase()) return "trusted";
    return this.deps.isOperator(from) ? "operator" : "stranger";
  }

  /** Spends one token for a stanza from `from`; says whether to handle it. */
  admit(from: string | undefined): Admission {
    const cls = this.classify(from);
    if (cls === "trusted") return { admitted: true, cls };
    const sender = tryParseJid(from!)?.bare ?? String(from).slice(0, 256);
    const now = this.timers.now();
    const state = this.sender(sender, cls, now);
    // A stranger pays from its own bucket and from the shared one; the shared token is only
    // spent when its own would allow the stanza, so one flooder does not drain it for the rest.
    const ok =
      cls === "operator"
        ? state.bucket.take(now)
        : state.bucket.peek(now) && this.strangers.take(now) && state.bucket.take(now);
    if (ok) return { admitted: true, cls };
    state.dropped++;
    if (cls === "operator") this.counters.droppedFromOperators++;
    else this.counters.droppedFromStrangers++;
    if (!this.top || state.dropped > this.top.dropped || this.top.sender === sender)
      this.top = { sender, dropped: state.dropped };
    const answer = now - state.lastAnsweredAt >= ANSWER_EVERY_MS;
    if (answer) state.lastAnsweredAt = now;
    return { admitted: false, cls, sender, answer };
  }

  stats(): InboundBudgetStats {
    return { ...this.counters, topDropped: this.top ? { ...this.top } : undefined, sendersTracked: this.senders.size };
  }

  private sender(key: string, cls: SenderClass, now: number): SenderState {
    let s = this.senders.get(key);
    if (s) {
      // Most recently seen last: the map's first entry is the one to forget.
      this.senders.delete(key);
    } else {
      if (this.senders.size >= this.cfg.maxSenders) {
        const oldest = this.senders.keys().next().value;
        if (oldest !== undefined) this.senders.delete(oldest);
      }
      s = {
        bucket: new Bucket(cls === "operator" ? this.cfg.operator : this.cfg.stranger, now),
        dropped: 0,
        lastAnsweredAt: Number.NEGATIVE_INFINITY,
      };
    }
    this.senders.set(key, s);
    return s;
  }
}
