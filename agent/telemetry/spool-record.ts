/**
 * On-disk record framing of the file spool, also used by the memory spool to account bytes the same way.
 *
 *   frame   = length:u32le  crc:u32le  payload[length]      crc = CRC-32 of payload
 *   payload = type:u8 ...
 *     type 1 (batch):   firstSeq:u64le lastSeq:u64le count:u32le json
 *                       json = [[seq, channelId, value, unit|null, timestampMs, "g"|"s"|"e"], ...]
 *     type 2 (ack-to):  upToSeq:u64le        every batch with lastSeq <= upToSeq is gone
 *     type 3 (ack-ids): count:u32le id:u64le*count   batches with these ids (= firstSeq) are gone
 *
 * The batch header repeats firstSeq/lastSeq/count in binary so a restart can rebuild its index
 * without parsing JSON. A frame whose CRC does not match, or whose length runs past the end of the
 * file, is where the good part of a segment ends.
 */
import { crc32 } from "./crc32.js";
import { SpoolError } from "./errors.js";
import { assertReading, type Reading, type ReadingQuality } from "./reading.js";

export const FRAME_HEADER = 8;
export const SEGMENT_MAGIC = Buffer.from("ISPOOL01", "latin1");
/** No frame on disk is ever this large; a larger length field is garbage. */
export const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;

export const REC_BATCH = 1;
export const REC_ACK_TO = 2;
export const REC_ACK_IDS = 3;

const Q_OUT: Record<ReadingQuality, string> = { good: "g", stale: "s", error: "e" };
const Q_IN: Record<string, ReadingQuality> = { g: "good", s: "stale", e: "error" };

export function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  payload.copy(out, FRAME_HEADER);
  return out;
}

export function encodeBatch(readings: readonly Reading[]): Buffer {
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  const json = Buffer.from(
    JSON.stringify(readings.map((r) => [r.seq, r.channelId, r.value, r.unit ?? null, r.timestamp, Q_OUT[r.quality]])),
  );
  const head = Buffer.allocUnsafe(1 + 8 + 8 + 4);
  head.writeUInt8(REC_BATCH, 0);
  head.writeBigUInt64LE(BigInt(first.seq), 1);
  head.writeBigUInt64LE(BigInt(last.seq), 9);
  head.writeUInt32LE(readings.length, 17);
  return frame(Buffer.concat([head, json]));
}

export function encodeAckTo(upToSeq: number): Buffer {
  const p = Buffer.allocUnsafe(9);
  p.writeUInt8(REC_ACK_TO, 0);
  p.writeBigUInt64LE(BigInt(upToSeq), 1);
  return frame(p);
}

export function encodeAckIds(ids: readonly number[]): Buffer {
  const p = Buffer.allocUnsafe(5 + 8 * ids.length);
  p.writeUInt8(REC_ACK_IDS, 0);
  p.writeUInt32LE(ids.length, 1);
  for (const [i, id] of ids.entries()) p.writeBigUInt64LE(BigInt(id), 5 + 8 * i);
  return frame(p);
}

export type DecodedHead =
  | { type: typeof REC_BATCH; firstSeq: number; lastSeq: number; count: number }
  | { type: typeof REC_ACK_TO; upToSeq: number }
  | { type: typeof REC_ACK_IDS; ids: number[] };

function u64(p: Buffer, off: number): number {
  const v = p.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("u64 beyond safe integer");
  return Number(v);
}

/** Reads the fixed part of a payload whose CRC already matched; returns undefined if it makes no sense. */
export function decodeHead(p: Buffer): DecodedHead | undefined {
  try {
    const type = p.readUInt8(0);
    if (type === REC_BATCH) {
      if (p.length < 21) return undefined;
      const firstSeq = u64(p, 1);
      const lastSeq = u64(p, 9);
      const count = p.readUInt32LE(17);
      if (lastSeq < firstSeq || count < 1 || count > lastSeq - firstSeq + 1) return undefined;
      return { type, firstSeq, lastSeq, count };
    }
    if (type === REC_ACK_TO) return p.length === 9 ? { type, upToSeq: u64(p, 1) } : undefined;
    if (type === REC_ACK_IDS) {
      const n = p.readUInt32LE(1);
      if (p.length !== 5 + 8 * n) return undefined;
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push(u64(p, 5 + 8 * i));
      return { type, ids };
    }
  } catch {
    // A short or out-of-range payload is "makes no sense", reported by the caller with its offset.
  }
  return undefined;
}

/** Decodes the readings of a batch payload, validating each; throws SpoolError("spool_record_invalid"). */
export function decodeBatchReadings(p: Buffer, historical: boolean): Reading[] {
  let rows: unknown;
  try {
    rows = JSON.parse(p.subarray(21).toString("utf8"));
  } catch (err) {
    throw new SpoolError("spool_record_invalid", "spool batch record is not valid JSON", {}, { cause: err });
  }
  if (!Array.isArray(rows)) throw new SpoolError("spool_record_invalid", "spool batch record is not a list", {});
  return rows.map((row) => {
    if (!Array.isArray(row) || row.length !== 6)
      throw new SpoolError("spool_record_invalid", "spool batch row has the wrong shape", {});
    const [seq, channelId, value, unit, timestamp, q] = row as unknown[];
    const r: Reading = {
      seq: seq as number,
      channelId: channelId as string,
      value: value as Reading["value"],
      timestamp: timestamp as number,
      quality: Q_IN[q as string] ?? ("?" as ReadingQuality),
      historical,
    };
    if (unit !== null) r.unit = unit as string;
    try {
      assertReading(r);
    } catch (err) {
      throw new SpoolError("spool_record_invalid", "spool batch row is not a valid reading", {}, { cause: err });
    }
    return r;
  });
}
