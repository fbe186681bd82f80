/**
 * XMPP session benchmark: this project's XmppSession against @xmpp/client 0.14, the same job, one
 * Prosody, in one run.
 *
 * Each client runs in its own child process (clean, comparable RSS/heap), as an esbuild bundle
 * (bench/session/build.ts); @xmpp/client also unbundled. Per client:
 *  - a logins child: N full logins (SCRAM-SHA-1 over STARTTLS, bound, SM enabled), one after another;
 *  - R throughput children: login through the link-breaking proxy, warm-up burst, 10,000 headline
 *    messages to an account with no connected resource (Prosody 0.12 discards those: mod_message
 *    "current policy is to discard headlines if no recipient is available") until the server acked
 *    all of them, then proxy resets, each timed until the session is resumed.
 * Figures are medians; the table and .tmp/bench/session.json carry them, with ratios ours/@xmpp/client.
 *
 * Run: node --import tsx bench/session.ts [--runs 3] [--logins 10] [--messages 10000] [--resets 3]
 *      [--ours-ack-delay MS]  (diagnostic: our streamManagement.ackDelayMs instead of its default)
 * Prosody, the proxy and every child are torn down through the harness registry, also on Ctrl-C.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { runCommand } from "../test/harness/process.js";
import { type ProsodyHandle, startProsody } from "../test/harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../test/harness/proxy.js";
import { BenchError } from "./lib/errors.js";
import { MiB, median } from "./lib/stats.js";
import { BENCH_OUT, type BenchBundle, buildBenchBundles } from "./session/build.js";
import type { ChildJob, ClientName } from "./session/protocol.js";
import {
  parseLogins,
  parseThroughputRun,
  ratio,
  renderTable,
  summarize,
  TABLE_ROWS,
  type ThroughputRun,
  type VariantSummary,
} from "./session/report.js";
import { runBenchChild } from "./session/runner.js";

function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new BenchError("bench_args", `--${name} needs a whole number`, { name });
  return v;
}

const RUNS = Math.max(1, intArg("runs", 3));
const LOGINS = Math.max(1, intArg("logins", 10));
const MESSAGES = Math.max(1, intArg("messages", 10_000));
const RESETS = intArg("resets", 3);
/** Diagnostic: our streamManagement.ackDelayMs (default 2000), to see how much of a burst's time is the ack tail. */
const OURS_ACK_DELAY = process.argv.includes("--ours-ack-delay") ? intArg("ours-ack-delay", 2000) : undefined;
const WARMUP = 1000;
/** Long enough to see @xmpp/client drop a just-resumed link (its stale close timer, see notes). */
const SETTLE_MS = 1500;
const PASSWORD = randomBytes(12).toString("base64url");

interface Variant {
  id: string;
  title: string;
  client: ClientName;
  bundle: BenchBundle;
  /** 0 skips the logins child. */
  logins: number;
  runs: number;
}

interface VariantResult {
  variant: Variant;
  loginsMs: number[];
  runs: ThroughputRun[];
  summary: VariantSummary;
  childWallMs: number;
}

async function baselineRss(samples: number): Promise<{ rss: number; heapUsed: number }> {
  // `node -e ''` cannot print its own memory: the smallest script that can (gc, then memoryUsage).
  const script = "gc();gc();const m=process.memoryUsage();process.stdout.write(JSON.stringify([m.rss,m.heapUsed]))";
  const rss: number[] = [];
  const heap: number[] = [];
  for (let i = 0; i < samples; i++) {
    const { stdout } = await runCommand(process.execPath, ["--expose-gc", "-e", script], {
      env: { NODE_OPTIONS: "" },
      timeoutMs: 10_000,
    });
    const [r, h] = JSON.parse(stdout) as [number, number];
    rss.push(r);
    heap.push(h);
  }
  return { rss: median(rss), heapUsed: median(heap) };
}

function job(kind: ChildJob["kind"], v: Variant, prosody: ProsodyHandle, port: number): ChildJob {
  return {
    cmd: "job",
    kind,
    host: prosody.host,
    port,
    domain: prosody.domain,
    user: "bench",
    password: PASSWORD,
    resource: `${v.id}-${kind}`,
    caFile: prosody.caFile!,
    sink: `sink@${prosody.domain}`,
    logins: v.logins,
    warmupMessages: WARMUP,
    messages: MESSAGES,
    resets: RESETS,
    settleMs: SETTLE_MS,
    ...(v.client === "ours" && OURS_ACK_DELAY !== undefined ? { ackDelayMs: OURS_ACK_DELAY } : {}),
  };
}

async function runVariant(v: Variant, prosody: ProsodyHandle, proxy: LinkBreakingProxy): Promise<VariantResult> {
  const env = { NODE_EXTRA_CA_CERTS: prosody.caFile! };
  let childWallMs = 0;
  let loginsMs: number[] = [];
  if (v.logins > 0) {
    process.stderr.write(`[bench] ${v.title}: ${v.logins} logins\n`);
    const logins = await runBenchChild({
      name: `bench-${v.id}-logins`,
      file: v.bundle.file,
      job: job("logins", v, prosody, prosody.port),
      proxy,
      env,
      timeoutMs: 60_000 + v.logins * 5_000,
    });
    childWallMs += logins.wallMs;
    loginsMs = parseLogins(logins.events, v.id);
  }
  const runs: ThroughputRun[] = [];
  for (let i = 0; i < v.runs; i++) {
    process.stderr.write(`[bench] ${v.title}: run ${i + 1}/${v.runs} (${MESSAGES} messages, ${RESETS} resets)\n`);
    const run = await runBenchChild({
      name: `bench-${v.id}-run${i}`,
      file: v.bundle.file,
      job: job("throughput", v, prosody, proxy.port),
      proxy,
      env,
      timeoutMs: 180_000,
      serverPid: prosody.process.pid,
    });
    childWallMs += run.wallMs;
    runs.push(parseThroughputRun(run.events, `${v.id} run ${i}`, run.serverCpuUs));
  }
  return { variant: v, loginsMs, runs, summary: summarize(loginsMs, runs), childWallMs };
}

/** The sink must really be a sink: nothing may have gone to offline storage for it. */
function offlineEntriesFor(prosody: ProsodyHandle, user: string): string[] {
  const hostDir = join(prosody.dataDir, encodeURIComponent(prosody.domain).replace(/\./g, "%2e"));
  if (!existsSync(hostDir)) return [];
  const found: string[] = [];
  for (const store of readdirSync(hostDir)) {
    if (!store.startsWith("offline")) continue;
    for (const f of readdirSync(join(hostDir, store))) if (f.startsWith(`${user}.`)) found.push(join(store, f));
  }
  return found;
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  // The harness unrefs its children and sockets; this keeps the parent alive while it waits on them.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const bundles = await buildBenchBundles();
    const baseline = await baselineRss(5);
    // Warnings only, to the console: the harness default (debug to a file, ~4 lines per stanza)
    // makes Prosody several times slower per message and would hide the clients behind it.
    const prosody = await startProsody({ smacksHibernationTime: 60, extraGlobalLua: 'log = { warn = "*console" }' });
    await prosody.register("bench", PASSWORD);
    await prosody.register("sink", randomBytes(12).toString("base64url"));
    const proxy = await startProxy({ targetPort: prosody.port });

    // Ours and @xmpp/client bundled are the headline pair (RUNS runs each). The unbundled @xmpp/client
    // runs the same code, so fewer logins and one run show its memory and load cost.
    const variants: Variant[] = [
      { id: "ours", title: "ours", client: "ours", bundle: bundles.ours, logins: LOGINS, runs: RUNS },
      {
        id: "xmppjs-bundle",
        title: "xmpp.js bundle",
        client: "xmppjs",
        bundle: bundles.xmppjsBundle,
        logins: LOGINS,
        runs: RUNS,
      },
      {
        id: "xmppjs",
        title: "xmpp.js unbundled",
        client: "xmppjs",
        bundle: bundles.xmppjs,
        logins: Math.ceil(LOGINS / 2),
        runs: 1,
      },
    ];
    const results: VariantResult[] = [];
    for (const v of variants) results.push(await runVariant(v, prosody, proxy));

    const offline = offlineEntriesFor(prosody, "sink");
    if (offline.length > 0)
      throw new BenchError("bench_sink_not_cheap", `Prosody stored messages for the sink: ${offline.join(", ")}`);

    const [ours, xBundle, xPlain] = results as [VariantResult, VariantResult, VariantResult];
    const table = renderTable(
      results.map((r) => ({ title: r.variant.title, summary: r.summary })),
      [
        { title: "ours/xmpp.js", num: ours.summary, den: xBundle.summary },
        { title: "ours/unbundled", num: ours.summary, den: xPlain.summary },
      ],
      MESSAGES,
    );
    const totalS = (performance.now() - started) / 1000;
    // Other work on the machine moves every figure (logins most): the load average goes with them.
    const load = { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) };
    const cpu = cpus();
    const machine = `${cpu.length}× ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}/${process.arch}`;
    console.log(`\nXMPP session benchmark — ${new Date().toISOString()} — ${machine}`);
    console.log(
      `job per run: login, ${WARMUP} warm-up + ${MESSAGES} headline messages until acked, ${RESETS} proxy resets; runs: ${variants.map((v) => `${v.title} ${v.runs}`).join(", ")}`,
    );
    console.log(
      `baseline \`node -e ''\`: RSS ${(baseline.rss / MiB).toFixed(1)} MiB, heapUsed ${(baseline.heapUsed / MiB).toFixed(2)} MiB`,
    );
    console.log(
      `bench bundles (minified, incl. the shared driver): ${variants
        .slice(0, 3)
        .map((v) => `${v.title} ${(v.bundle.bytes / 1024).toFixed(1)} KiB`)
        .join(", ")}`,
    );
    console.log(`\n${table}\n`);
    for (const r of results) {
      if (!r.summary.resumedAll)
        console.log(`note: ${r.variant.title}: some reconnects were fresh sessions, not resumptions`);
      if (r.summary.unexpectedDrops > 0)
        console.log(`note: ${r.variant.title}: ${r.summary.unexpectedDrops} link drop(s) not caused by a proxy reset`);
    }
    console.log(`load average (1/5/15 min) at start ${load.start.join(" ")}, at end ${load.end.join(" ")}`);
    console.log(`total ${totalS.toFixed(1)} s; figures in ${join(BENCH_OUT, "session.json")}`);

    const ratios = Object.fromEntries(
      TABLE_ROWS.filter((row) => row.key !== "unexpectedDrops").map((row) => [
        row.key,
        {
          vsBundle: ratio(ours.summary[row.key] as number, xBundle.summary[row.key] as number),
          vsUnbundled: ratio(ours.summary[row.key] as number, xPlain.summary[row.key] as number),
        },
      ]),
    );
    const json = {
      date: new Date().toISOString(),
      machine,
      loadAverage: load,
      params: {
        logins: LOGINS,
        runs: RUNS,
        warmup: WARMUP,
        messages: MESSAGES,
        resets: RESETS,
        settleMs: SETTLE_MS,
        oursAckDelayMs: OURS_ACK_DELAY ?? "default",
      },
      baseline: { rssMiB: baseline.rss / MiB, heapUsedMiB: baseline.heapUsed / MiB },
      clients: Object.fromEntries(
        results.map((r) => [
          r.variant.id,
          {
            title: r.variant.title,
            bundleBytes: r.variant.bundle.bytes,
            summary: r.summary,
            loginsMs: r.loginsMs,
            runs: r.runs,
            childWallMs: r.childWallMs,
          },
        ]),
      ),
      ratios,
      totalSeconds: totalS,
    };
    writeFileSync(join(BENCH_OUT, "session.json"), `${JSON.stringify(json, null, 2)}\n`);
    await proxy.stop();
    await prosody.stop();
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
