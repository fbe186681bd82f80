/**
 * The job every client runs in its own child process, driven by the parent over JSON lines.
 * A client plugs in through `BenchClient`; everything measured (timing, memory, CPU) is done here,
 * identically for both, so only the client code differs between the two bundles.
 */
import { createInterface } from "node:readline";
import { AgentError } from "../../kernel/errors.js";
import { BenchError } from "../lib/errors.js";
import type { ChildEvent, ChildJob, ParentCommand, ResetDone } from "./protocol.js";

export interface ResumeTiming {
  /** absoluteNow() when the client began its reconnect attempt (its own delay already waited). */
  attemptAt: number;
  /** absoluteNow() when it was usable again. */
  onlineAt: number;
  resumed: boolean;
}

export interface BenchClient {
  /** Connects and resolves once online with stream management enabled. */
  connect(): Promise<void>;
  /** Hands `count` headline messages to the client at once; resolves when the server acked them all. */
  sendBurst(count: number, idPrefix: string): Promise<void>;
  /** Arm before the link breaks: resolves at the next time the client is back online. */
  nextOnline(): Promise<ResumeTiming>;
  /** Link losses seen since connect(). */
  readonly linkDrops: number;
  stop(): Promise<void>;
}

export type BenchClientFactory = (job: ChildJob) => BenchClient;

const gc = (globalThis as { gc?: () => void }).gc;

function emit(ev: ChildEvent): void {
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One body per message, the same for both clients: a small telemetry-like line. */
export function messageBody(i: number): string {
  return `t=${i} temp=21.5 hum=40.2 v=3.31`;
}

export async function runChild(factory: BenchClientFactory): Promise<void> {
  const commands: ParentCommand[] = [];
  let waiter: ((c: ParentCommand) => void) | undefined;
  let finished = false;
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let cmd: ParentCommand;
    try {
      cmd = JSON.parse(line) as ParentCommand;
    } catch {
      emit({ event: "error", message: `bench_protocol: not a JSON line on stdin: ${line.slice(0, 200)}` });
      process.exit(1);
    }
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(cmd);
    } else commands.push(cmd);
  });
  // The parent closing our stdin means it is gone: nobody is left to read the figures.
  rl.on("close", () => {
    if (!finished) process.exit(2);
  });
  const next = (): Promise<ParentCommand> => {
    const c = commands.shift();
    return c ? Promise.resolve(c) : new Promise((resolve) => (waiter = resolve));
  };

  try {
    memory("loaded");
    const job = await next();
    if (job.cmd !== "job") throw new BenchError("bench_protocol", `expected a job, got ${job.cmd}`);
    if (job.kind === "logins") await runLogins(factory, job);
    else await runThroughput(factory, job, next);
  } catch (err) {
    // The code, not err.name: class names are minified in the bundle.
    const what = err instanceof AgentError ? err.code : err instanceof Error ? err.name : "error";
    emit({ event: "error", message: `${what}: ${err instanceof Error ? err.message : String(err)}` });
    process.exitCode = 1;
  }
  finished = true;
  rl.close();
  // Library timers (keepalives, reconnect) must not keep a finished child alive.
  process.exit();
}

async function runLogins(factory: BenchClientFactory, job: ChildJob): Promise<void> {
  const ms: number[] = [];
  for (let i = 0; i < job.logins; i++) {
    const client = factory(job);
    const t0 = performance.now();
    await client.connect();
    ms.push(performance.now() - t0);
    await client.stop();
  }
  emit({ event: "logins", ms });
}

async function runThroughput(
  factory: BenchClientFactory,
  job: ChildJob,
  next: () => Promise<ParentCommand>,
): Promise<void> {
  const client = factory(job);
  await client.connect();
  await withDeadline(client.sendBurst(job.warmupMessages, "w"), 60_000, "warm-up acks");
  memory("warm");

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await withDeadline(client.sendBurst(job.messages, "m"), 120_000, `acks for ${job.messages} messages`);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  emit({ event: "throughput", messages: job.messages, wallMs, cpuUserUs: cpu.user, cpuSystemUs: cpu.system });
  memory("after");

  for (let n = 0; n < job.resets; n++) {
    const back = client.nextOnline();
    emit({ event: "ready-for-reset", n });
    const cmd = await next();
    if (cmd.cmd !== "reset-done" || cmd.n !== n)
      throw new BenchError("bench_protocol", `expected reset-done ${n}, got ${JSON.stringify(cmd)}`);
    const t = await withDeadline(back, 15_000, `client back online after reset ${n}`);
    emit({
      event: "resumed",
      n,
      resumeMs: t.onlineAt - (cmd as ResetDone).at,
      reconnectMs: t.onlineAt - t.attemptAt,
      resumed: t.resumed,
    });
    await sleep(job.settleMs);
  }
  // Prove the resumed session carries traffic, then close it.
  await withDeadline(client.sendBurst(10, "z"), 15_000, "acks after the last resumption");
  const linkDrops = client.linkDrops;
  await client.stop();
  emit({ event: "done", linkDrops });
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
