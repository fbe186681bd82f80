/**
 * Parent side of one telemetry bench child: spawned under the harness process rules (own process
 * group, pdeathsig, teardown registry), given its job, its events collected; Prosody's CPU time is
 * read from /proc around the measured phase (between the child's "warm" sample and its result).
 */
import { createInterface } from "node:readline";
import { spawnPeer } from "../../test/harness/process.js";
import { BenchError } from "../lib/errors.js";
import { processCpuUs } from "../session/runner.js";
import type { MemorySample, TelemetryEvent, TelemetryJob } from "./protocol.js";

export interface TelemetryRun {
  loaded: MemorySample;
  warm: MemorySample;
  after: MemorySample;
  readings: number;
  items: number;
  wallMs: number;
  cpuUs: number;
  iqBytes: number;
  maxRss: number;
  /** Prosody's CPU time over the measured phase (undefined where /proc is unreadable). */
  serverCpuUs: number | undefined;
}

export async function runTelemetryChild(opts: {
  name: string;
  file: string;
  job: TelemetryJob;
  env?: NodeJS.ProcessEnv;
  serverPid: number;
  timeoutMs: number;
}): Promise<TelemetryRun> {
  const proc = spawnPeer(process.execPath, ["--expose-gc", opts.file], {
    name: opts.name,
    stdinPipe: true,
    tailStdout: false,
    // NODE_OPTIONS cleared so a parent started with loaders or flags does not pass them on.
    env: { ...opts.env, NODE_OPTIONS: "" },
  });
  const events: TelemetryEvent[] = [];
  let serverCpuStart: number | undefined;
  let serverCpuUs: number | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    createInterface({ input: proc.child.stdout! }).on("line", (line) => {
      let ev: TelemetryEvent;
      try {
        ev = JSON.parse(line) as TelemetryEvent;
      } catch {
        reject(new BenchError("bench_protocol", `${opts.name}: not a JSON line on stdout: ${line.slice(0, 200)}`));
        return;
      }
      events.push(ev);
      if (ev.event === "mem" && ev.phase === "warm") serverCpuStart = processCpuUs(opts.serverPid);
      else if (ev.event === "result" && serverCpuStart !== undefined) {
        const end = processCpuUs(opts.serverPid);
        serverCpuUs = end === undefined ? undefined : end - serverCpuStart;
      }
      if (ev.event === "error")
        reject(new BenchError("bench_child_failed", `${opts.name}: ${ev.message}\n${proc.outputTail(30)}`));
      else if (ev.event === "done") resolve();
    });
    // 'close' comes after stdout is drained, so a last "done" line is never missed.
    proc.child.once("close", (code, signal) =>
      reject(new BenchError("bench_child_exited", `${opts.name} exited (${code ?? signal})\n${proc.outputTail(30)}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BenchError("bench_timeout", `${opts.name} did not finish within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
  });
  proc.child.stdin!.write(`${JSON.stringify(opts.job)}\n`);
  try {
    await Promise.race([finished, timeout]);
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 3000))]);
  } finally {
    clearTimeout(timer);
    await proc.stop(1000);
  }
  const mem = (phase: "loaded" | "warm" | "after"): MemorySample => {
    const e = events.find((x) => x.event === "mem" && x.phase === phase);
    if (e?.event !== "mem") throw new BenchError("bench_missing", `${opts.name}: no ${phase} memory sample`);
    return { rss: e.rss, heapUsed: e.heapUsed };
  };
  const r = events.find((x) => x.event === "result");
  if (r?.event !== "result") throw new BenchError("bench_missing", `${opts.name}: no result`);
  return {
    loaded: mem("loaded"),
    warm: mem("warm"),
    after: mem("after"),
    readings: r.readings,
    items: r.items,
    wallMs: r.wallMs,
    cpuUs: r.cpuUserUs + r.cpuSystemUs,
    iqBytes: r.iqBytes,
    maxRss: r.maxRss,
    serverCpuUs,
  };
}
