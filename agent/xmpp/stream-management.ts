/**
 * XEP-0198 Stream Management: the outbound queue and the counters, with no I/O of its own.
 * https://xmpp.org/extensions/xep-0198.html
 *
 * Every stanza the layers above hand to the session enters this queue and leaves it only when the
 * server has acknowledged it (or, without SM, when it was written). While the link is down the
 * queue keeps accepting (up to `maxQueue`); after a resumption exactly the unacknowledged entries
 * are sent again, in order; after a failed resumption the same entries go out on the new session.
 *
 * Counters are 32-bit and wrap: "the value of 'h' ... MUST be reset to zero when it reaches 2^32"
 * (XEP-0198 §4), so all arithmetic is modulo 2^32.
 */
import { AgentError } from "../core/errors.js";

export const NS_SM = "urn:xmpp:sm:3";

const MOD = 2 ** 32;
/** (a + n) mod 2^32 */
export function addH(a: number, n: number): number {
  return (a + n) % MOD;
}
/** (a - b) mod 2^32: how far `a` is ahead of `b`. */
export function diffH(a: number, b: number): number {
  return (((a - b) % MOD) + MOD) % MOD;
}

export class StreamManagementError extends AgentError {}

export interface QueueEntry {
  /** The serialised stanza: kept as text, which is smaller than an element tree and re-sent as is. */
  data: string;
  /** Written on the current stream and counted in `sent`. */
  sent: boolean;
  /** Counts against the strangers' share of the queue (see SmQueueOptions.maxStrangerEntries). */
  stranger: boolean;
  resolve(): void;
  reject(err: Error): void;
}

export interface SmQueueOptions {
  maxQueue: number;
  /**
   * At most this many entries may be replies to strangers (non-operators): the rest of the queue
   * stays free for telemetry and operators however hard a stranger floods. Default: maxQueue.
   */
  maxStrangerEntries?: number;
}

export class OutboundQueue {
  private entries: QueueEntry[] = [];
  /** Count of stanzas written in this SM session (mod 2^32). */
  private sentH = 0;
  /** Last `h` the server acknowledged (mod 2^32). */
  private ackedH = 0;
  private strangerEntries = 0;

  constructor(private readonly options: SmQueueOptions) {}

  get length(): number {
    return this.entries.length;
  }

  /** Entries written but not yet acknowledged. */
  get unackedCount(): number {
    return diffH(this.sentH, this.ackedH);
  }

  get full(): boolean {
    return this.entries.length >= this.options.maxQueue;
  }

  /** Entries that are replies to strangers. */
  get strangerCount(): number {
    return this.strangerEntries;
  }

  /**
   * Adds a stanza; the promise settles when it is acknowledged (or rejected on stop/overflow).
   * `stranger`: a reply to a non-operator, held to the strangers' share of the queue.
   */
  push(data: string, opts: { stranger?: boolean } = {}): Promise<void> {
    if (this.full) {
      return Promise.reject(
        new StreamManagementError("send_queue_full", `outbound queue is full (${this.options.maxQueue} stanzas)`, {
          maxQueue: this.options.maxQueue,
        }),
      );
    }
    const stranger = opts.stranger === true;
    const share = this.options.maxStrangerEntries ?? this.options.maxQueue;
    if (stranger && this.strangerEntries >= share) {
      return Promise.reject(
        new StreamManagementError(
          "send_queue_stranger_share_full",
          `replies to strangers fill their share of the outbound queue (${share} stanzas)`,
          { maxStrangerEntries: share },
        ),
      );
    }
    if (stranger) this.strangerEntries++;
    return new Promise<void>((resolve, reject) => {
      this.entries.push({ data, sent: false, stranger, resolve, reject });
    });
  }

  /** Puts a stanza at the head of the unsent part (initial presence goes before queued traffic). */
  pushFront(data: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const firstUnsent = this.entries.findIndex((e) => !e.sent);
      const at = firstUnsent < 0 ? this.entries.length : firstUnsent;
      this.entries.splice(at, 0, { data, sent: false, stranger: false, resolve, reject });
    });
  }

  /** Entries not yet written on this stream, in order; the caller writes them and calls markSent. */
  *unsent(): Generator<QueueEntry> {
    for (const e of this.entries) if (!e.sent) yield e;
  }

  markSent(entry: QueueEntry): void {
    entry.sent = true;
    this.sentH = addH(this.sentH, 1);
  }

  /**
   * Applies an `h` from <a/>, <resumed/> or <failed/>. Returns how many entries it acknowledged.
   * An `h` beyond what we sent is a protocol violation (XEP-0198 §4: the receiving party
   * "SHOULD ... close the stream with an <undefined-condition/> ... <handled-count-too-high/>").
   */
  ack(h: number): number {
    const delta = diffH(h, this.ackedH);
    const outstanding = diffH(this.sentH, this.ackedH);
    if (delta > outstanding) {
      throw new StreamManagementError(
        "sm_h_too_high",
        `server acknowledged ${delta} stanzas but only ${outstanding} were unacknowledged`,
        {
          h,
          acked: this.ackedH,
          sent: this.sentH,
        },
      );
    }
    this.ackedH = h;
    const done = this.entries.splice(0, delta);
    for (const e of done) this.settle(e).resolve();
    return delta;
  }

  /** The link dropped: whatever was written but not acknowledged must be written again. */
  requeueUnacked(): void {
    for (const e of this.entries) e.sent = false;
    this.sentH = this.ackedH;
  }

  /** A new SM session starts counting from zero (after <enabled/>, or without SM). */
  resetCounters(): void {
    this.requeueUnacked();
    this.sentH = 0;
    this.ackedH = 0;
  }

  /** Without stream management a written stanza counts as delivered: settle what was sent. */
  settleSentWithoutAcks(): void {
    while (this.entries[0]?.sent) this.settle(this.entries.shift()!).resolve();
  }

  rejectAll(err: Error): void {
    const all = this.entries;
    this.entries = [];
    for (const e of all) this.settle(e).reject(err);
  }

  /** Bookkeeping for an entry leaving the queue. */
  private settle(e: QueueEntry): QueueEntry {
    if (e.stranger) this.strangerEntries--;
    return e;
  }
}

/** Inbound counter: stanzas we have handled in this SM session. */
export class InboundCounter {
  private h = 0;
  get value(): number {
    return this.h;
  }
  increment(): void {
    this.h = addH(this.h, 1);
  }
  reset(): void {
    this.h = 0;
  }
}

/** Stanzas (not nonzas) are what SM counts: RFC 6120 message, presence, iq. */
export function isStanza(el: { name: string }): boolean {
  return el.name === "message" || el.name === "presence" || el.name === "iq";
}

/** Parses an `h` attribute: an unsigned 32-bit decimal integer. */
export function parseH(value: unknown): number | undefined {
  if (typeof value !== "string" || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < MOD ? n : undefined;
}
