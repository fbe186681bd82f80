import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Element } from "ltx";
import { FakeSession } from "../../test/telemetry/fake-session.js";
import { Ctx, INVALID } from "../config/schema-dsl.js";
import { isAgentError } from "../core/errors.js";
import { FakeTimers } from "../core/timers.js";
import { decodeReadings } from "./codec.js";
import { type TelemetryConfig, telemetryConfigSchema } from "./config.js";
import { TelemetryService, telemetryNodes } from "./service.js";

const root = mkdtempSync(join(tmpdir(), "tsvc-"));
after(() => rmSync(root, { recursive: true, force: true }));

function config(store: "memory" | "file"): TelemetryConfig {
  const c = telemetryConfigSchema.parse({ spool: { store }, batch: { maxReadings: 2, maxAgeMs: 100 } }, new Ctx());
  assert.notEqual(c, INVALID);
  return c as TelemetryConfig;
}

describe("TelemetryService", () => {
  it("wires sampler -> batcher -> spool -> publisher, publishes status on start, reports status, stops cleanly", async () => {
    for (const store of ["memory", "file"] as const) {
      const session = new FakeSession();
      const timers = new FakeTimers(1_700_000_000_000);
      const svc = new TelemetryService({
        config: config(store),
        pubsub: { service: "pubsub.iot.test", nodePrefix: "devices/" },
        deviceId: "dev1",
        dataDir: join(root, store),
        session,
        source: {
          channels: () => [{ id: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 }],
          read: async () => ({ value: 21, quality: "good" }),
        },
        agentVersion: "0.1.0",
        firmwareVersion: () => "fw-9",
        timers,
      });
      assert.deepEqual(svc.nodes, telemetryNodes("devices/", "dev1"));
      await svc.start();
      for (let i = 0; i < 4; i++) {
        timers.advance(1000);
        await new Promise((r) => setTimeout(r, 20));
      }
      timers.advance(100); // the last batch's age limit
      // The file spool does real I/O: wait (in real time) for the pipeline to drain.
      for (let i = 0; i < 200 && (svc.status()?.publisher.publishedReadings ?? 0) < 4; i++)
        await new Promise((r) => setTimeout(r, 10));
      const items = session.requests
        .map((r) => r.getChild("pubsub")?.getChild("publish"))
        .filter((p): p is Element => p !== undefined && p.attrs.node === "devices/dev1/telemetry");
      const seqs = items.flatMap((p) =>
        decodeReadings(p.getChild("item")!.children[0] as Element).readings.map((r) => r.seq),
      );
      assert.deepEqual(seqs, [0, 1, 2, 3], store);
      assert.ok(
        session.requests.some((r) => r.toString().includes('id="current"')),
        "status item published",
      );
      const st = svc.status()!;
      assert.equal(st.service, "pubsub.iot.test");
      assert.equal(st.spool.batches, 0);
      assert.equal(st.publisher.publishedReadings, 4);
      svc.setInterval("temp0", 500);
      assert.equal(svc.deviceStatus().channels[0]!.intervalMs, 500);
      assert.throws(
        () => svc.setInterval("x", 500),
        (e: unknown) => isAgentError(e, "sampler_unknown_channel"),
      );
      const presence = svc.presenceChildren();
      assert.match(presence.map((c) => c.toString()).join(""), /online: 1 channel, firmware fw-9, agent 0.1.0/);
      await svc.stop();
      assert.equal(svc.status(), undefined);
      assert.equal(timers.pendingCount, 0, `${store}: stop() leaves no timers`);
      assert.equal(session.listenerCount("online"), 0);
    }
  });
});
