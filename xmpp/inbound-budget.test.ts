import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogBudget } from "../kernel/log-budget.js";
import { FakeTimers } from "../kernel/timers.js";
import { InboundBudget, type InboundBudgetConfig } from "./inbound-budget.js";

const CFG: InboundBudgetConfig = {
  operator: { perSecond: 50, burst: 100 },
  stranger: { perSecond: 5, burst: 10 },
  strangersTotal: { perSecond: 20, burst: 30 },
  maxSenders: 16,
};

function budget(cfg = CFG) {
  const timers = new FakeTimers(1_000_000);
  const b = new InboundBudget(cfg, {
    self: () => ({ bare: "dev@iot.test", domain: "iot.test" }),
    isOperator: (j) => j.startsWith("op@iot.test"),
    timers,
  });
  return { b, timers };
}

function admitted(b: InboundBudget, from: string, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (b.admit(from).admitted) ok++;
  return ok;
}

describe("InboundBudget", () => {
  it("never throttles the server, its components or the device's own account", () => {
    const { b } = budget();
    for (const from of [undefined, "iot.test", "pubsub.iot.test", "dev@iot.test/other"])
      assert.equal(admitted(b, from as string, 10_000), 10_000, String(from));
  });

  it("gives a stranger its burst, then its rate, and the rest of a flood is dropped", () => {
    const { b, timers } = budget();
    assert.equal(admitted(b, "eve@iot.test/a", 1000), 10);
    timers.advance(1000);
    assert.equal(admitted(b, "eve@iot.test/b", 1000), 5, "resources of one account share one bucket");
    const st = b.stats();
    assert.equal(st.droppedFromStrangers, 1985);
    assert.deepEqual(st.topDropped, { sender: "eve@iot.test", dropped: 1985 });
  });

  it("keeps an operator's budget apart from a stranger's flood", () => {
    const { b } = budget();
    admitted(b, "eve@iot.test/a", 10_000);
    assert.equal(admitted(b, "op@iot.test/gajim", 100), 100);
    assert.equal(b.stats().droppedFromOperators, 0);
  });

  it("caps all strangers together: many accounts get no more than the shared bucket", () => {
    const { b } = budget();
    let ok = 0;
    for (let i = 0; i < 100; i++) ok += admitted(b, `sybil${i}@iot.test`, 10);
    assert.equal(ok, 30);
  });

  it("does not let one flooder drain the shared bucket for other strangers", () => {
    const { b } = budget();
    admitted(b, "eve@iot.test", 10_000);
    assert.equal(admitted(b, "bob@iot.test", 10), 10);
  });

  it("answers a dropped sender at most once a second", () => {
    const { b, timers } = budget();
    admitted(b, "eve@iot.test", 10);
    const answers = () => {
      let n = 0;
      for (let i = 0; i < 100; i++) {
        const a = b.admit("eve@iot.test");
        if (!a.admitted && a.answer) n++;
      }
      return n;
    };
    assert.equal(answers(), 1);
    timers.advance(500);
    assert.equal(answers(), 0);
    timers.advance(600);
    assert.equal(answers(), 1);
  });

  it("remembers a bounded number of senders", () => {
    const { b } = budget();
    for (let i = 0; i < 1000; i++) b.admit(`s${i}@elsewhere.example`);
    assert.equal(b.stats().sendersTracked, 16);
  });

  it("treats a remote server and an unparsable sender as strangers", () => {
    const { b } = budget();
    assert.equal(b.classify("evil.example"), "stranger");
    assert.equal(b.classify("a@b@c"), "stranger");
    assert.equal(b.classify("op@iot.test/x"), "operator");
  });
});

describe("LogBudget", () => {
  it("logs the first lines of each window and says how many it left out", () => {
    const timers = new FakeTimers();
    const lb = new LogBudget(3, 1000, timers);
    const logged = Array.from({ length: 10 }, () => lb.take()).filter((t) => t.log);
    assert.equal(logged.length, 3);
    timers.advance(1000);
    assert.deepEqual(lb.take(), { log: true, suppressed: 7 });
    assert.deepEqual(lb.take(), { log: true, suppressed: 0 });
  });
});
