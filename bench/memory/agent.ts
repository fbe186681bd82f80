/**
 * One agent under measurement: its config file and data dir, its own simulated MCU (`iot-sim` on a
 * PTY) when the variant has serial, its own link-breaking proxy in front of Prosody (so one agent's
 * outage is not another's), and the agent itself as `node <unit flags> bin/iot-agent.js run
 * --config FILE`, a child process read from outside through /proc.
 *
 * From inside, the only figures are those the agent already reports: the status command's hidden
 * `json` field (memory.rssBytes, memory.heapUsedBytes, spool depth), asked by a slixmpp operator.
 * The readings counter comes from outside too: <dataDir>/telemetry/sequence.json holds the
 * sequence's high-water mark, written once per block of 1000 readings.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MemoryStatus } from "../../agent/commands/ports.js";
import { type OperatorClient, OperatorError } from "../../test/harness/operator.js";
import { type PeerProcess, spawnPeer } from "../../test/harness/process.js";
import type { ProsodyHandle } from "../../test/harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../../test/harness/proxy.js";
import { BenchError } from "../lib/errors.js";
import { agentConfig, burstChannelIds, type Variant } from "./configs.js";
import { type Install, ROOT } from "./install.js";

export interface StatusJson {
  uptimeS: number;
  /** heapLiveBytes: only when the agent runs with --expose-gc, as it does here (see startAgent). */
  memory: MemoryStatus;
  link: { state: string };
  spool?: { depth: number; drops: number };
  telemetry?: string;
}

export interface RunningAgent {
  variant: Variant;
  deviceId: string;
  jid: string;
  proc: PeerProcess;
  pid: number;
  proxy: LinkBreakingProxy;
  sim: PeerProcess | undefined;
  dataDir: string;
  configFile: string;
  burstChannels: string[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForFile(path: string, what: string, proc: PeerProcess, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (!proc.running) throw new BenchError("bench_peer_exited", `${what} exited:\n${proc.outputTail(20)}`);
    if (Date.now() > until)
      throw new BenchError("bench_timeout", `${what} not ready in ${ms} ms:\n${proc.outputTail(20)}`);
    await sleep(50);
  }
}

export async function startAgent(opts: {
  variant: Variant;
  deviceId: string;
  password: string;
  dir: string;
  install: Install;
  prosody: ProsodyHandle;
  operatorJid: string;
  mqttUrl: string | undefined;
  /** Extra node flags after the unit's (diagnostics: --heapsnapshot-signal, --trace-gc). */
  extraNodeFlags?: string[];
}): Promise<RunningAgent> {
  const { variant: v, dir, install, prosody } = opts;
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, "state");
  let sim: PeerProcess | undefined;
  let ptyPath: string | undefined;
  const proxy = await startProxy({ targetPort: prosody.port });
  try {
    if (v.serial) {
      const ptyDir = join(dir, "pty");
      sim = spawnPeer(
        process.execPath,
        [install.simBin, "run", "--scenario", join(ROOT, "examples/scenarios/steady.yaml"), "--link", ptyDir],
        { name: `iot-sim-${opts.deviceId}`, env: { NODE_OPTIONS: "" } },
      );
      ptyPath = join(ptyDir, "agent");
      await waitForFile(ptyPath, "iot-sim", sim);
    }
    const configFile = join(dir, "agent.yaml");
    writeFileSync(
      configFile,
      agentConfig(v, {
        deviceId: opts.deviceId,
        domain: prosody.domain,
        dataDir,
        server: `127.0.0.1:${proxy.port}`,
        caFile: prosody.caFile!,
        operator: opts.operatorJid,
        ...(ptyPath ? { ptyPath } : {}),
        ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl } : {}),
      }),
    );
    const proc = spawnPeer(
      process.execPath,
      // --expose-gc (not the unit's): with it, the status command runs a full GC before it reads the
      // heap and reports the live heap too (heapLiveBytes, agent/health/memory-watch.ts). Status is
      // asked at the measurements and once a second while a spool drains, never while the link is
      // cut, where the replay's peak is taken (peakRssOutage).
      [
        ...install.nodeFlags,
        "--expose-gc",
        ...(opts.extraNodeFlags ?? []),
        install.agentBin,
        "run",
        "--config",
        configFile,
      ],
      {
        name: `iot-agent-${opts.deviceId}`,
        cwd: dir,
        // As under the unit: the unit's Environment= (none today), the password from the environment
        // (AGENT_PASSWORD), nothing inherited that changes node (NODE_OPTIONS, tsx's loader).
        env: { ...install.unitEnv, NODE_OPTIONS: "", AGENT_PASSWORD: opts.password },
        tailLines: 400,
      },
    );
    const sim_ = sim;
    return {
      variant: v,
      deviceId: opts.deviceId,
      jid: `${opts.deviceId}@${prosody.domain}/agent`,
      proc,
      pid: proc.pid,
      proxy,
      sim,
      dataDir,
      configFile,
      burstChannels: burstChannelIds(v),
      async stop() {
        await proc.stop(20_000);
        await sim_?.stop(3000);
        await proxy.stop();
      },
    };
  } catch (err) {
    await sim?.stop(1000);
    await proxy.stop();
    throw err;
  }
}

/** The status command's hidden json field. */
export async function agentStatus(op: OperatorClient, agent: RunningAgent, timeoutMs = 10_000): Promise<StatusJson> {
  const r = await op.command(agent.jid, "status", { action: "execute", timeoutMs });
  const json = r.form?.fields.find((f) => f.var === "json")?.values[0];
  if (!json)
    throw new BenchError("bench_status", `${agent.deviceId}: status has no json field: ${r.xml.slice(0, 300)}`);
  return JSON.parse(json) as StatusJson;
}

/** Polls status until the agent answers (it is online and its commands run), or fails. */
export async function waitAnswering(op: OperatorClient, agent: RunningAgent, timeoutMs: number): Promise<StatusJson> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!agent.proc.running)
      throw new BenchError("bench_agent_exited", `${agent.deviceId} exited:\n${agent.proc.outputTail(30)}`);
    try {
      return await agentStatus(op, agent, 5000);
    } catch (err) {
      // Offline: Prosody answers for the absent resource (service-unavailable and the like).
      if (!(err instanceof OperatorError) && !(err instanceof Error && /timed out/.test(err.message))) throw err;
      if (Date.now() > until)
        throw new BenchError(
          "bench_timeout",
          `${agent.deviceId} did not answer status within ${timeoutMs} ms (${(err as Error).message})\n${agent.proc.outputTail(30)}`,
        );
    }
    await sleep(250);
  }
}

export async function setSampling(op: OperatorClient, agent: RunningAgent, intervalMs: number): Promise<void> {
  for (const channel of agent.burstChannels) {
    const r = await op.execute(agent.jid, "set-sampling", { channel, intervalMs });
    if (r.status !== "completed")
      throw new BenchError("bench_set_sampling", `${agent.deviceId}: set-sampling ${channel}: ${r.xml.slice(0, 300)}`);
  }
}

/** The sequence's persisted high-water mark (readings handed out are within one block below it). */
export function sequenceMark(agent: RunningAgent): number | undefined {
  try {
    const v = JSON.parse(readFileSync(join(agent.dataDir, "telemetry", "sequence.json"), "utf8")) as { next?: number };
    return typeof v.next === "number" ? v.next : undefined;
  } catch {
    return undefined;
  }
}
