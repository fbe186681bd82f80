import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError } from "../../kernel/errors.js";
import { createLogger } from "../../kernel/log.js";
import { FakeTimers } from "../../kernel/timers.js";
import { DEFAULT_MEMORY_CONFIG, type MemoryConfig } from "./config.js";
import { MemoryWatch, type MemoryWatchOptions, memoryFigures } from "./memory-watch.js";

const MiB = 1_048_576;
const LIMIT = 96 * MiB;

function usage(rss: number, heapUsed = 9 * MiB): NodeJS.MemoryUsage {
  return { rss, heapUsed, heapTotal: 14 * MiB, external: 2 * MiB, arrayBuffers: MiB / 4 };
}

/** A watch on fake time whose RSS the test sets, with its log lines collected. */
function rig(over: Partial<Omit<MemoryWatchOptions, "config">> & { config?: Partial<MemoryConfig> } = {}) {
  const timers = new FakeTimers(1_700_000_000_000);
  const lines: Array<Record<string, unknown>> = [];
  let rss = 40 * MiB;
  const { config: configured, ...rest } = over;
  const config = { ...DEFAULT_MEMORY_CONFIG, ...configured };
  const watch = new MemoryWatch({
    timers,
    logger: createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) }),
    memoryUsage: () => usage(rss),
    findLimit: async () => ({ bytes: LIMIT, file: "/sys/fs/cgroup/system.slice/iot-agent.service/memory.max" }),
    ...rest,
    config,
  });
  return {
    timers,
    watch,
    lines,
    /** Sets RSS to `mib` MiB and lets one check run. */
    at(mib: number) {
      rss = mib * MiB;
      timers.advance(config.checkIntervalMs);
    },
    said: (msg: string) => lines.filter((l) => l.msg === msg),
  };
}

describe("MemoryWatch", () => {
  it("logs where the limit came from at start", async () => {
    const r = rig();
    await r.watch.start();
    assert.equal(r.watch.limitBytes, LIMIT);
    assert.deepEqual(r.said("memory limit"), [
      {
        t: r.said("memory limit")[0]!.t,
        level: "info",
        msg: "memory limit",
        component: "memory",
        limitMiB: 96,
        from: "/sys/fs/cgroup/system.slice/iot-agent.service/memory.max",
        warnAtMiB: 76.8,
        rssMiB: 40,
      },
    ]);
    r.watch.stop();
  });

  it("warns once when RSS crosses warnFraction of the limit, not again while it hovers at the line", async () => {
    const r = rig();
    await r.watch.start();
    r.at(70);
    assert.equal(r.said("memory high").length, 0);
    r.at(77); // 0.802 of 96 MiB
    const [warn] = r.said("memory high");
    assert.deepEqual(
      { ...warn, t: undefined },
      {
        t: undefined,
        level: "warn",
        msg: "memory high",
        component: "memory",
        rssMiB: 77,
        limitMiB: 96,
        fraction: 0.8,
        warnFraction: 0.8,
        heapUsedMiB: 9,
        heapTotalMiB: 14,
        externalMiB: 2,
        arrayBuffersMiB: 0.3,
      },
    );
    // Hovering around the line, dipping under it but not under the re-arm line (0.75: 72 MiB).
    for (const mib of [76, 78, 73, 77, 72.5, 80]) r.at(mib);
    assert.equal(r.said("memory high").length, 1);
    assert.equal(r.said("memory no longer high").length, 0);
    r.watch.stop();
  });

  it("re-arms once RSS falls under (warnFraction - 0.05) of the limit, saying so, and warns at the next crossing", async () => {
    const r = rig();
    await r.watch.start();
    r.at(80);
    r.at(71.9);
    assert.deepEqual(
      r.said("memory no longer high").map((l) => [l.level, l.rssMiB, l.fraction, l.rearmFraction]),
      [["info", 71.9, 0.75, 0.75]],
    );
    r.at(75);
    assert.equal(r.said("memory high").length, 1);
    r.at(77);
    assert.equal(r.said("memory high").length, 2);
    r.watch.stop();
  });

  it("checks at start, so an agent already over the line warns at once", async () => {
    const r = rig({ memoryUsage: () => usage(90 * MiB) });
    await r.watch.start();
    assert.equal(r.said("memory high").length, 1);
    r.watch.stop();
  });

  it("warnFraction from the config; memory.limitBytes wins over the cgroup's limit", async () => {
    let asked = false;
    const r = rig({
      config: { warnFraction: 0.5, limitBytes: 128 * MiB },
      findLimit: async () => {
        asked = true;
        return { bytes: LIMIT, file: "x" };
      },
    });
    await r.watch.start();
    assert.equal(asked, false);
    assert.equal(r.watch.limitBytes, 128 * MiB);
    assert.equal(r.said("memory limit")[0]!.from, "memory.limitBytes");
    r.at(63);
    assert.equal(r.said("memory high").length, 0);
    r.at(65);
    assert.deepEqual(
      r.said("memory high").map((l) => [l.limitMiB, l.fraction, l.warnFraction]),
      [[128, 0.51, 0.5]],
    );
    r.watch.stop();
  });

  it("with no limit found it says so, runs no timer and never warns", async () => {
    const r = rig({ findLimit: async () => undefined });
    await r.watch.start();
    assert.equal(r.watch.limitBytes, undefined);
    assert.equal(r.said("memory limit: none found, not watching").length, 1);
    assert.equal(r.timers.pendingCount, 0);
    r.at(4096);
    assert.equal(r.said("memory high").length, 0);
    assert.equal(r.watch.snapshot().limitBytes, undefined);
  });

  it("a limit that cannot be read is a warning, and the agent goes on without the watch", async () => {
    const r = rig({
      findLimit: async () => {
        throw new AgentError("memory_limit_unreadable", "cannot read x", { file: "x" });
      },
    });
    await r.watch.start();
    const [warn] = r.said("memory limit unreadable, not watching");
    assert.equal((warn?.error as { code?: string } | undefined)?.code, "memory_limit_unreadable");
    assert.equal(r.timers.pendingCount, 0);
  });

  it("usage that cannot be read is one warning, and the watch stops rather than repeat it", async () => {
    let broken = false;
    const r = rig({
      memoryUsage: () => {
        if (broken) throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
        return usage(40 * MiB);
      },
    });
    await r.watch.start();
    broken = true;
    r.timers.advance(120_000);
    assert.equal(r.said("memory usage unreadable, not watching").length, 1);
    assert.equal(r.timers.pendingCount, 0);
  });

  it("samples every checkIntervalMs on the injected timers, and stop() leaves no timer", async () => {
    let reads = 0;
    const r = rig({
      config: { checkIntervalMs: 5000 },
      memoryUsage: () => {
        reads++;
        return usage(40 * MiB);
      },
    });
    await r.watch.start();
    const atStart = reads;
    r.timers.advance(15_000);
    assert.equal(reads - atStart, 3);
    r.watch.stop();
    assert.equal(r.timers.pendingCount, 0);
    r.timers.advance(60_000);
    assert.equal(reads - atStart, 3);
  });

  it("snapshot: the figures in bytes and the limit; the live heap only when a gc() is there", async () => {
    let heapUsed = 12 * MiB;
    const memoryUsage = () => usage(40 * MiB, heapUsed);
    const plain = rig({ memoryUsage });
    await plain.watch.start();
    assert.deepEqual(plain.watch.snapshot(), {
      rssBytes: 40 * MiB,
      heapUsedBytes: 12 * MiB,
      heapTotalBytes: 14 * MiB,
      externalBytes: 2 * MiB,
      arrayBuffersBytes: MiB / 4,
      limitBytes: LIMIT,
    });
    plain.watch.stop();
    let collections = 0;
    const gc = () => {
      collections++;
      heapUsed = 7 * MiB;
    };
    const exposed = rig({ memoryUsage, gc });
    await exposed.watch.start();
    const s = exposed.watch.snapshot();
    assert.equal(collections, 1);
    assert.equal(s.heapUsedBytes, 12 * MiB, "heap used as it was, before the collection");
    assert.equal(s.heapLiveBytes, 7 * MiB);
    // The status item's figures never force a collection.
    assert.equal("heapLiveBytes" in exposed.watch.usage(), false);
    assert.equal(collections, 1);
    exposed.watch.stop();
  });

  it("memoryFigures names process.memoryUsage()'s figures in bytes", () => {
    assert.deepEqual(memoryFigures(usage(40 * MiB)), {
      rssBytes: 40 * MiB,
      heapUsedBytes: 9 * MiB,
      heapTotalBytes: 14 * MiB,
      externalBytes: 2 * MiB,
      arrayBuffersBytes: MiB / 4,
    });
  });
});
