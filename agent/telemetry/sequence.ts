/**
 * Per-device sequence numbers that survive restarts and power loss without an fsync per reading.
 *
 * The counter reserves numbers in blocks: before handing out any number of a block it persists the
 * block's end (the high-water mark) atomically (tmp + fsync + rename + dir fsync). After a crash it
 * restarts from the persisted mark, so numbers handed out before the crash are never reused; the
 * unused rest of the block becomes a gap (gaps are allowed, reuse never). One durable write per
 * `blockSize` readings.
 *
 * The write is synchronous on purpose: it happens once per block (default 1000 readings), it keeps
 * `next()` synchronous for the sampler, and it can never interleave with another reservation.
 *
 * If the file is unreadable or corrupt (it cannot be torn by a power cut, but a disk can fail or a
 * person can edit it) the counter restarts at max(floor, Date.now()) and logs an error: a device
 * would need to have produced more than one reading per millisecond since 1970 for that to reuse a
 * number.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { SequenceError } from "./errors.js";
import { writeFileAtomic } from "../../kernel/fsutil.js";

export interface SequenceSource {
  /** Returns the next number; strictly greater than every number returned before, in any process lifetime. */
  next(): number;
}

export interface SequenceCounterOptions {
  /** File holding the high-water mark, e.g. <dataDir>/telemetry/sequence.json. */
  path: string;
  /** Numbers reserved per durable write. */
  blockSize?: number;
  /** Lowest number to hand out (e.g. the highest seq found in the spool + 1). */
  floor?: number;
  logger?: Logger;
  /** Wall clock used only for the corrupt-file fallback. */
  now?: () => number;
}

export const DEFAULT_SEQUENCE_BLOCK = 1000;
/** The counter file's format (docs/update.md, "Data formats"). */
export const SEQUENCE_FORMAT = 1;
const FORMAT = SEQUENCE_FORMAT;

export class SequenceCounter implements SequenceSource {
  private nextValue = 0;
  private reservedUpTo = 0; // exclusive: numbers < reservedUpTo are covered by the persisted mark
  private opened = false;
  private readonly blockSize: number;
  private readonly logger: Logger;

  constructor(private readonly options: SequenceCounterOptions) {
    this.blockSize = options.blockSize ?? DEFAULT_SEQUENCE_BLOCK;
    if (!Number.isSafeInteger(this.blockSize) || this.blockSize < 1)
      throw new SequenceError("sequence_options", "blockSize must be a positive integer", {
        blockSize: this.blockSize,
      });
    this.logger = options.logger ?? silentLogger;
  }

  /** Loads the persisted mark. Must be called once before next(). */
  open(): void {
    const { path } = this.options;
    const floor = this.options.floor ?? 0;
    let start = floor;
    let raw: string | undefined;
    try {
      raw = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        throw new SequenceError("sequence_unreadable", `cannot read sequence file ${path}`, { path }, { cause: err });
    }
    if (raw !== undefined) {
      const mark = parseMark(raw);
      if (mark === undefined) {
        start = Math.max(floor, (this.options.now ?? Date.now)());
        this.logger.error("sequence file corrupt; restarting from the wall clock to avoid reuse", { path, start });
      } else start = Math.max(floor, mark);
    }
    mkdirSync(dirname(path), { recursive: true });
    this.nextValue = start;
    this.reservedUpTo = start;
    this.opened = true;
    this.reserve();
  }

  next(): number {
    if (!this.opened) throw new SequenceError("sequence_closed", "sequence counter used before open()", {});
    if (this.nextValue >= this.reservedUpTo) this.reserve();
    return this.nextValue++;
  }

  /** The persisted high-water mark: after a crash the counter restarts here. */
  get highWaterMark(): number {
    return this.reservedUpTo;
  }

  private reserve(): void {
    const mark = this.nextValue + this.blockSize;
    if (!Number.isSafeInteger(mark)) throw new SequenceError("sequence_exhausted", "sequence numbers exhausted", {});
    try {
      writeFileAtomic(this.options.path, `${JSON.stringify({ format: FORMAT, next: mark })}\n`);
    } catch (err) {
      // Handing out numbers that are not covered by a durable mark could reuse them after a crash.
      this.logger.error("cannot persist sequence mark", { path: this.options.path, error: describeError(err) });
      throw new SequenceError(
        "sequence_persist_failed",
        `cannot persist sequence mark to ${this.options.path}`,
        { path: this.options.path },
        { cause: err },
      );
    }
    this.reservedUpTo = mark;
  }
}

function parseMark(raw: string): number | undefined {
  try {
    const v = JSON.parse(raw) as { format?: unknown; next?: unknown };
    if (v.format === FORMAT && typeof v.next === "number" && Number.isSafeInteger(v.next) && v.next >= 0) return v.next;
  } catch {
    // Falls through to "corrupt": the caller logs it with the path.
  }
  return undefined;
}

/** In-memory counter for tests and for running without a data dir (numbers restart at `start`). */
export class MemorySequence implements SequenceSource {
  constructor(private value = 0) {}
  next(): number {
    return this.value++;
  }
}
