/**
 * Command round-trip benchmark (issue 6): a slixmpp operator executes `set-output` (single stage,
 * values in the first request) on a device and waits for `completed`; the device is this project's
 * XmppSession + commands room + Board on the simulated GPIO (test/commands/device.ts), and the
 * baseline is a slixmpp ad-hoc command provider (test/commands/slix_provider.py) serving the same
 * command shape on the same Prosody, measured in the same run.
 *
 * Phases:
 *  1. Headline, private Prosody with its defaults (Nagle on, warnings-only logging): ours with stream
 *     management on (agent defaults), ours with it off, the slixmpp provider (no SM). N executions
 *     each, in alternating blocks so that load from other work on the machine hits all alike.
 *  2. Ack-cadence probes on the same server: ours with the test suites' ackDelayMs 50, ackEvery 1,
 *     and with (practically) no ack requests from the device at all.
 *  3. The same server settings but `network_settings = { nagle = false }` (TCP_NODELAY on Prosody's
 *     sockets): ours SM on / off and the provider again. Separates Prosody's Nagle from our cadence.
 *
 * The round trip is timed in this process around OperatorClient.execute(): it includes the JSON-line
 * pipe to the python operator and back, the same for every variant. The pipe alone (an operator
 * `ping`) is measured and reported so it can be subtracted. Every response is checked: status
 * completed, a "Changed output relay" note, and (for ours) the simulated GPIO line at the new level.
 *
 * Run: node --import tsx bench/commands.ts [--executions 1000] [--probe 400] [--rounds 4]
 * Figures: table on stdout and .tmp/bench/commands.json. Everything is torn down through the harness
 * registry (also on Ctrl-C).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { OperatorClient } from "../test/harness/operator.js";
import { type ProsodyHandle, startProsody } from "../test/harness/prosody.js";
import { makeTempDir } from "../test/harness/tmp.js";
import { type CommandDevice, RELAY_LINE, startCommandDevice } from "../test/commands/device.js";
import { type SlixProvider, startSlixProvider } from "../test/commands/slix-provider.js";
import { type LatencySummary, renderLatencyTable, summarizeLatency } from "./commands/stats.js";
import { BenchError } from "./lib/errors.js";

function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1)
    throw new BenchError("bench_args", `--${name} needs a whole number >= 1`, { name });
  return v;
}

const EXECUTIONS = intArg("executions", 1000);
const PROBE = intArg("probe", 400);
const ROUNDS = intArg("rounds", 4);
const WARMUP = 50;
const PASSWORD = randomBytes(12).toString("base64url");
const OUT_DIR = join(fileURLToPath(new URL("../", import.meta.url)), ".tmp", "bench");

/** The agent's own session defaults (docs/configuration.md), not the suites' tight test timings. */
const AGENT_SM = { enabled: true, ackEvery: 10, ackDelayMs: 500, maxQueue: 1000 };
const AGENT_KEEPALIVE = { idleMs: 60_000, timeoutMs: 20_000 };

interface SessionVariant {
  id: string;
  title: string;
  /** streamManagement section for the device's session. */
  sm: Record<string, unknown>;
  /** Fewer executions for a variant whose every round trip is slow. */
  maxN?: number;
}

const OURS_SM: SessionVariant = { id: "ours-sm", title: "ours, SM on (defaults)", sm: AGENT_SM };
const OURS_NOSM: SessionVariant = { id: "ours-nosm", title: "ours, SM off", sm: { enabled: false } };
const PROBES: SessionVariant[] = [
  { id: "ours-sm-delay50", title: "ours, SM on, ackDelayMs 50", sm: { ...AGENT_SM, ackDelayMs: 50 } },
  { id: "ours-sm-every1", title: "ours, SM on, ackEvery 1", sm: { ...AGENT_SM, ackEvery: 1 }, maxN: 200 },
  {
    id: "ours-sm-noreq",
    title: "ours, SM on, no <r/> from device",
    sm: { ...AGENT_SM, ackEvery: 10_000, ackDelayMs: 3_600_000, maxQueue: 10_000 },
  },
];

interface Target {
  id: string;
  title: string;
  jid: string;
  device?: CommandDevice;
  samples: number[];
  n?: number;
}

let accountSeq = 0;

async function startDevice(prosody: ProsodyHandle, v: SessionVariant, dir: string): Promise<Target> {
  const account = `dev${accountSeq++}`;
  await prosody.register(account, PASSWORD);
  mkdirSync(join(dir, account));
  const device = await startCommandDevice({
    prosody,
    account,
    password: PASSWORD,
    dir: join(dir, account),
    operators: [{ jid: `operator@${prosody.domain}`, commands: ["*"] }],
    // Back-to-back executions outrun an operator's default inbound budget (100/s): the benchmark
    // measures the round trip, not the budget.
    xmpp: {
      streamManagement: v.sm,
      keepalive: AGENT_KEEPALIVE,
      inbound: { operator: { perSecond: 1_000_000, burst: 1_000_000 } },
    },
  });
  return { id: v.id, title: v.title, jid: device.jid, device, samples: [], ...(v.maxN ? { n: v.maxN } : {}) };
}

async function startProvider(prosody: ProsodyHandle, id: string): Promise<{ target: Target; provider: SlixProvider }> {
  const account = `prov${accountSeq++}`;
  await prosody.register(account, PASSWORD);
  const provider = await startSlixProvider(prosody, account, PASSWORD);
  return { target: { id, title: "slixmpp provider (no SM)", jid: provider.jid, samples: [] }, provider };
}

/** n set-output executions against one target; every answer is checked, the hardware too. */
async function measure(op: OperatorClient, t: Target, n: number, into: number[] | undefined): Promise<void> {
  for (let i = 0; i < n; i++) {
    const value = i % 2 === 0;
    const t0 = performance.now();
    const r = await op.execute(t.jid, "set-output", { output: "relay", value });
    const ms = performance.now() - t0;
    if (r.status !== "completed" || !/Changed output relay/.test(r.notes[0]?.text ?? ""))
      throw new BenchError("bench_bad_answer", `${t.id}: unexpected answer ${r.xml.slice(0, 300)}`);
    // The relay is active-low: on is electrical 0.
    if (t.device && t.device.gpio.level(RELAY_LINE) !== (value ? 0 : 1))
      throw new BenchError("bench_hw_not_set", `${t.id}: relay line not at the commanded level`);
    into?.push(ms);
  }
}

/** Warm-up, then `rounds` blocks per target in turn, so slow phases of the machine hit all alike. */
async function measureSet(op: OperatorClient, targets: Target[], n: number, rounds: number): Promise<void> {
  for (const t of targets) await measure(op, t, WARMUP, undefined);
  for (let r = 0; r < rounds; r++)
    for (const t of targets) {
      const total = Math.min(n, t.n ?? n);
      await measure(op, t, Math.min(Math.ceil(total / rounds), total - t.samples.length), t.samples);
    }
}

/** The operator's JSON-line pipe alone (python ping), to subtract from the round trips. */
async function pipeOverhead(op: OperatorClient, n: number): Promise<LatencySummary> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op.call("ping");
    xs.push(performance.now() - t0);
  }
  return summarizeLatency(xs);
}

interface PhaseResult {
  phase: string;
  prosody: string;
  rows: { id: string; title: string; summary: LatencySummary }[];
  pipe: LatencySummary;
}

async function runPhase(opts: {
  phase: string;
  prosodyTitle: string;
  extraGlobalLua: string;
  variants: SessionVariant[];
  withProvider: boolean;
  n: number;
  rounds: number;
}): Promise<PhaseResult> {
  const dir = makeTempDir("bench-commands-");
  const prosody = await startProsody({ extraGlobalLua: opts.extraGlobalLua });
  const devices: CommandDevice[] = [];
  let provider: SlixProvider | undefined;
  let op: OperatorClient | undefined;
  try {
    await prosody.register("operator", PASSWORD);
    const targets: Target[] = [];
    for (const v of opts.variants) {
      const t = await startDevice(prosody, v, dir.path);
      devices.push(t.device!);
      targets.push(t);
    }
    if (opts.withProvider) {
      const p = await startProvider(prosody, "slix");
      provider = p.provider;
      targets.push(p.target);
    }
    op = await OperatorClient.login(prosody, "operator", PASSWORD, { name: "bench-operator" });
    process.stderr.write(
      `[bench] ${opts.phase}: ${targets.map((t) => t.id).join(", ")}, ${opts.n} executions each in ${opts.rounds} blocks\n`,
    );
    const pipe = await pipeOverhead(op, 200);
    await measureSet(op, targets, opts.n, opts.rounds);
    return {
      phase: opts.phase,
      prosody: opts.prosodyTitle,
      rows: targets.map((t) => ({ id: t.id, title: t.title, summary: summarizeLatency(t.samples) })),
      pipe,
    };
  } finally {
    await op?.stop();
    await provider?.stop();
    for (const d of devices) await d.stop();
    await prosody.stop();
    dir.remove();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg();
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    // Warnings only: the harness default (debug to a file) slows Prosody per stanza several times.
    const quiet = 'log = { warn = "*console" }';
    const phases: PhaseResult[] = [];
    phases.push(
      await runPhase({
        phase: "headline",
        prosodyTitle: "Prosody defaults (Nagle on)",
        extraGlobalLua: quiet,
        variants: [OURS_SM, OURS_NOSM],
        withProvider: true,
        n: EXECUTIONS,
        rounds: ROUNDS,
      }),
    );
    phases.push(
      await runPhase({
        phase: "ack-cadence probes",
        prosodyTitle: "Prosody defaults (Nagle on)",
        extraGlobalLua: quiet,
        variants: PROBES,
        withProvider: false,
        n: PROBE,
        rounds: ROUNDS,
      }),
    );
    phases.push(
      await runPhase({
        phase: "Prosody TCP_NODELAY",
        prosodyTitle: "Prosody network_settings = { nagle = false }",
        extraGlobalLua: `${quiet}\nnetwork_settings = { nagle = false }`,
        variants: [OURS_SM, OURS_NOSM],
        withProvider: true,
        n: PROBE,
        rounds: ROUNDS,
      }),
    );

    const cpu = cpus();
    const machine = `${cpu.length}× ${cpu[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${process.platform}/${process.arch}`;
    const load = { start: loadAtStart.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) };
    console.log(`\nCommand round-trip benchmark — ${new Date().toISOString()} — ${machine}`);
    console.log("set-output single-stage execute -> hardware set -> completed; slixmpp 1.8 operator, loopback Prosody");
    for (const ph of phases) {
      const slix = ph.rows.find((r) => r.id === "slix")?.summary;
      console.log(`\n[${ph.phase}] ${ph.prosody}`);
      console.log(
        renderLatencyTable(
          ph.rows.map((r) => ({
            title: r.title,
            summary: r.summary,
            ...(slix && r.id !== "slix" ? { ratioTo: slix } : {}),
          })),
          "/ slix",
        ),
      );
      console.log(
        `operator pipe alone (JSON line to python and back): p50 ${ph.pipe.p50.toFixed(2)} ms, p99 ${ph.pipe.p99.toFixed(2)} ms`,
      );
    }
    const totalS = (performance.now() - started) / 1000;
    console.log(`\nload average (1/5/15 min) at start ${load.start.join(" ")}, at end ${load.end.join(" ")}`);
    console.log(`total ${totalS.toFixed(1)} s; figures in ${join(OUT_DIR, "commands.json")}`);

    const headline = phases[0]!;
    const get = (id: string) => headline.rows.find((r) => r.id === id)!.summary;
    const ratios = Object.fromEntries(
      ["ours-sm", "ours-nosm"].map((id) => [
        id,
        { p50: get(id).p50 / get("slix").p50, p99: get(id).p99 / get("slix").p99 },
      ]),
    );
    mkdirSync(OUT_DIR, { recursive: true });
    writeFileSync(
      join(OUT_DIR, "commands.json"),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine,
          loadAverage: load,
          params: { executions: EXECUTIONS, probe: PROBE, rounds: ROUNDS, warmup: WARMUP, agentSm: AGENT_SM },
          phases,
          ratiosVsSlix: ratios,
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
