/**
 * Injectable clock and timers, so protocol code (keepalive, backoff, ack cadence, session timeouts)
 * runs on fake time in unit tests. Production code takes `Timers` as a dependency with `realTimers`
 * as the default.
 */
export interface TimerHandle {
  /** Stops the timer; safe to call more than once. */
  cancel(): void;
}

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    // Not unref'd: a session waiting to reconnect is exactly what must keep the agent alive.
    // Every owner cancels its timers in stop().
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
};

/** A manual clock for tests: `advance(ms)` fires due timers in order. */
export class FakeTimers implements Timers {
  protected current = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void; every: number | null }>();

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Timers not yet fired or cancelled: 0 after a clean stop(). */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** When the next timer is due, if any. */
  nextAt(): number | undefined {
    let next: number | undefined;
    for (const t of this.pending.values()) if (next === undefined || t.at < next) next = t.at;
    return next;
  }

  advance(ms: number): void {
    const target = this.current + ms;
    while (this.fireNext(target));
    this.current = target;
  }

  /**
   * Fires the earliest timer due by `target` (moving the clock to its time); false when none is.
   * The one step both advance()s are made of: this one in a loop, the session kit's with the
   * event loop let run in between (xmpp/testing/clock.ts).
   */
  protected fireNext(target: number): boolean {
    let nextId = -1;
    let nextAt = Number.POSITIVE_INFINITY;
    for (const [id, t] of this.pending) {
      if (t.at <= target && t.at < nextAt) {
        nextAt = t.at;
        nextId = id;
      }
    }
    if (nextId < 0) return false;
    const timer = this.pending.get(nextId)!;
    this.current = timer.at;
    if (timer.every === null) this.pending.delete(nextId);
    else timer.at += timer.every;
    timer.fn();
    return true;
  }

  private add(fn: () => void, ms: number, every: number | null): TimerHandle {
    const id = ++this.seq;
    this.pending.set(id, { at: this.current + Math.max(0, ms), fn, every });
    return { cancel: () => this.pending.delete(id) };
  }
}
