/**
 * Refusals in the audit trail cost the sender, not the device: per sender (bare JID) the first
 * `perSenderPerMinute` refusals of each minute are written in full; the rest of that minute are
 * counted and written as one summary line when the minute ends (how many, and the first few node
 * names, bounded). Senders are tracked in a bounded map; past `maxSenders` in one minute the rest
 * share one "(other senders)" summary. Nothing is silently lost: every refusal is in a line or a
 * count.
 */
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { type AuditRecord, type AuditSink, boundRecord } from "./audit.js";

export interface RefusalThrottleOptions {
  sink: AuditSink;
  perSenderPerMinute: number;
  /** Senders tracked at once; beyond, refusals are summed under "(other senders)". */
  maxSenders?: number;
  timers?: Timers;
}

interface SenderWindow {
  written: number;
  suppressed: number;
  /** A few node names of the suppressed refusals, for whoever reads the summary. */
  nodes: Set<string>;
}

const OTHER = "(other senders)";
const WINDOW_MS = 60_000;

export class RefusalThrottle implements AuditSink {
  private readonly timers: Timers;
  private windows = new Map<string, SenderWindow>();
  private timer: TimerHandle | undefined;
  readonly stats = { written: 0, suppressed: 0 };

  constructor(private readonly opts: RefusalThrottleOptions) {
    this.timers = opts.timers ?? realTimers;
  }

  record(r: AuditRecord): void {
    const bare = r.requester.split("/")[0] ?? r.requester;
    let key = bare;
    if (!this.windows.has(key) && this.windows.size >= (this.opts.maxSenders ?? 1000)) key = OTHER;
    let w = this.windows.get(key);
    if (!w) {
      w = { written: 0, suppressed: 0, nodes: new Set() };
      this.windows.set(key, w);
    }
    this.timer ??= this.timers.setTimeout(() => this.closeWindow(), WINDOW_MS);
    if (key !== OTHER && w.written < this.opts.perSenderPerMinute) {
      w.written++;
      this.stats.written++;
      this.opts.sink.record(r);
      return;
    }
    w.suppressed++;
    this.stats.suppressed++;
    if (w.nodes.size < 5) w.nodes.add(boundRecord(r).node);
  }

  /** Writes the summaries of the current minute now (stop, tests). */
  flush(): void {
    this.timer?.cancel();
    this.closeWindow();
  }

  private closeWindow(): void {
    this.timer = undefined;
    const windows = this.windows;
    this.windows = new Map();
    for (const [requester, w] of windows) {
      if (w.suppressed === 0) continue;
      this.opts.sink.record({
        t: new Date(this.timers.now()).toISOString(),
        requester,
        node: [...w.nodes].join(" "),
        action: "*",
        outcome: "forbidden",
        durationMs: 0,
        reason: `${w.suppressed} more refused requests in this minute, not written one by one (first nodes above)`,
      });
    }
  }
}
