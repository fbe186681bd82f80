/**
 * Groups readings into batches - one batch becomes one spool record and one pubsub item - cut by
 * count (maxReadings) or by the age of its oldest reading (maxAgeMs), whichever comes first.
 *
 * Trade-off (docs/spool.md): a reading is durable only once its batch reached the spool, so
 * maxAgeMs is also the longest time a reading lives in RAM only. maxReadings=1 (or maxAgeMs=0)
 * spools every reading at once.
 *
 * Bounded: batches wait for the sink (the spool append) one at a time; when more than
 * maxQueuedBatches are waiting (the disk stalls), the oldest waiting batch is dropped, counted and
 * logged, so a stuck disk cannot grow memory without limit.
 */
import { EventEmitter } from "node:events";
import { AgentError, describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import type { Reading } from "./reading.js";

export interface BatcherOptions {
  /** Receives each batch in order; normally spool.append followed by publisher.notify. */
  sink: (readings: Reading[]) => Promise<void>;
  maxReadings?: number;
  maxAgeMs?: number;
  maxQueuedBatches?: number;
  timers?: Timers;
  logger?: Logger;
}

export const BATCHER_DEFAULTS = { maxReadings: 50, maxAgeMs: 1000, maxQueuedBatches: 16 };

export interface BatcherStats {
  pendingReadings: number;
  queuedBatches: number;
  flushedBatches: number;
  flushedReadings: number;
  /** Readings dropped because the sink fell behind by more than maxQueuedBatches. */
  droppedReadings: number;
  /** Readings the sink refused (spool full under reject-new, I/O error). */
  failedReadings: number;
}

export interface BatcherEvents {
  failure: [err: AgentError];
}

export class Batcher extends EventEmitter<BatcherEvents> {
  private readonly maxReadings: number;
  private readonly maxAgeMs: number;
  private readonly maxQueued: number;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private current: Reading[] = [];
  private ageTimer: TimerHandle | undefined;
  private readonly queue: Reading[][] = [];
  private draining: Promise<void> | undefined;
  private readonly counters = { flushedBatches: 0, flushedReadings: 0, droppedReadings: 0, failedReadings: 0 };

  constructor(private readonly options: BatcherOptions) {
    super();
    this.maxReadings = Math.max(1, options.maxReadings ?? BATCHER_DEFAULTS.maxReadings);
    this.maxAgeMs = Math.max(0, options.maxAgeMs ?? BATCHER_DEFAULTS.maxAgeMs);
    this.maxQueued = Math.max(1, options.maxQueuedBatches ?? BATCHER_DEFAULTS.maxQueuedBatches);
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "telemetry-batcher" });
  }

  add(reading: Reading): void {
    this.current.push(reading);
    if (this.current.length >= this.maxReadings || this.maxAgeMs === 0) this.cut();
    else if (!this.ageTimer) this.ageTimer = this.timers.setTimeout(() => this.cut(), this.maxAgeMs);
  }

  /** Cuts the current batch and resolves when every batch so far reached the sink. */
  async flush(): Promise<void> {
    this.cut();
    while (this.draining) await this.draining;
  }

  /** Flushes and stops the age timer; call before closing the spool. */
  async stop(): Promise<void> {
    await this.flush();
    this.ageTimer?.cancel();
    this.ageTimer = undefined;
  }

  stats(): BatcherStats {
    return { pendingReadings: this.current.length, queuedBatches: this.queue.length, ...this.counters };
  }

  private cut(): void {
    this.ageTimer?.cancel();
    this.ageTimer = undefined;
    if (this.current.length === 0) return;
    this.queue.push(this.current);
    this.current = [];
    if (this.queue.length > this.maxQueued) {
      const dropped = this.queue.shift()!;
      this.counters.droppedReadings += dropped.length;
      this.logger.warn("spool is not keeping up; dropped the oldest waiting batch", {
        readings: dropped.length,
        firstSeq: dropped[0]!.seq,
        maxQueuedBatches: this.maxQueued,
      });
    }
    if (!this.draining) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (let b = this.queue.shift(); b; b = this.queue.shift()) {
        try {
          await this.options.sink(b);
          this.counters.flushedBatches++;
          this.counters.flushedReadings += b.length;
        } catch (err) {
          this.counters.failedReadings += b.length;
          const e =
            err instanceof AgentError
              ? err
              : new AgentError("batch_sink_failed", "storing a batch failed", {}, { cause: err });
          this.logger.error("batch not stored", { readings: b.length, firstSeq: b[0]!.seq, error: describeError(e) });
          this.emit("failure", e);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }
}
