/**
 * What systemd does for deploy/iot-agent.service, for tests that need the agent as a process that
 * exits and is started again (over-the-air update, rollback): runs `node bin/iot-agent.js run
 * --config FILE` from the repository and starts it again after `restartDelayMs` whenever it exits
 * with a status that Restart=on-failure restarts (not 0, 2 or 3: RestartPreventExitStatus=2 3), or
 * when killed by a signal. Each start and exit is recorded.
 */
import { fileURLToPath } from "node:url";
import { type PeerExit, PeerProcess } from "./process.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const NO_RESTART = new Set([0, 2, 3]);

export interface AgentSupervisorOptions {
  configFile: string;
  env: NodeJS.ProcessEnv;
  restartDelayMs?: number;
  /** Give up after this many starts (a unit's StartLimitBurst). Default 20. */
  maxStarts?: number;
}

export class AgentSupervisor {
  readonly exits: PeerExit[] = [];
  starts = 0;
  private proc: PeerProcess | undefined;
  private stopped = false;
  private readonly delay: number;
  private killNext = false;

  constructor(private readonly o: AgentSupervisorOptions) {
    this.delay = o.restartDelayMs ?? 200;
  }

  get process(): PeerProcess | undefined {
    return this.proc;
  }

  start(): void {
    if (this.stopped || this.starts >= (this.o.maxStarts ?? 20)) return;
    this.starts++;
    const proc = new PeerProcess(process.execPath, ["bin/iot-agent.js", "run", "--config", this.o.configFile], {
      name: `agent-start-${this.starts}`,
      cwd: REPO,
      env: this.o.env,
      tailLines: 400,
    });
    this.proc = proc;
    if (this.killNext) {
      // As early as a power cut can come: before Node has loaded anything.
      this.killNext = false;
      proc.killGroup("SIGKILL");
    }
    void proc.exited.then((exit) => {
      this.exits.push(exit);
      if (this.stopped) return;
      if (exit.signal !== null || (exit.code !== null && !NO_RESTART.has(exit.code)))
        setTimeout(() => this.start(), this.delay);
    });
  }

  /** SIGKILL to the running agent (a power cut, as far as the agent can tell); it is then restarted. */
  kill(): void {
    this.proc?.killGroup("SIGKILL");
  }

  /** The next start is killed (SIGKILL) right after it is spawned, then restarted as usual. */
  killNextStart(): void {
    this.killNext = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const p = this.proc;
    if (p?.running) {
      p.killGroup("SIGTERM");
      const t = setTimeout(() => p.killGroup("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(t);
    }
  }

  /** The last lines the current (or last) agent process printed. */
  tail(lines = 60): string {
    return this.proc?.outputTail(lines) ?? "(never started)";
  }
}
