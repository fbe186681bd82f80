import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { type TelemetryConfig, telemetryConfigSchema } from "./config.js";

function parse(v: unknown) {
  const ctx = new Ctx();
  const r = telemetryConfigSchema.parse(v, ctx);
  return { r, issues: ctx.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
}

describe("telemetry config", () => {
  it("has a default for every bound", () => {
    const { r, issues } = parse({});
    assert.deepEqual(issues, []);
    assert.notEqual(r, INVALID);
    const c = r as TelemetryConfig;
    assert.equal(c.spool.maxBytes, 64 * 1024 * 1024);
    assert.equal(c.spool.overflow, "drop-oldest");
    assert.equal(c.spool.fsync, "always");
    assert.equal(c.batch.maxReadings, 50);
    assert.equal(c.publish.inFlight, 4);
    assert.equal(c.publish.maxItems, 32);
  });

  it("accepts maxItems 'max' or a number and names bad keys", () => {
    assert.equal(
      (parse({ publish: { maxItems: "max" } }).r as { publish: { maxItems: unknown } }).publish.maxItems,
      "max",
    );
    assert.equal((parse({ publish: { maxItems: 10 } }).r as { publish: { maxItems: unknown } }).publish.maxItems, 10);
    const { issues } = parse({
      publish: { maxItems: 0 },
      spool: { maxBytes: 1024 * 1024, segmentBytes: 512 * 1024, overflow: "panic" },
    });
    assert.ok(issues.some((i) => i.startsWith("publish.maxItems")));
    assert.ok(issues.some((i) => i.startsWith("spool.overflow")));
    const { issues: i2 } = parse({ spool: { maxBytes: 1024 * 1024, segmentBytes: 512 * 1024 } });
    assert.ok(
      i2.some((i) => i.startsWith("spool.segmentBytes")),
      i2.join("; "),
    );
  });
});
