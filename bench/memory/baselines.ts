/**
 * The baselines of the memory benchmark, measured in the same run and with the same node flags as
 * the agent (the systemd unit's), each in its own child process read from outside through /proc:
 *  - bare node: `node <flags> -e` with a timer (and one line of memoryUsage() on stdout, which
 *    every measured process has: the agent logs to stderr);
 *  - node holding one TLS socket to the harness Prosody after XMPP STARTTLS (tls-hold.ts);
 *  - the session benchmark's children (bench/session): this project's XmppSession alone and
 *    @xmpp/client 0.14 (bundled, and unbundled from node_modules), after login and a 1,000-message
 *    warm-up. They run with --expose-gc besides the unit's flags: the child calls gc() twice before
 *    reporting, and is then read from outside while it waits for the parent.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { build } from "esbuild";
import { type PeerProcess, spawnPeer } from "../../test/harness/process.js";
import type { ProsodyHandle } from "../../test/harness/prosody.js";
import type { LinkBreakingProxy } from "../../test/harness/proxy.js";
import { BenchError } from "../lib/errors.js";
import type { ChildEvent, ChildJob, ClientName, ParentCommand } from "../session/protocol.js";
import { MEMORY_TMP, ROOT } from "./install.js";
import { type ProcFigures, sampleProc } from "./proc.js";

export interface InsideMemory {
  rss: number;
  heapUsed: number;
  /** process.memoryUsage().external where the process reports it (not the session children). */
  external?: number;
  arrayBuffers?: number;
}

export interface BaselineFigures {
  proc: ProcFigures;
  inside: InsideMemory;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the first stdout line that parses as JSON and satisfies `ok`. */
function firstJsonLine<T>(proc: PeerProcess, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.child.stdout! });
    const timer = setTimeout(() => {
      rl.close();
      reject(new BenchError("bench_timeout", `${what}: nothing within ${timeoutMs} ms\n${proc.outputTail(20)}`));
    }, timeoutMs);
    rl.on("line", (line) => {
      let v: T;
      try {
        v = JSON.parse(line) as T;
      } catch {
        return;
      }
      if (!ok(v)) return;
      clearTimeout(timer);
      rl.close();
      resolve(v);
    });
    void proc.exited.then((e) => {
      clearTimeout(timer);
      reject(new BenchError("bench_child_exited", `${what} exited (${e.code ?? e.signal})\n${proc.outputTail(20)}`));
    });
  });
}

function fromMemoryUsage(m: NodeJS.MemoryUsage): InsideMemory {
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/**
 * A child that prints `{"ready":true,"memory":process.memoryUsage()}` once it holds what it is there
 * to hold: read from outside 1 s later, then stopped.
 */
async function measureReadyChild(
  args: string[],
  env: Record<string, string>,
  name: string,
  readyWithinMs: number,
): Promise<BaselineFigures> {
  const proc = spawnPeer(process.execPath, args, { name, env: { ...env, NODE_OPTIONS: "" } });
  try {
    const line = await firstJsonLine<{ ready: boolean; memory: NodeJS.MemoryUsage }>(
      proc,
      (v) => v.ready,
      readyWithinMs,
      name,
    );
    await sleep(1000);
    return { proc: await sampleProc(proc.pid), inside: fromMemoryUsage(line.memory) };
  } finally {
    await proc.stop(1000);
  }
}

/** Bare node with the unit's flags: a timer keeps it alive; memoryUsage() printed once at 1 s. */
export function measureBareNode(nodeFlags: string[], env: Record<string, string>): Promise<BaselineFigures> {
  const script =
    "setInterval(()=>{},1000);setTimeout(()=>process.stdout.write(JSON.stringify({ready:true,memory:process.memoryUsage()})+'\\n'),1000)";
  return measureReadyChild([...nodeFlags, "-e", script], env, "bench-bare-node", 10_000);
}

export async function buildTlsHold(): Promise<string> {
  const file = join(MEMORY_TMP, "tls-hold.mjs");
  await build({
    entryPoints: [join(ROOT, "bench/memory/tls-hold.ts")],
    outfile: file,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    logLevel: "warning",
  });
  return file;
}

/** Node with one TLS socket to Prosody (after STARTTLS), read 1 s after the TLS stream is up. */
export function measureTlsSocket(
  nodeFlags: string[],
  env: Record<string, string>,
  bundle: string,
  prosody: ProsodyHandle,
): Promise<BaselineFigures> {
  return measureReadyChild(
    [...nodeFlags, bundle, prosody.host, String(prosody.port), prosody.domain, prosody.caFile!],
    env,
    "bench-tls-hold",
    15_000,
  );
}

export const SESSION_USER = "bench";
export const SESSION_SINK = "sink";

/**
 * One bench/session child (throughput job with a 1,000-message warm-up, a burst of 1 and one reset):
 * when it says "ready-for-reset" it has reported its memory after gc() and waits for us, idle;
 * that is when it is read from outside. Then the proxy is reset and the child finishes its job.
 */
export async function measureSessionChild(opts: {
  nodeFlags: string[];
  /** The unit's Environment= (MALLOC_ARENA_MAX and the like), as the agent gets it. */
  env: Record<string, string>;
  file: string;
  client: ClientName;
  id: string;
  prosody: ProsodyHandle;
  proxy: LinkBreakingProxy;
  password: string;
}): Promise<BaselineFigures> {
  const { prosody } = opts;
  const job: ChildJob = {
    cmd: "job",
    kind: "throughput",
    host: prosody.host,
    port: opts.proxy.port,
    domain: prosody.domain,
    user: SESSION_USER,
    password: opts.password,
    resource: `memory-${opts.id}-${randomBytes(3).toString("hex")}`,
    caFile: prosody.caFile!,
    sink: `${SESSION_SINK}@${prosody.domain}`,
    logins: 0,
    warmupMessages: 1000,
    messages: 1,
    resets: 1,
    settleMs: 0,
  };
  const proc = spawnPeer(process.execPath, [...opts.nodeFlags, "--expose-gc", opts.file], {
    name: `bench-session-${opts.id}`,
    stdinPipe: true,
    tailStdout: false,
    env: { ...opts.env, NODE_OPTIONS: "", NODE_EXTRA_CA_CERTS: prosody.caFile! },
  });
  const send = (c: ParentCommand) => proc.child.stdin!.write(`${JSON.stringify(c)}\n`);
  const events: ChildEvent[] = [];
  let figures: ProcFigures | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new BenchError("bench_timeout", `session child ${opts.id} did not finish in 120 s`)),
        120_000,
      );
      const rl = createInterface({ input: proc.child.stdout! });
      rl.on("line", (line) => {
        let ev: ChildEvent;
        try {
          ev = JSON.parse(line) as ChildEvent;
        } catch {
          return;
        }
        events.push(ev);
        if (ev.event === "ready-for-reset") {
          void (async () => {
            await sleep(1000);
            figures = await sampleProc(proc.pid);
            opts.proxy.reset();
            send({ cmd: "reset-done", n: ev.n, at: performance.timeOrigin + performance.now() });
          })().catch(reject);
        } else if (ev.event === "error") {
          clearTimeout(timer);
          reject(
            new BenchError("bench_child_failed", `session child ${opts.id}: ${ev.message}\n${proc.outputTail(20)}`),
          );
        } else if (ev.event === "done") {
          clearTimeout(timer);
          resolve();
        }
      });
      void proc.exited.then((e) => {
        clearTimeout(timer);
        reject(
          new BenchError(
            "bench_child_exited",
            `session child ${opts.id} exited (${e.code ?? e.signal})\n${proc.outputTail(20)}`,
          ),
        );
      });
      send(job);
    });
  } finally {
    await proc.stop(2000);
  }
  const after = events.find((e) => e.event === "mem" && e.phase === "after");
  if (!figures || after?.event !== "mem") throw new BenchError("bench_missing", `session child ${opts.id}: no figures`);
  return { proc: figures, inside: { rss: after.rss, heapUsed: after.heapUsed } };
}
