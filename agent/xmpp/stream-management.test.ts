import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addH, diffH, OutboundQueue, parseH } from "./stream-management.js";

function sendAll(q: OutboundQueue): string[] {
  const out: string[] = [];
  for (const e of q.unsent()) {
    out.push(e.data);
    q.markSent(e);
  }
  return out;
}

describe("stream management counters", () => {
  it("wraps at 2^32", () => {
    assert.equal(addH(2 ** 32 - 1, 1), 0);
    assert.equal(addH(2 ** 32 - 2, 5), 3);
    assert.equal(diffH(3, 2 ** 32 - 2), 5);
    assert.equal(diffH(7, 7), 0);
  });

  it("parses h strictly", () => {
    assert.equal(parseH("0"), 0);
    assert.equal(parseH("4294967295"), 2 ** 32 - 1);
    for (const bad of ["4294967296", "-1", "1.5", "", "0x10", undefined, " 1"])
      assert.equal(parseH(bad), undefined, String(bad));
  });
});

describe("OutboundQueue", () => {
  it("settles entries in order as acks arrive", async () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    const settled: number[] = [];
    const ps = [0, 1, 2, 3].map((i) => q.push(`s${i}`).then(() => settled.push(i)));
    assert.deepEqual(sendAll(q), ["s0", "s1", "s2", "s3"]);
    assert.equal(q.ack(2), 2);
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(settled, [0, 1]);
    assert.equal(q.ack(4), 2);
    await Promise.all(ps);
    assert.equal(q.length, 0);
  });

  it("re-sends exactly what a resumption did not acknowledge", () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    for (let i = 0; i < 5; i++) q.push(`s${i}`).catch(() => undefined);
    sendAll(q);
    // Link lost; <resumed h='3'/> says the server got three.
    q.ack(3);
    q.requeueUnacked();
    assert.deepEqual(sendAll(q), ["s3", "s4"]);
    assert.equal(q.unackedCount, 2);
  });

  it("after <failed h/> applies h, then restarts counting for the new session", () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    for (let i = 0; i < 4; i++) q.push(`s${i}`).catch(() => undefined);
    sendAll(q);
    q.ack(1);
    q.resetCounters();
    assert.deepEqual(sendAll(q), ["s1", "s2", "s3"]);
    assert.equal(q.ack(3), 3);
  });

  it("acks across the 2^32 wrap", () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    // Pretend 2^32-2 stanzas went before: ack them via a synthetic history.
    const internals = q as unknown as { sentH: number; ackedH: number };
    internals.sentH = internals.ackedH = 2 ** 32 - 2;
    for (let i = 0; i < 4; i++) q.push(`s${i}`).catch(() => undefined);
    sendAll(q);
    assert.equal(q.unackedCount, 4);
    assert.equal(q.ack(1), 3);
    assert.equal(q.unackedCount, 1);
  });

  it("refuses an h beyond what was sent (handled-count-too-high)", () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    q.push("a").catch(() => undefined);
    sendAll(q);
    assert.throws(
      () => q.ack(2),
      (e: Error & { code?: string }) => e.code === "sm_h_too_high",
    );
    assert.equal(q.length, 1, "nothing is lost on a bad ack");
  });

  it("is bounded", async () => {
    const q = new OutboundQueue({ maxQueue: 2 });
    q.push("a").catch(() => undefined);
    q.push("b").catch(() => undefined);
    await assert.rejects(q.push("c"), (e: Error & { code?: string }) => e.code === "send_queue_full");
  });

  it("holds replies to strangers to their share, and frees the share as they are acknowledged", async () => {
    const q = new OutboundQueue({ maxQueue: 10, maxStrangerEntries: 2 });
    const settled: string[] = [];
    for (const d of ["s1", "s2"]) q.push(d, { stranger: true }).then(() => settled.push(d));
    await assert.rejects(q.push("s3", { stranger: true }), (e: Error & { code?: string }) => {
      return e.code === "send_queue_stranger_share_full";
    });
    for (let i = 0; i < 8; i++) q.push(`t${i}`).catch(() => undefined);
    assert.equal(q.length, 10, "the rest of the queue stayed free for everyone else");
    sendAll(q);
    q.ack(2);
    await Promise.resolve();
    assert.deepEqual(settled, ["s1", "s2"]);
    assert.equal(q.strangerCount, 0);
    q.ack(10);
    q.push("s4", { stranger: true }).catch(() => undefined);
    assert.equal(q.strangerCount, 1);
    q.rejectAll(new Error("stopped"));
    assert.equal(q.strangerCount, 0);
  });

  it("puts initial presence ahead of queued traffic, behind what is already on the wire", () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    q.push("a").catch(() => undefined);
    sendAll(q);
    q.push("b").catch(() => undefined);
    q.pushFront("presence").catch(() => undefined);
    assert.deepEqual(sendAll(q), ["presence", "b"]);
  });

  it("rejects everything on stop", async () => {
    const q = new OutboundQueue({ maxQueue: 10 });
    const p = q.push("a");
    q.rejectAll(new Error("stopped"));
    await assert.rejects(p, /stopped/);
    assert.equal(q.length, 0);
  });
});
