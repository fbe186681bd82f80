/**
 * The open multi-stage command sessions (XEP-0050 §3.3 "Multiple Stages"). Bounded in total and
 * per requester, each ended after `sessionTimeoutMs` without a request, and the ids of ended ones
 * remembered for a while: "<session-expired/>: The requesting JID specified a sessionid that is no
 * longer active (either because it was completed, canceled, or timed out)" needs to tell an ended
 * id from a made-up one (<bad-sessionid/>).
 */
import { type Logger, silentLogger } from "../../../kernel/log.js";
import type { TimerHandle, Timers } from "../../../kernel/timers.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import type { CommandsConfig } from "../config.js";

/** What the store needs of a session; the session flow adds its stage state. */
export interface StoredSession {
  readonly id: string;
  readonly node: string;
  /** Full JID: "Each session [...] SHOULD be valid only between one requester/responder pair". */
  readonly requester: string;
  /** Arrival of the request that opened it, for the audit record's duration. */
  readonly started: number;
  /** Time of the last request on this session: the per-requester bound evicts the least recent. */
  lastActive: number;
  /** A request on it is being answered; a busy session is never evicted. */
  busy: boolean;
}

export type SessionStoreLimits = Pick<CommandsConfig, "sessionTimeoutMs" | "maxSessionsPerRequester" | "maxSessions">;

/** A session that ended without its requester asking. `action` and `reason` are worded for the audit record. */
export interface SessionEnd {
  action: "timeout" | "evict";
  reason: string;
}

export interface SessionStoreOptions<S extends StoredSession> {
  limits: SessionStoreLimits;
  timers: Timers;
  logger?: Logger;
  /** Called once the session is gone, so the owner can audit it. */
  onEnded?: (session: S, end: SessionEnd) => void;
}

/** Ended session ids remembered to answer <session-expired/> instead of <bad-sessionid/>. */
export const ENDED_IDS_KEPT = 256;

export class SessionStore<S extends StoredSession> {
  private readonly limits: SessionStoreLimits;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly onEnded: (session: S, end: SessionEnd) => void;
  private readonly open = new Map<string, { session: S; timer: TimerHandle }>();
  private readonly ended = new Set<string>();
  readonly stats = {
    /** Sessions ended by their idle timeout. */
    expired: 0,
    /** Idle sessions ended to make room for a newer one of the same requester. */
    evicted: 0,
  };

  constructor(opts: SessionStoreOptions<S>) {
    this.limits = opts.limits;
    this.timers = opts.timers;
    this.logger = opts.logger ?? silentLogger;
    this.onEnded = opts.onEnded ?? (() => {});
  }

  get size(): number {
    return this.open.size;
  }

  get(id: string): S | undefined {
    return this.open.get(id)?.session;
  }

  /** True for the id of a session that has ended (or a single-stage run), among the last ENDED_IDS_KEPT. */
  hasEnded(id: string): boolean {
    return this.ended.has(id);
  }

  /**
   * Makes room for one more session of `requester`, or throws the StanzaError to answer. Sessions
   * per requester are bounded, but a client that never cancels (profanity after an error, a script
   * that gives up) must not lock its operator out: the requester's least recently used idle
   * sessions are evicted. Only when too many of them are busy is the new one refused.
   */
  admit(requester: string): void {
    const max = this.limits.maxSessionsPerRequester;
    const mine = [...this.open.values()].map((e) => e.session).filter((s) => s.requester === requester);
    if (mine.length >= max) {
      const idle = mine.filter((s) => !s.busy).sort((a, b) => a.lastActive - b.lastActive);
      const excess = mine.length - max + 1;
      if (idle.length < excess)
        throw new StanzaError(
          "not-allowed",
          "wait",
          `you have ${mine.length} command sessions busy (max ${max}); try again shortly`,
        );
      for (const s of idle.slice(0, excess)) {
        this.end(s);
        this.stats.evicted++;
        this.logger.info("command session evicted by a newer one", { node: s.node, requester, sessionid: s.id });
        this.onEnded(s, { action: "evict", reason: `replaced by a new session (max ${max} per requester)` });
      }
    }
    if (this.open.size >= this.limits.maxSessions)
      throw new StanzaError("resource-constraint", "wait", "too many open command sessions; try again later");
  }

  /** Stores an admitted session and starts its idle timeout. */
  add(session: S): void {
    this.open.set(session.id, { session, timer: this.idleTimer(session.id) });
  }

  /** A request arrived on `session`: its idle timeout starts again. */
  touch(session: S): void {
    const entry = this.open.get(session.id);
    if (entry?.session !== session) return;
    entry.timer.cancel();
    entry.timer = this.idleTimer(session.id);
    session.lastActive = this.timers.now();
  }

  /** Ends `session` (completed, canceled, refused or evicted): later requests on its id get <session-expired/>. */
  end(session: S): void {
    const entry = this.open.get(session.id);
    if (entry?.session === session) {
      entry.timer.cancel();
      this.open.delete(session.id);
    }
    this.remember(session.id);
  }

  /** Remembers an id that was never stored (a single-stage run's), so a request on it is answered like one on an ended session. */
  remember(id: string): void {
    this.ended.add(id);
    if (this.ended.size > ENDED_IDS_KEPT) this.ended.delete(this.ended.values().next().value!);
  }

  /** Drops every session without a record: the agent is stopping. */
  clear(): void {
    for (const e of this.open.values()) e.timer.cancel();
    this.open.clear();
  }

  private idleTimer(id: string): TimerHandle {
    return this.timers.setTimeout(() => {
      const s = this.get(id);
      if (!s) return;
      this.end(s);
      this.stats.expired++;
      this.logger.info("command session timed out", { node: s.node, requester: s.requester, sessionid: id });
      this.onEnded(s, { action: "timeout", reason: `no request for ${this.limits.sessionTimeoutMs} ms` });
    }, this.limits.sessionTimeoutMs);
  }
}
