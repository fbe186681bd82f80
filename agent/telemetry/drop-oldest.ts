/**
 * The drop-oldest overflow policy, shared by both spool stores: which batches go, and how a drop is
 * counted and reported. Each store then removes the picked batches its own way (the memory store
 * forgets them; the file store writes one ack record first, so they stay gone after a restart).
 */
import type { Logger } from "../../kernel/log.js";
import type { DropInfo, SpoolStats } from "./spool.js";

/** What drop-oldest needs to know of one stored batch. */
export interface DropCandidate {
  firstSeq: number;
  lastSeq: number;
  readings: number;
  /** What removing the batch frees, in the store's own byte accounting. */
  bytes: number;
}

/**
 * The oldest batches whose removal frees at least `bytesToFree`, as a contiguous prefix of
 * `oldestFirst`, and the seq range and counts they hold. Nothing is picked when nothing needs to go.
 */
export function pickOldest<T>(
  oldestFirst: Iterable<T>,
  bytesToFree: number,
  describe: (entry: T) => DropCandidate,
): { picked: T[]; info: DropInfo } {
  const info: DropInfo = { batches: 0, readings: 0, firstSeq: -1, lastSeq: -1 };
  const picked: T[] = [];
  let freed = 0;
  for (const entry of oldestFirst) {
    if (freed >= bytesToFree) break;
    const c = describe(entry);
    if (info.firstSeq < 0) info.firstSeq = c.firstSeq;
    info.lastSeq = c.lastSeq;
    info.batches++;
    info.readings += c.readings;
    freed += c.bytes;
    picked.push(entry);
  }
  return { picked, info };
}

export interface DropReport {
  counters: SpoolStats;
  logger: Logger;
  maxBytes: number;
  onDrop: ((info: DropInfo) => void) | undefined;
}

/**
 * Counts a drop the store has carried out and tells the operator (warn log) and the owner (onDrop):
 * readings that were never published are gone, and subscribers will see a gap in `seq`.
 */
export function reportDrop(info: DropInfo, to: DropReport): void {
  if (info.batches === 0) return;
  to.counters.droppedBatches += info.batches;
  to.counters.droppedReadings += info.readings;
  to.logger.warn("spool full: dropped oldest readings", { ...info, maxBytes: to.maxBytes });
  to.onDrop?.(info);
}
