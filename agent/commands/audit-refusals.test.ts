import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { type AuditRecord, AuditLog, AuditRouter, MemoryAuditSink } from "./audit.js";
import { RefusalThrottle } from "./audit-refusals.js";

const refusal = (i: number, node: string): AuditRecord => ({
  t: new Date(i).toISOString(),
  requester: "intruder@iot.test/x",
  node,
  action: "execute",
  outcome: "forbidden",
  durationMs: 0,
  reason: `you may not run ${node}`,
});
const operator = (i: number): AuditRecord => ({
  t: new Date(i).toISOString(),
  requester: "ops@iot.test/gajim",
  node: "set-output",
  action: "complete",
  outcome: "completed",
  durationMs: 2,
  params: { output: "relay", value: true },
  reason: `operator record ${i}`,
});

describe("an audit trail an intruder cannot erase", () => {
  it("10,000 refusals with maximal node names leave every operator record in the audit file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "audit-flood-"));
    try {
      const timers = new FakeTimers(1_800_000_000_000);
      const main = new AuditLog({
        path: join(dir, "audit.jsonl"),
        maxBytes: 64 * 1024,
        maxFiles: 2,
        maxPending: 100_000,
      });
      const refusedLog = new AuditLog({
        path: join(dir, "audit-refused.jsonl"),
        maxBytes: 16 * 1024,
        maxFiles: 1,
        maxPending: 100_000,
      });
      await main.start();
      await refusedLog.start();
      const throttle = new RefusalThrottle({ sink: refusedLog, perSenderPerMinute: 5, timers });
      const audit = new AuditRouter(main, throttle);
      const big = "n".repeat(200_000);
      for (let i = 0; i < 10_000; i++) {
        audit.record(refusal(i, `${big}${i}`));
        if (i % 200 === 0) audit.record(operator(i));
        if (i % 2_500 === 0) timers.advance(60_000); // a few minutes go by
      }
      throttle.flush();
      await main.flush();
      await refusedLog.flush();
      const mainLines = readdirSync(dir)
        .filter((f) => f.startsWith("audit.jsonl"))
        .flatMap((f) => readFileSync(join(dir, f), "utf8").trim().split("\n"))
        .map((l) => JSON.parse(l) as AuditRecord);
      assert.equal(mainLines.filter((r) => r.requester.startsWith("ops@")).length, 50, "every operator record kept");
      assert.equal(mainLines.filter((r) => r.requester.startsWith("intruder@")).length, 0);
      // The refusals: a few in full per minute, the rest summarised; every line bounded.
      const refused = readFileSync(join(dir, "audit-refused.jsonl"), "utf8").trim().split("\n");
      assert.ok(
        refused.every((l) => l.length < 2_000),
        "no line carries the 200 KB node name",
      );
      assert.equal(throttle.stats.written + throttle.stats.suppressed, 10_000, "every refusal is written or counted");
      assert.match(refused.join("\n"), /more refused requests in this minute/);
      await main.stop();
      await refusedLog.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bounds every requester-controlled field with a marker", async () => {
    const sink = new MemoryAuditSink();
    const throttle = new RefusalThrottle({ sink, perSenderPerMinute: 1, timers: new FakeTimers() });
    throttle.record(refusal(0, "x".repeat(1000)));
    throttle.record(refusal(1, "y".repeat(1000)));
    throttle.flush();
    assert.equal(sink.records.length, 2);
    assert.match(sink.records[1]!.reason ?? "", /^1 more refused requests/);
    assert.ok(sink.records[1]!.node.length <= 200);
  });
});
