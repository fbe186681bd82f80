import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../kernel/timers.js";
import { Keepalive } from "./keepalive.js";

function setup(whitespaceMs = 0) {
  const timers = new FakeTimers();
  const events: string[] = [];
  const k = new Keepalive(
    timers,
    { idleMs: 1000, timeoutMs: 500, whitespaceMs },
    {
      probe: () => events.push(`probe@${timers.now()}`),
      dead: (ms) => events.push(`dead@${timers.now()}:${ms}`),
      whitespace: () => events.push(`ws@${timers.now()}`),
    },
  );
  return { timers, events, k };
}

describe("Keepalive", () => {
  it("probes after idle time and declares the link dead when the probe goes unanswered", () => {
    const { timers, events, k } = setup();
    k.start();
    timers.advance(999);
    assert.deepEqual(events, []);
    timers.advance(1);
    assert.deepEqual(events, ["probe@1000"]);
    timers.advance(500);
    assert.deepEqual(events, ["probe@1000", "dead@1500:1500"]);
  });

  it("any inbound traffic answers the probe and pushes the next one back", () => {
    const { timers, events, k } = setup();
    k.start();
    timers.advance(1000);
    timers.advance(200);
    k.activity();
    timers.advance(900);
    assert.deepEqual(events, ["probe@1000"]);
    timers.advance(100);
    assert.deepEqual(events, ["probe@1000", "probe@2200"]);
    k.stop();
    assert.equal(timers.pendingCount, 0);
  });

  it("an unanswered ack request kills the link even while traffic is recent", () => {
    const { timers, events, k } = setup();
    k.start();
    timers.advance(100);
    k.expectAnswer();
    timers.advance(500);
    assert.deepEqual(events, ["dead@600:600"]);
  });

  it("sends whitespace only when nothing else went out", () => {
    const { timers, events, k } = setup(300);
    k.start();
    timers.advance(200);
    k.outbound();
    k.activity();
    timers.advance(400);
    assert.deepEqual(events, ["ws@500"]);
    k.stop();
  });
});
