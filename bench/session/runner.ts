/**
 * Parent side of one bench child: spawns it under the harness process rules (own process group,
 * pdeathsig, teardown registry, so Ctrl-C or a crash of the parent leaves nothing running), sends the
 * job, resets the proxy when the child asks, and collects the child's events.
 */
import { createInterface } from "node:readline";
import type { LinkBreakingProxy } from "../../test/harness/proxy.js";
import { spawnPeer } from "../../test/harness/process.js";
import { BenchError } from "../lib/errors.js";
import { tryCpuMs } from "../lib/proc.js";
import { absoluteNow } from "../lib/stats.js";
import type { ChildEvent, ChildJob, ParentCommand } from "./protocol.js";

export interface ChildRun {
  events: ChildEvent[];
  wallMs: number;
  /** CPU time Prosody spent between the child's warm-up sample and its throughput figures (the burst). */
  serverCpuUs: number | undefined;
}

export interface RunChildOptions {
  /** Label for logs and the harness registry. */
  name: string;
  /** The bundle to run with `node --expose-gc`. */
  file: string;
  job: ChildJob;
  proxy: LinkBreakingProxy;
  /** Extra environment (NODE_EXTRA_CA_CERTS for @xmpp/client, which has no per-connection CA option). */
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Prosody's pid, to read its CPU time from /proc around the burst. */
  serverPid?: number;
}

/** utime+stime of a process in µs; undefined when it is gone. */
export function processCpuUs(pid: number): number | undefined {
  const ms = tryCpuMs(pid);
  return ms === undefined ? undefined : ms * 1000;
}

export async function runBenchChild(opts: RunChildOptions): Promise<ChildRun> {
  const t0 = performance.now();
  const proc = spawnPeer(process.execPath, ["--expose-gc", opts.file], {
    name: opts.name,
    stdinPipe: true,
    tailStdout: false,
    // NODE_OPTIONS cleared so a parent started with loaders or flags does not pass them on.
    env: { ...opts.env, NODE_OPTIONS: "" },
  });
  const stdin = proc.child.stdin!;
  const stdout = proc.child.stdout!;
  const send = (cmd: ParentCommand) => stdin.write(`${JSON.stringify(cmd)}\n`);
  const events: ChildEvent[] = [];
  let serverCpuStart: number | undefined;
  let serverCpuUs: number | undefined;

  const finished = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: stdout });
    rl.on("line", (line) => {
      let ev: ChildEvent;
      try {
        ev = JSON.parse(line) as ChildEvent;
      } catch {
        reject(new BenchError("bench_protocol", `${opts.name}: not a JSON line on stdout: ${line.slice(0, 200)}`));
        return;
      }
      events.push(ev);
      if (opts.serverPid !== undefined && ev.event === "mem" && ev.phase === "warm") {
        serverCpuStart = processCpuUs(opts.serverPid);
      } else if (opts.serverPid !== undefined && ev.event === "throughput" && serverCpuStart !== undefined) {
        const end = processCpuUs(opts.serverPid);
        serverCpuUs = end === undefined ? undefined : end - serverCpuStart;
      }
      if (ev.event === "ready-for-reset") {
        opts.proxy.reset();
        send({ cmd: "reset-done", n: ev.n, at: absoluteNow() });
      } else if (ev.event === "error") {
        reject(new BenchError("bench_child_failed", `${opts.name}: ${ev.message}\n${proc.outputTail(30)}`));
      } else if (ev.event === "done" || ev.event === "logins") {
        resolve();
      }
    });
    // 'close' (not 'exit'): it comes after stdout is drained, so a last "done" line is never missed.
    proc.child.once("close", (code, signal) =>
      reject(
        new BenchError(
          "bench_child_exited",
          `${opts.name} exited (${code ?? signal}) before finishing\n${proc.outputTail(30)}`,
        ),
      ),
    );
  });

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BenchError("bench_timeout", `${opts.name} did not finish within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
  });
  send(opts.job);
  try {
    await Promise.race([finished, timeout]);
    // The child exits by itself after its last event; a stuck one is killed by stop().
    await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 3000))]);
  } finally {
    clearTimeout(timer);
    await proc.stop(1000);
  }
  return { events, wallMs: performance.now() - t0, serverCpuUs };
}
