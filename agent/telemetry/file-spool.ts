/**
 * The crash-safe file spool (format in spool-record.ts, operations and trade-offs in docs/spool.md).
 *
 * Layout: <dir>/seg-0000000001.log, seg-0000000002.log, ... Each segment starts with an 8-byte magic
 * and holds frames: batch records and ack records. Appends go to the newest segment only; it rolls
 * over at `segmentBytes`. Space comes back in two ways:
 * - a fully acknowledged segment at the old end is unlinked (oldest first, so an ack record is
 *   never removed while the batch it acknowledges survives - see "why prefix-only" below);
 * - compaction copies the live batches into a fresh segment (tmp file, fsync, rename, dir fsync),
 *   then unlinks the old segments oldest first. A crash at any point leaves either the old
 *   segments, or the new one plus a suffix of the old ones; replay keeps one copy of each batch.
 *
 * Why prefix-only: acks arrive out of order (several publishes in flight), so an ack record in
 * segment N may acknowledge a batch in segment N-1. Deleting N while N-1 lives would resurrect that
 * batch after a restart (harmless - it is re-published under the same item id - but wasteful).
 *
 * Restart: every segment is scanned in order; the first frame that is short, too long, fails its
 * CRC or makes no sense ends the segment, which is truncated there (counted, logged, never fatal).
 * Batches that survive are replayed with `historical: true`.
 *
 * All operations run one at a time through a promise chain, so compaction never races an append.
 * Memory: an index entry per unacknowledged batch (~100 bytes); readings are read back from disk
 * when peeked, so a full 64 MiB spool does not sit in RAM.
 */
import { type FileHandle, mkdir, open, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { fsyncDir } from "../../kernel/fsutil.js";
import { SPOOL_DEFAULTS, type SpoolConfig } from "./config.js";
import { pickOldest, reportDrop } from "./drop-oldest.js";
import { SpoolError } from "./errors.js";
import type { Reading } from "./reading.js";
import {
  type AckTarget,
  checkAckTarget,
  checkPeekArgs,
  emptyStats,
  type OverflowPolicy,
  prepareAppend,
  type SpoolBatch,
  type SpoolCommonOptions,
  type SpoolStats,
  type SpoolStore,
} from "./spool.js";
import { crc32 } from "./crc32.js";
import {
  decodeBatchReadings,
  decodeHead,
  encodeAckIds,
  encodeAckTo,
  FRAME_HEADER,
  MAX_FRAME_PAYLOAD,
  REC_ACK_IDS,
  REC_ACK_TO,
  REC_BATCH,
  SEGMENT_MAGIC,
} from "./spool-record.js";

/**
 * always: fdatasync before append()/ack() resolve - a resolved append survives a power cut.
 * interval: write now, fdatasync every fsyncIntervalMs when something changed - a power cut loses at
 *   most that window (the OS may flush sooner); far fewer flash writes.
 * never: leave flushing to the OS (typically within 5-30 s); survives a process crash (SIGKILL),
 *   not a power cut.
 */
export type FsyncPolicy = SpoolConfig["fsync"];

export interface FileSpoolOptions extends SpoolCommonOptions {
  dir: string;
  /** A segment rolls over past this size; must be <= maxBytes / 4 so dropping frees space in steps. */
  segmentBytes?: number;
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  timers?: Timers;
}

interface Segment {
  id: number;
  path: string;
  size: number;
  /** Live (unacknowledged) batches stored in this segment. */
  live: number;
}

interface Meta {
  id: number;
  firstSeq: number;
  lastSeq: number;
  count: number;
  seg: number;
  offset: number;
  length: number;
  historical: boolean;
}

/** A segment size within a quarter of the bound, so dropping old data frees space in steps. */
export function fitSegmentBytes(segmentBytes: number, maxBytes: number): number {
  return Math.min(segmentBytes, Math.floor(maxBytes / 4));
}

const SEG_RE = /^seg-(\d{10})\.log$/;
const segName = (id: number) => `seg-${String(id).padStart(10, "0")}.log`;
const SCAN_CHUNK = 1024 * 1024;

export class FileSpoolStore implements SpoolStore {
  /** Opens (creating if needed) the spool in options.dir, recovering from any crash. */
  static async open(options: FileSpoolOptions): Promise<FileSpoolStore> {
    const s = new FileSpoolStore(options);
    await s.open();
    return s;
  }

  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly overflow: OverflowPolicy;
  private readonly maxRecordBytes: number;
  private readonly fsync: FsyncPolicy;
  private readonly logger: Logger;
  private readonly timers: Timers;
  private readonly counters: SpoolStats;

  private readonly segments = new Map<number, Segment>();
  private index = new Map<number, Meta>();
  private active: { seg: Segment; fh: FileHandle } | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private state: "new" | "open" | "closed" = "new";
  private dirty = false;
  private syncTimer: TimerHandle | undefined;
  private diskBytes = 0;
  private liveBytes = 0;
  private readingCount = 0;
  lastSeq = -1;

  constructor(private readonly options: FileSpoolOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? SPOOL_DEFAULTS.maxBytes;
    this.segmentBytes = options.segmentBytes ?? fitSegmentBytes(SPOOL_DEFAULTS.segmentBytes, this.maxBytes);
    this.overflow = options.overflow ?? SPOOL_DEFAULTS.overflow;
    this.maxRecordBytes = Math.min(options.maxRecordBytes ?? SPOOL_DEFAULTS.maxRecordBytes, this.segmentBytes);
    this.fsync = options.fsync ?? SPOOL_DEFAULTS.fsync;
    this.logger = options.logger ?? silentLogger;
    this.timers = options.timers ?? realTimers;
    this.counters = emptyStats(this.maxBytes);
    if (this.segmentBytes < 64 || this.segmentBytes * 4 > this.maxBytes)
      throw new SpoolError("spool_options", "segmentBytes must be >= 64 and <= maxBytes / 4", {
        segmentBytes: this.segmentBytes,
        maxBytes: this.maxBytes,
      });
  }

  // ---------------------------------------------------------------- public API

  async append(readings: readonly Reading[]): Promise<void> {
    this.assertOpen();
    const rec = prepareAppend(readings, this.lastSeq, this.maxRecordBytes);
    // Claimed at once, so a second append queued behind this one is checked against it.
    this.lastSeq = readings[readings.length - 1]!.seq;
    return this.run(async () => {
      await this.ensureSpace(rec.length, readings.length);
      await this.rollIfNeeded(rec.length);
      const seg = this.active!.seg;
      const offset = seg.size;
      await this.write(rec);
      const first = readings[0]!.seq;
      this.index.set(first, {
        id: first,
        firstSeq: first,
        lastSeq: readings[readings.length - 1]!.seq,
        count: readings.length,
        seg: seg.id,
        offset,
        length: rec.length,
        historical: false,
      });
      seg.live++;
      this.liveBytes += rec.length;
      this.readingCount += readings.length;
      this.counters.appendedBatches++;
      await this.durable();
    });
  }

  async peek(max: number, afterSeq?: number): Promise<SpoolBatch[]> {
    this.assertOpen();
    checkPeekArgs(max, afterSeq);
    return this.run(async () => {
      const picked: Meta[] = [];
      for (const m of this.index.values()) {
        if (picked.length >= max) break;
        if (afterSeq === undefined || m.firstSeq > afterSeq) picked.push(m);
      }
      const handles = new Map<number, FileHandle>();
      const out: SpoolBatch[] = [];
      const unreadable: number[] = [];
      try {
        for (const m of picked) {
          try {
            let fh = handles.get(m.seg);
            if (!fh) {
              fh = await open(this.segments.get(m.seg)!.path, "r");
              handles.set(m.seg, fh);
            }
            const payload = await readPayload(fh, m.offset, m.length);
            const readings = decodeBatchReadings(payload, m.historical);
            if (readings[0]?.seq !== m.firstSeq || readings.length !== m.count)
              throw new SpoolError("spool_record_invalid", "batch record does not match its header", {});
            out.push({ id: m.id, firstSeq: m.firstSeq, lastSeq: m.lastSeq, readings, historical: m.historical });
          } catch (err) {
            // Bytes that passed their CRC when written and fail now: the medium is failing. Skip the
            // batch (counted, logged) rather than block every later reading behind it.
            this.logger.error("spool batch unreadable; skipping it", { id: m.id, error: describeError(err) });
            unreadable.push(m.id);
          }
        }
      } finally {
        for (const fh of handles.values()) await fh.close();
      }
      if (unreadable.length > 0) {
        this.counters.unreadableBatches += unreadable.length;
        await this.removeIds(unreadable);
      }
      return out;
    });
  }

  async ack(target: AckTarget): Promise<number> {
    this.assertOpen();
    checkAckTarget(target);
    return this.run(async () => {
      let n: number;
      if ("upToSeq" in target) {
        const ids: number[] = [];
        for (const m of this.index.values()) {
          if (m.lastSeq > target.upToSeq) break;
          ids.push(m.id);
        }
        if (ids.length === 0) return 0;
        await this.rollIfNeeded(FRAME_HEADER + 9);
        await this.write(encodeAckTo(target.upToSeq));
        this.forget(ids);
        n = ids.length;
      } else {
        n = await this.removeIds(target.ids);
        if (n === 0) return 0;
      }
      await this.durable();
      await this.deleteDeadPrefix();
      return n;
    });
  }

  stats(): SpoolStats {
    return {
      ...this.counters,
      batches: this.index.size,
      readings: this.readingCount,
      bytes: this.diskBytes,
    };
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    await this.run(async () => {
      if (this.state === "closed") return;
      this.syncTimer?.cancel();
      this.syncTimer = undefined;
      const fh = this.active?.fh;
      this.active = undefined;
      this.state = "closed";
      if (fh) {
        try {
          // A clean stop flushes whatever the policy left pending, whatever the policy.
          if (this.dirty) await fh.datasync();
        } finally {
          await fh.close();
        }
      }
    });
  }

  // ---------------------------------------------------------------- open / recovery

  private async open(): Promise<void> {
    if (this.state !== "new") throw new SpoolError("spool_state", "spool already opened", { dir: this.dir });
    try {
      await mkdir(this.dir, { recursive: true });
      const names = await readdir(this.dir);
      const ids: number[] = [];
      for (const name of names) {
        if (name.startsWith(".seg-") && name.endsWith(".tmp")) {
          // An interrupted compaction: the old segments are still complete.
          await unlink(join(this.dir, name));
          continue;
        }
        const m = SEG_RE.exec(name);
        if (m) ids.push(Number(m[1]));
      }
      ids.sort((a, b) => a - b);
      for (const id of ids) await this.replaySegment(id);
      // Replay order is segment order; a compacted segment holds older batches than the segments
      // it survived, so sort to restore seq order.
      this.index = new Map([...this.index.entries()].sort((a, b) => a[0] - b[0]));
      for (const m of this.index.values()) {
        this.liveBytes += m.length;
        this.readingCount += m.count;
      }
      const last = [...this.segments.values()].at(-1);
      if (last && last.size < this.segmentBytes) {
        this.active = { seg: last, fh: await open(last.path, "a") };
      } else {
        await this.newSegment();
      }
      await this.deleteDeadPrefix();
    } catch (err) {
      if (this.active) await this.active.fh.close().catch(() => undefined);
      throw err instanceof SpoolError
        ? err
        : new SpoolError("spool_io", `cannot open spool in ${this.dir}`, { dir: this.dir }, { cause: err });
    }
    this.state = "open";
    if (this.fsync === "interval") {
      const ms = this.options.fsyncIntervalMs ?? SPOOL_DEFAULTS.fsyncIntervalMs;
      this.syncTimer = this.timers.setInterval(() => {
        if (!this.dirty || this.state !== "open") return;
        this.run(() => this.syncNow()).catch((err) =>
          this.logger.error("spool fsync failed", { dir: this.dir, error: describeError(err) }),
        );
      }, ms);
    }
    const st = this.stats();
    if (st.batches > 0 || st.corruptTails > 0)
      this.logger.info("spool opened", {
        dir: this.dir,
        batches: st.batches,
        readings: st.readings,
        bytes: st.bytes,
        corruptTails: st.corruptTails,
      });
  }

  private async replaySegment(id: number): Promise<void> {
    const path = join(this.dir, segName(id));
    const fh = await open(path, "r+");
    try {
      const size = (await fh.stat()).size;
      const head = Buffer.alloc(SEGMENT_MAGIC.length);
      await fh.read(head, 0, head.length, 0);
      if (size < SEGMENT_MAGIC.length || !head.equals(SEGMENT_MAGIC)) {
        const tornCreate =
          size < SEGMENT_MAGIC.length && SEGMENT_MAGIC.subarray(0, size).equals(head.subarray(0, size));
        if (!tornCreate) {
          // Not our format: keep the bytes for a human, out of the way.
          await fh.close();
          await rename(path, `${path}.corrupt`);
          this.counters.corruptTails++;
          this.counters.corruptBytes += size;
          this.logger.error("spool segment has a bad header; moved aside", { path, size });
          return;
        }
        await fh.truncate(0);
        await fh.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
        await fh.datasync();
        if (size > 0) this.noteCorrupt(path, 0, size);
        this.segments.set(id, { id, path, size: SEGMENT_MAGIC.length, live: 0 });
        this.diskBytes += SEGMENT_MAGIC.length;
        return;
      }
      const seg: Segment = { id, path, size, live: 0 };
      this.segments.set(id, seg);
      const reader = new ChunkReader(fh, size);
      let off = SEGMENT_MAGIC.length;
      while (off + FRAME_HEADER <= size) {
        const hdr = await reader.get(off, FRAME_HEADER);
        const len = hdr.readUInt32LE(0);
        const crc = hdr.readUInt32LE(4);
        if (len === 0 || len > MAX_FRAME_PAYLOAD || off + FRAME_HEADER + len > size) break;
        const payload = await reader.get(off + FRAME_HEADER, len);
        if (crc32(payload) !== crc) break;
        const rec = decodeHead(payload);
        if (!rec) break;
        if (rec.type === REC_BATCH) {
          const existing = this.index.get(rec.firstSeq);
          if (existing) {
            // A copy left by compaction: the newer copy wins so the old segment becomes reclaimable.
            this.segments.get(existing.seg)!.live--;
            existing.seg = id;
            existing.offset = off;
          } else {
            this.index.set(rec.firstSeq, {
              id: rec.firstSeq,
              firstSeq: rec.firstSeq,
              lastSeq: rec.lastSeq,
              count: rec.count,
              seg: id,
              offset: off,
              length: FRAME_HEADER + len,
              historical: true,
            });
          }
          seg.live++;
          if (rec.lastSeq > this.lastSeq) this.lastSeq = rec.lastSeq;
        } else if (rec.type === REC_ACK_TO) {
          for (const m of this.index.values()) if (m.lastSeq <= rec.upToSeq) this.dropMeta(m);
        } else if (rec.type === REC_ACK_IDS) {
          for (const i of rec.ids) {
            const m = this.index.get(i);
            if (m) this.dropMeta(m);
          }
        }
        off += FRAME_HEADER + len;
      }
      if (off < size) {
        await fh.truncate(off);
        await fh.datasync();
        this.noteCorrupt(path, off, size - off);
        seg.size = off;
      }
      this.diskBytes += seg.size;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private noteCorrupt(path: string, offset: number, bytes: number): void {
    this.counters.corruptTails++;
    this.counters.corruptBytes += bytes;
    this.logger.warn("spool segment had a corrupt tail; truncated to the last good record", { path, offset, bytes });
  }

  // ---------------------------------------------------------------- internals

  private run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(() => {
      if (this.state !== "open") throw new SpoolError("spool_closed", "spool store is closed", { dir: this.dir });
      return fn();
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  private assertOpen(): void {
    if (this.state !== "open") throw new SpoolError("spool_closed", "spool store is closed", { dir: this.dir });
  }

  /** Writes an ack-ids record for the live ones among `ids` and forgets them. Returns how many. */
  private async removeIds(ids: readonly number[]): Promise<number> {
    const live = [...new Set(ids)].filter((i) => this.index.has(i));
    if (live.length === 0) return 0;
    await this.rollIfNeeded(5 + 8 * live.length + FRAME_HEADER);
    await this.write(encodeAckIds(live));
    this.forget(live);
    return live.length;
  }

  private forget(ids: readonly number[]): void {
    for (const i of ids) {
      const m = this.index.get(i);
      if (!m) continue;
      this.dropMeta(m);
      this.liveBytes -= m.length;
      this.readingCount -= m.count;
    }
  }

  /** Removes an index entry (the caller adjusts byte/reading totals when not replaying). */
  private dropMeta(m: Meta): void {
    this.index.delete(m.id);
    const seg = this.segments.get(m.seg);
    if (seg) seg.live--;
  }

  private async write(buf: Buffer): Promise<void> {
    const { seg, fh } = this.active!;
    const before = seg.size;
    try {
      let done = 0;
      while (done < buf.length) done += (await fh.write(buf, done, buf.length - done)).bytesWritten;
    } catch (err) {
      // A torn frame would end every later replay at this point: cut it off before going on.
      await fh
        .truncate(before)
        .catch((e) =>
          this.logger.error("cannot truncate torn spool write", { path: seg.path, error: describeError(e) }),
        );
      throw new SpoolError("spool_io", `spool write failed in ${seg.path}`, { path: seg.path }, { cause: err });
    }
    seg.size += buf.length;
    this.diskBytes += buf.length;
    this.dirty = true;
  }

  private async durable(): Promise<void> {
    if (this.fsync === "always") await this.syncNow();
  }

  private async syncNow(): Promise<void> {
    if (!this.dirty || !this.active) return;
    this.dirty = false;
    try {
      await this.active.fh.datasync();
    } catch (err) {
      this.dirty = true;
      throw new SpoolError("spool_io", "spool fsync failed", { path: this.active.seg.path }, { cause: err });
    }
  }

  private async rollIfNeeded(incoming: number): Promise<void> {
    const seg = this.active!.seg;
    if (seg.size > SEGMENT_MAGIC.length && seg.size + incoming > this.segmentBytes) await this.newSegment();
  }

  private async newSegment(): Promise<void> {
    const lastId = [...this.segments.keys()].at(-1) ?? 0;
    const id = lastId + 1;
    const path = join(this.dir, segName(id));
    if (this.active) {
      // The old segment's tail must be durable before a newer segment can exist after a crash.
      await this.syncNow();
      await this.active.fh.close();
      this.active = undefined;
    }
    const fh = await open(path, "a");
    await fh.write(SEGMENT_MAGIC);
    if (this.fsync !== "never") {
      await fh.datasync();
      await fsyncDir(this.dir);
    }
    const seg: Segment = { id, path, size: SEGMENT_MAGIC.length, live: 0 };
    this.segments.set(id, seg);
    this.diskBytes += seg.size;
    this.active = { seg, fh };
  }

  /** Unlinks fully acknowledged segments at the old end (never the active one). */
  private async deleteDeadPrefix(): Promise<void> {
    let removed = false;
    for (const seg of this.segments.values()) {
      if (seg === this.active?.seg || seg.live > 0) break;
      await unlink(seg.path);
      this.segments.delete(seg.id);
      this.diskBytes -= seg.size;
      removed = true;
    }
    if (removed && this.fsync !== "never") await fsyncDir(this.dir);
  }

  private async ensureSpace(needed: number, readings: number): Promise<void> {
    const fits = () => this.diskBytes + needed <= this.maxBytes;
    if (fits()) return;
    await this.deleteDeadPrefix();
    if (fits()) return;
    const waste = this.diskBytes - this.liveBytes;
    if (waste >= Math.max(needed, this.maxBytes / 4)) {
      await this.compact();
      if (fits()) return;
    }
    if (this.overflow === "reject-new") {
      this.counters.rejectedReadings += readings;
      throw new SpoolError("spool_full", "spool is full (overflow policy reject-new)", {
        bytes: this.diskBytes,
        maxBytes: this.maxBytes,
        readings,
      });
    }
    // Drop from the old end down to one segment of headroom, so one drop makes room for many appends.
    const target = Math.max(0, this.maxBytes - this.segmentBytes - needed - 2 * SEGMENT_MAGIC.length);
    const { picked, info } = pickOldest(this.index.values(), this.liveBytes - target, (m) => ({
      firstSeq: m.firstSeq,
      lastSeq: m.lastSeq,
      readings: m.count,
      bytes: m.length,
    }));
    if (picked.length > 0) {
      // One ack-to record makes the whole prefix durable as gone: replay drops it again after a crash.
      await this.write(encodeAckTo(info.lastSeq));
      this.forget(picked.map((m) => m.id));
      await this.syncNow();
      reportDrop(info, {
        counters: this.counters,
        logger: this.logger,
        maxBytes: this.maxBytes,
        onDrop: this.options.onDrop,
      });
    }
    await this.deleteDeadPrefix();
    if (!fits()) await this.compact();
    if (!fits())
      throw new SpoolError("spool_full", "spool is full and nothing more can be dropped", {
        bytes: this.diskBytes,
        maxBytes: this.maxBytes,
      });
  }

  /** Copies live batches into a new segment, atomically, then unlinks the old segments oldest first. */
  private async compact(): Promise<void> {
    const lastId = [...this.segments.keys()].at(-1) ?? 0;
    const id = lastId + 1;
    const path = join(this.dir, segName(id));
    const tmp = join(this.dir, `.${segName(id)}.tmp`);
    const moved = new Map<number, number>();
    let size = SEGMENT_MAGIC.length;
    const out = await open(tmp, "w");
    const readers = new Map<number, FileHandle>();
    try {
      await out.write(SEGMENT_MAGIC);
      let off = SEGMENT_MAGIC.length;
      for (const m of this.index.values()) {
        let fh = readers.get(m.seg);
        if (!fh) {
          fh = await open(this.segments.get(m.seg)!.path, "r");
          readers.set(m.seg, fh);
        }
        const buf = Buffer.allocUnsafe(m.length);
        const { bytesRead } = await fh.read(buf, 0, m.length, m.offset);
        if (bytesRead !== m.length) throw new Error(`short read in segment ${m.seg} at ${m.offset}`);
        await out.write(buf);
        moved.set(m.id, off);
        off += m.length;
      }
      size = off;
      await out.datasync();
      await out.close();
      await rename(tmp, path);
      await fsyncDir(this.dir);
    } catch (err) {
      await out.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw new SpoolError("spool_io", "spool compaction failed", { dir: this.dir }, { cause: err });
    } finally {
      for (const fh of readers.values()) await fh.close();
    }
    // From here the new segment holds every live batch; the old ones are only redundant copies.
    const before = this.diskBytes;
    await this.active?.fh.close();
    this.active = undefined;
    for (const seg of [...this.segments.values()]) {
      await unlink(seg.path);
      this.segments.delete(seg.id);
    }
    await fsyncDir(this.dir);
    const seg: Segment = { id, path, size, live: this.index.size };
    this.segments.set(id, seg);
    for (const m of this.index.values()) {
      m.seg = id;
      m.offset = moved.get(m.id)!;
    }
    this.diskBytes = size;
    this.dirty = false;
    this.active = { seg, fh: await open(path, "a") };
    this.logger.info("spool compacted", { dir: this.dir, bytesBefore: before, bytesAfter: size });
  }
}

async function readPayload(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, offset);
  if (bytesRead !== length) throw new SpoolError("spool_record_invalid", "short read", { offset, length });
  const payload = buf.subarray(FRAME_HEADER);
  if (buf.readUInt32LE(0) !== payload.length || crc32(payload) !== buf.readUInt32LE(4))
    throw new SpoolError("spool_record_invalid", "record CRC mismatch", { offset });
  return payload;
}

/** Sequential reads of a segment through a window, so recovery is not one syscall per frame. */
class ChunkReader {
  private buf = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  async get(offset: number, length: number): Promise<Buffer> {
    if (offset < this.start || offset + length > this.start + this.buf.length) {
      const want = Math.min(Math.max(SCAN_CHUNK, length), this.size - offset);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await this.fh.read(buf, 0, want, offset);
      this.buf = buf.subarray(0, bytesRead);
      this.start = offset;
      if (bytesRead < length) throw new SpoolError("spool_io", "short read during recovery", { offset, length });
    }
    return this.buf.subarray(offset - this.start, offset - this.start + length);
  }
}
