import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type AuditRecord, AuditLog } from "./audit.js";

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function rec(i: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    t: new Date(0).toISOString(),
    requester: "alice@iot.test/x",
    node: "set-output",
    action: "execute",
    outcome: "completed",
    durationMs: i,
    params: { output: "relay", value: true },
    ...extra,
  };
}

describe("AuditLog", () => {
  it("appends JSON lines and redacts secret-looking keys", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-"));
    dirs.push(dir);
    const log = new AuditLog({
      path: join(dir, "sub", "audit.jsonl"),
      maxBytes: 1 << 20,
      maxFiles: 3,
      maxPending: 100,
    });
    await log.start();
    log.record(rec(1));
    log.record(rec(2, { params: { password: "hunter2", pin: "[redacted]" } }));
    await log.stop();
    const lines = (await readFile(join(dir, "sub", "audit.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[0].params, { output: "relay", value: true });
    assert.equal(lines[1].params.password, "[redacted]");
    assert.equal(log.stats.written, 2);
  });

  it("rotates by size and keeps a bounded number of files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-"));
    dirs.push(dir);
    const path = join(dir, "audit.jsonl");
    const log = new AuditLog({ path, maxBytes: 1024, maxFiles: 2, maxPending: 1000 });
    await log.start();
    for (let i = 0; i < 60; i++) log.record(rec(i));
    await log.flush();
    await log.stop();
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    for (const f of files) {
      const text = await readFile(join(dir, f), "utf8");
      assert.ok(Buffer.byteLength(text) <= 1024, `${f} is ${text.length} bytes`);
      for (const line of text.trim().split("\n")) JSON.parse(line);
    }
    // The newest record is in the current file.
    assert.match(await readFile(path, "utf8"), /"durationMs":59/);
    assert.ok(log.stats.rotations >= 3);
  });

  it("counts records it cannot queue instead of growing without bound", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-"));
    dirs.push(dir);
    const log = new AuditLog({ path: join(dir, "a.jsonl"), maxBytes: 1 << 20, maxFiles: 1, maxPending: 5 });
    log.record(rec(0)); // not started
    await log.start();
    for (let i = 0; i < 20; i++) log.record(rec(i));
    await log.stop();
    assert.equal(log.stats.dropped + log.stats.written, 21);
    assert.ok(log.stats.dropped >= 1);
  });
});
