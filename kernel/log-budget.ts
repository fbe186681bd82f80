/**
 * Rate-limits one kind of log line that an outsider can trigger (a skipped stanza, a dropped
 * flood): the first `perWindow` occurrences of each window are logged in full; the rest are only
 * counted, and the next line logged carries how many were left out. Totals belong in counters
 * (status), not in the log: a flood must not fill the device's journal.
 */
import { realTimers, type Timers } from "./timers.js";

export class LogBudget {
  private windowStart = Number.NEGATIVE_INFINITY;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly timers: Timers = realTimers,
  ) {}

  /**
   * Whether to log this occurrence; when yes, `suppressed` is how many were left out since the
   * last line logged (0 most of the time).
   */
  take(): { log: true; suppressed: number } | { log: false } {
    const now = this.timers.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perWindow) {
      this.suppressed++;
      return { log: false };
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { log: true, suppressed };
  }
}
