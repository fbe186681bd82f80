import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProvisioningError } from "../errors.js";
import type { DeviceRun, JobSpec } from "../jobs/job.js";
import type { DevicePort } from "../jobs/runner.js";
import { updateAction, updateFields } from "./update.js";

const SPEC: JobSpec = {
  kind: "update",
  node: "update",
  fields: updateFields('{\n  "a": 1\n}', "https://share/x", false),
  selector: { all: true },
  concurrency: 1,
  deviceTimeoutMs: 60_000,
  release: { version: "0.2.0" },
};
const DEVICE: DeviceRun = { id: "d1", jid: "d1@iot.test/agent", status: "running" };

/** A device whose `update` answers from a script: the accept, then one status per question (or an error). */
function device(
  accept: () => string[],
  statuses: Array<Record<string, string> | Error>,
): DevicePort & { sent: unknown[] } {
  const sent: unknown[] = [];
  return {
    sent,
    online: async () => new Set(),
    execute: async (_jid, node, fields) => {
      sent.push({ node, fields });
      return accept();
    },
    form: async () => {
      const next = statuses.shift();
      if (!next || next instanceof Error) throw next ?? new Error("offline");
      return Object.fromEntries(Object.entries(next).map(([k, v]) => [k, [v]]));
    },
    statusItem: async () => undefined,
    watch: async () => ({ subscribed: 0, stop: async () => undefined }),
  } as DevicePort & { sent: unknown[] };
}

let clock = 0;
const fast = {
  pollMs: 1000,
  sleep: async (ms: number) => {
    clock += ms;
  },
  now: () => clock,
};

describe("update job action", () => {
  it("sends the manifest's lines and the URL, then waits through the restart for the commit", async () => {
    const d = device(
      () => ["Accepted 0.2.0"],
      [
        { running: "0.1.0", state: "none", job: "0.2.0: downloading since t" },
        new Error("offline while restarting"),
        { running: "0.2.0", state: "trial", job: "nothing" },
        { running: "0.2.0", state: "committed", job: "nothing" },
      ],
    );
    assert.deepEqual(await updateAction(SPEC, d, fast).run(DEVICE, 60_000), ["updated to 0.2.0"]);
    assert.deepEqual(d.sent, [
      {
        node: "update",
        fields: { manifest: ["{", '  "a": 1', "}"], url: "https://share/x", "allow-downgrade": "false" },
      },
    ]);
  });

  it("a rollback is the device's error, with its reason", async () => {
    const d = device(
      () => ["Accepted"],
      [
        {
          running: "0.1.0",
          state: "rolled-back",
          outcome: "rolled back to 0.1.0 at t: 0.2.0 failed: 3 starts without passing the health check",
          job: "nothing",
        },
      ],
    );
    await assert.rejects(
      updateAction(SPEC, d, fast).run(DEVICE, 60_000),
      (e: unknown) => e instanceof ProvisioningError && e.code === "adhoc_failed" && /3 starts/.test(e.message),
    );
  });

  it("a failure before the switch (the hash) is the device's error", async () => {
    const d = device(
      () => ["Accepted"],
      [
        {
          running: "0.1.0",
          state: "committed",
          job: "nothing",
          lastFailure: "update_hash_mismatch: the archive's SHA-256 is not the manifest's (t)",
        },
      ],
    );
    await assert.rejects(updateAction(SPEC, d, fast).run(DEVICE, 60_000), /update_hash_mismatch/);
  });

  it("already running the version is done; other refusals are errors; no outcome in time is a timeout", async () => {
    const already = device(() => {
      throw new ProvisioningError(
        "adhoc_failed",
        "update failed on d1: update_not_newer: version 0.2.0 is already running",
      );
    }, []);
    assert.deepEqual(await updateAction(SPEC, already, fast).run(DEVICE, 60_000), ["already running 0.2.0"]);
    const refused = device(() => {
      throw new ProvisioningError("adhoc_failed", "update failed on d1: update_formats: release 0.2.0 writes data ...");
    }, []);
    await assert.rejects(updateAction(SPEC, refused, fast).run(DEVICE, 60_000), /update_formats/);
    const silent = device(
      () => ["Accepted"],
      Array.from({ length: 100 }, () => new Error("offline")),
    );
    await assert.rejects(
      updateAction(SPEC, silent, fast).run(DEVICE, 10_000),
      (e: unknown) => e instanceof ProvisioningError && e.code === "xmpp_timeout",
    );
  });
});
