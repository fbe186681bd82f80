/**
 * The three measurements of one running agent:
 *  - steady: after S seconds online at ~1 reading/s, ten readings 1 s apart of /proc (medians)
 *    and of the status command (heap used, the agent's own RSS);
 *  - replay: the burst channels raised to 10 ms and the link cut at the same moment (proxy refuses
 *    and resets); once the sequence shows N more readings, the link is restored; the burst channels
 *    go back to rest as soon as the agent answers again, and the spool drains. RSS and RssAnon are
 *    read every 100 ms from the cut to the drained spool; the peak is the maximum;
 *  - growth: the burst channels raised again until the agent has taken G readings since it
 *    started (replay included), then back to rest; once the spool is drained and the agent has run
 *    `settle` seconds at rest, the same ten readings as at steady state.
 */
import type { OperatorClient } from "../../test/harness/operator.js";
import { BenchError } from "../lib/errors.js";
import { agentStatus, type RunningAgent, type StatusJson, sequenceMark, setSampling, waitAnswering } from "./agent.js";
import { intervalForRate } from "./configs.js";
import { type ProcFigures, procFigures, readCpuMs, readProcMemory, readRss } from "./proc.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEQUENCE_BLOCK = 1000;
/** Burst channels' interval for the growth phase (ms): the lowest telemetry.sampler.minIntervalMs allows. */
export const BURST_INTERVAL_MS = 10;
/**
 * Their interval while the spool fills offline: slower, because the agent keeps sampling at this
 * rate until it is back online and answers set-sampling (up to reconnect.maxDelayMs plus a round
 * trip), and every reading taken then is replayed too.
 */
export const FILL_INTERVAL_MS = 20;
/** Expected time from the link restored to the burst channels back at rest, for the fill's stop. */
const EXPECTED_CATCH_UP_S = 1;
/** Interval of an idle burst channel after a phase (set-sampling cannot set 0): one day. */
const REST_INTERVAL_MS = 24 * 3600 * 1000;

export interface Measurement {
  proc: ProcFigures;
  /**
   * From the status command: heap used (median of the samples) and its lowest sample. Without a
   * forced GC (the agent has no way to be asked for one) heap used includes garbage not yet
   * collected; the lowest of several samples is the closer estimate of what is live.
   */
  heapUsed: number;
  heapUsedMin: number;
  /**
   * Heap used right after a full GC (median), when the agent runs with --expose-gc: its status
   * then collects before it measures (agent/health). What is live, without the garbage.
   */
  heapLive: number | undefined;
  /** process.memoryUsage().external from status (median): Buffers and other memory outside the V8 heap. */
  external: number;
  insideRss: number;
  uptimeS: number;
  spoolDepth: number | undefined;
}

export interface ReplayResult {
  /** Readings in the spool when the agent answered again after the outage. */
  spooledAtReconnect: number;
  outageMs: number;
  /** From the link restored to the agent answering status again. */
  reconnectMs: number;
  /** From the agent answering again to the spool drained. */
  drainMs: number;
  peakRss: number;
  peakRssAnon: number;
  /** Peaks before and after the link came back (the outage vs the replay itself). */
  peakRssOutage: number;
  peakRssDrain: number;
  /** Highest heap used the status command reported during the drain (once a second). */
  peakHeapUsedSeen: number;
  /** The agent's CPU time (user + system) from answering again to the spool drained. */
  drainCpuMs: number;
  /** VmHWM at the end of the phase: the kernel's high-water mark of the process so far. */
  hwmAfter: number;
  samples: number;
}

export interface GrowthResult {
  /** Readings the agent had taken (lower bound, from the sequence mark) when measured. */
  readings: number;
  /**
   * The agent's CPU time per 1,000 readings while the burst channels ran at BURST_INTERVAL_MS
   * (sampling, batching, spooling, publishing); undefined if the phase took no readings itself.
   */
  burstCpuMsPer1000: number | undefined;
  phaseMs: number;
  after: Measurement;
}

function restIntervalMs(agent: RunningAgent): number {
  return agent.variant.loadRate > 0 ? intervalForRate(agent.variant.loadRate) : REST_INTERVAL_MS;
}

/** The spool counts as drained at or below this many readings (a load variant keeps a few). */
function drainedAt(agent: RunningAgent): number {
  return 40 + agent.variant.loadRate;
}

function checkAlive(agent: RunningAgent): void {
  if (!agent.proc.running)
    throw new BenchError("bench_agent_exited", `${agent.deviceId} exited:\n${agent.proc.outputTail(30)}`);
}

export async function measure(op: OperatorClient, agent: RunningAgent, n = 10): Promise<Measurement> {
  const samples = [];
  const statuses: StatusJson[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await sleep(1000);
    checkAlive(agent);
    samples.push(readProcMemory(agent.pid));
    statuses.push(await agentStatus(op, agent));
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const last = statuses[statuses.length - 1]!;
  return {
    proc: procFigures(samples),
    heapUsed: med(statuses.map((s) => s.memory.heapUsedBytes)),
    heapUsedMin: Math.min(...statuses.map((s) => s.memory.heapUsedBytes)),
    heapLive: statuses.every((s) => s.memory.heapLiveBytes !== undefined)
      ? med(statuses.map((s) => s.memory.heapLiveBytes!))
      : undefined,
    external: med(statuses.map((s) => s.memory.externalBytes)),
    insideRss: med(statuses.map((s) => s.memory.rssBytes)),
    uptimeS: last.uptimeS,
    spoolDepth: last.spool?.depth,
  };
}

async function waitDrained(
  op: OperatorClient,
  agent: RunningAgent,
  timeoutMs: number,
  onStatus?: (s: StatusJson) => void,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    checkAlive(agent);
    const s = await agentStatus(op, agent);
    onStatus?.(s);
    if ((s.spool?.depth ?? 0) <= drainedAt(agent)) return;
    if (Date.now() > until)
      throw new BenchError(
        "bench_timeout",
        `${agent.deviceId}: spool not drained in ${timeoutMs} ms (${s.spool?.depth} left)`,
      );
    await sleep(1000);
  }
}

export async function replay(op: OperatorClient, agent: RunningAgent, readings: number): Promise<ReplayResult> {
  if (agent.burstChannels.length === 0)
    throw new BenchError("bench_no_channels", `${agent.deviceId} has no burst channels`);
  let peakRss = 0;
  let peakRssAnon = 0;
  let peakRssOutage = 0;
  let peakRssDrain = 0;
  let samples = 0;
  let restored = false;
  const tick = () => {
    const m = readRss(agent.pid);
    if (!m) return;
    samples++;
    peakRss = Math.max(peakRss, m.rss);
    peakRssAnon = Math.max(peakRssAnon, m.rssAnon);
    if (restored) peakRssDrain = Math.max(peakRssDrain, m.rss);
    else peakRssOutage = Math.max(peakRssOutage, m.rss);
  };
  const sampler = setInterval(tick, 100);
  try {
    await setSampling(op, agent, FILL_INTERVAL_MS);
    const t0 = Date.now();
    await agent.proxy.refuse(true);
    agent.proxy.reset();
    tick();
    // Readings since the cut, from the sequence mark (one durable write per 1000 readings): the
    // count lies within a block either side of `mark - mark0`. The fill stops early by what the
    // agent will still take before it is told to rest; the replayed count is then read from status.
    const mark0 = sequenceMark(agent) ?? 0;
    const fillUntil = Date.now() + 300_000;
    for (;;) {
      checkAlive(agent);
      const taken = (sequenceMark(agent) ?? 0) - mark0;
      const rate = taken / Math.max(0.001, (Date.now() - t0) / 1000);
      if (taken + rate * EXPECTED_CATCH_UP_S >= readings) break;
      if (Date.now() > fillUntil)
        throw new BenchError("bench_timeout", `${agent.deviceId}: ${readings} readings not taken within 300 s offline`);
      await sleep(100);
    }
    await agent.proxy.refuse(false);
    const tRestore = Date.now();
    restored = true;
    const back = await waitAnswering(op, agent, 60_000);
    const tBack = Date.now();
    const cpuBack = readCpuMs(agent.pid);
    await setSampling(op, agent, restIntervalMs(agent));
    let peakHeapUsedSeen = back.memory.heapUsedBytes;
    await waitDrained(op, agent, 600_000, (s) => {
      peakHeapUsedSeen = Math.max(peakHeapUsedSeen, s.memory.heapUsedBytes);
    });
    const tDrained = Date.now();
    const drainCpuMs = readCpuMs(agent.pid) - cpuBack;
    tick();
    return {
      spooledAtReconnect: back.spool?.depth ?? Number.NaN,
      outageMs: tRestore - t0,
      reconnectMs: tBack - tRestore,
      drainMs: tDrained - tBack,
      peakRss,
      peakRssAnon,
      peakRssOutage,
      peakRssDrain,
      peakHeapUsedSeen,
      drainCpuMs,
      hwmAfter: readProcMemory(agent.pid, false).hwm,
      samples,
    };
  } finally {
    clearInterval(sampler);
    await agent.proxy.refuse(false);
  }
}

export async function growth(
  op: OperatorClient,
  agent: RunningAgent,
  readings: number,
  settleSeconds: number,
): Promise<GrowthResult> {
  const t0 = Date.now();
  let burstCpuMsPer1000: number | undefined;
  if ((sequenceMark(agent) ?? 0) - SEQUENCE_BLOCK < readings) {
    await setSampling(op, agent, BURST_INTERVAL_MS);
    // From the first sequence block written at the burst rate to the last one: whole blocks, so
    // the count is exact, and the set-sampling round trips at either end are outside the window.
    let first: { mark: number; cpu: number } | undefined;
    let last: { mark: number; cpu: number } | undefined;
    const startMark = sequenceMark(agent) ?? 0;
    const until = Date.now() + 1_800_000;
    while ((sequenceMark(agent) ?? 0) - SEQUENCE_BLOCK < readings) {
      checkAlive(agent);
      const mark = sequenceMark(agent) ?? 0;
      if (!first && mark > startMark) first = { mark, cpu: readCpuMs(agent.pid) };
      else if (first && mark > (last?.mark ?? first.mark)) last = { mark, cpu: readCpuMs(agent.pid) };
      if (Date.now() > until)
        throw new BenchError("bench_timeout", `${agent.deviceId}: ${readings} readings not reached within 30 min`);
      await sleep(50);
    }
    await setSampling(op, agent, restIntervalMs(agent));
    if (first && last) burstCpuMsPer1000 = ((last.cpu - first.cpu) * 1000) / (last.mark - first.mark);
  }
  await waitDrained(op, agent, 600_000);
  const phaseMs = Date.now() - t0;
  await sleep(settleSeconds * 1000);
  const after = await measure(op, agent);
  return { readings: (sequenceMark(agent) ?? 0) - SEQUENCE_BLOCK, burstCpuMsPer1000, phaseMs, after };
}

/** Waits until the agent answers (online), then `seconds` more; used before the steady measurement. */
export async function settleOnline(op: OperatorClient, agent: RunningAgent, seconds: number): Promise<void> {
  await waitAnswering(op, agent, 60_000);
  await sleep(seconds * 1000);
}
