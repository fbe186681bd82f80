/**
 * Test support: a manual clock for a whole session in-process. Like kernel/timers.ts's FakeTimers (which it extends),
 * plus what a session needs: advance() is async and lets the promises each timer starts (a
 * reconnect, a negotiation step, an ack) run before the next timer fires, so a test can move an
 * hour forward in one call and see every step on the way.
 */
import { FakeTimers } from "../../kernel/timers.js";

export class KitClock extends FakeTimers {
  /**
   * Moves time forward by `ms`, firing due timers in order. Settles first (what a test just did
   * may arm timers) and after each timer.
   */
  // Async on purpose (FakeTimers.advance is sync): a kit test awaits it.
  override async advance(ms: number): Promise<void> {
    await settle();
    const target = this.current + ms;
    while (this.fireNext(target)) await settle();
    this.current = target;
    await settle();
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
