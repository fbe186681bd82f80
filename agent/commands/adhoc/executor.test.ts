import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import type { Element } from "ltx";
import { createLogger } from "../../../kernel/log.js";
import { FakeTimers } from "../../../kernel/timers.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import { MemoryAuditSink } from "../audit.js";
import { DeviceFailure } from "../ports.js";
import { type CommandDefinition, type CommandResult, Values } from "../registry.js";
import { AdhocAuditTrail, isAudited } from "./audit-trail.js";
import { CommandExecutor, type Execution } from "./executor.js";

const OP = "alice@iot.test/gajim";

describe("CommandExecutor", () => {
  let timers: FakeTimers;
  let audit: MemoryAuditSink;
  let logLines: Array<Record<string, unknown>>;
  let executor: CommandExecutor;

  beforeEach(() => {
    timers = new FakeTimers(1_000);
    audit = new MemoryAuditSink();
    logLines = [];
    executor = new CommandExecutor({
      limits: { handlerTimeoutMs: 1000, maxConcurrentExecutions: 1 },
      timers,
      logger: createLogger({ level: "debug", write: (l) => logLines.push(JSON.parse(l)) }),
      audit: new AdhocAuditTrail(audit, timers),
    });
  });

  function execution(run: CommandDefinition["run"], extra: Partial<CommandDefinition> = {}): Execution {
    return {
      def: { node: "cmd", name: "Command", run, ...extra },
      requester: OP,
      sessionid: "cmd-1",
      action: "execute",
      values: new Values({ output: "relay", pin: "4321" }),
      secrets: new Set(["pin"]),
      t0: timers.now(),
    };
  }
  async function refusal(p: Promise<Element>): Promise<StanzaError> {
    const err = await p.then(
      () => assert.fail("expected a StanzaError"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StanzaError, String(err));
    return err;
  }
  const settle = () => new Promise((r) => setImmediate(r));

  it("answers completed with the handler's notes, audited with secrets redacted", async () => {
    const res = await executor.run(
      execution(async ({ values, requester, node }) => ({
        notes: [
          { type: "info", text: `${requester} ${node} ${values.string("output")}` },
          { type: "warn", text: "slow" },
        ],
      })),
    );
    assert.equal(res.attrs.status, "completed");
    assert.equal(res.attrs.sessionid, "cmd-1");
    assert.deepEqual(
      res.getChildren("note").map((n) => [n.attrs.type, n.text()]),
      [
        ["info", `${OP} cmd relay`],
        ["warn", "slow"],
      ],
    );
    const rec = audit.records[0]!;
    assert.equal(rec.outcome, "completed");
    assert.deepEqual(rec.params, { output: "relay", pin: "[redacted]" });
    assert.equal(rec.reason, `${OP} cmd relay; slow`);
    assert.equal(executor.stats.executions, 1);
    assert.equal(executor.runningCount, 0);
    assert.equal(timers.pendingCount, 0);
  });

  it("adds the error note XEP-0050 requires to a failed result, audited failed", async () => {
    const res = await executor.run(execution(async () => ({ failed: true })));
    assert.deepEqual(
      res.getChildren("note").map((n) => [n.attrs.type, n.text()]),
      [["error", "cmd failed"]],
    );
    assert.equal(audit.records[0]!.outcome, "failed");
    assert.equal(audit.records[0]!.reason, "cmd failed");
  });

  it("answers a DeviceFailure as completed with one note 'CODE: message', audited failed, not an error", async () => {
    const res = await executor.run(
      execution(async () => {
        throw new DeviceFailure("mqtt_offline", "the broker is not connected");
      }),
    );
    assert.equal(res.attrs.status, "completed");
    assert.deepEqual(
      res.getChildren("note").map((n) => [n.attrs.type, n.text()]),
      [["error", "mqtt_offline: the broker is not connected"]],
    );
    assert.equal(audit.records[0]!.outcome, "failed");
    assert.equal(executor.stats.deviceFailures, 1);
    assert.equal(executor.stats.errors, 0);
  });

  for (const [kind, thrown] of [
    ["an Error", new Error("wire cut")],
    ["a StanzaError", new StanzaError("bad-request", "modify", "wire cut")],
    ["a non-Error", "wire cut"],
  ] as const) {
    it(`answers ${kind} thrown by the handler as internal-server-error (a bug), audited error once`, async () => {
      const err = await refusal(
        executor.run(
          execution(async () => {
            throw thrown;
          }),
        ),
      );
      assert.equal(err.condition, "internal-server-error");
      assert.equal(err.type, "cancel");
      assert.equal(err.text, "cmd failed: wire cut");
      assert.ok(isAudited(err), "the request handler must not audit it again");
      assert.deepEqual(
        audit.records.map((r) => [r.outcome, r.reason]),
        [["error", "cmd failed: wire cut"]],
      );
      assert.equal(executor.stats.errors, 1);
      assert.equal(executor.runningCount, 0);
    });
  }

  it("answers a handler that outruns its timeout (the command's own, if set), aborts it, and logs its late outcome", async () => {
    let signal: AbortSignal | undefined;
    let finish: (r: CommandResult) => void = () => {};
    const p = executor.run(
      execution(
        (ctx) => {
          signal = ctx.signal;
          return new Promise((resolve) => {
            finish = resolve;
          });
        },
        { timeoutMs: 300 },
      ),
    );
    const answered = refusal(p);
    await settle();
    timers.advance(299);
    await settle();
    assert.equal(executor.runningCount, 1);
    timers.advance(1);
    const err = await answered;
    assert.equal(err.condition, "internal-server-error");
    assert.equal(err.type, "wait");
    assert.equal(err.text, "cmd did not finish within 300 ms; its effect is unknown");
    assert.ok(isAudited(err));
    assert.ok(signal?.aborted);
    assert.equal(audit.records[0]!.outcome, "timeout");
    assert.deepEqual(audit.records[0]!.params, { output: "relay", pin: "[redacted]" });
    assert.equal(executor.stats.timeouts, 1);
    assert.equal(timers.pendingCount, 0);
    finish({ notes: [{ type: "info", text: "done after all" }] });
    await settle();
    assert.ok(logLines.some((l) => l.msg === "command finished after its timeout" && l.sessionid === "cmd-1"));
    assert.equal(audit.records.length, 1, "the late outcome is logged, not audited a second time");
  });

  it("refuses resource-constraint (wait) beyond maxConcurrentExecutions, without running or auditing", async () => {
    let finish: (r: CommandResult) => void = () => {};
    let runs = 0;
    const slow = execution(() => {
      runs++;
      return new Promise((resolve) => {
        finish = resolve;
      });
    });
    const first = executor.run(slow);
    const err = await refusal(executor.run(slow));
    assert.equal(err.condition, "resource-constraint");
    assert.equal(err.type, "wait");
    assert.equal(isAudited(err), false, "the request handler audits the refusal as rejected");
    assert.equal(runs, 1);
    assert.equal(audit.records.length, 0);
    finish({});
    assert.equal((await first).attrs.status, "completed");
    assert.equal(executor.runningCount, 0);
    await executor.run(execution(async () => ({})));
    assert.equal(executor.stats.executions, 2);
  });

  it("abortAll() aborts the signal of every running handler", async () => {
    let signal: AbortSignal | undefined;
    void executor
      .run(
        execution((ctx) => {
          signal = ctx.signal;
          return new Promise(() => {});
        }),
      )
      .catch(() => undefined);
    executor.abortAll(new Error("agent stopping"));
    assert.ok(signal?.aborted);
    assert.equal((signal.reason as Error).message, "agent stopping");
    assert.equal(executor.runningCount, 0);
  });
});
