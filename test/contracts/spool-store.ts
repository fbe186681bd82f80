/**
 * The SpoolStore contract, run against every implementation (spool-store.test.ts). Shaped after
 * MQTT.js test/node/abstract_store.ts: the suite takes a builder, so a new store gets the whole
 * behaviour check for free. Store-specific behaviour (crash recovery) is tested beside the store.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../../kernel/errors.js";
import type { Reading } from "../../agent/telemetry/reading.js";
import type { DropInfo, OverflowPolicy, SpoolStore } from "../../agent/telemetry/spool.js";

export interface SpoolBuildOptions {
  maxBytes?: number;
  overflow?: OverflowPolicy;
  onDrop?: (info: DropInfo) => void;
}

export type SpoolBuilder = (options: SpoolBuildOptions) => Promise<SpoolStore>;

export function reading(seq: number, over: Partial<Reading> = {}): Reading {
  return {
    seq,
    channelId: "temp0",
    value: 20 + seq / 10,
    unit: "°C",
    timestamp: 1_700_000_000_000 + seq,
    quality: "good",
    ...over,
  };
}

export function batch(first: number, count: number): Reading[] {
  return Array.from({ length: count }, (_, i) => reading(first + i));
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isAgentError(err, code), `expected ${code}, got ${(err as { code?: string }).code ?? err}`);
    return true;
  });
}

export function spoolStoreContract(name: string, build: SpoolBuilder): void {
  describe(`SpoolStore contract: ${name}`, () => {
    it("starts empty", async () => {
      const s = await build({});
      assert.deepEqual(await s.peek(10), []);
      const st = s.stats();
      assert.equal(st.batches, 0);
      assert.equal(st.readings, 0);
      assert.equal(s.lastSeq, -1);
      await s.close();
    });

    it("returns batches oldest first with every field intact", async () => {
      const s = await build({});
      const mixed: Reading[] = [
        reading(1),
        { seq: 2, channelId: "door", value: true, timestamp: 1_700_000_000_002, quality: "good" },
        { seq: 3, channelId: "mode", value: 'auto <&> "x"', timestamp: 1_700_000_000_003, quality: "stale" },
        { seq: 5, channelId: "adc1", value: null, unit: "V", timestamp: 1_700_000_000_005, quality: "error" },
      ];
      await s.append(mixed);
      await s.append(batch(10, 3));
      const got = await s.peek(10);
      assert.deepEqual(
        got.map((b) => [b.id, b.firstSeq, b.lastSeq, b.readings.length]),
        [
          [1, 1, 5, 4],
          [10, 10, 12, 3],
        ],
      );
      assert.deepEqual(
        got[0]!.readings.map(({ historical: _h, ...r }) => r),
        mixed,
      );
      assert.equal(got[0]!.historical, false);
      assert.equal(s.lastSeq, 12);
      assert.equal(s.stats().readings, 7);
      await s.close();
    });

    it("peek honours max and afterSeq and does not remove", async () => {
      const s = await build({});
      for (let i = 0; i < 5; i++) await s.append(batch(i * 10, 2));
      assert.deepEqual(
        (await s.peek(2)).map((b) => b.id),
        [0, 10],
      );
      assert.deepEqual(
        (await s.peek(2, 10)).map((b) => b.id),
        [20, 30],
      );
      assert.deepEqual(await s.peek(0), []);
      assert.equal(s.stats().batches, 5);
      await s.close();
    });

    it("ack upToSeq removes the prefix, ack ids removes any, unknown ids are ignored", async () => {
      const s = await build({});
      for (let i = 0; i < 6; i++) await s.append(batch(i * 10, 3));
      assert.equal(await s.ack({ upToSeq: 2 }), 1);
      assert.equal(await s.ack({ upToSeq: 11 }), 0, "a batch is removed only when all of it is acked");
      assert.equal(await s.ack({ ids: [40, 20, 999] }), 2);
      assert.equal(await s.ack({ ids: [40] }), 0);
      assert.deepEqual(
        (await s.peek(10)).map((b) => b.id),
        [10, 30, 50],
      );
      assert.equal(s.stats().readings, 9);
      await s.close();
    });

    it("keeps order for appends issued without waiting", async () => {
      const s = await build({});
      await Promise.all(Array.from({ length: 20 }, (_, i) => s.append(batch(i * 2, 2))));
      assert.deepEqual(
        (await s.peek(100)).map((b) => b.id),
        Array.from({ length: 20 }, (_, i) => i * 2),
      );
      await s.close();
    });

    it("refuses bad input with typed errors and stores nothing", async () => {
      const s = await build({});
      await s.append(batch(10, 2));
      await rejectsWith(s.append(batch(5, 2)), "spool_out_of_order");
      await rejectsWith(s.append([]), "reading_invalid");
      await rejectsWith(s.append([reading(20, { value: Number.NaN })]), "reading_invalid");
      await rejectsWith(s.append([reading(21), reading(21)]), "reading_invalid");
      await rejectsWith(s.append([reading(22, { channelId: "bad id" })]), "reading_invalid");
      await rejectsWith(s.append([reading(23, { quality: "good", value: null })]), "reading_invalid");
      await rejectsWith(s.peek(-1), "spool_bad_argument");
      await rejectsWith(s.ack({ upToSeq: Number.NaN }), "spool_bad_argument");
      await rejectsWith(s.ack({ ids: [-1] }), "spool_bad_argument");
      assert.deepEqual(
        (await s.peek(10)).map((b) => b.id),
        [10],
      );
      await s.close();
    });

    it("refuses a batch larger than the record limit", async () => {
      const s = await build({ maxBytes: 64 * 1024 });
      const big = Array.from({ length: 2000 }, (_, i) => reading(i, { value: "x".repeat(100) }));
      await rejectsWith(s.append(big), "spool_record_too_large");
      assert.equal(s.stats().batches, 0);
      await s.close();
    });

    it("drop-oldest keeps within maxBytes, keeps the newest, and counts what it dropped", async () => {
      const drops: DropInfo[] = [];
      const s = await build({ maxBytes: 16 * 1024, overflow: "drop-oldest", onDrop: (d) => drops.push(d) });
      const total = 400;
      for (let i = 0; i < total; i++) {
        await s.append(batch(i * 5, 5));
        assert.ok(s.stats().bytes <= 16 * 1024, `bytes ${s.stats().bytes} over the bound`);
      }
      const st = s.stats();
      assert.ok(st.droppedReadings > 0);
      assert.equal(st.droppedReadings + st.readings, total * 5, "every reading is either kept or counted as dropped");
      assert.equal(st.droppedBatches + st.batches, total);
      assert.equal(
        drops.reduce((n, d) => n + d.readings, 0),
        st.droppedReadings,
      );
      const kept = await s.peek(10_000);
      assert.equal(kept.at(-1)!.id, (total - 1) * 5, "newest batch kept");
      kept.forEach((b, i) => {
        if (i > 0) assert.equal(b.id, kept[i - 1]!.id + 5, "kept batches are a contiguous suffix");
      });
      await s.close();
    });

    it("drop-oldest reports each drop as the seq range it removed, skipping batches already acked", async () => {
      const drops: DropInfo[] = [];
      const s = await build({ maxBytes: 16 * 1024, overflow: "drop-oldest", onDrop: (d) => drops.push(d) });
      const total = 300;
      let acked = 0;
      for (let i = 0; i < total; i++) {
        await s.append(batch(i * 5, 5));
        // Acks out of order leave holes the drop must step over, not count.
        if (i % 3 === 1) acked += await s.ack({ ids: [i * 5] });
      }
      const st = s.stats();
      assert.ok(drops.length > 0, "never dropped");
      assert.equal(
        drops.reduce((n, d) => n + d.batches, 0),
        st.droppedBatches,
      );
      assert.equal(acked + st.droppedBatches + st.batches, total, "each batch acked, dropped or kept, once");
      drops.forEach((d, i) => {
        assert.ok(d.batches > 0 && d.firstSeq <= d.lastSeq, `drop ${i}: ${JSON.stringify(d)}`);
        assert.equal(d.readings, d.batches * 5, `drop ${i} counts the readings of its batches`);
        if (i > 0) assert.ok(d.firstSeq > drops[i - 1]!.lastSeq, `drop ${i} is newer than the one before`);
      });
      const kept = await s.peek(10_000);
      assert.ok(kept[0]!.firstSeq > drops.at(-1)!.lastSeq, "only batches older than every kept one were dropped");
      assert.equal(await s.ack({ ids: [drops[0]!.firstSeq] }), 0, "a dropped batch is gone");
      assert.equal(s.lastSeq, total * 5 - 1, "dropping does not move the seq floor");
      await s.close();
    });

    it("reject-new refuses when full, keeps what it has, and accepts again after acks", async () => {
      const s = await build({ maxBytes: 8 * 1024, overflow: "reject-new" });
      let i = 0;
      for (;;) {
        try {
          await s.append(batch(i * 5, 5));
          i++;
        } catch (err) {
          assert.ok(isAgentError(err, "spool_full"), String(err));
          break;
        }
        assert.ok(i < 10_000, "never filled up");
      }
      const st = s.stats();
      assert.equal(st.batches, i);
      assert.equal(st.rejectedReadings, 5);
      assert.ok(st.bytes <= 8 * 1024);
      assert.equal((await s.peek(1))[0]!.id, 0, "oldest kept");
      await s.ack({ upToSeq: (i - 1) * 5 + 4 });
      await s.append(batch((i + 1) * 5, 5));
      assert.equal(s.stats().batches, 1);
      await s.close();
    });

    it("refuses use after close", async () => {
      const s = await build({});
      await s.close();
      await rejectsWith(s.append(batch(1, 1)), "spool_closed");
      await rejectsWith(s.peek(1), "spool_closed");
      await rejectsWith(s.ack({ upToSeq: 1 }), "spool_closed");
      await s.close();
    });
  });
}
