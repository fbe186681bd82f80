/**
 * Memory benchmark: the agent as it ships (the esbuild bundle run by bin/iot-agent.js from an
 * install layout, with the systemd unit's node flags), on a simulated board, against the harness
 * Prosody, in six configurations, each a step on the one before (bench/memory/configs.ts):
 * XMPP only, + serial, + GPIO, + MQTT bus (examples/sim.yaml's backends), + MQTT mirror, + the file
 * spool under load. Each agent is a child process, read from outside through /proc (VmRSS, RssAnon,
 * smaps_rollup); heap used comes from inside, from the agent's own status command (its hidden json
 * field), asked by a slixmpp operator. The agent reports no `external`: that column is n/a for it.
 *
 * Per configuration:
 *  - steady: after --steady-seconds online at 1 reading/s (all configurations side by side);
 *  - replay: peak RSS while --replay readings are spooled during an outage and then replayed;
 *  - growth: RSS and heap after --growth readings since start, back at 1 reading/s.
 * Baselines in the same run, same flags: bare node, node holding one TLS socket (STARTTLS to the
 * harness Prosody), and the session benchmark's children (XmppSession alone, @xmpp/client 0.14).
 * Steady state and baselines: --runs runs, medians. Replay and growth: the first --heavy-runs runs.
 *
 * Run: node --import tsx bench/memory.ts [--runs 3] [--heavy-runs 1] [--steady-seconds 60]
 *      [--replay 10000] [--growth 100000] [--settle-seconds 30] [--load-rate 100]
 *      [--only xmpp,serial,...] [--node-flags "FLAGS"] [--env "NAME=VALUE ..."]
 * --node-flags and --env replace the unit's node flags and Environment= for every process of the
 * run, baselines included (to try other settings; the unit's are the default).
 * Output: tables on stdout, every sample in .tmp/bench/memory.json. Prosody, mosquitto, the
 * simulators, the proxies and every child are torn down through the harness registry (also Ctrl-C).
 *
 * Server side: Prosody keeps pubsub items in memory (`storage = { pubsub_data = "memory" }`), not in
 * its file store, whose whole-node rewrite per publish limits a drain to ~375 readings/s on this
 * machine; the agent is what is measured, and a faster server is the harder case for its replay.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { startProxy } from "../test/harness/proxy.js";
import { makeTempDir } from "../test/harness/tmp.js";
import { BenchError } from "./lib/errors.js";
import { MiB } from "./lib/stats.js";
import { type RunningAgent, startAgent, waitAnswering } from "./memory/agent.js";
import {
  buildTlsHold,
  measureBareNode,
  measureSessionChild,
  measureTlsSocket,
  SESSION_SINK,
  SESSION_USER,
} from "./memory/baselines.js";
import { startStage } from "./memory/stage.js";
import { BURST_CHANNELS, intervalForRate, type VariantId, variants as allVariants } from "./memory/configs.js";
import { buildInstall } from "./memory/install.js";
import { BURST_INTERVAL_MS, FILL_INTERVAL_MS, growth, measure, replay } from "./memory/phases.js";
import {
  baselineTable,
  burstTable,
  type RunResult,
  steadyTable,
  summarize,
  targets,
  targetTable,
} from "./memory/report.js";
import { BENCH_OUT, buildBenchBundles } from "./session/build.js";

function intArg(name: string, fallback: number, min = 0): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < min)
    throw new BenchError("bench_args", `--${name} needs a whole number >= ${min}`, { name });
  return v;
}

function listArg(name: string): string[] | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (!v) throw new BenchError("bench_args", `--${name} needs a comma-separated list`, { name });
  return v.split(",").map((s) => s.trim());
}

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined) throw new BenchError("bench_args", `--${name} needs a value`, { name });
  return v;
}

/** `--env "A=1 B=2"` (an empty string: no environment at all, as a unit without Environment=). */
function envArg(name: string): Record<string, string> | undefined {
  const v = stringArg(name);
  if (v === undefined) return undefined;
  const env: Record<string, string> = {};
  for (const pair of v.split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new BenchError("bench_args", `--${name}: ${pair} is not NAME=VALUE`, { name });
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

const RUNS = intArg("runs", 3, 1);
const HEAVY_RUNS = Math.min(RUNS, intArg("heavy-runs", 1));
const STEADY_S = intArg("steady-seconds", 60, 1);
const REPLAY = intArg("replay", 10_000);
const GROWTH = intArg("growth", 100_000);
const SETTLE_S = intArg("settle-seconds", 30);
const LOAD_RATE = intArg("load-rate", 100, 1);
const ONLY = listArg("only");
const NODE_FLAGS = stringArg("node-flags")?.split(/\s+/).filter(Boolean);
const ENV = envArg("env");
const PASSWORD = randomBytes(12).toString("base64url");
const DOMAIN = "iot.test";

const VARIANTS = allVariants(LOAD_RATE).filter((v) => !ONLY || ONLY.includes(v.id));
if (VARIANTS.length === 0) throw new BenchError("bench_args", `--only names no configuration (${ONLY?.join(",")})`);
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const deviceId = (run: number, id: VariantId) => `mem${run}-${id}`;

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    log("building the agent bundle (scripts/build.mjs) and the baseline children");
    const install = await buildInstall();
    // Trying other settings than the unit's (e.g. --node-flags "--max-old-space-size=48" --env
    // MALLOC_ARENA_MAX=2): every process of the run, baselines included, gets them.
    if (NODE_FLAGS) install.nodeFlags = NODE_FLAGS;
    if (ENV) install.unitEnv = ENV;
    const tlsBundle = await buildTlsHold();
    const sessionBundles = await buildBenchBundles();
    const devices = Array.from({ length: RUNS }, (_, r) => VARIANTS.map((v) => deviceId(r + 1, v.id))).flat();
    const { prosody, broker, op, ...stage } = await startStage({
      devices,
      accounts: [
        [SESSION_USER, PASSWORD],
        [SESSION_SINK, randomBytes(12).toString("base64url")],
      ],
      password: PASSWORD,
      mqtt: VARIANTS.some((v) => v.mqttBus || v.mirror),
      operatorName: "bench-memory-operator",
      operatorMaxSeconds: 4 * 3600,
    });
    const sessionProxy = await startProxy({ targetPort: prosody.port });
    const dir = makeTempDir("bench-memory-");

    const runs: RunResult[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const heavy = run <= HEAVY_RUNS && (REPLAY > 0 || GROWTH > 0);
      log(`run ${run}/${RUNS}: baselines`);
      const result: RunResult = {
        run,
        baselines: {
          bare: await measureBareNode(install.nodeFlags, install.unitEnv),
          tls: await measureTlsSocket(install.nodeFlags, install.unitEnv, tlsBundle, prosody),
          "session-ours": await measureSessionChild({
            nodeFlags: install.nodeFlags,
            env: install.unitEnv,
            file: sessionBundles.ours.file,
            client: "ours",
            id: "ours",
            prosody,
            proxy: sessionProxy,
            password: PASSWORD,
          }),
          "session-xmppjs": await measureSessionChild({
            nodeFlags: install.nodeFlags,
            env: install.unitEnv,
            file: sessionBundles.xmppjsBundle.file,
            client: "xmppjs",
            id: "xmppjs-bundle",
            prosody,
            proxy: sessionProxy,
            password: PASSWORD,
          }),
          "session-xmppjs-unbundled": await measureSessionChild({
            nodeFlags: install.nodeFlags,
            env: install.unitEnv,
            file: sessionBundles.xmppjs.file,
            client: "xmppjs",
            id: "xmppjs",
            prosody,
            proxy: sessionProxy,
            password: PASSWORD,
          }),
        },
        steady: {},
        replay: {},
        growth: {},
      };
      log(`run ${run}/${RUNS}: starting ${VARIANTS.length} agents (${VARIANTS.map((v) => v.id).join(", ")})`);
      const agents: RunningAgent[] = [];
      try {
        for (const v of VARIANTS)
          agents.push(
            await startAgent({
              variant: v,
              deviceId: deviceId(run, v.id),
              password: PASSWORD,
              dir: join(dir.path, `run${run}`, v.id),
              install,
              prosody,
              operatorJid: `operator@${DOMAIN}`,
              mqttUrl: broker?.url,
            }),
          );
        await Promise.all(agents.map((a) => waitAnswering(op, a, 60_000)));
        log(`run ${run}/${RUNS}: all online; ${STEADY_S} s at rest`);
        await new Promise((r) => setTimeout(r, STEADY_S * 1000));
        const steady = await Promise.all(agents.map((a) => measure(op, a)));
        agents.forEach((a, i) => {
          result.steady[a.variant.id] = steady[i]!;
        });
        if (heavy)
          for (const a of agents) {
            if (a.burstChannels.length === 0) continue;
            if (REPLAY > 0) {
              log(`run ${run}: ${a.variant.id}: replay of ${REPLAY} readings after an outage`);
              result.replay[a.variant.id] = await replay(op, a, REPLAY);
            }
            if (GROWTH > 0) {
              log(`run ${run}: ${a.variant.id}: growth to ${GROWTH} readings, then ${SETTLE_S} s at rest`);
              result.growth[a.variant.id] = await growth(op, a, GROWTH, SETTLE_S);
            }
          }
      } finally {
        for (const a of agents) await a.stop();
      }
      runs.push(result);
    }

    const summary = summarize(runs, VARIANTS);
    const checks = targets(summary, VARIANTS);
    const totalS = (performance.now() - started) / 1000;
    const load = { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) };
    const cpu = cpus();
    const machine = `${cpu.length}× ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}/${process.arch}`;
    console.log(`\nMemory benchmark — ${new Date().toISOString()} — ${machine}`);
    console.log(
      `agent: ${install.agentBin.replace(/^.*\.tmp\//, ".tmp/")} (bundle), node ${install.nodeFlags.join(" ")} (deploy/iot-agent.service; unit environment: ${Object.keys(install.unitEnv).length ? JSON.stringify(install.unitEnv) : "none"})`,
    );
    console.log(
      `runs ${RUNS} (steady state, baselines; medians), replay/growth in ${HEAVY_RUNS}; steady after ${STEADY_S} s at 1 reading/s; replay ${REPLAY} readings (${BURST_CHANNELS} channels at ${FILL_INTERVAL_MS} ms offline); growth to ${GROWTH} readings (at ${BURST_INTERVAL_MS} ms) then ${SETTLE_S} s at rest; load ${LOAD_RATE} readings/s (${BURST_CHANNELS} channels at ${intervalForRate(LOAD_RATE)} ms)`,
    );
    console.log("MiB; RSS/RssAnon/Pss from /proc (outside); heap used from the agent's status command (inside)\n");
    console.log(`Baselines\n${baselineTable(summary)}\n`);
    console.log(`Steady state (marginal = this row − the row above)\n${steadyTable(summary, VARIANTS)}\n`);
    if (Object.keys(summary.replay).length + Object.keys(summary.growth).length > 0)
      console.log(
        `Replay after an outage (peak of 100 ms samples, cut → drained) and growth\n${burstTable(summary, VARIANTS)}\n`,
      );
    console.log(`Targets\n${targetTable(checks)}\n`);
    console.log(`load average (1/5/15 min) at start ${load.start.join(" ")}, at end ${load.end.join(" ")}`);
    console.log(`total ${totalS.toFixed(1)} s; figures in ${join(BENCH_OUT, "memory.json")}`);

    mkdirSync(BENCH_OUT, { recursive: true });
    writeFileSync(
      join(BENCH_OUT, "memory.json"),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine,
          loadAverage: load,
          unit: { nodeFlags: install.nodeFlags, env: install.unitEnv },
          build: install.buildOutput,
          params: {
            runs: RUNS,
            heavyRuns: HEAVY_RUNS,
            steadySeconds: STEADY_S,
            replay: REPLAY,
            growth: GROWTH,
            settleSeconds: SETTLE_S,
            loadRate: LOAD_RATE,
            burstChannels: BURST_CHANNELS,
            fillIntervalMs: FILL_INTERVAL_MS,
            burstIntervalMs: BURST_INTERVAL_MS,
          },
          variants: VARIANTS,
          units: "bytes",
          summary,
          targets: checks,
          runs,
          totalSeconds: totalS,
          mib: MiB,
        },
        null,
        2,
      )}\n`,
    );
    await sessionProxy.stop();
    await stage.stop();
    dir.remove();
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
