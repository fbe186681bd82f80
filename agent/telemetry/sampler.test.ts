import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../../kernel/errors.js";
import { FakeTimers } from "../../kernel/timers.js";
import type { Reading } from "./reading.js";
import { type ChannelEdge, type ChannelSample, type ChannelSource, Sampler } from "./sampler.js";
import { MemorySequence } from "./sequence.js";
import { settle } from "./testing/index.js";

function fakeSource() {
  const edges: Array<(e: ChannelEdge) => void> = [];
  const reads: string[] = [];
  let hang = false;
  const source: ChannelSource & { emitEdge(e: ChannelEdge): void; setHang(v: boolean): void; reads: string[] } = {
    reads,
    channels: () => [
      { id: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 },
      { id: "door", kind: "digital-in", intervalMs: 0 },
      { id: "bad", kind: "humidity", unit: "%", intervalMs: 2000 },
    ],
    read: (id) => {
      reads.push(id);
      if (hang) return new Promise<ChannelSample>(() => {});
      if (id === "bad") return Promise.reject(new Error("i2c nack"));
      return Promise.resolve({ value: 21.5, quality: "good", timestamp: 42 });
    },
    onEdge: (l) => {
      edges.push(l);
      return () => edges.splice(edges.indexOf(l), 1);
    },
    emitEdge: (e) => {
      for (const l of edges) l(e);
    },
    setHang: (v) => {
      hang = v;
    },
  };
  return source;
}

/** Advances fake time in small steps, letting reads resolve between ticks as they would in real time. */
async function run(timers: FakeTimers, ms: number, step = 50): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    timers.advance(step);
    await settle(3);
  }
}

function setup() {
  const timers = new FakeTimers(1_000_000);
  const source = fakeSource();
  const out: Reading[] = [];
  const sampler = new Sampler({
    source,
    sequence: new MemorySequence(7),
    sink: (r) => out.push(r),
    timers,
    readTimeoutMs: 500,
  });
  return { timers, source, out, sampler };
}

describe("Sampler", () => {
  it("reads each channel at its interval, numbering readings, with units; a failed read is an error reading", async () => {
    const t = setup();
    t.sampler.start();
    await run(t.timers, 2000);
    const temp = t.out.filter((r) => r.channelId === "temp0");
    assert.equal(temp.length, 2);
    assert.deepEqual(temp[0], { seq: 7, channelId: "temp0", value: 21.5, unit: "°C", timestamp: 42, quality: "good" });
    const bad = t.out.find((r) => r.channelId === "bad")!;
    assert.equal(bad.quality, "error");
    assert.equal(bad.value, null);
    assert.deepEqual(
      t.out.map((r) => r.seq),
      [7, 8, 9],
    );
    assert.ok(!t.source.reads.includes("door"), "interval 0 = edges only");
    t.sampler.stop();
    assert.equal(t.timers.pendingCount, 0);
  });

  it("emits a reading on every input edge", () => {
    const t = setup();
    t.sampler.start();
    t.source.emitEdge({ channelId: "door", value: true, timestamp: 1234 });
    assert.deepEqual(t.out[0], { seq: 7, channelId: "door", value: true, timestamp: 1234, quality: "good" });
    t.sampler.stop();
    t.source.emitEdge({ channelId: "door", value: false, timestamp: 1235 });
    assert.equal(t.out.length, 1, "stop() unsubscribes");
  });

  it("changes intervals at runtime and refuses bad ones with typed errors", async () => {
    const t = setup();
    t.sampler.start();
    t.sampler.setInterval("temp0", 250);
    await run(t.timers, 1000);
    assert.equal(t.out.filter((r) => r.channelId === "temp0").length, 4);
    assert.equal(t.sampler.describe().find((c) => c.id === "temp0")?.intervalMs, 250);
    assert.throws(
      () => t.sampler.setInterval("nope", 1000),
      (e: unknown) => isAgentError(e, "sampler_unknown_channel"),
    );
    assert.throws(
      () => t.sampler.setInterval("temp0", 5),
      (e: unknown) => isAgentError(e, "sampler_bad_interval"),
    );
    assert.throws(
      () => t.sampler.setInterval("temp0", 1.5),
      (e: unknown) => isAgentError(e, "sampler_bad_interval"),
    );
    t.sampler.setInterval("temp0", 0);
    await run(t.timers, 5000, 500);
    assert.equal(t.out.filter((r) => r.channelId === "temp0").length, 4);
    t.sampler.stop();
  });

  it("a hung read times out as an error reading and ticks meanwhile count as overruns", async () => {
    const t = setup();
    t.source.setHang(true);
    t.sampler.start();
    t.sampler.setInterval("temp0", 200);
    t.sampler.setInterval("bad", 0);
    await run(t.timers, 800);
    const temp = t.out.filter((r) => r.channelId === "temp0");
    assert.equal(temp[0]?.quality, "error");
    assert.ok(t.sampler.stats().overruns >= 1);
    t.sampler.stop();
  });
});
