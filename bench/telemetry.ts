/**
 * Telemetry benchmark (issue 5): readings/s published to a pubsub node and acknowledged (IQ result)
 * through one private Prosody, batching off (1 reading per item) and on (50 per item), with client
 * CPU per reading, Prosody CPU per reading and the client's RSS, for:
 *  - ours: the real stack (Batcher -> spool -> TelemetryPublisher over XmppSession), memory spool,
 *    and file spool with fsync never / always;
 *  - @xmpp/client 0.14: the same IQs (same payload and publish-options), each awaited, the same
 *    number in flight (the agent's default publish.inFlight, 4);
 *  - a raw pipelining publisher: every IQ written at once, results counted - Prosody's ceiling.
 * Each variant runs in its own child process (esbuild bundle, plain node --expose-gc), publishing to
 * its own node (max_items 10: Prosody's file store slows with deep nodes, docs/spool.md). The
 * device account is a pubsub admin. Variants of one batch size run back to back (with --runs N,
 * N times in alternating order, figures are medians). Prosody is the bottleneck here (every publish
 * rewrites the node's item file), so the sizes are small enough to keep the script near 2 minutes.
 *
 * Run: node --import tsx bench/telemetry.ts [--runs 1] [--readings 1000] [--batched-readings 7500]
 * Figures: table on stdout and .tmp/bench/telemetry.json. Prosody, children and temp dirs are torn
 * down through the harness registry (also on Ctrl-C).
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { type ProsodyHandle, startProsody } from "../test/harness/prosody.js";
import { makeTempDir } from "../test/harness/tmp.js";
import { BenchError } from "./lib/errors.js";
import { BENCH_OUT, buildTelemetryBundles, type TelemetryBundle } from "./telemetry/build.js";
import type { TelemetryClient, TelemetryJob } from "./telemetry/protocol.js";
import { renderTelemetryTable, summarizeTelemetry, type TelemetrySummary } from "./telemetry/report.js";
import { runTelemetryChild, type TelemetryRun } from "./telemetry/runner.js";

function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1)
    throw new BenchError("bench_args", `--${name} needs a whole number >= 1`, { name });
  return v;
}

const BATCH_ON = 50;
const RUNS = intArg("runs", 1);
const READINGS_UNBATCHED = intArg("readings", 1000);
const READINGS_BATCHED = Math.ceil(intArg("batched-readings", 7500) / BATCH_ON) * BATCH_ON;
const IN_FLIGHT = 4;
const MAX_ITEMS = 10;
const DEVICE = "bench-dev";
const PASSWORD = randomBytes(12).toString("base64url");

interface Variant {
  id: string;
  title: string;
  client: TelemetryClient;
  batch: number;
  spool?: { store: "memory" } | { store: "file"; fsync: "never" | "always" };
  noDelay?: boolean;
}

function variants(batch: number): Variant[] {
  const b = batch === 1 ? "b1" : `b${batch}`;
  return [
    { id: `ours-mem-${b}`, title: "ours, memory spool", client: "ours", batch, spool: { store: "memory" } },
    { id: `xmppjs-${b}`, title: "@xmpp/client 0.14", client: "xmppjs", batch },
    // Diagnostic, batching off only (where round trips dominate): @xmpp/client with TCP_NODELAY.
    ...(batch === 1
      ? [
          {
            id: `xmppjs-nodelay-${b}`,
            title: "@xmpp/client + TCP_NODELAY (diag.)",
            client: "xmppjs" as const,
            batch,
            noDelay: true,
          },
        ]
      : []),
    {
      id: `ours-file-never-${b}`,
      title: "ours, file spool, fsync never",
      client: "ours",
      batch,
      spool: { store: "file", fsync: "never" },
    },
    {
      id: `ours-file-always-${b}`,
      title: "ours, file spool, fsync always",
      client: "ours",
      batch,
      spool: { store: "file", fsync: "always" },
    },
    { id: `raw-${b}`, title: "raw pipelined (Prosody ceiling)", client: "raw", batch },
  ];
}

async function runVariant(
  v: Variant,
  run: number,
  prosody: ProsodyHandle,
  bundles: Record<TelemetryClient, TelemetryBundle>,
): Promise<TelemetryRun> {
  const readings = v.batch === 1 ? READINGS_UNBATCHED : READINGS_BATCHED;
  const spoolDir = v.spool?.store === "file" ? makeTempDir("bench-spool-") : undefined;
  const job: TelemetryJob = {
    cmd: "job",
    host: prosody.host,
    port: prosody.port,
    domain: prosody.domain,
    user: DEVICE,
    password: PASSWORD,
    resource: `${v.id}-${run}`,
    caFile: prosody.caFile!,
    service: prosody.pubsubJid,
    node: `bench/${v.id}`,
    device: DEVICE,
    maxItems: MAX_ITEMS,
    batch: v.batch,
    inFlight: IN_FLIGHT,
    warmupReadings: v.batch * IN_FLIGHT * 3,
    readings,
    ...(v.noDelay ? { noDelay: true } : {}),
    ...(v.spool
      ? { spool: v.spool.store === "file" ? { ...v.spool, dir: spoolDir!.path } : { store: "memory" as const } }
      : {}),
  };
  process.stderr.write(`[bench] ${v.id} run ${run + 1}/${RUNS}: ${readings} readings\n`);
  try {
    return await runTelemetryChild({
      name: `bench-telemetry-${v.id}`,
      file: bundles[v.client].file,
      job,
      env: { NODE_EXTRA_CA_CERTS: prosody.caFile! },
      serverPid: prosody.process.pid,
      timeoutMs: 240_000,
    });
  } finally {
    spoolDir?.remove();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  // The harness unrefs its children and sockets; this keeps the parent alive while it waits on them.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const bundles = await buildTelemetryBundles();
    // Warnings only: the harness default (debug to a file) makes Prosody several times slower.
    const prosody = await startProsody({
      pubsubAdmins: [`${DEVICE}@iot.test`],
      extraGlobalLua: 'log = { warn = "*console" }',
    });
    await prosody.register(DEVICE, PASSWORD);

    const groups = [1, BATCH_ON].map((batch) => ({ batch, variants: variants(batch) }));
    const runs = new Map<string, TelemetryRun[]>();
    for (const g of groups)
      for (let r = 0; r < RUNS; r++) {
        // Alternate the order between runs so a slow phase of the machine does not favour one variant.
        const order = r % 2 === 0 ? g.variants : [...g.variants].reverse();
        for (const v of order) {
          const run = await runVariant(v, r, prosody, bundles);
          runs.set(v.id, [...(runs.get(v.id) ?? []), run]);
        }
      }
    await prosody.stop();

    const summaries = new Map<string, TelemetrySummary>();
    for (const [id, rs] of runs) summaries.set(id, summarizeTelemetry(rs));
    const cpu = cpus();
    const machine = `${cpu.length}× ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}/${process.arch}`;
    const load = { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) };
    console.log(`\nTelemetry benchmark — ${new Date().toISOString()} — ${machine}`);
    console.log(
      `pubsub publish + IQ result through Prosody; node max_items ${MAX_ITEMS}, ${IN_FLIGHT} in flight (raw: all), ${RUNS} run(s) per variant, medians`,
    );
    const tables: Record<string, { id: string; title: string; summary: TelemetrySummary }[]> = {};
    for (const g of groups) {
      const b = g.batch === 1 ? "b1" : `b${g.batch}`;
      const vs = summaries.get(`xmppjs-${b}`)!;
      const ceiling = summaries.get(`raw-${b}`)!;
      const readings = g.batch === 1 ? READINGS_UNBATCHED : READINGS_BATCHED;
      console.log(
        `\n[batching ${g.batch === 1 ? "off: 1 reading per item" : `on: ${g.batch} readings per item`}] ${readings} readings per run`,
      );
      console.log(
        renderTelemetryTable(
          g.variants.map((v) => ({
            title: v.title,
            s: summaries.get(v.id)!,
            ...(v.client === "ours" ? { vs } : {}),
            ...(v.client !== "raw" ? { ceiling } : {}),
          })),
        ),
      );
      tables[b] = g.variants.map((v) => ({ id: v.id, title: v.title, summary: summaries.get(v.id)! }));
    }
    const ratio = (a: string, b: string, k: keyof TelemetrySummary) => summaries.get(a)![k] / summaries.get(b)![k];
    const ratios = Object.fromEntries(
      ["b1", `b${BATCH_ON}`].map((b) => [
        b,
        {
          oursMemVsXmppjs: {
            readingsPerSec: ratio(`ours-mem-${b}`, `xmppjs-${b}`, "readingsPerSec"),
            cpuUsPerReading: ratio(`ours-mem-${b}`, `xmppjs-${b}`, "cpuUsPerReading"),
            rssAfter: ratio(`ours-mem-${b}`, `xmppjs-${b}`, "rssAfterMiB"),
            maxRss: ratio(`ours-mem-${b}`, `xmppjs-${b}`, "maxRssMiB"),
          },
          oursMemVsCeiling: ratio(`ours-mem-${b}`, `raw-${b}`, "readingsPerSec"),
          xmppjsVsCeiling: ratio(`xmppjs-${b}`, `raw-${b}`, "readingsPerSec"),
          fileAlwaysVsMem: ratio(`ours-file-always-${b}`, `ours-mem-${b}`, "readingsPerSec"),
          batchingGain: ratio(`ours-mem-b${BATCH_ON}`, "ours-mem-b1", "readingsPerSec"),
        },
      ]),
    );
    const totalS = (performance.now() - started) / 1000;
    console.log(
      `\nbench bundles (minified): ours ${(bundles.ours.bytes / 1024).toFixed(1)} KiB, @xmpp/client ${(bundles.xmppjs.bytes / 1024).toFixed(1)} KiB; RSS loaded ours ${summaries.get("ours-mem-b1")!.rssLoadedMiB.toFixed(1)} MiB, @xmpp/client ${summaries.get("xmppjs-b1")!.rssLoadedMiB.toFixed(1)} MiB`,
    );
    console.log(`load average (1/5/15 min) at start ${load.start.join(" ")}, at end ${load.end.join(" ")}`);
    console.log(`total ${totalS.toFixed(1)} s; figures in ${join(BENCH_OUT, "telemetry.json")}`);
    writeFileSync(
      join(BENCH_OUT, "telemetry.json"),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine,
          loadAverage: load,
          params: {
            runs: RUNS,
            readingsUnbatched: READINGS_UNBATCHED,
            readingsBatched: READINGS_BATCHED,
            batchOn: BATCH_ON,
            inFlight: IN_FLIGHT,
            maxItems: MAX_ITEMS,
          },
          bundles: { ours: bundles.ours.bytes, xmppjs: bundles.xmppjs.bytes, raw: bundles.raw.bytes },
          tables,
          runs: Object.fromEntries(runs),
          ratios,
          totalSeconds: totalS,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
