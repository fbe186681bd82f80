/**
 * Store-and-forward spool: readings wait here, in batches, until the server acknowledged them.
 *
 * The unit of storage is the batch handed to append(): it becomes exactly one pubsub item, and its
 * first/last sequence numbers name the item (`r-<first>-<last>`). Keeping batch boundaries in the
 * store is what makes a re-publish after a crash or a failed stream resumption produce the same
 * item id, so the node overwrites the item instead of holding it twice.
 *
 * Two implementations share this contract (test/contracts/spool-store.ts):
 * - MemorySpoolStore: bounded, lost on restart; for tests and for devices without writable storage.
 * - FileSpoolStore (file-spool.ts): append-only CRC-checked segments, crash-safe; see docs/spool.md.
 */
import { type Logger, silentLogger } from "../../kernel/log.js";
import { SPOOL_DEFAULTS, type SpoolConfig } from "./config.js";
import { pickOldest, reportDrop } from "./drop-oldest.js";
import { SpoolError } from "./errors.js";
import { assertBatch, type Reading } from "./reading.js";
import { encodeBatch } from "./spool-record.js";

export type OverflowPolicy = SpoolConfig["overflow"];

export interface SpoolBatch {
  /** The batch's key for ack(): its first sequence number. */
  id: number;
  firstSeq: number;
  lastSeq: number;
  /** Readings in seq order; `historical` is set on each when the batch was replayed after a restart. */
  readings: Reading[];
  historical: boolean;
}

export type AckTarget = { upToSeq: number } | { ids: readonly number[] };

export interface SpoolStats {
  /** Unacknowledged batches / readings held. */
  batches: number;
  readings: number;
  /** Bytes the store occupies (for the file store: segment files on disk, including acked records not yet reclaimed). */
  bytes: number;
  maxBytes: number;
  /** Since this store was opened. */
  appendedBatches: number;
  /** Readings thrown away by the drop-oldest policy (never published). */
  droppedReadings: number;
  droppedBatches: number;
  /** Readings refused by the reject-new policy (append threw spool_full). */
  rejectedReadings: number;
  /** Corrupt tails truncated at open, and the bytes they held. */
  corruptTails: number;
  corruptBytes: number;
  /** Batches found unreadable after they were stored (disk rot); they are skipped and counted. */
  unreadableBatches: number;
}

export interface DropInfo {
  batches: number;
  readings: number;
  firstSeq: number;
  lastSeq: number;
}

export interface SpoolStore {
  /**
   * Stores one batch (non-empty, seq strictly increasing, first seq above every seq stored before).
   * Resolves once stored under the store's durability policy. Rejects with SpoolError:
   * `spool_full` (reject-new policy), `spool_record_too_large`, `spool_out_of_order`, `spool_closed`,
   * `spool_io`; or ReadingError `reading_invalid`. A rejected append stores nothing.
   */
  append(readings: readonly Reading[]): Promise<void>;
  /** Up to `max` unacknowledged batches, oldest first; only those whose firstSeq > afterSeq when given. */
  peek(max: number, afterSeq?: number): Promise<SpoolBatch[]>;
  /** Removes acknowledged batches; resolves with how many were removed (unknown ids are ignored). */
  ack(target: AckTarget): Promise<number>;
  stats(): SpoolStats;
  /** Highest seq ever stored in this spool (including on disk from earlier runs); -1 if none. */
  readonly lastSeq: number;
  close(): Promise<void>;
}

export interface SpoolCommonOptions {
  /** Upper bound of the store's size in bytes. */
  maxBytes?: number;
  overflow?: OverflowPolicy;
  /** Largest single batch record accepted. */
  maxRecordBytes?: number;
  logger?: Logger;
  /** Called after drop-oldest threw batches away, so the owner can report it. */
  onDrop?: (info: DropInfo) => void;
}

export function emptyStats(maxBytes: number): SpoolStats {
  return {
    batches: 0,
    readings: 0,
    bytes: 0,
    maxBytes,
    appendedBatches: 0,
    droppedReadings: 0,
    droppedBatches: 0,
    rejectedReadings: 0,
    corruptTails: 0,
    corruptBytes: 0,
    unreadableBatches: 0,
  };
}

/** Validation shared by both stores; returns the encoded record. */
export function prepareAppend(readings: readonly Reading[], lastSeq: number, maxRecordBytes: number): Buffer {
  assertBatch(readings);
  const first = readings[0]!.seq;
  if (first <= lastSeq)
    throw new SpoolError(
      "spool_out_of_order",
      `batch starts at seq ${first}, not above the last stored seq ${lastSeq}`,
      {
        firstSeq: first,
        lastSeq,
      },
    );
  const rec = encodeBatch(readings);
  if (rec.length > maxRecordBytes)
    throw new SpoolError("spool_record_too_large", `batch record of ${rec.length} bytes exceeds ${maxRecordBytes}`, {
      bytes: rec.length,
      maxRecordBytes,
    });
  return rec;
}

export function checkPeekArgs(max: number, afterSeq: number | undefined): void {
  if (!Number.isInteger(max) || max < 0) throw new SpoolError("spool_bad_argument", "peek max must be >= 0", { max });
  if (afterSeq !== undefined && !Number.isFinite(afterSeq))
    throw new SpoolError("spool_bad_argument", "peek afterSeq must be a number", { afterSeq });
}

export function checkAckTarget(target: AckTarget): void {
  if ("upToSeq" in target) {
    if (!Number.isFinite(target.upToSeq))
      throw new SpoolError("spool_bad_argument", "ack upToSeq must be a number", { upToSeq: target.upToSeq });
  } else if (!Array.isArray(target.ids) || !target.ids.every((i) => Number.isSafeInteger(i) && i >= 0)) {
    throw new SpoolError("spool_bad_argument", "ack ids must be non-negative integers", {});
  }
}

interface MemEntry {
  batch: SpoolBatch;
  bytes: number;
}

/**
 * In-memory spool with the same bound and overflow policy as the file store. Byte accounting uses
 * the file store's record size so one config value means the same in both.
 */
export class MemorySpoolStore implements SpoolStore {
  private readonly entries = new Map<number, MemEntry>();
  private readonly maxBytes: number;
  private readonly overflow: OverflowPolicy;
  private readonly maxRecordBytes: number;
  private readonly logger: Logger;
  private readonly counters: SpoolStats;
  private bytes = 0;
  private readingCount = 0;
  private closed = false;
  lastSeq = -1;

  constructor(private readonly options: SpoolCommonOptions = {}) {
    this.maxBytes = options.maxBytes ?? SPOOL_DEFAULTS.maxBytes;
    this.overflow = options.overflow ?? SPOOL_DEFAULTS.overflow;
    this.maxRecordBytes = Math.min(options.maxRecordBytes ?? SPOOL_DEFAULTS.maxRecordBytes, this.maxBytes);
    this.logger = options.logger ?? silentLogger;
    this.counters = emptyStats(this.maxBytes);
  }

  async append(readings: readonly Reading[]): Promise<void> {
    this.assertOpen();
    const rec = prepareAppend(readings, this.lastSeq, this.maxRecordBytes);
    if (this.bytes + rec.length > this.maxBytes) {
      if (this.overflow === "reject-new") {
        this.counters.rejectedReadings += readings.length;
        throw new SpoolError("spool_full", "spool is full (overflow policy reject-new)", {
          bytes: this.bytes,
          maxBytes: this.maxBytes,
          readings: readings.length,
        });
      }
      this.dropOldest(rec.length);
    }
    const first = readings[0]!.seq;
    const last = readings[readings.length - 1]!.seq;
    this.entries.set(first, {
      batch: {
        id: first,
        firstSeq: first,
        lastSeq: last,
        readings: readings.map((r) => ({ ...r })),
        historical: false,
      },
      bytes: rec.length,
    });
    this.bytes += rec.length;
    this.readingCount += readings.length;
    this.counters.appendedBatches++;
    this.lastSeq = last;
  }

  async peek(max: number, afterSeq?: number): Promise<SpoolBatch[]> {
    this.assertOpen();
    checkPeekArgs(max, afterSeq);
    const out: SpoolBatch[] = [];
    for (const { batch } of this.entries.values()) {
      if (out.length >= max) break;
      if (afterSeq !== undefined && batch.firstSeq <= afterSeq) continue;
      out.push({ ...batch, readings: batch.readings.map((r) => ({ ...r })) });
    }
    return out;
  }

  async ack(target: AckTarget): Promise<number> {
    this.assertOpen();
    checkAckTarget(target);
    let removed = 0;
    if ("upToSeq" in target) {
      for (const [id, e] of this.entries) {
        if (e.batch.lastSeq > target.upToSeq) break;
        this.remove(id, e);
        removed++;
      }
    } else {
      for (const id of target.ids) {
        const e = this.entries.get(id);
        if (e) {
          this.remove(id, e);
          removed++;
        }
      }
    }
    return removed;
  }

  stats(): SpoolStats {
    return { ...this.counters, batches: this.entries.size, readings: this.readingCount, bytes: this.bytes };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private remove(id: number, e: MemEntry): void {
    this.entries.delete(id);
    this.bytes -= e.bytes;
    this.readingCount -= e.batch.readings.length;
  }

  private dropOldest(needed: number): void {
    const { picked, info } = pickOldest(this.entries.values(), this.bytes + needed - this.maxBytes, (e) => ({
      firstSeq: e.batch.firstSeq,
      lastSeq: e.batch.lastSeq,
      readings: e.batch.readings.length,
      bytes: e.bytes,
    }));
    for (const e of picked) this.remove(e.batch.id, e);
    reportDrop(info, {
      counters: this.counters,
      logger: this.logger,
      maxBytes: this.maxBytes,
      onDrop: this.options.onDrop,
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new SpoolError("spool_closed", "spool store is closed", {});
  }
}
