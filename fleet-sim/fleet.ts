/**
 * N simulated devices in one process, each the whole agent (agent/main.ts createAgent: session,
 * telemetry with its spool, batcher and publisher, commands) on its own simulated board, with its
 * own account, data directory and sequence numbers. The load generator of bench/fleet.ts and the
 * fleet tests, and `iot-sim fleet` for anyone sizing a server.
 *
 * Devices start at a bounded rate (`startPerSecond`): a real fleet does not boot in one
 * millisecond, and N logins at once would measure the simulator's own storm, not the server.
 */
import { mkdirSync } from "node:fs";
import { parseConfig } from "../agent/config/load.js";
import { type Agent, createAgent } from "../agent/main.js";
import { AgentError, describeError } from "../kernel/errors.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import { type FleetTemplate, fleetDeviceId, renderDeviceConfig } from "./device-config.js";

export interface FleetOptions {
  template: FleetTemplate;
  devices: number;
  /** Device ids are `<idPrefix>0001`...; accounts `<id>@<domain>`. */
  idPrefix: string;
  /** Each device's state goes to `<dataRoot>/<id>`. */
  dataRoot: string;
  password: (id: string) => string;
  /** Logins started per second at most. */
  startPerSecond: number;
  log?: Logger;
  /** Reconnect jitter: the default draws every wait at random; () => 1 turns jitter off (storm benchmarks). */
  random?: () => number;
}

export interface FleetDevice {
  id: string;
  agent: Agent;
}

/** A summary over every device, for the CLI's report and the benchmark. */
export interface FleetStats {
  devices: number;
  online: number;
  connects: number;
  resumes: number;
  resumeFailures: number;
  disconnects: number;
  publishedItems: number;
  publishedReadings: number;
  publishFailures: number;
  /** Readings waiting in the spools (not yet acknowledged by the server). */
  spooledReadings: number;
  droppedReadings: number;
  /** Devices whose publisher is blocked (a refusal it cannot get past). */
  blocked: number;
}

export class FleetError extends AgentError {}

export class Fleet {
  readonly devices: FleetDevice[] = [];
  private readonly log: Logger;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(private readonly options: FleetOptions) {
    this.log = options.log ?? silentLogger;
    if (!Number.isInteger(options.devices) || options.devices < 1)
      throw new FleetError("fleet_usage", `devices must be a positive whole number, got ${options.devices}`);
  }

  /** The ids this fleet has (or will have): for bulk account creation before start(). */
  ids(): string[] {
    return Array.from({ length: this.options.devices }, (_, i) =>
      fleetDeviceId(this.options.idPrefix, i, this.options.devices),
    );
  }

  /**
   * Composes and starts every device, `startPerSecond` at a time; resolves when all have started
   * (not necessarily online: see waitOnline). A device that fails to start stops the fleet.
   */
  async start(): Promise<void> {
    mkdirSync(this.options.dataRoot, { recursive: true, mode: 0o700 });
    const gapMs = 1000 / this.options.startPerSecond;
    const t0 = Date.now();
    for (const [i, id] of this.ids().entries()) {
      if (this.stopping) return;
      const wait = t0 + i * gapMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const text = renderDeviceConfig(this.options.template, id, this.options.dataRoot);
      const loaded = parseConfig(text, `${id}.yaml`, { AGENT_PASSWORD: this.options.password(id) });
      const agent = await createAgent(loaded, {
        log: this.log.child({ device: id }),
        ...(this.options.random ? { random: this.options.random } : {}),
      });
      // Stopped while this one was being composed: stopAll() has already gone over the list.
      if (this.stopping) return;
      this.devices.push({ id, agent });
      try {
        await agent.start();
      } catch (err) {
        throw new FleetError("fleet_device_start_failed", `device ${id} did not start: ${(err as Error).message}`, {
          device: id,
          error: describeError(err),
        });
      }
    }
  }

  /**
   * Resolves when `count` devices (default all) are online; rejects after `timeoutMs` with why the
   * others are not. `onProgress` hears the same summary every `progressMs`.
   */
  async waitOnline(
    timeoutMs: number,
    count = this.options.devices,
    opts: { onProgress?: (summary: string) => void; progressMs?: number } = {},
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    let nextProgress = Date.now() + (opts.progressMs ?? 10_000);
    while (this.stats().online < count) {
      if (Date.now() > end)
        throw new FleetError("fleet_not_online", `after ${timeoutMs} ms: ${this.offlineSummary()}`, {
          online: this.stats().online,
          wanted: count,
        });
      if (opts.onProgress && Date.now() >= nextProgress) {
        opts.onProgress(this.offlineSummary());
        nextProgress = Date.now() + (opts.progressMs ?? 10_000);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** "712 of 1000 online; offline: 250 connecting, 38 waiting (last errors: 30 x connect_timeout: ...)". */
  offlineSummary(): string {
    const states = new Map<string, number>();
    const errors = new Map<string, number>();
    let online = 0;
    for (const { agent } of this.devices) {
      const st = agent.session.stats();
      if (st.state === "online") {
        online++;
        continue;
      }
      states.set(st.state, (states.get(st.state) ?? 0) + 1);
      const e = (st.lastError ?? "none").slice(0, 120);
      errors.set(e, (errors.get(e) ?? 0) + 1);
    }
    const list = (m: Map<string, number>, sep: string) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([k, n]) => `${n}${sep}${k}`)
        .join(", ");
    return `${online} of ${this.devices.length} online${online < this.devices.length ? `; offline: ${list(states, " ")} (last errors: ${list(errors, " x ")})` : ""}`;
  }

  stats(): FleetStats {
    const s: FleetStats = {
      devices: this.devices.length,
      online: 0,
      connects: 0,
      resumes: 0,
      resumeFailures: 0,
      disconnects: 0,
      publishedItems: 0,
      publishedReadings: 0,
      publishFailures: 0,
      spooledReadings: 0,
      droppedReadings: 0,
      blocked: 0,
    };
    for (const { agent } of this.devices) {
      const st = agent.session.stats();
      if (st.state === "online") s.online++;
      s.connects += st.connects;
      s.resumes += st.resumes;
      s.resumeFailures += st.resumeFailures;
      s.disconnects += st.disconnects;
      const t = agent.telemetry?.status();
      if (!t) continue;
      s.publishedItems += t.publisher.publishedItems;
      s.publishedReadings += t.publisher.publishedReadings;
      s.publishFailures += t.publisher.failures;
      s.spooledReadings += t.spool.readings;
      s.droppedReadings += t.spool.droppedReadings;
      if (t.publisher.blocked) s.blocked++;
    }
    return s;
  }

  /**
   * Stops every device (all at once: a fleet is not one process tree to wind down in order);
   * reports every failure at once. A second call waits for the first.
   */
  stop(): Promise<void> {
    this.stopping = true;
    this.stopped ??= this.stopAll();
    return this.stopped;
  }

  private async stopAll(): Promise<void> {
    const failures: string[] = [];
    await Promise.all(
      this.devices.map(async ({ id, agent }) => {
        try {
          await agent.stop();
        } catch (err) {
          failures.push(`${id}: ${(err as Error).message}`);
        }
      }),
    );
    if (failures.length > 0)
      throw new FleetError("fleet_stop_failed", `${failures.length} devices failed to stop: ${failures.join("; ")}`, {
        failures,
      });
  }
}
