import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { silentLogger } from "../../kernel/log.js";
import { SamplingSettings } from "./sampling-settings.js";

const dir = mkdtempSync(join(tmpdir(), "sampling-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function make(path: string) {
  const applied: Array<[string, number]> = [];
  const s = new SamplingSettings({
    path,
    defaults: { temp: 1000, door: 60_000 },
    target: { setInterval: (id, ms) => applied.push([id, ms]) },
    minIntervalMs: 100,
    maxIntervalMs: 3_600_000,
    logger: silentLogger,
  });
  return { s, applied };
}

describe("SamplingSettings", () => {
  it("persists changes and re-applies them after a restart", async () => {
    const path = join(dir, "a.json");
    const first = make(path);
    first.s.load();
    assert.deepEqual(first.applied, []);
    const change = await first.s.update("temp", { intervalMs: 5000 });
    assert.deepEqual(change, {
      before: { intervalMs: 1000, enabled: true },
      after: { intervalMs: 5000, enabled: true },
    });
    await first.s.update("door", { enabled: false });
    assert.deepEqual(first.applied, [
      ["temp", 5000],
      ["door", 0],
    ]);
    const second = make(path);
    second.s.load();
    assert.deepEqual(second.applied, [
      ["temp", 5000],
      ["door", 0],
    ]);
    assert.deepEqual(await second.s.get("door"), { intervalMs: 60_000, enabled: false });
  });

  it("refuses unknown channels and out-of-range intervals without saving", async () => {
    const path = join(dir, "b.json");
    const { s } = make(path);
    s.load();
    await assert.rejects(s.update("nope", { intervalMs: 1000 }), /no channel/);
    await assert.rejects(s.update("temp", { intervalMs: 5 }), /interval must be/);
    assert.throws(() => readFileSync(path), /ENOENT/);
  });

  it("ignores a corrupt file and entries for channels that no longer exist", async () => {
    const path = join(dir, "c.json");
    writeFileSync(path, "{not json");
    const a = make(path);
    a.s.load();
    assert.deepEqual(await a.s.get("temp"), { intervalMs: 1000, enabled: true });
    writeFileSync(path, JSON.stringify({ version: 1, channels: { gone: { intervalMs: 500, enabled: true } } }));
    const b = make(path);
    b.s.load();
    assert.deepEqual(b.applied, []);
  });
});
