/**
 * XEP-0198 Stream Management, all of it: https://xmpp.org/extensions/xep-0198.html
 * - OutboundQueue and InboundCounter: the queue and the counters, with no I/O of their own;
 * - requestResume() and requestEnable(): the two negotiation exchanges (negotiate.ts calls them
 *   in their place among the other steps);
 * - StreamManagement: one session's SM state across connections: what negotiation's outcome means
 *   for the queue, writing the queue, the <r/>/<a/> exchange and its cadence, protocol violations.
 *
 * Every stanza the layers above hand to the session enters this queue and leaves it only when the
 * server has acknowledged it (or, without SM, when it was written). While the link is down the
 * queue keeps accepting (up to `maxQueue`); after a resumption exactly the unacknowledged entries
 * are sent again, in order; after a failed resumption the same entries go out on the new session.
 *
 * Counters are 32-bit and wrap: "the value of 'h' ... MUST be reset to zero when it reaches 2^32"
 * (XEP-0198 §4), so all arithmetic is modulo 2^32.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import type { TimerHandle, Timers } from "../kernel/timers.js";
import { type Connection, NS_STREAM_ERRORS } from "./connection.js";

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

/** What negotiation ended with, as far as stream management goes. */
export type SmOutcome =
  | { kind: "resumed"; h: number }
  | { kind: "enabled"; id: string | undefined; resume: boolean; max: number | undefined; location: string | undefined }
  | { kind: "none"; reason: string };

/** A refused resumption; `h` is the server's count when it told us (XEP-0198 §5 lets it). */
export interface ResumeRefusal {
  h: number | undefined;
  condition: string;
}

/** The features offer stream management. */
export function offersSm(features: Element): boolean {
  return features.getChild("sm", NS_SM) !== undefined;
}

/** XEP-0198 §5: asks to resume `previous`; the server answers <resumed h/> or <failed [h]/>. */
export async function requestResume(
  conn: Connection,
  previous: { id: string; h: number },
  timeoutMs: number,
): Promise<{ kind: "resumed"; h: number } | ({ kind: "failed" } & ResumeRefusal)> {
  conn.send(resumeElement(previous));
  return resumeAnswerOf(await conn.next(timeoutMs, "<resume/>"));
}

/** <resume previd h/>, sent alone or inside SASL2's <authenticate/>. */
export function resumeElement(previous: { id: string; h: number }): Element {
  return new Element("resume", { xmlns: NS_SM, previd: previous.id, h: String(previous.h) });
}

/** Reads the server's answer to <resume/> (classic, or inline in SASL2's <success/>). */
export function resumeAnswerOf(answer: Element): { kind: "resumed"; h: number } | ({ kind: "failed" } & ResumeRefusal) {
  if (answer.is("resumed", NS_SM)) {
    const h = parseH(answer.attrs.h);
    if (h === undefined)
      throw new StreamManagementError("sm_bad_h", "<resumed/> without a valid h", { h: answer.attrs.h });
    return { kind: "resumed", h };
  }
  if (!answer.is("failed", NS_SM))
    throw new StreamManagementError("unexpected_element", `expected <resumed/> or <failed/>, got <${answer.name}>`, {
      got: answer.name,
    });
  const condition = answer.children.find((c): c is Element => typeof c !== "string")?.name ?? "undefined-condition";
  return { kind: "failed", h: parseH(answer.attrs.h), condition };
}

/**
 * XEP-0198 §3: enables SM, asking for resumption. Stanzas the server sends before its answer are
 * not counted by SM; they go to `early`.
 */
export async function requestEnable(
  conn: Connection,
  resumeMaxSeconds: number,
  timeoutMs: number,
  early: Element[],
): Promise<SmOutcome> {
  conn.send(enableElement(resumeMaxSeconds));
  for (;;) {
    const answer = await conn.next(timeoutMs, "<enable/>");
    const outcome = enableAnswerOf(answer);
    if (outcome) return outcome;
    early.push(answer);
  }
}

/** <enable resume='true' [max]/>, sent alone or inside a XEP-0386 Bind2 request. */
export function enableElement(resumeMaxSeconds: number): Element {
  const enable = new Element("enable", { xmlns: NS_SM, resume: "true" });
  if (resumeMaxSeconds > 0) enable.attrs.max = String(resumeMaxSeconds);
  return enable;
}

/** Reads <enabled/> or <failed/> (undefined for anything else: a stanza that came first). */
export function enableAnswerOf(answer: Element): SmOutcome | undefined {
  if (answer.is("enabled", NS_SM)) {
    const resume = answer.attrs.resume === "true" || answer.attrs.resume === "1";
    const max = answer.attrs.max !== undefined ? Number(answer.attrs.max) : undefined;
    return {
      kind: "enabled",
      id: answer.attrs.id,
      resume: resume && answer.attrs.id !== undefined,
      max: max !== undefined && Number.isFinite(max) ? max : undefined,
      location: answer.attrs.location,
    };
  }
  if (answer.is("failed", NS_SM)) return { kind: "none", reason: "server refused <enable/>" };
  return undefined;
}

export interface StreamManagementConfig {
  enabled: boolean;
  maxQueue: number;
  maxStrangerReplies: number;
  ackEvery: number;
  ackDelayMs: number;
  resumeMaxSeconds: number;
}

export interface StreamManagementHooks {
  /** We sent something the server must answer (an <r/>): the keepalive starts its clock. */
  expectAnswer(): void;
  /** `count` queued stanzas were written. */
  wrote(count: number): void;
}

/** Above this many bytes waiting in the socket, writing pauses until 'drain'. */
const WRITE_HIGH_WATER = 128 * 1024;

/**
 * One session's stream management, across its connections. The session attaches each negotiated
 * connection (attach) and lets go of it when it closes (detach); in between this writes the queue,
 * asks for and applies acks, answers the server's <r/>, and closes the link on a protocol violation.
 */
export class StreamManagement {
  readonly queue: OutboundQueue;
  private readonly inbound = new InboundCounter();
  private enabled = false;
  /** The SM session the next connection may resume. */
  private resumable: { id: string; location: string | undefined } | undefined;
  private conn: Connection | undefined;
  private ackRequested = false;
  private ackTimer: TimerHandle | undefined;
  private flushScheduled = false;
  /** A 'drain' listener is waiting on the socket (writing paused at the high-water mark). */
  private awaitingDrain = false;

  constructor(
    private readonly cfg: StreamManagementConfig,
    private readonly deps: { timers: Timers; log: Logger; hooks: StreamManagementHooks },
  ) {
    this.queue = new OutboundQueue({ maxQueue: cfg.maxQueue, maxStrangerEntries: cfg.maxStrangerReplies });
  }

  /** Acks are tracked on the current (or last) stream. */
  get active(): boolean {
    return this.enabled;
  }

  /** Stanzas handled on this SM session (what our <a/> says). */
  get handled(): number {
    return this.inbound.value;
  }

  /**
   * What the next connection should try to resume, if anything. Resumption is tried even past the
   * server's `max`: the price is one round trip, and a server that still remembers the old session
   * answers <failed h='N'/>, which tells us exactly which stanzas it received, so none is sent twice.
   */
  get resumption(): { id: string; h: number; location: string | undefined } | undefined {
    return this.resumable ? { ...this.resumable, h: this.inbound.value } : undefined;
  }

  /** Queues a stanza; it is written at the next flush, and the promise settles on its ack. */
  send(data: string, opts: { stranger?: boolean } = {}): Promise<void> {
    const p = this.queue.push(data, opts);
    this.scheduleFlush();
    return p;
  }

  /**
   * Applies negotiation's outcome to the queue. An `h` beyond what was sent is answered with a
   * stream error and the connection is destroyed; the error is thrown on.
   */
  applyOutcome(conn: Connection, sm: SmOutcome, resumeFailed: ResumeRefusal | undefined): void {
    try {
      this.apply(sm, resumeFailed);
    } catch (err) {
      conn.sendStreamError("undefined-condition", (err as Error).message);
      conn.destroy(err as AgentError);
      throw err;
    }
  }

  private apply(sm: SmOutcome, resumeFailed: ResumeRefusal | undefined): void {
    if (sm.kind === "resumed") {
      this.queue.ack(sm.h);
      // "the client MUST ... re-send any stanzas that the server did not acknowledge" (XEP-0198 §5)
      this.queue.requeueUnacked();
      this.enabled = true;
      return;
    }
    if (resumeFailed?.h !== undefined) {
      // XEP-0198 §5: <failed h='N'/> tells what the old session received: those are not re-sent.
      this.queue.ack(resumeFailed.h);
    }
    this.queue.resetCounters();
    this.inbound.reset();
    if (sm.kind === "enabled") {
      this.enabled = true;
      this.resumable = sm.resume && sm.id ? { id: sm.id, location: sm.location } : undefined;
    } else {
      this.enabled = false;
      this.resumable = undefined;
      this.deps.log.warn("stream management unavailable: delivery is best effort", { reason: sm.reason });
    }
  }

  /** A negotiated connection: SM nonzas are answered on it, the queue is written to it. */
  attach(conn: Connection): void {
    this.conn = conn;
  }

  /**
   * The connection is gone. Sent-but-unacked entries keep their marks until the next stream says
   * what the server received (<resumed h/> or <failed h/>); only then are the rest re-sent.
   */
  detach(error: AgentError | undefined): void {
    this.conn = undefined;
    this.ackTimer?.cancel();
    this.ackTimer = undefined;
    this.ackRequested = false;
    this.awaitingDrain = false;
    if (this.enabled && error?.code === "stanza_over_ceiling" && isStanza({ name: String(error.context.element) })) {
      // Count the rejected stanza as handled, so that the resumed stream does not deliver the
      // same poison again and again (the server re-sends what we did not acknowledge).
      this.inbound.increment();
      this.deps.log.warn("dropped an inbound stanza too large even to skip", {
        code: error.code,
        element: error.context.element,
      });
    }
  }

  /** An inbound stanza was handled: counted when SM is on. */
  countInbound(): void {
    if (this.enabled) this.inbound.increment();
  }

  /** Writes what is waiting, after the current burst of send() calls. */
  scheduleFlush(): void {
    if (this.flushScheduled || !this.conn) return;
    this.flushScheduled = true;
    // Coalesce a burst of send() calls into one pass (and fewer TCP segments).
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Writes the unsent part of the queue, up to the socket's high-water mark. */
  flush(): void {
    const conn = this.conn;
    if (!conn || conn.isClosed) return;
    let wrote = 0;
    for (const entry of this.queue.unsent()) {
      if (conn.writableLength > WRITE_HIGH_WATER) {
        if (!this.awaitingDrain) {
          this.awaitingDrain = true;
          conn.onceDrain(() => {
            this.awaitingDrain = false;
            this.scheduleFlush();
          });
        }
        break;
      }
      conn.writeRaw(entry.data);
      this.queue.markSent(entry);
      wrote++;
      // Ask for an ack every `ackEvery` stanzas so the queue drains during a long burst.
      if (this.enabled && this.queue.unackedCount >= this.cfg.ackEvery) this.requestAck();
    }
    if (wrote === 0) return;
    this.deps.hooks.wrote(wrote);
    if (!this.enabled) this.queue.settleSentWithoutAcks();
    else this.armAckTimer();
  }

  /**
   * The keepalive's liveness probe: an <r/> (asked again even if one is open). False without SM:
   * the caller probes another way.
   */
  probe(): boolean {
    if (!this.enabled) return false;
    this.ackRequested = false;
    this.requestAck();
    return true;
  }

  /** Handles the SM nonzas <r/> and <a/>; false for anything else. */
  handleNonza(el: Element): boolean {
    if (el.attrs.xmlns !== NS_SM) return false;
    if (el.name === "r") {
      this.conn?.send(new Element("a", { xmlns: NS_SM, h: String(this.inbound.value) }));
      return true;
    }
    if (el.name === "a") {
      this.onAck(el);
      return true;
    }
    return false;
  }

  private onAck(el: Element): void {
    // The server's <a/> is a lone small segment that we would not answer, so our kernel delays its
    // TCP ACK (~40 ms), and a server with Nagle on (Prosody's default) holds its next write, e.g. an
    // operator's command, until then. One whitespace byte (allowed between stanzas, RFC 6120
    // §4.6.1) carries the ACK at once. Measured: bench/commands.ts.
    this.conn?.writeRaw(" ");
    this.ackRequested = false;
    const h = parseH(el.attrs.h);
    if (h === undefined) {
      this.violation(new StreamManagementError("sm_bad_h", "server sent <a/> without a valid h", { h: el.attrs.h }));
      return;
    }
    try {
      this.queue.ack(h);
    } catch (err) {
      this.violation(err as StreamManagementError);
      return;
    }
    // Mid-burst, stanzas written after our <r/> are still open: ask again right away rather
    // than leave them to the timer (otherwise a burst stalls for ackDelayMs per round).
    if (this.queue.unackedCount >= this.cfg.ackEvery) this.requestAck();
    else this.armAckTimer();
  }

  /** Unacked stanzas get an ack request at the latest `ackDelayMs` after they were written. */
  private armAckTimer(): void {
    if (this.ackRequested || this.ackTimer || this.queue.unackedCount === 0) return;
    this.ackTimer = this.deps.timers.setTimeout(() => {
      this.ackTimer = undefined;
      if (this.queue.unackedCount > 0) this.requestAck();
    }, this.cfg.ackDelayMs);
  }

  private requestAck(): void {
    if (!this.conn || !this.enabled || this.ackRequested) return;
    this.ackRequested = true;
    this.ackTimer?.cancel();
    this.ackTimer = undefined;
    this.conn.send(new Element("r", { xmlns: NS_SM }));
    this.deps.hooks.expectAnswer();
  }

  /** The server broke XEP-0198: tell it why, and drop the link (the next one resumes or starts over). */
  private violation(err: StreamManagementError): void {
    this.deps.log.error("protocol violation by server", { error: err });
    const conn = this.conn;
    if (!conn) return;
    conn.writeRaw(violationError(err).toString());
    conn.destroy(err);
  }
}

/**
 * The stream error for a violation. Only an `h` beyond what we sent is <handled-count-too-high/>
 * (XEP-0198 §4); for anything else there is no SM condition, so the text says what was wrong.
 */
function violationError(err: StreamManagementError): Element {
  const e = new Element("stream:error");
  e.c("undefined-condition", { xmlns: NS_STREAM_ERRORS });
  if (err.code === "sm_h_too_high") {
    e.c("handled-count-too-high", {
      xmlns: NS_SM,
      h: String(err.context.h ?? ""),
      "send-count": String(err.context.sent ?? ""),
    });
  } else {
    e.c("text", { xmlns: NS_STREAM_ERRORS }).t(err.message);
  }
  return e;
}
