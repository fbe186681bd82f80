/**
 * Test support: a manual clock for a whole session in-process. Like core/timers.ts's FakeTimers,
 * plus what a session needs: advance() is async and lets the promises each timer starts (a
 * reconnect, a negotiation step, an ack) run before the next timer fires, so a test can move an
 * hour forward in one call and see every step on the way.
 */
import type { TimerHandle, Timers } from "../../kernel/timers.js";

interface Pending {
  at: number;
  fn: () => void;
  every: number | null;
}

export class KitClock implements Timers {
  private current: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

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

  /**
   * Moves time forward by `ms`, firing due timers in order. Settles first (what a test just did
   * may arm timers) and after each timer.
   */
  async advance(ms: number): Promise<void> {
    await settle();
    const target = this.current + ms;
    for (;;) {
      const id = this.due(target);
      if (id === undefined) break;
      const timer = this.pending.get(id)!;
      this.current = timer.at;
      if (timer.every === null) this.pending.delete(id);
      else timer.at += timer.every;
      timer.fn();
      await settle();
    }
    this.current = target;
    await settle();
  }

  private due(target: number): number | undefined {
    let found: number | undefined;
    let at = Number.POSITIVE_INFINITY;
    for (const [id, t] of this.pending) {
      if (t.at <= target && t.at < at) {
        at = t.at;
        found = id;
      }
    }
    return found;
  }

  private add(fn: () => void, ms: number, every: number | null): TimerHandle {
    const id = ++this.seq;
    this.pending.set(id, { at: this.current + Math.max(0, ms), fn, every });
    return { cancel: () => this.pending.delete(id) };
  }
}

/**
 * Lets everything that is ready run: promise chains, stream events (nextTick) and what they
 * schedule. In-process nothing waits on the outside world, so a few turns of the event loop are
 * enough; no real time passes.
 */
export async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
