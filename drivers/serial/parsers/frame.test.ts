import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../../kernel/timers.js";
import type { Frame } from "../../types.js";
import { encodeFrame } from "../codec.js";
import { FrameParser } from "./frame.js";

function collect(p: FrameParser): Frame[] {
  const out: Frame[] = [];
  p.on("data", (f: Frame) => out.push(f));
  return out;
}

const frame = (seq: number, text = `payload-${seq}`) =>
  encodeFrame({ type: 0x90, seq: seq & 0xff, payload: Buffer.from(text) });

describe("FrameParser", () => {
  it("decodes frames split at every byte boundary", () => {
    const timers = new FakeTimers();
    const p = new FrameParser({ timers });
    const out = collect(p);
    const bytes = Buffer.concat([frame(1), frame(2), frame(3)]);
    for (const b of bytes) p.write(Buffer.from([b]));
    assert.deepEqual(
      out.map((f) => f.seq),
      [1, 2, 3],
    );
    assert.equal(out[1]!.payload.toString(), "payload-2");
    assert.equal(p.counters.garbageBytes, 0);
  });

  it("skips and counts garbage, bad CRC and oversize headers without losing the next frame", () => {
    const p = new FrameParser({ maxLength: 64, timers: new FakeTimers() });
    const out = collect(p);
    const corrupt = frame(9);
    corrupt[corrupt.length - 1]! ^= 1;
    const oversize = Buffer.from([0xa5, 0x5a, 1, 0x90, 1, 0x10, 0x00]);
    p.write(Buffer.concat([Buffer.from("noise\n"), corrupt, oversize, Buffer.from([0xa5, 0x5a, 7]), frame(2)]));
    assert.deepEqual(
      out.map((f) => f.seq),
      [2],
    );
    assert.equal(p.counters.badCrc, 1);
    assert.equal(p.counters.oversizeFrames, 1);
    assert.equal(p.counters.garbageBytes, p.counters.bytesIn - frame(2).length);
    assert.equal(p.buffered, 0);
  });

  it("finds a real frame hidden behind a bogus header once the line goes quiet", () => {
    const timers = new FakeTimers();
    const p = new FrameParser({ maxLength: 200, frameTimeoutMs: 50, timers });
    const out = collect(p);
    // A bogus header announcing 150 bytes swallows the real frame that follows it.
    p.write(Buffer.concat([Buffer.from([0xa5, 0x5a, 1, 0x90, 3, 0x00, 150]), frame(4)]));
    assert.equal(out.length, 0);
    timers.advance(49);
    assert.equal(out.length, 0);
    timers.advance(1);
    assert.deepEqual(
      out.map((f) => f.seq),
      [4],
    );
    assert.equal(p.counters.partialFrames, 1);
  });

  it("counts a frame cut by close as partial and keeps the buffer bounded", () => {
    const p = new FrameParser({ maxLength: 32, timers: new FakeTimers() });
    collect(p);
    p.write(frame(1).subarray(0, 10));
    assert.equal(p.buffered, 10);
    p.discardBuffered();
    assert.equal(p.counters.partialFrames, 1);
    for (let i = 0; i < 100; i++) p.write(Buffer.alloc(1000, 0x41));
    assert.equal(p.buffered, 0);
  });

  it("decodes every frame of 1 MiB of random garbage interleaved with frames, and invents none", () => {
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const p = new FrameParser({ maxLength: 256, frameTimeoutMs: 0, timers: new FakeTimers() });
    const out = collect(p);
    let garbage = 0;
    const sent: number[] = [];
    for (let i = 0; garbage < 1024 * 1024; i++) {
      const n = Math.floor(rnd() * 4096);
      const g = Buffer.alloc(n);
      for (let k = 0; k < n; k++) g[k] = Math.floor(rnd() * 256);
      garbage += n;
      sent.push(i & 0xff);
      p.write(Buffer.concat([g, frame(i, `f${i}`)]));
    }
    assert.equal(out.length, sent.length);
    assert.deepEqual(
      out.map((f) => f.seq),
      sent,
    );
    assert.ok(out.every((f, i) => f.payload.toString() === `f${i}`));
  });
});
