/**
 * A pair of linked pseudo-terminals made by socat: bytes written to one end come out of the
 * other, and both ends accept real termios settings, so the agent's real serialport driver is
 * what runs. Stopping socat removes both links, which is exactly what a pulled USB adapter looks
 * like to the agent (EIO, then ENOENT until it comes back): unplug = stop(), replug = start().
 * The child is killed on stop() and, as a last resort, when this process exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AgentError } from "../kernel/errors.js";

export interface SocatPtyOptions {
  /** Directory for the two symlinks. */
  dir: string;
  /** Link name the agent opens. */
  agentName?: string;
  /** Link name the simulated device opens. */
  deviceName?: string;
  socat?: string;
  /** How long to wait for socat to create both links. */
  startTimeoutMs?: number;
}

// setpriv --pdeathsig makes the kernel kill socat even if this process dies without running any handler.
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}

export class SocatPty {
  readonly agentPath: string;
  readonly devicePath: string;
  private child: ChildProcess | undefined;
  private stderr = "";

  constructor(private readonly options: SocatPtyOptions) {
    this.agentPath = join(options.dir, options.agentName ?? "agent");
    this.devicePath = join(options.dir, options.deviceName ?? "device");
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) return;
    for (const p of [this.agentPath, this.devicePath])
      if (isLink(p))
        throw new AgentError("sim_pty_in_use", `${p} already exists (another simulator running?)`, { path: p });
    installExitHook();
    this.stderr = "";
    const socat = this.options.socat ?? "socat";
    const args = ["-d", "-d", `pty,raw,echo=0,link=${this.agentPath}`, `pty,raw,echo=0,link=${this.devicePath}`];
    const child = SETPRIV
      ? spawn(SETPRIV, ["--pdeathsig", "SIGKILL", socat, ...args], { stdio: ["ignore", "ignore", "pipe"] })
      : spawn(socat, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    live.add(child);
    child.stderr?.on("data", (d: Buffer) => {
      if (this.stderr.length < 16_384) this.stderr += d.toString();
    });
    let exited: string | undefined;
    let spawnError: Error | undefined;
    child.on("error", (err) => {
      spawnError = err;
    });
    child.on("exit", (code, signal) => {
      exited = `socat exited (${signal ?? code})`;
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 3000);
    // The links appear before socat polls them; "starting data transfer loop" means bytes flow.
    while (
      !(
        existsSync(this.agentPath) &&
        existsSync(this.devicePath) &&
        this.stderr.includes("starting data transfer loop")
      )
    ) {
      if (spawnError || exited || Date.now() > deadline) {
        await this.stop();
        const why = spawnError ? spawnError.message : (exited ?? "timed out");
        throw new AgentError("sim_pty_failed", `cannot create PTY pair with socat: ${why} ${this.stderr.trim()}`, {
          dir: this.options.dir,
        });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Removes the links, then kills socat and waits until it is gone. Links first: a pulled USB
   * adapter's node is gone before anyone can open it again, and a reopen that raced socat's
   * shutdown (on a loaded machine, between its masters closing and its own unlink) would open a
   * dying PTY and report a second, spurious unplug.
   */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    rmSync(this.agentPath, { force: true });
    rmSync(this.devicePath, { force: true });
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
      await gone;
      clearTimeout(timer);
    }
    live.delete(child);
  }
}

function isLink(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
