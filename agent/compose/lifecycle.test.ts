import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError, isAgentError } from "../../kernel/errors.js";
import { createLogger } from "../../kernel/log.js";
import { Lifecycle, type Step } from "./lifecycle.js";

function recorder() {
  const calls: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) });
  const step = (name: string, o: { failStart?: boolean; failStop?: boolean; async?: boolean } = {}): Step => ({
    name,
    async start() {
      if (o.async) await new Promise((r) => setImmediate(r));
      calls.push(`start ${name}`);
      if (o.failStart) throw new AgentError("boom", `${name} would not start`);
    },
    async stop() {
      if (o.async) await new Promise((r) => setImmediate(r));
      calls.push(`stop ${name}`);
      if (o.failStop) throw new AgentError("boom", `${name} would not stop`, { step: name });
    },
  });
  return { calls, lines, log, step };
}

describe("Lifecycle", () => {
  it("starts in order, awaiting each step, and stops in reverse", async () => {
    const r = recorder();
    const lc = new Lifecycle([r.step("a", { async: true }), r.step("b"), r.step("c", { async: true })], r.log);
    await lc.start();
    await lc.stop();
    assert.deepEqual(r.calls, ["start a", "start b", "start c", "stop c", "stop b", "stop a"]);
  });

  it("steps without start or stop are passed over", async () => {
    const r = recorder();
    const lc = new Lifecycle(
      [
        { name: "held", stop: () => void r.calls.push("stop held") },
        { name: "go", start: () => void r.calls.push("start go") },
      ],
      r.log,
    );
    await lc.start();
    await lc.stop();
    assert.deepEqual(r.calls, ["start go", "stop held"]);
  });

  it("keeps stopping past failures, logs each, and reports them all in one agent_stop_failed", async () => {
    const r = recorder();
    const lc = new Lifecycle(
      [
        r.step("board"),
        r.step("session"),
        r.step("telemetry", { failStop: true }),
        r.step("audit", { failStop: true }),
      ],
      r.log,
    );
    await lc.start();
    const err = await lc.stop().then(
      () => assert.fail("stop() resolved"),
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err, "agent_stop_failed"), String(err));
    assert.deepEqual(
      (err.context.failed as Array<{ step: string }>).map((f) => f.step),
      ["audit", "telemetry"],
    );
    assert.equal(
      (err.context.failed as Array<{ error: { message: string } }>)[1]!.error.message,
      "telemetry would not stop",
    );
    assert.deepEqual(r.calls.slice(4), ["stop audit", "stop telemetry", "stop session", "stop board"]);
    const logged = r.lines.filter((l) => l.level === "error").map((l) => l.step);
    assert.deepEqual(logged, ["audit", "telemetry"]);
  });

  it("after a failed start, stops the failed step and those before it, not those after", async () => {
    const r = recorder();
    const lc = new Lifecycle([r.step("a"), r.step("b", { failStart: true }), r.step("c")], r.log);
    await assert.rejects(lc.start(), /b would not start/);
    await lc.stop();
    assert.deepEqual(r.calls, ["start a", "start b", "stop b", "stop a"]);
  });

  it("stops once: a second stop() has nothing left to stop, and start() works again after it", async () => {
    const r = recorder();
    const lc = new Lifecycle([r.step("a")], r.log);
    await lc.start();
    await lc.stop();
    await lc.stop();
    await lc.start();
    assert.deepEqual(r.calls, ["start a", "stop a", "start a"]);
  });

  it("refuses a second start() before stop()", async () => {
    const r = recorder();
    const lc = new Lifecycle([r.step("a")], r.log);
    await lc.start();
    await assert.rejects(lc.start(), (e: unknown) => isAgentError(e, "agent_already_started"));
    assert.deepEqual(r.calls, ["start a"]);
  });
});
