/**
 * Spawning peer processes so they die with us.
 *
 * - `detached: true` makes the child a process-group leader, so stop() can signal the whole group
 *   (prosody's helpers, ejabberdctl's erl/beam.smp, socat) with kill(-pid).
 * - `setpriv --pdeathsig SIGKILL` (util-linux) makes the kernel kill the child if this node process
 *   dies without running any handler (SIGKILL, OOM). It survives exec, so it covers exec chains.
 * - Every child gets IOT_HARNESS_PEER=<name> in its environment (plus the inherited
 *   IOT_TEST_RUN_ID that scripts/test sets), so leftovers can be found by marker afterwards.
 * - Children and their pipes are unref'd: a suite that forgets stop() still exits, and the exit
 *   handler in cleanup.ts then SIGKILLs the group.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { registerTeardown } from "./cleanup.js";
import { HarnessError } from "./errors.js";

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

export interface SpawnPeerOptions {
  /** Short peer name for logs, errors and the IOT_HARNESS_PEER marker. */
  name: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdin as a pipe (the slixmpp operator talks JSON lines over it). Default: ignored. */
  stdinPipe?: boolean;
  /** Lines of stdout+stderr kept for error messages. Default 200. */
  tailLines?: number;
  /** Keep stdout in the tail too. Default true; false when stdout is a protocol (operator JSON). */
  tailStdout?: boolean;
}

export interface PeerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class PeerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<PeerExit>;
  private readonly tail: string[] = [];
  private readonly tailLines: number;
  private exitInfo: PeerExit | null = null;
  private readonly unregister: () => void;

  constructor(command: string, args: string[], opts: SpawnPeerOptions) {
    this.name = opts.name;
    this.tailLines = opts.tailLines ?? 200;
    const argv = SETPRIV ? ["--pdeathsig", "SIGKILL", "--", command, ...args] : args;
    const file = SETPRIV ?? command;
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, IOT_HARNESS_PEER: opts.name },
      detached: true,
      stdio: [opts.stdinPipe ? "pipe" : "ignore", "pipe", "pipe"],
    });
    if (child.pid === undefined) {
      throw new HarnessError("harness.spawn_failed", `could not spawn ${command}`, { peer: opts.name, command });
    }
    this.child = child;
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      child.once("error", (err) => {
        this.pushTail(`[spawn error] ${err.message}`);
        this.exitInfo ??= { code: null, signal: null };
        resolve(this.exitInfo);
      });
    });
    for (const stream of opts.tailStdout === false ? [child.stderr] : [child.stdout, child.stderr]) {
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        for (const line of chunk.split("\n")) if (line !== "") this.pushTail(line);
      });
    }
    this.unref();
    this.unregister = registerTeardown({
      name: `${opts.name} (pid ${this.pid})`,
      stop: async () => {
        await this.stop();
      },
      stopSync: () => this.killGroup("SIGKILL"),
    });
  }

  /** Lets the event loop exit even if this child runs; the exit handler still kills it. */
  private unref(): void {
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      (s as unknown as { unref?: () => void } | null)?.unref?.();
    }
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  get exitStatus(): PeerExit | null {
    return this.exitInfo;
  }

  /** The last lines the process wrote to stdout/stderr. */
  outputTail(lines = 40): string {
    return this.tail.slice(-lines).join("\n");
  }

  private pushTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > this.tailLines) this.tail.splice(0, this.tail.length - this.tailLines);
  }

  /** Signals the whole process group; ignores "no such process" (already gone). */
  killGroup(signal: NodeJS.Signals): void {
    for (const target of [-this.pid, this.pid]) {
      try {
        process.kill(target, signal);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
  }

  /** SIGTERM the group, then SIGKILL after graceMs. Resolves once the leader has exited. */
  async stop(graceMs = 3000): Promise<PeerExit> {
    this.unregister();
    if (this.exitInfo === null) {
      this.killGroup("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.killGroup("SIGKILL");
          resolve();
        }, graceMs);
      });
      await Promise.race([this.exited, killed]);
      clearTimeout(timer);
      await this.exited;
    }
    // Group members (e.g. beam.smp under ejabberdctl) may outlive the leader: make sure.
    this.killGroup("SIGKILL");
    return this.exitInfo ?? { code: null, signal: null };
  }
}

export function spawnPeer(command: string, args: string[], opts: SpawnPeerOptions): PeerProcess {
  return new PeerProcess(command, args, opts);
}

/** Runs a short command to completion (openssl, prosodyctl, ejabberdctl) with a timeout. */
export function runCommand(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // ESRCH: it exited between the timeout firing and the kill; the close handler reports it.
      }
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(
        new HarnessError("harness.command_failed", `${command}: ${err.message}`, { command, args }, { cause: err }),
      );
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new HarnessError(
            "harness.command_failed",
            `${command} ${args.join(" ")} exited with ${code ?? signal}${signal === "SIGKILL" ? ` (timeout ${timeoutMs} ms?)` : ""}: ${(stderr || stdout).trim().slice(-2000)}`,
            { command, args, code, signal },
          ),
        );
    });
  });
}
