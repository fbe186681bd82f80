/**
 * The measured part every telemetry bench child shares: read the job, log in, warm up, then publish
 * the measured readings while timing, CPU and memory are taken here, identically for every client.
 * A client plugs in through `PublishDriver`; only the client code differs between the bundles.
 */
import { createInterface } from "node:readline";
import { AgentError } from "../../kernel/errors.js";
import { BenchError } from "../lib/errors.js";
import type { TelemetryEvent, TelemetryJob } from "./protocol.js";

export interface PublishDriver {
  /** Logs in; resolves once online. */
  connect(): Promise<void>;
  /**
   * Publishes readings `firstSeq`..`firstSeq+count-1` (count a multiple of job.batch) and resolves
   * once the server acknowledged every one of them with an IQ result. The first call also creates
   * the node. Rejects on any publish error.
   */
  publish(firstSeq: number, count: number): Promise<void>;
  /** Optional work done before the clock starts for the same arguments (the raw publisher serialises). */
  prepare?(firstSeq: number, count: number): void;
  /** Serialised size of one publish IQ of job.batch readings starting at `firstSeq` (no id attribute). */
  iqBytes(firstSeq: number): number;
  stop(): Promise<void>;
}

const gc = (globalThis as { gc?: () => void }).gc;

function emit(ev: TelemetryEvent): void {
  process.stdout.write(`${JSON.stringify(ev)}\n`);
}

function memory(phase: "loaded" | "warm" | "after"): void {
  if (!gc) throw new BenchError("bench_no_gc", "run the bench child with --expose-gc");
  // Twice: the first pass can leave finalizers whose memory only a second pass returns.
  gc();
  gc();
  const m = process.memoryUsage();
  emit({ event: "mem", phase, rss: m.rss, heapUsed: m.heapUsed });
}

function readJob(): Promise<TelemetryJob> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    let got = false;
    rl.once("line", (line) => {
      got = true;
      try {
        const job = JSON.parse(line) as TelemetryJob;
        if (job.cmd !== "job") throw new BenchError("bench_protocol", "the first line must be the job");
        resolve(job);
      } catch (err) {
        reject(err);
      }
    });
    // The parent closing our stdin means it is gone: nobody is left to read the figures.
    rl.on("close", () => {
      if (!got) reject(new BenchError("bench_protocol", "stdin closed before the job"));
      else process.exit(2);
    });
  });
}

export async function runTelemetryChild(factory: (job: TelemetryJob) => PublishDriver): Promise<void> {
  try {
    memory("loaded");
    const job = await readJob();
    if (job.readings % job.batch !== 0 || job.warmupReadings % job.batch !== 0)
      throw new BenchError("bench_args", "readings and warm-up must be multiples of the batch size");
    const driver = factory(job);
    await withDeadline(driver.connect(), 20_000, "login");
    await withDeadline(driver.publish(1, job.warmupReadings), 60_000, "warm-up publishes");
    memory("warm");

    const first = job.warmupReadings + 1;
    driver.prepare?.(first, job.readings);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await withDeadline(driver.publish(first, job.readings), 180_000, `${job.readings} readings acknowledged`);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    emit({
      event: "result",
      readings: job.readings,
      items: job.readings / job.batch,
      wallMs,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      iqBytes: driver.iqBytes(first),
      maxRss: process.resourceUsage().maxRSS * 1024,
    });
    memory("after");
    await driver.stop();
    emit({ event: "done" });
  } catch (err) {
    // The code, not err.name: class names are minified in the bundle.
    const what = err instanceof AgentError ? err.code : err instanceof Error ? err.name : "error";
    emit({ event: "error", message: `${what}: ${err instanceof Error ? err.message : String(err)}` });
    process.exitCode = 1;
  }
  // Library timers (keepalives, reconnect) must not keep a finished child alive.
  process.exit();
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BenchError("bench_timeout", `timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
