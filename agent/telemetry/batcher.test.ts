import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError } from "../../kernel/errors.js";
import { FakeTimers } from "../../kernel/timers.js";
import { Batcher } from "./batcher.js";
import type { Reading } from "./reading.js";
import { settle } from "./testing/index.js";

const r = (seq: number): Reading => ({ seq, channelId: "c", value: seq, timestamp: seq, quality: "good" });

describe("Batcher", () => {
  it("cuts by count and by age of the oldest reading", async () => {
    const timers = new FakeTimers();
    const got: number[][] = [];
    const b = new Batcher({
      sink: async (x) => void got.push(x.map((y) => y.seq)),
      maxReadings: 3,
      maxAgeMs: 1000,
      timers,
    });
    for (let i = 0; i < 7; i++) b.add(r(i));
    await settle();
    assert.deepEqual(got, [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    timers.advance(999);
    await settle();
    assert.equal(got.length, 2);
    timers.advance(1);
    await settle();
    assert.deepEqual(got[2], [6]);
    assert.equal(timers.pendingCount, 0);
    assert.equal(b.stats().flushedReadings, 7);
  });

  it("maxAgeMs 0 sends every reading at once; flush/stop deliver the rest", async () => {
    const got: number[][] = [];
    const b0 = new Batcher({
      sink: async (x) => void got.push(x.map((y) => y.seq)),
      maxAgeMs: 0,
      timers: new FakeTimers(),
    });
    b0.add(r(1));
    b0.add(r(2));
    await b0.flush();
    assert.deepEqual(got, [[1], [2]]);
    const timers = new FakeTimers();
    const b = new Batcher({ sink: async (x) => void got.push(x.map((y) => y.seq)), maxAgeMs: 5000, timers });
    b.add(r(3));
    await b.stop();
    assert.deepEqual(got.at(-1), [3]);
    assert.equal(timers.pendingCount, 0);
  });

  it("is bounded when the sink stalls: drops the oldest waiting batch and counts it", async () => {
    let release: () => void = () => {};
    const got: number[] = [];
    const b = new Batcher({
      sink: (x) => {
        got.push(x[0]!.seq);
        return new Promise<void>((res) => {
          release = res;
        });
      },
      maxReadings: 1,
      maxQueuedBatches: 2,
      timers: new FakeTimers(),
    });
    for (let i = 0; i < 6; i++) b.add(r(i));
    // 0 is in the sink; 1..5 queued, bound 2 -> 1,2,3 dropped.
    assert.equal(b.stats().droppedReadings, 3);
    assert.equal(b.stats().queuedBatches, 2);
    for (let i = 0; i < 3; i++) {
      release();
      await settle();
    }
    assert.deepEqual(got, [0, 4, 5]);
  });

  it("reports sink failures as typed errors and goes on", async () => {
    const errors: AgentError[] = [];
    let n = 0;
    const b = new Batcher({
      sink: async () => {
        if (n++ === 0) throw new AgentError("spool_full", "full");
      },
      maxReadings: 1,
      timers: new FakeTimers(),
    });
    b.on("failure", (e) => errors.push(e));
    b.add(r(1));
    b.add(r(2));
    await b.flush();
    assert.equal(errors[0]?.code, "spool_full");
    assert.equal(b.stats().failedReadings, 1);
    assert.equal(b.stats().flushedReadings, 1);
  });
});
