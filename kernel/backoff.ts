/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * delay = random(0, min(cap, base * factor^attempt)). Full jitter spreads a fleet that lost its
 * server at the same instant, so it does not come back as a reconnect storm.
 */
export interface BackoffOptions {
  /** First ceiling, in ms. */
  initialDelayMs: number;
  /** Ceiling never exceeded, in ms. */
  maxDelayMs: number;
  /** Growth of the ceiling per attempt. */
  factor: number;
  /** Lower bound for any delay, in ms, so a zero draw never makes a tight loop. */
  minDelayMs?: number;
}

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const { initialDelayMs, maxDelayMs, factor, minDelayMs = 100 } = this.options;
    const ceiling = Math.min(maxDelayMs, initialDelayMs * factor ** Math.min(this.attempt, 64));
    this.attempt++;
    return Math.max(minDelayMs, Math.floor(this.random() * ceiling));
  }

  reset(): void {
    this.attempt = 0;
  }
}
