/**
 * Diagnostics for the memory benchmark (not part of `npm run bench`): one agent of one
 * configuration, run as bench/memory.ts runs it but with two flags added for looking inside,
 * `--trace-gc` (one line per GC on stdout: heap used and committed before and after) and
 * `--heapsnapshot-signal=SIGUSR2` (a heap snapshot on demand; taking one runs a full GC first, so
 * it shows what is live). Prints, at steady state and after the growth readings:
 *  - RSS per kind of mapping from /proc/PID/smaps (the node binary, libraries, [heap], anonymous);
 *  - the V8 heap as the last mark-compact left it (from --trace-gc);
 *  - the live heap from the snapshot, by node type and, for objects, by constructor.
 * The flags change the process a little (the trace's output, the snapshot's own memory): use the
 * figures of bench/memory.ts for sizes and these for where the memory goes.
 *
 * Run: node --import tsx bench/memory/diagnose.ts [--variant mqtt] [--steady-seconds 60]
 *      [--growth 100000] [--settle-seconds 30]
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { runAllTeardowns } from "../../test/harness/cleanup.js";
import type { OperatorClient } from "../../test/harness/operator.js";
import { makeTempDir } from "../../test/harness/tmp.js";
import { BenchError } from "../lib/errors.js";
import { MiB } from "../lib/stats.js";
import { agentStatus, type RunningAgent, startAgent, waitAnswering } from "./agent.js";
import { type VariantId, variants } from "./configs.js";
import { buildInstall, MEMORY_TMP } from "./install.js";
import { growth } from "./phases.js";
import { readMappingGroups, readProcMemory } from "./proc.js";
import { startStage } from "./stage.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (process.argv[i + 1] ?? fallback);
}
const VARIANT = arg("variant", "mqtt") as VariantId;
const STEADY_S = Number(arg("steady-seconds", "60"));
const GROWTH = Number(arg("growth", "100000"));
const SETTLE_S = Number(arg("settle-seconds", "30"));
const PASSWORD = randomBytes(12).toString("base64url");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (b: number, d = 1) => (b / MiB).toFixed(d);

/** --trace-gc lines: "[pid:addr]  1234 ms: Mark-Compact 7.9 (10.4) -> 6.1 (10.6) MB, ..." */
interface GcLine {
  kind: string;
  before: number;
  committedBefore: number;
  after: number;
  committedAfter: number;
}
function parseGc(line: string): GcLine | undefined {
  const m =
    /(Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\d]*([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/.exec(
      line,
    );
  if (!m) return undefined;
  return { kind: m[1]!, before: +m[2]!, committedBefore: +m[3]!, after: +m[4]!, committedAfter: +m[5]! };
}

interface SnapshotSummary {
  file: string;
  total: number;
  nodes: number;
  byType: [string, number, number][];
  byConstructor: [string, number, number][];
  /** Code objects (bytecode, compiled code, function infos, feedback) by name. */
  codeByName: [string, number, number][];
  /** The largest strings (mostly the source text of loaded scripts), their start and size. */
  largestStrings: [string, number][];
  /** The largest arrays (V8's backing stores: object elements, property tables, hash tables). */
  largestArrays: [string, number][];
}

function summarizeSnapshot(file: string): SnapshotSummary {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const nf = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const byType = new Map<string, [number, number]>();
  const byCtor = new Map<string, [number, number]>();
  const byCode = new Map<string, [number, number]>();
  const strings: [string, number][] = [];
  const arrays: [string, number][] = [];
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = types[snap.nodes[i + iType]!] ?? "?";
    const size = snap.nodes[i + iSize]!;
    total += size;
    const t = byType.get(type) ?? [0, 0];
    t[0] += size;
    t[1]++;
    byType.set(type, t);
    if (type === "code") {
      // "(bytecode array)", "system / Code", "(shared function info) name": group by the kind.
      const name = (snap.strings[snap.nodes[i + iName]!] ?? "?").replace(/\).*$/, ")").slice(0, 40);
      const c = byCode.get(name) ?? [0, 0];
      c[0] += size;
      c[1]++;
      byCode.set(name, c);
    }
    if (type === "array" && size >= 16 * 1024) arrays.push([snap.strings[snap.nodes[i + iName]!] ?? "?", size]);
    if (type === "string" && size >= 16 * 1024)
      strings.push([(snap.strings[snap.nodes[i + iName]!] ?? "").slice(0, 70).replace(/\s+/g, " "), size]);
    if (type === "object" || type === "native" || type === "closure") {
      const name = `${type === "object" ? "" : `(${type}) `}${snap.strings[snap.nodes[i + iName]!] ?? "?"}`.slice(
        0,
        60,
      );
      const c = byCtor.get(name) ?? [0, 0];
      c[0] += size;
      c[1]++;
      byCtor.set(name, c);
    }
  }
  const sorted = (m: Map<string, [number, number]>) =>
    [...m.entries()].map(([k, [s, n]]) => [k, s, n] as [string, number, number]).sort((a, b) => b[1] - a[1]);
  return {
    file,
    total,
    nodes: snap.nodes.length / nf,
    byType: sorted(byType),
    byConstructor: sorted(byCtor),
    codeByName: sorted(byCode),
    largestStrings: strings.sort((a, b) => b[1] - a[1]).slice(0, 12),
    largestArrays: arrays.sort((a, b) => b[1] - a[1]).slice(0, 12),
  };
}

async function takeSnapshot(agent: RunningAgent, dir: string, op: OperatorClient): Promise<SnapshotSummary> {
  const before = new Set(readdirSync(dir).filter((f) => f.endsWith(".heapsnapshot")));
  process.kill(agent.pid, "SIGUSR2");
  const until = Date.now() + 120_000;
  for (;;) {
    const file = readdirSync(dir).find((f) => f.endsWith(".heapsnapshot") && !before.has(f));
    if (file) {
      const path = join(dir, file);
      const size = statSync(path).size;
      await sleep(1000);
      // Written synchronously by the agent's main thread: complete once it answers again.
      if (statSync(path).size === size && size > 0) {
        await agentStatus(op, agent, 60_000);
        if (statSync(path).size === size) return summarizeSnapshot(path);
      }
    }
    if (Date.now() > until) throw new BenchError("bench_timeout", "no heap snapshot within 120 s");
    await sleep(500);
  }
}

function report(title: string, agent: RunningAgent, gc: GcLine[], snap: SnapshotSummary | undefined): void {
  const m = readProcMemory(agent.pid);
  console.log(`\n== ${title}`);
  console.log(
    `RSS ${mib(m.rss)} MiB = RssAnon ${mib(m.rssAnon)} + RssFile ${mib(m.rssFile)} + RssShmem ${mib(m.rssShmem)}; Pss ${mib(m.rollup.Pss ?? 0)}; threads ${m.threads}`,
  );
  console.log("RSS by mapping (/proc/PID/smaps), largest first:");
  for (const g of readMappingGroups(agent.pid).slice(0, 12))
    console.log(
      `  ${g.name.padEnd(44)} ${mib(g.rss, 2).padStart(7)} MiB  anon ${mib(g.anonymous, 2).padStart(6)}  (${g.mappings} mappings)`,
    );
  const lastMc = [...gc].reverse().find((g) => g.kind !== "Scavenge");
  const counts = gc.reduce<Record<string, number>>((acc, g) => {
    acc[g.kind] = (acc[g.kind] ?? 0) + 1;
    return acc;
  }, {});
  console.log(
    `GCs so far: ${Object.entries(counts)
      .map(([k, n]) => `${n} ${k}`)
      .join(
        ", ",
      )}; last full GC: ${lastMc ? `${lastMc.before} (${lastMc.committedBefore}) -> ${lastMc.after} (${lastMc.committedAfter}) MB` : "none yet"}`,
  );
  if (snap) {
    console.log(`heap snapshot (after a full GC): ${mib(snap.total, 2)} MiB live in ${snap.nodes} nodes`);
    console.log(
      `  by type: ${snap.byType
        .slice(0, 10)
        .map(([t, s, n]) => `${t} ${mib(s, 2)} (${n})`)
        .join(", ")}`,
    );
    console.log("  code by kind (self size), largest first:");
    for (const [name, s, n] of snap.codeByName.slice(0, 8))
      console.log(`    ${name.padEnd(60)} ${(s / 1024).toFixed(0).padStart(7)} KiB  ${String(n).padStart(7)}`);
    console.log("  strings of 16 KiB or more (source text of loaded scripts, mostly):");
    for (const [start, s] of snap.largestStrings)
      console.log(`    ${(s / 1024).toFixed(0).padStart(5)} KiB  ${JSON.stringify(start)}`);
    console.log("  arrays of 16 KiB or more:");
    for (const [name, s] of snap.largestArrays) console.log(`    ${(s / 1024).toFixed(0).padStart(5)} KiB  ${name}`);
    console.log("  objects by constructor (self size), largest first:");
    for (const [name, s, n] of snap.byConstructor.slice(0, 20))
      console.log(`    ${name.padEnd(60)} ${(s / 1024).toFixed(0).padStart(7)} KiB  ${String(n).padStart(7)}`);
  }
}

async function main(): Promise<void> {
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const variant = variants(100).find((v) => v.id === VARIANT);
    if (!variant) throw new BenchError("bench_args", `no configuration ${VARIANT}`);
    const install = await buildInstall(join(MEMORY_TMP, "app-diagnose"));
    const { prosody, broker, op, ...stage } = await startStage({
      devices: ["diag"],
      password: PASSWORD,
      mqtt: variant.mqttBus || variant.mirror,
      operatorName: "diag-operator",
      operatorMaxSeconds: 3600,
    });
    const dir = makeTempDir("bench-memory-diag-");
    const agent = await startAgent({
      variant,
      deviceId: "diag",
      password: PASSWORD,
      dir: dir.path,
      install,
      prosody,
      operatorJid: "operator@iot.test",
      mqttUrl: broker?.url,
      extraNodeFlags: ["--trace-gc", "--heapsnapshot-signal=SIGUSR2"],
    });
    const gc: GcLine[] = [];
    createInterface({ input: agent.proc.child.stdout! }).on("line", (l) => {
      const g = parseGc(l);
      if (g) gc.push(g);
    });
    await waitAnswering(op, agent, 60_000);
    console.log(
      `diagnosing ${variant.title}; node ${install.nodeFlags.join(" ")} --trace-gc --heapsnapshot-signal=SIGUSR2`,
    );
    await sleep(STEADY_S * 1000);
    const st = await agentStatus(op, agent);
    console.log(`status: heap used ${mib(st.memory.heapUsedBytes, 2)} MiB, RSS ${mib(st.memory.rssBytes)} MiB`);
    report(`steady state (${STEADY_S} s at rest), before the snapshot`, agent, gc, undefined);
    const snap1 = await takeSnapshot(agent, dir.path, op);
    report("steady state, after the snapshot", agent, gc, snap1);
    if (GROWTH > 0 && agent.burstChannels.length > 0) {
      const g = await growth(op, agent, GROWTH, SETTLE_S);
      console.log(
        `\ngrowth: ${g.readings} readings; status heap used ${mib(g.after.heapUsed, 2)} MiB (min ${mib(g.after.heapUsedMin, 2)})`,
      );
      report(`after ${g.readings} readings and ${SETTLE_S} s at rest, before the snapshot`, agent, gc, undefined);
      const snap2 = await takeSnapshot(agent, dir.path, op);
      report("after the growth readings, after the snapshot", agent, gc, snap2);
      const before = new Map(snap1.byConstructor.map(([k, s, n]) => [k, [s, n] as const]));
      const diff = snap2.byConstructor
        .map(([k, s, n]) => [k, s - (before.get(k)?.[0] ?? 0), n - (before.get(k)?.[1] ?? 0)] as const)
        .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
      console.log(
        `\nlive heap growth (snapshot after − steady): ${mib(snap2.total - snap1.total, 2)} MiB; largest changes:`,
      );
      for (const [k, s, n] of diff.slice(0, 15))
        console.log(`  ${k.padEnd(60)} ${(s / 1024).toFixed(0).padStart(7)} KiB  ${String(n).padStart(7)}`);
    }
    if (existsSync(dir.path)) {
      await agent.stop();
      await stage.stop();
      dir.remove();
    }
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
