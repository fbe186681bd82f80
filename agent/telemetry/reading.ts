/**
 * The reading model: one value of one channel at one instant. Field names follow the data model of
 * the (retracted) XEP-0323 - name, value, unit, timestamp, status flags - without claiming
 * compliance. `seq` is the device-wide sequence number (see sequence.ts): unique per device, never
 * reused, increasing in sampling order, with gaps allowed (after a crash, or a dropped batch).
 */
import { ReadingError } from "./errors.js";

export type ReadingValue = number | boolean | string;

/** good: a fresh read; stale: the source returned an old/cached value; error: the read failed. */
export type ReadingQuality = "good" | "stale" | "error";
export const QUALITIES: readonly ReadingQuality[] = ["good", "stale", "error"];

export interface Reading {
  /** Per-device monotonic sequence number, a safe non-negative integer. */
  seq: number;
  /** Channel id from the board config, e.g. "temp0". */
  channelId: string;
  /** The value; null only when quality is not "good" (a failed read has no value). */
  value: ReadingValue | null;
  /** Unit symbol, e.g. "°C", "%", "V". Absent for unitless values. */
  unit?: string;
  /** When the value was sampled, ms since the Unix epoch (UTC). */
  timestamp: number;
  quality: ReadingQuality;
  /** True when the reading is replayed from the spool after a restart rather than sent live. */
  historical?: boolean;
}

/** Channel ids double as XML attribute values and log keys: keep them short and printable. */
export const CHANNEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
export const MAX_UNIT_LENGTH = 32;
export const MAX_STRING_VALUE_LENGTH = 1024;
/** 0001-01-01 .. 9999-12-31: what an ISO 8601 four-digit year can say. */
const MIN_TS = -62135596800000;
const MAX_TS = 253402300799999;

function fail(reason: string, reading: unknown, extra: Record<string, unknown> = {}): never {
  const seq = typeof reading === "object" && reading !== null ? (reading as { seq?: unknown }).seq : undefined;
  throw new ReadingError("reading_invalid", `invalid reading: ${reason}`, { reason, seq, ...extra });
}

/** Throws ReadingError (code "reading_invalid") unless `r` is a well-formed reading. */
export function assertReading(r: unknown): asserts r is Reading {
  if (typeof r !== "object" || r === null) fail("not an object", r);
  const x = r as Record<string, unknown>;
  if (typeof x.seq !== "number" || !Number.isSafeInteger(x.seq) || x.seq < 0)
    fail("seq must be a non-negative safe integer", r, { got: x.seq });
  if (typeof x.channelId !== "string" || !CHANNEL_ID_PATTERN.test(x.channelId))
    fail(`channelId must match ${CHANNEL_ID_PATTERN.source}`, r, { got: x.channelId });
  if (typeof x.quality !== "string" || !(QUALITIES as readonly string[]).includes(x.quality))
    fail("quality must be good, stale or error", r, { got: x.quality });
  const v = x.value;
  if (v === null) {
    if (x.quality === "good") fail("a good reading needs a value", r);
  } else if (typeof v === "number") {
    if (!Number.isFinite(v)) fail("numeric value must be finite", r, { got: String(v) });
  } else if (typeof v === "string") {
    if (v.length > MAX_STRING_VALUE_LENGTH) fail(`string value longer than ${MAX_STRING_VALUE_LENGTH}`, r);
    // XML 1.0 cannot carry most control characters, so they could never be published.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(v)) fail("string value has control characters", r);
  } else if (typeof v !== "boolean") {
    fail("value must be a number, boolean, string or null", r, { got: typeof v });
  }
  if (x.unit !== undefined) {
    if (typeof x.unit !== "string" || x.unit.length === 0 || x.unit.length > MAX_UNIT_LENGTH || /[\s<>&"]/.test(x.unit))
      fail(`unit must be 1-${MAX_UNIT_LENGTH} printable characters without spaces`, r, { got: x.unit });
  }
  if (typeof x.timestamp !== "number" || !Number.isInteger(x.timestamp) || x.timestamp < MIN_TS || x.timestamp > MAX_TS)
    fail("timestamp must be integer ms since the epoch within years 1-9999", r, { got: x.timestamp });
  if (x.historical !== undefined && typeof x.historical !== "boolean") fail("historical must be a boolean", r);
}

/** A batch is non-empty and strictly increasing in seq, which is what makes its item id stable. */
export function assertBatch(readings: readonly Reading[]): void {
  if (!Array.isArray(readings) || readings.length === 0)
    throw new ReadingError("reading_invalid", "invalid batch: empty", { reason: "empty batch" });
  let prev = -1;
  for (const r of readings) {
    assertReading(r);
    if (r.seq <= prev)
      throw new ReadingError("reading_invalid", "invalid batch: seq not strictly increasing", {
        reason: "seq order",
        seq: r.seq,
        previous: prev,
      });
    prev = r.seq;
  }
}
