/**
 * Reconnect benchmark: how long our XmppSession takes to log in and to resume, and how many round
 * trips each needs, across a link with added latency (the harness proxy delays every chunk in each
 * direction by the same one-way latency).
 *
 * Per login path (bench/reconnect/variants.ts; "classic" is the session's default config), per
 * one-way latency, N runs, each on a new session (cold SCRAM cache, as after an agent restart):
 *  - fresh login: start() to 'online' (TLS, authenticated, bound, XEP-0198 enabled);
 *  - resume: proxy.reset() to 'online' again with resumed = true. The reconnect backoff is set as
 *    short as the config allows and is part of the figure (and shown on its own as "wait").
 * Round trips come from the proxy's flight log of the connection that got online, plus one for
 * the TCP handshake; the proxy accepts TCP locally, so the times printed are the measured ones
 * plus one RTT (2 x latency) for that handshake ("modelled").
 *
 * Run: node --import tsx bench/reconnect.ts [--runs 5] [--latencies 0,50,150]
 * Figures: table on stdout and .tmp/bench/reconnect.json. Prosody, the proxy and temp dirs are torn
 * down through the harness registry, also on Ctrl-C.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { type ProsodyHandle, startProsody } from "../test/harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../test/harness/proxy.js";
import { makeTempDir } from "../test/harness/tmp.js";
import { BenchError } from "./lib/errors.js";
import { baseXmppConfig, deepMerge, measureRun, parseXmppConfig, type RunResult } from "./reconnect/measure.js";
import { type CellSummary, renderTable, summarizeCell, withRatios } from "./reconnect/report.js";
import { VARIANTS, type Variant } from "./reconnect/variants.js";

function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1)
    throw new BenchError("bench_args", `--${name} needs a whole number >= 1`, { name });
  return v;
}

function latenciesArg(fallback: number[]): number[] {
  const i = process.argv.indexOf("--latencies");
  if (i < 0) return fallback;
  const xs = String(process.argv[i + 1] ?? "")
    .split(",")
    .map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 0 || x > 2000))
    throw new BenchError("bench_args", "--latencies needs whole numbers of ms (0..2000), comma-separated");
  return xs;
}

const RUNS = intArg("runs", 5);
const LATENCIES = latenciesArg([0, 50, 150]);
const USER = "bench";
const PASSWORD = randomBytes(12).toString("base64url");
const OUT_DIR = join(fileURLToPath(new URL("../", import.meta.url)), ".tmp", "bench");
const BASELINE = VARIANTS[0]!.name;

/** Variants needing the same server share one Prosody; the key is its settings. */
function serverGroups(variants: readonly Variant[]): Variant[][] {
  const groups = new Map<string, Variant[]>();
  for (const v of variants) {
    const key = JSON.stringify({ m: [...(v.prosody?.extraModules ?? [])].sort(), g: v.prosody?.extraGlobalLua ?? "" });
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  return [...groups.values()];
}

async function runVariant(
  v: Variant,
  prosody: ProsodyHandle,
  proxy: LinkBreakingProxy,
): Promise<Omit<CellSummary, "ratio">[]> {
  const dir = makeTempDir(`iot-bench-reconnect-${v.name}-`);
  try {
    await v.setup?.(prosody);
    const own = typeof v.xmppConfig === "function" ? v.xmppConfig({ dir: dir.path, prosody }) : v.xmppConfig;
    const configFor = (resource: string) =>
      parseXmppConfig(deepMerge(baseXmppConfig(prosody, proxy, USER, PASSWORD, resource), own), v.name);
    // Unmeasured: loads and JIT-compiles the code paths, and leaves behind whatever a variant keeps
    // between logins (a FAST token), so every measured login is a repeat login of a known device.
    proxy.setLatency(0);
    await measureRun({
      proxy,
      config: configFor(`${v.name}-warmup`),
      password: PASSWORD,
      latencyMs: 0,
      variant: v.name,
    });
    const cells: Omit<CellSummary, "ratio">[] = [];
    for (const latencyMs of LATENCIES) {
      proxy.setLatency(latencyMs);
      const runs: RunResult[] = [];
      for (let i = 0; i < RUNS; i++) {
        process.stderr.write(`[bench] ${v.name}, ${latencyMs} ms one-way: run ${i + 1}/${RUNS}\n`);
        runs.push(
          await measureRun({
            proxy,
            config: configFor(`${v.name}-${latencyMs}-${i}`),
            password: PASSWORD,
            latencyMs,
            variant: v.name,
          }),
        );
      }
      cells.push(summarizeCell(v.name, latencyMs, runs));
    }
    return cells;
  } finally {
    proxy.setLatency(0);
    dir.remove();
  }
}

async function runGroup(variants: Variant[]): Promise<Omit<CellSummary, "ratio">[]> {
  const server = variants[0]!.prosody;
  // Info, not the harness's debug: formatting every stanza into the log costs Prosody more than
  // handling it, and would land in every round trip.
  const prosody = await startProsody({
    tls: true,
    logLevel: "info",
    smacksHibernationTime: 60,
    ...(server?.extraModules ? { extraModules: server.extraModules } : {}),
    ...(server?.extraGlobalLua ? { extraGlobalLua: server.extraGlobalLua } : {}),
  });
  await prosody.register(USER, PASSWORD);
  const proxy = await startProxy({ targetPort: prosody.port });
  const cells: Omit<CellSummary, "ratio">[] = [];
  for (const v of variants) cells.push(...(await runVariant(v, prosody, proxy)));
  await proxy.stop();
  await prosody.stop();
  return cells;
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  // The harness unrefs its children and sockets; this keeps the process alive while it waits on them.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const raw: Omit<CellSummary, "ratio">[] = [];
    for (const group of serverGroups(VARIANTS)) raw.push(...(await runGroup(group)));
    const order = new Map(VARIANTS.map((v, i) => [v.name, i]));
    raw.sort((a, b) => order.get(a.variant)! - order.get(b.variant)! || a.latencyMs - b.latencyMs);
    const cells = withRatios(raw, BASELINE);

    const totalS = (performance.now() - started) / 1000;
    const load = { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) };
    const cpu = cpus();
    const machine = `${cpu.length}x ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}/${process.arch}`;
    console.log(`\nXMPP reconnect benchmark — ${new Date().toISOString()} — ${machine}`);
    console.log(`${RUNS} runs per cell; latency is one-way, added in each direction by the proxy (RTT = 2 x latency).`);
    console.log(
      "ms = measured + 1 RTT for the TCP handshake (the proxy accepts TCP locally, so it is not delayed); " +
        "RTs = round trips the client waited for on the connection that got online, + 1 for that handshake.",
    );
    console.log(
      "login: start() to online (TLS, authenticated, bound, SM enabled), new session per run (SCRAM cache cold). " +
        "resume: proxy reset to online with resumed=true; wait = reset to the resumption attempt " +
        "(reconnect backoff at its minimum: the backoff never waits less than 100 ms).",
    );
    console.log(`rest = ms - RTs x RTT (CPU: TLS, PBKDF2, XML; timers). vs ${BASELINE}: ratio of the ms medians.\n`);
    console.log(renderTable(cells, BASELINE));
    const mechanisms = [...new Set(cells.map((c) => `${c.variant}: ${c.mechanism ?? "?"}`))];
    console.log(`\nSASL mechanism used — ${mechanisms.join(", ")}`);
    console.log(`load average (1/5/15 min) at start ${load.start.join(" ")}, at end ${load.end.join(" ")}`);
    console.log(`total ${totalS.toFixed(1)} s; figures in ${join(OUT_DIR, "reconnect.json")}`);

    mkdirSync(OUT_DIR, { recursive: true });
    const json = {
      date: new Date().toISOString(),
      machine,
      loadAverage: load,
      params: {
        runs: RUNS,
        latenciesMsOneWay: LATENCIES,
        baseline: BASELINE,
        modelled: "measured + 2 x latency (TCP handshake to the proxy is local)",
        roundTrips: "server flights answering a client flight up to 'online', + 1 for the TCP handshake",
        saltedPasswordCache: "cold: a new session per run",
        reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
      },
      variants: VARIANTS.map((v) => ({
        name: v.name,
        xmppConfig: typeof v.xmppConfig === "function" ? "(function)" : v.xmppConfig,
        prosody: v.prosody ?? {},
      })),
      cells,
      totalSeconds: totalS,
    };
    writeFileSync(join(OUT_DIR, "reconnect.json"), `${JSON.stringify(json, null, 2)}\n`);
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
