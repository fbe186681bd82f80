import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { SPOOL_DEFAULTS, type SpoolConfig, spoolConfigSchema } from "./config.js";
import { FileSpoolStore } from "./file-spool.js";
import { type MqttMirrorConfig, mqttMirrorConfigSchema } from "./mqtt-mirror-config.js";
import { mirrorSpoolConfig, openSpoolStore, type SpoolFileLayout } from "./open-spool.js";
import { MemorySpoolStore } from "./spool.js";

const root = mkdtempSync(join(tmpdir(), "open-spool-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function spoolConfig(raw: Record<string, unknown>): SpoolConfig {
  const c = spoolConfigSchema.parse(raw, new Ctx());
  assert.notEqual(c, INVALID);
  return c as SpoolConfig;
}

function mirrorSpool(raw: Record<string, unknown>): MqttMirrorConfig["spool"] {
  const c = mqttMirrorConfigSchema.parse({ spool: raw }, new Ctx());
  assert.notEqual(c, INVALID);
  return (c as MqttMirrorConfig).spool;
}

describe("spool construction", () => {
  it("takes its defaults from the telemetry.spool schema", () => {
    assert.deepEqual(SPOOL_DEFAULTS, spoolConfig({}));
    assert.equal(SPOOL_DEFAULTS.overflow, "drop-oldest");
    assert.equal(new MemorySpoolStore().stats().maxBytes, SPOOL_DEFAULTS.maxBytes);
  });

  it("opens the store the config names, with the config's bound", async () => {
    const mem = await openSpoolStore(spoolConfig({ store: "memory", maxBytes: 128 * 1024 }), {
      dir: join(root, `m${n++}`),
    });
    assert.ok(mem instanceof MemorySpoolStore);
    assert.equal(mem.stats().maxBytes, 128 * 1024);
    await mem.close();

    const dir = join(root, `f${n++}`);
    const file = await openSpoolStore(
      spoolConfig({ store: "file", maxBytes: 256 * 1024, segmentBytes: 16 * 1024, fsync: "never" }),
      { dir },
    );
    assert.ok(file instanceof FileSpoolStore);
    assert.ok(existsSync(dir));
    assert.equal(file.stats().maxBytes, 256 * 1024);
    await file.close();
  });

  it("the mirror's spool: its own store and bound, the XMPP spool's file layout only for a file store", () => {
    const layout: SpoolFileLayout = {
      segmentBytes: 2 * 1024 * 1024,
      maxRecordBytes: 512 * 1024,
      fsync: "never",
      fsyncIntervalMs: 50,
    };
    const own = mirrorSpool({ maxBytes: 4 * 1024 * 1024, overflow: "reject-new" });
    assert.deepEqual(mirrorSpoolConfig(own, layout), {
      store: "file",
      maxBytes: 4 * 1024 * 1024,
      overflow: "reject-new",
      // A quarter of the mirror's bound, not the XMPP spool's 2 MiB.
      segmentBytes: 1024 * 1024,
      maxRecordBytes: 512 * 1024,
      fsync: "never",
      fsyncIntervalMs: 50,
    });
    const defaults = mirrorSpool({});
    assert.deepEqual(mirrorSpoolConfig(defaults, undefined), {
      ...SPOOL_DEFAULTS,
      maxBytes: 16 * 1024 * 1024,
    });
    const memory = mirrorSpool({ store: "memory" });
    assert.deepEqual(mirrorSpoolConfig(memory, layout), {
      ...SPOOL_DEFAULTS,
      store: "memory",
      maxBytes: 16 * 1024 * 1024,
    });
  });

  it("a small mirror bound still opens a file spool (segments shrink to fit it)", async () => {
    const s = await openSpoolStore(mirrorSpoolConfig(mirrorSpool({ maxBytes: 64 * 1024 }), SPOOL_DEFAULTS), {
      dir: join(root, `f${n++}`),
    });
    assert.equal(s.stats().maxBytes, 64 * 1024);
    await s.close();
  });
});
