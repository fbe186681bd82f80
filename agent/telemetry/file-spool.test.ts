import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { FileSpoolStore, type FileSpoolOptions } from "./file-spool.js";
import type { Reading } from "./reading.js";
import { decodeHead, REC_BATCH, SEGMENT_MAGIC } from "./spool-record.js";

const root = mkdtempSync(join(tmpdir(), "file-spool-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

function reading(seq: number): Reading {
  return { seq, channelId: "t", value: seq * 1.5, unit: "V", timestamp: 1_700_000_000_000 + seq, quality: "good" };
}
const batch = (first: number, n: number) => Array.from({ length: n }, (_, i) => reading(first + i));
const open = (dir: string, o: Partial<FileSpoolOptions> = {}) =>
  FileSpoolStore.open({ dir, fsync: "never", segmentBytes: 64 * 1024, maxBytes: 1024 * 1024, ...o });
const segs = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith(".log"))
    .sort();
const ids = async (s: FileSpoolStore) => (await s.peek(1_000_000)).map((b) => b.id);

/** A spool with `n` batches of 3 in one segment; returns the dir and the end offset of each frame. */
async function fixture(n: number): Promise<{ dir: string; ends: number[] }> {
  const dir = freshDir();
  const s = await open(dir);
  const ends: number[] = [];
  for (let i = 0; i < n; i++) {
    await s.append(batch(i * 3, 3));
    ends.push(s.stats().bytes);
  }
  await s.close();
  assert.equal(segs(dir).length, 1);
  return { dir, ends };
}

// Deterministic "random" positions, so a failure names a position that reproduces.
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

describe("FileSpoolStore recovery", () => {
  it("replays unacknowledged batches in order, flagged historical, with acks (any order) remembered", async () => {
    const dir = freshDir();
    const s = await open(dir, { fsync: "always" });
    for (let i = 0; i < 10; i++) await s.append(batch(i * 10, 2));
    await s.ack({ upToSeq: 11 });
    await s.ack({ ids: [50, 30] });
    await s.close();
    const r = await open(dir);
    assert.deepEqual(await ids(r), [20, 40, 60, 70, 80, 90]);
    const [first] = await r.peek(1);
    assert.equal(first!.historical, true);
    assert.ok(first!.readings.every((x) => x.historical === true));
    assert.equal(r.lastSeq, 91);
    await r.append(batch(100, 1));
    const all = await r.peek(100);
    assert.equal(all.at(-1)!.historical, false, "new batches are live");
    await r.close();
  });

  it("truncated at any byte: keeps exactly the records that were whole, never fails", async () => {
    const { dir, ends } = await fixture(40);
    const size = statSync(join(dir, segs(dir)[0]!)).size;
    const rnd = lcg(42);
    const positions = new Set<number>([0, 1, 7, 8, 9, size - 1, ...ends, ...ends.map((e) => e - 1)]);
    while (positions.size < 150) positions.add(Math.floor(rnd() * size));
    for (const pos of positions) {
      const copy = freshDir();
      cpSync(dir, copy, { recursive: true });
      truncateSync(join(copy, segs(copy)[0]!), pos);
      const s = await open(copy);
      const whole = ends.filter((e) => e <= pos).length;
      assert.deepEqual(
        await ids(s),
        Array.from({ length: whole }, (_, i) => i * 3),
        `cut at ${pos}`,
      );
      const cutMidRecord = pos > 8 && !ends.includes(pos);
      assert.equal(s.stats().corruptTails, cutMidRecord || (pos > 0 && pos < 8) ? 1 : 0, `cut at ${pos}`);
      // It goes on working, and what it writes next survives the next restart.
      await s.append(batch(1000, 2));
      await s.close();
      const again = await open(copy);
      assert.equal((await ids(again)).at(-1), 1000, `cut at ${pos}`);
      assert.equal(again.stats().corruptTails, 0);
      await again.close();
      rmSync(copy, { recursive: true });
    }
  });

  it("flipped bytes: keeps a prefix of the batches, unchanged, and never fails", async () => {
    const { dir } = await fixture(30);
    const name = segs(dir)[0]!;
    const original = readFileSync(join(dir, name));
    const rnd = lcg(7);
    for (let t = 0; t < 80; t++) {
      const copy = freshDir();
      cpSync(dir, copy, { recursive: true });
      const bytes = Buffer.from(original);
      const at = 8 + Math.floor(rnd() * (bytes.length - 8));
      bytes[at] = bytes[at]! ^ (1 + Math.floor(rnd() * 255));
      writeFileSync(join(copy, name), bytes);
      const s = await open(copy);
      const got = await s.peek(1000);
      got.forEach((b, i) => {
        assert.equal(b.id, i * 3, `flip at ${at}`);
        assert.deepEqual(
          b.readings.map((r) => r.value),
          [0, 1, 2].map((k) => (i * 3 + k) * 1.5),
        );
      });
      assert.ok(got.length < 30, `flip at ${at} went unnoticed`);
      assert.equal(s.stats().corruptTails, 1);
      await s.close();
      rmSync(copy, { recursive: true });
    }
  });

  it("garbage after the last record is cut off; a bad segment header is moved aside", async () => {
    const { dir } = await fixture(5);
    const name = segs(dir)[0]!;
    writeFileSync(join(dir, name), Buffer.concat([readFileSync(join(dir, name)), Buffer.from("\xff\x00garbage!!")]));
    const s = await open(dir);
    assert.deepEqual(await ids(s), [0, 3, 6, 9, 12]);
    assert.equal(s.stats().corruptTails, 1);
    await s.close();

    const other = freshDir();
    cpSync(dir, other, { recursive: true });
    const bytes = readFileSync(join(other, name));
    bytes.write("NOTASPOOL", 0, "latin1");
    writeFileSync(join(other, name), bytes);
    const t = await open(other);
    assert.deepEqual(await ids(t), []);
    assert.ok(
      readdirSync(other).some((n) => n.endsWith(".corrupt")),
      "bytes kept for a human",
    );
    await t.close();
  });

  it("rolls segments and unlinks acknowledged ones from the old end", async () => {
    const dir = freshDir();
    const s = await open(dir, { segmentBytes: 2048, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 100; i++) await s.append(batch(i * 5, 5));
    const before = segs(dir).length;
    assert.ok(before > 5);
    await s.ack({ ids: [5] }); // out of order: segment 1 still holds batch 0
    assert.equal(segs(dir).length, before);
    await s.ack({ upToSeq: 249 });
    assert.ok(segs(dir).length < before / 2 + 2);
    assert.equal(s.stats().batches, 50);
    const bytes = s.stats().bytes;
    const onDisk = segs(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    assert.equal(bytes, onDisk, "byte accounting matches the disk");
    await s.close();
    const r = await open(dir);
    assert.equal((await ids(r))[0], 250);
    await r.close();
  });

  it("compacts when acked holes, not old segments, hold the space; survives a crash at every step", async () => {
    const dir = freshDir();
    const s = await open(dir, { segmentBytes: 1024, maxBytes: 8 * 1024, overflow: "reject-new" });
    // Batch 0 is never acked, so no segment can be unlinked; every other batch is.
    let seq = 0;
    for (let i = 0; i < 300; i++) {
      await s.append(batch(seq, 2));
      if (i > 0) await s.ack({ ids: [seq] });
      seq += 2;
    }
    assert.ok(s.stats().bytes <= 8 * 1024);
    assert.deepEqual(await ids(s), [0]);
    await s.close();
    const r = await open(dir);
    assert.deepEqual(await ids(r), [0]);
    await r.close();

    // A crash after the rename but before the old segments were unlinked: both copies on disk.
    const crashed = freshDir();
    const s2 = await open(crashed, { segmentBytes: 1024, maxBytes: 1024 * 1024 });
    for (let i = 0; i < 30; i++) await s2.append(batch(i * 2, 2));
    await s2.ack({ ids: [2, 4, 6] });
    await s2.close();
    const names = segs(crashed);
    const last = Number(/\d+/.exec(names.at(-1)!)![0]);
    const copyName = `seg-${String(last + 1).padStart(10, "0")}.log`;
    // What compaction writes: the live batch frames of the old segments, byte for byte.
    const frames: Buffer[] = [SEGMENT_MAGIC];
    for (const n of names) {
      const buf = readFileSync(join(crashed, n));
      for (let off = 8; off < buf.length; ) {
        const len = buf.readUInt32LE(off);
        const head = decodeHead(buf.subarray(off + 8, off + 8 + len));
        if (head?.type === REC_BATCH && ![2, 4, 6].includes(head.firstSeq))
          frames.push(buf.subarray(off, off + 8 + len));
        off += 8 + len;
      }
    }
    writeFileSync(join(crashed, copyName), Buffer.concat(frames));
    // ...and a crash after unlinking the oldest original: a suffix of the old segments remains.
    rmSync(join(crashed, names[0]!));
    writeFileSync(join(crashed, `.seg-${String(last + 2).padStart(10, "0")}.log.tmp`), "half a compaction");
    const r2 = await open(crashed);
    const want = Array.from({ length: 30 }, (_, i) => i * 2).filter((x) => ![2, 4, 6].includes(x));
    assert.deepEqual(await ids(r2), want);
    assert.ok(!readdirSync(crashed).some((n) => n.endsWith(".tmp")));
    await r2.close();
  });

  it("fsync interval flushes on the timer", async () => {
    const timers = new FakeTimers();
    const s = await open(freshDir(), { fsync: "interval", fsyncIntervalMs: 500, timers });
    await s.append(batch(1, 1));
    timers.advance(500);
    await s.append(batch(2, 1));
    await s.close();
    assert.equal(timers.pendingCount, 0, "close() stops the flush timer");
  });

  it("refuses bad options", async () => {
    await assert.rejects(
      open(freshDir(), { segmentBytes: 600 * 1024, maxBytes: 1024 * 1024 }),
      (e: unknown) => (e as { code?: string }).code === "spool_options",
    );
  });
});
