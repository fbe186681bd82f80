import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Element } from "ltx";
import { NS_STREAM_ERRORS } from "./connection.js";
import { addH, diffH, NS_SM, OutboundQueue, parseH, type StreamManagement } from "./stream-management.js";
import { type SessionKit, sessionKit } from "./testing/index.js";

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

/** A message the session sends; its body names it, so a test can tell what went out. */
function message(n: number): Element {
  return new Element("message", { to: "peer@iot.test", id: `m${n}` }).c("body").t(`m${n}`).root();
}

function bodies(els: Element[]): string[] {
  return els.filter((e) => e.name === "message").map((e) => e.getChildText("body") ?? "");
}

/** Settled promises, by index; the rest are still waiting for an ack. */
function tracker(ps: Promise<void>[]): { settled: number[] } {
  const t = { settled: [] as number[] };
  for (const [i, p] of ps.entries()) p.then(() => t.settled.push(i)).catch(() => undefined);
  return t;
}

/** Moves the session's SM counters, as if 2^32 - n stanzas had gone before (no test can send that many). */
function presetCounters(kit: SessionKit, c: { sent: number; received: number }): void {
  const sm = (kit.session as unknown as { sm: StreamManagement }).sm;
  const queue = sm.queue as unknown as { sentH: number; ackedH: number };
  queue.sentH = queue.ackedH = c.sent;
  (sm as unknown as { inbound: { h: number } }).inbound.h = c.received;
}

describe("stream management in a session (in-process, fake clock)", () => {
  it("counts across the 2^32 wrap, resumes with the wrapped h, and re-sends exactly what the server lacks", async () => {
    const kit = sessionKit();
    const first = await kit.online();
    presetCounters(kit, { sent: 2 ** 32 - 2, received: 2 ** 32 - 1 });
    const sends = [1, 2, 3, 4].map((n) => kit.session.send(message(n)));
    const t = tracker(sends);
    assert.deepEqual(bodies(await first.drain()), ["m1", "m2", "m3", "m4"]);
    first.sendStanza("<message from='peer@iot.test/x' type='chat'><body>in1</body></message>");
    first.sendStanza("<message from='peer@iot.test/x' type='chat'><body>in2</body></message>");
    await kit.settle();
    assert.equal(kit.events.stanzas.length, 2);
    first.hangUp();
    await kit.clock.advance(100);

    const second = await kit.nextServer();
    // The server received 2 of the 4: 2^32 - 2 + 2 = 0 (mod 2^32).
    const login = await second.login({ resume: { resumed: 0 } });
    assert.equal(login.resume?.attrs.previd, "sm-0");
    assert.equal(login.resume?.attrs.h, "1", "2^32 - 1 + 2 stanzas handled = 1 (mod 2^32)");
    await kit.settle();
    assert.deepEqual(kit.events.online.at(-1), { resumed: true, jid: "device@iot.test/agent" });
    assert.deepEqual(t.settled, [0, 1]);
    assert.deepEqual(bodies(await second.drain()), ["m3", "m4"]);
    second.ack(2);
    await kit.settle();
    assert.deepEqual(t.settled, [0, 1, 2, 3]);
    assert.equal(kit.session.stats().unacked, 0);
    await kit.stop();
  });

  for (const [h, resent] of [
    [5, ["m5"]],
    [undefined, ["m3", "m4", "m5"]],
  ] as const) {
    it(`after <failed${h === undefined ? "" : ` h='${h}'`}/> sends ${resent.join(", ")} on the new session, nothing else`, async () => {
      const kit = sessionKit({ session: { presence: true } });
      const first = await kit.online();
      await first.expect("presence");
      first.ack(1);
      const sends = [1, 2, 3, 4, 5].map((n) => kit.session.send(message(n)));
      const t = tracker(sends);
      assert.deepEqual(bodies(await first.drain()), ["m1", "m2", "m3", "m4", "m5"]);
      first.ack(3); // presence, m1, m2
      await kit.settle();
      first.reset();
      await kit.clock.advance(100);

      const second = await kit.nextServer();
      const login = await second.login({ resume: { failed: h === undefined ? {} : { h } } });
      assert.equal(login.resume?.attrs.h, "0");
      assert.ok(login.bind, "a failed resumption binds a new session");
      await kit.settle();
      assert.equal(kit.events.online.at(-1)?.resumed, false);
      const out = await second.drain();
      assert.equal(out[0]?.name, "presence", "a new session announces itself first");
      assert.deepEqual(bodies(out), resent);
      assert.deepEqual(t.settled, h === undefined ? [0, 1] : [0, 1, 2, 3]);
      second.ack(resent.length + 1);
      await kit.settle();
      assert.deepEqual(t.settled, [0, 1, 2, 3, 4]);
      assert.equal(kit.session.stats().resumeFailures, 1);
      await kit.stop();
    });
  }

  it("asks for an ack ackDelayMs after a lone stanza, and declares the link dead when none comes", async () => {
    const kit = sessionKit({ config: { keepalive: { timeoutMs: 5000 } } });
    const server = await kit.online();
    kit.session.send(message(1)).catch(() => undefined);
    await server.expect("message");
    await kit.clock.advance(499);
    await server.expectNothing();
    await kit.clock.advance(1);
    await server.expect("r", NS_SM);
    await kit.clock.advance(4999);
    assert.equal(kit.session.state, "online");
    await kit.clock.advance(1);
    assert.equal(kit.events.offline[0]?.error?.code, "link_dead");
    assert.equal(kit.session.state, "waiting");
    await kit.clock.advance(100);
    const next = await kit.nextServer();
    const login = await next.login({ resume: { resumed: 0 } });
    assert.equal(login.resume?.attrs.previd, "sm-0");
    assert.deepEqual(bodies(await next.drain()), ["m1"], "the unacknowledged message goes out again");
    await kit.stop();
  });

  it("asks for an ack every ackEvery stanzas, and again at once when an <a/> leaves that many open", async () => {
    const kit = sessionKit({ config: { streamManagement: { ackEvery: 3, ackDelayMs: 1000 } } });
    const server = await kit.online();
    for (let n = 1; n <= 7; n++) kit.session.send(message(n)).catch(() => undefined);
    const out = await server.drain();
    assert.deepEqual(
      out.map((e) => (e.name === "message" ? e.getChildText("body") : e.name)),
      ["m1", "m2", "m3", "r", "m4", "m5", "m6", "m7"],
      "one <r/> open at a time",
    );
    server.ack(3);
    await kit.settle();
    assert.ok(server.written.endsWith(' <r xmlns="urn:xmpp:sm:3"/>'), "a space answers the <a/>, then an <r/>");
    await server.expect("r");
    server.ack(6);
    await kit.settle();
    await server.expectNothing();
    await kit.clock.advance(1000);
    await server.expect("r");
    server.ack(7);
    await kit.settle();
    assert.equal(kit.session.stats().unacked, 0);
    await kit.clock.advance(10_000);
    await server.expectNothing();
    await kit.stop();
  });

  it("answers <r/> with the stanzas it handled, over-limit ones included", async () => {
    const kit = sessionKit({ config: { limits: { maxStanzaBytes: 1024 } } });
    const server = await kit.online();
    server.requestAck();
    assert.equal((await server.expect("a", NS_SM)).attrs.h, "0");
    server.sendStanza("<message from='peer@iot.test/x'><body>small</body></message>");
    server.sendStanza(`<message from='peer@iot.test/x'><body>${"x".repeat(2000)}</body></message>`);
    server.send("<presence from='peer@iot.test/x'/>");
    server.requestAck();
    assert.equal((await server.expect("a", NS_SM)).attrs.h, "3");
    assert.equal(kit.session.stats().stanzasSkipped, 1);
    await kit.stop();
  });

  it("closes the stream on a malformed h with a plain <undefined-condition/> and a text, not handled-count-too-high", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    kit.session.send(message(1)).catch(() => undefined);
    await server.expect("message");
    server.ack("one");
    const error = await server.expect("stream:error");
    const conditions = error.children.filter((c): c is Element => typeof c !== "string");
    assert.deepEqual(
      conditions.map((c) => `${c.name} ${c.attrs.xmlns}`),
      [`undefined-condition ${NS_STREAM_ERRORS}`, `text ${NS_STREAM_ERRORS}`],
    );
    assert.match(error.getChildText("text", NS_STREAM_ERRORS) ?? "", /without a valid h/);
    await kit.settle();
    assert.equal(kit.events.offline[0]?.error?.code, "sm_bad_h");
    await kit.stop();
  });

  it("closes the stream on an h beyond what was sent with <handled-count-too-high/>", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    kit.session.send(message(1)).catch(() => undefined);
    await server.expect("message");
    server.ack(5);
    const error = await server.expect("stream:error");
    assert.ok(error.getChild("undefined-condition", NS_STREAM_ERRORS));
    const tooHigh = error.getChild("handled-count-too-high", NS_SM);
    assert.deepEqual(tooHigh?.attrs, { xmlns: NS_SM, h: "5", "send-count": "1" });
    await kit.settle();
    assert.equal(kit.events.offline[0]?.error?.code, "sm_h_too_high");
    assert.equal(kit.session.state, "waiting");
    await kit.stop();
  });

  it("refuses a <resumed h/> beyond what was sent, and starts over on the next connection", async () => {
    const kit = sessionKit();
    const first = await kit.online();
    kit.session.send(message(1)).catch(() => undefined);
    await first.expect("message");
    first.hangUp();
    await kit.clock.advance(100);
    const second = await kit.nextServer();
    await second.login({ resume: { resumed: 9 } });
    const error = await second.expect("stream:error");
    assert.ok(error.getChild("undefined-condition", NS_STREAM_ERRORS));
    await kit.settle();
    assert.match(kit.session.stats().lastError ?? "", /^sm_h_too_high/);
    assert.equal(kit.events.online.length, 1);
    await kit.stop();
  });
});

/**
 * Replies to a burst of requests from one stranger, as in the audit flood (test/agent/hostile-load):
 * every reply stays in the queue until the server acknowledges it, and the server's <a/> can only
 * come after the requests it has already written to us (one TCP stream, in order). So while the
 * device works through a backlog, the queue holds a reply for each request of it, and it is fullest
 * at the last request of the burst.
 */
describe("replies to a burst (in-process, fake clock)", () => {
  const wide = { perSecond: 1_000_000, burst: 1_000_000 };
  const ping = (n: number) =>
    `<iq type='get' from='intruder@iot.test/flood' to='device@iot.test/agent' id='f${n}' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`;
  const replyIds = (out: Element[]) => out.filter((e) => e.name === "iq").map((e) => String(e.attrs.id));

  it("a burst that fills the socket is written in full once it drains, the last reply included, with no traffic after it", async () => {
    const kit = sessionKit({
      config: {
        streamManagement: { maxQueue: 5000, maxStrangerReplies: 5000 },
        inbound: { stranger: wide, strangersTotal: wide },
      },
    });
    const server = await kit.online();
    server.stopReading();
    const n = 3000;
    // In chunks of 100 as TCP would bring them (the router answers 256 at once at most).
    for (let i = 0; i < n; i += 100) {
      server.send(Array.from({ length: 100 }, (_, j) => ping(i + j)).join(""));
      await kit.settle();
    }
    const paused = kit.session.stats();
    assert.ok(paused.stanzasOut < n, `writing paused at the socket's high-water mark (${paused.stanzasOut} written)`);
    server.startReading();
    await kit.settle();
    const ids = replyIds(await server.drain());
    assert.equal(ids.length, n);
    assert.ok(ids.includes(`f${n - 1}`), "the last request is answered");
    assert.equal(kit.clock.now(), 0, "no timer was needed");
    await kit.stop();
  });

  it("the last request of a burst ahead of the server's <a/>, refused for want of room in the queue, is counted, not lost silently", async () => {
    // The audit flood's setting: the strangers' share is the whole queue.
    const kit = sessionKit({
      config: {
        streamManagement: { maxQueue: 20, maxStrangerReplies: 20, ackEvery: 10 },
        inbound: { stranger: wide, strangersTotal: wide },
      },
    });
    const server = await kit.online();
    // 21 requests, then the <a/> to the <r/> the client sent after its 10th reply: the server wrote
    // the requests before it read that <r/>.
    server.send(Array.from({ length: 21 }, (_, i) => ping(i)).join(""));
    await kit.settle();
    const ids = replyIds(await server.drain());
    assert.deepEqual(
      ids,
      Array.from({ length: 20 }, (_, i) => `f${i}`),
      "20 replies fill the queue",
    );
    server.ack(20);
    await kit.settle();
    await server.expectNothing();
    const st = kit.session.stats();
    assert.equal(st.strangerRepliesDropped, 1, "the last request's reply, refused by the full queue, is counted");
    assert.equal(ids.length + st.strangerRepliesDropped, 21, "every request answered or counted");
    await kit.stop();
  });

  it("a stranger's reply refused by a queue full before the strangers' share is counted too", async () => {
    const kit = sessionKit({
      config: {
        streamManagement: { maxQueue: 3, maxStrangerReplies: 3 },
        inbound: { stranger: wide, strangersTotal: wide },
      },
    });
    const server = await kit.online();
    // Telemetry holds one place, so the queue is full with only two replies to strangers in it.
    kit.session.send(message(1)).catch(() => undefined);
    server.send([0, 1, 2].map(ping).join(""));
    await kit.settle();
    assert.deepEqual(replyIds(await server.drain()), ["f0", "f1"]);
    assert.equal(kit.session.stats().strangerRepliesDropped, 1);
    await kit.stop();
  });
});
