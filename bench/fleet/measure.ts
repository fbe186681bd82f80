/**
 * One fleet benchmark run: N simulated devices (fleet-sim, in this process) against one server
 * configuration, through a link-breaking proxy, and a collector subscribed to every device beside
 * them on a direct link. Phases:
 *
 *  1. accounts in bulk (XEP-0133), then the devices log in at a bounded rate;
 *  2. steady: after a warm-up (until the nodes are full, by default), a window of --seconds at one
 *     batch per interval per device: server CPU (the server's whole process tree, PostgreSQL
 *     included) per reading and per device-hour, server RSS per connected device, latency
 *     sample -> collector, and whether the server kept up;
 *  3. storms: every device's link reset at once (the proxy), with reconnect jitter on, then off:
 *     time until all are online again, how many resumed and how many bound afresh, the server's
 *     peak CPU over 250 ms slices;
 *  4. a server restart (stream-management state lost: every device binds afresh), when the
 *     configuration can restart on the same data;
 *  5. a burst: every link down for --outage-seconds, then every spool replayed;
 *  6. readings lost (by seq, 0 expected) and duplicated, over the whole run.
 *
 * Phases 3-5 are skipped when the server did not keep up in phase 2, and after one of them did not
 * finish: a failed phase is a result of the run, recorded in phaseFailures.
 */
import { join } from "node:path";
import { createAccountsAsAdmin } from "../../fleet-sim/accounts.js";
import { openClientSession } from "../../fleet-sim/client-session.js";
import { type CollectorReport, TelemetryCollector } from "../../fleet-sim/collector.js";
import { FLEET_READINGS_PER_ROUND, FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../../fleet-sim/device-config.js";
import { Fleet } from "../../fleet-sim/fleet.js";
import { silentLogger } from "../../kernel/log.js";
import { startProxy } from "../../test/harness/proxy.js";
import { makeTempDir } from "../../test/harness/tmp.js";
import { BenchError } from "../lib/errors.js";
import { ADMIN, type FleetServer, OPERATOR, type ServerKind } from "../../test/harness/fleet-servers.js";
import { treeCpuMs, treeRss } from "../lib/proc.js";

/** CPU ms and RSS of the whole server side: every process under each of its roots. */
const sideCpuMs = (s: FleetServer) => s.pids().reduce((sum, pid) => sum + treeCpuMs(pid), 0);
const sideRss = (s: FleetServer) => s.pids().reduce((sum, pid) => sum + treeRss(pid), 0);

export const DEVICE_PASSWORD = "fleet-bench-device";

export interface StormFigures {
  /** What broke the links: "reset" (the proxy) or "restart" (the server). */
  cause: "reset" | "restart";
  jitter: boolean;
  /** From the break until every device was online again. */
  allOnlineMs: number;
  /** Until half of them were. */
  halfOnlineMs: number;
  resumed: number;
  bound: number;
  /** The server's busiest 250 ms slice, as a fraction of one core (1.0 = one core fully busy). */
  peakServerCores: number;
  /** Server CPU spent from the break until all were online. */
  serverCpuMs: number;
}

/** A burst: every device offline for a while (spooling), then all replaying at once. */
export interface BurstFigures {
  outageSeconds: number;
  /** Readings waiting in the devices' spools when the links came back. */
  spooledAtRestore: number;
  /** From the links coming back until every device was online again (its reconnect backoff). */
  onlineMs: number;
  /** From the links coming back until every spool was empty. */
  drainMs: number;
  /** The server's busiest 250 ms slice during the drain, in cores. */
  peakServerCores: number;
  serverCpuMs: number;
}

export interface RunFigures {
  kind: ServerKind;
  devices: number;
  intervalMs: number;
  accountsPerSecond: number;
  loginSeconds: number;
  windowSeconds: number;
  readings: number;
  items: number;
  serverCpuMs: number;
  /** Server CPU over the window as a fraction of one core. */
  serverCores: number;
  serverCpuMsPerReading: number;
  serverCpuSecondsPerDeviceHour: number;
  serverRssIdle: number;
  serverRssLoaded: number;
  serverRssPerDevice: number;
  /** This process (devices + collector + proxy) per device, RSS. */
  fleetRssPerDevice: number;
  fleetCores: number;
  latency: CollectorReport["latencyMs"];
  /** Readings waiting in the devices' spools at the end of the steady window. */
  spooledAfterWindow: number;
  /**
   * The server kept up in the steady window: no device more than one batch behind and p99 latency
   * under two intervals. A server that does not is saturated, and its CPU figure is a floor.
   */
  keptUp: boolean;
  storms: StormFigures[];
  /** Storm or burst phases that did not finish (a result too: the run's other figures stand). */
  phaseFailures: string[];
  burst?: BurstFigures;
  restartSkipped?: string;
  collector: CollectorReport;
  /** Readings still in the devices' spools at the end (not published when the fleet stopped). */
  spooledAtEnd: number;
}

export interface RunOptions {
  server: FleetServer;
  devices: number;
  intervalMs: number;
  windowSeconds: number;
  warmupSeconds: number;
  startPerSecond: number;
  storms: boolean;
  /** Burst phase: the links are down this long (0: no burst). */
  outageSeconds: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFleet(o: RunOptions): Promise<RunFigures> {
  const say = o.log ?? (() => undefined);
  const { server } = o;
  const ids = Array.from({ length: o.devices }, (_, i) => fleetDeviceId("dev-", i, o.devices));
  const addr = `127.0.0.1:${server.port}`;
  const dir = makeTempDir("iot-fleet-bench-");
  const proxy = await startProxy({ targetPort: server.port });
  let jitter = true;
  const fleet = new Fleet({
    template: {
      ...FLEET_TEMPLATE_DEFAULTS,
      servers: [`127.0.0.1:${proxy.port}`],
      domain: server.domain,
      caFile: server.caFile,
      pubsubService: server.pubsubJid,
      operators: [`${OPERATOR.user}@${server.domain}`],
      intervalMs: o.intervalMs,
      // A storm's first wait is drawn from [0, initialDelayMs): 5 s spreads N logins over 5 s.
      reconnect: { initialDelayMs: 5000, maxDelayMs: 60_000 },
    },
    devices: o.devices,
    idPrefix: "dev-",
    dataRoot: join(dir.path, "devices"),
    password: () => DEVICE_PASSWORD,
    startPerSecond: o.startPerSecond,
    log: silentLogger,
    random: () => (jitter ? Math.random() : 1),
  });
  let collectorSession: Awaited<ReturnType<typeof openClientSession>> | undefined;
  try {
    // 1. accounts and logins
    const tAcc = performance.now();
    await createAccountsAsAdmin(
      { jid: `${ADMIN.user}@${server.domain}`, password: ADMIN.password, server: addr, caFile: server.caFile },
      { jids: ids.map((id) => `${id}@${server.domain}`), password: () => DEVICE_PASSWORD, concurrency: 16 },
    );
    const accountsPerSecond = o.devices / ((performance.now() - tAcc) / 1000);
    await sleep(2000);
    const serverRssIdle = sideRss(server);
    const fleetRss0 = process.memoryUsage().rss;
    const tLogin = performance.now();
    await fleet.start();
    await fleet.waitOnline(600_000, o.devices, { onProgress: (l) => say(`logging in: ${l}`) });
    const loginSeconds = (performance.now() - tLogin) / 1000;
    say(`${o.devices} devices online in ${loginSeconds.toFixed(1)} s (accounts at ${accountsPerSecond.toFixed(0)}/s)`);
    collectorSession = await openClientSession({
      jid: `${OPERATOR.user}@${server.domain}`,
      password: OPERATOR.password,
      server: addr,
      caFile: server.caFile,
    });
    const collector = new TelemetryCollector({ session: collectorSession, service: server.pubsubJid });
    await collector.subscribe(ids, { concurrency: 32, timeoutMs: 300_000 });

    // 2. steady window
    await sleep(o.warmupSeconds * 1000);
    collector.resetLatencies();
    const cpu0 = sideCpuMs(server);
    const own0 = process.cpuUsage();
    const s0 = fleet.stats();
    const t0 = performance.now();
    await sleep(o.windowSeconds * 1000);
    const windowMs = performance.now() - t0;
    const s1 = fleet.stats();
    const serverCpuMs = sideCpuMs(server) - cpu0;
    const own = process.cpuUsage(own0);
    const serverRssLoaded = sideRss(server);
    const fleetRss = process.memoryUsage().rss;
    const latency = collector.report().latencyMs;
    const readings = s1.publishedReadings - s0.publishedReadings;
    const items = s1.publishedItems - s0.publishedItems;
    const serverCores = serverCpuMs / windowMs;
    const spooledAfterWindow = s1.spooledReadings;
    const keptUp = spooledAfterWindow <= FLEET_READINGS_PER_ROUND * o.devices && latency.p99 < 2 * o.intervalMs;
    say(
      `steady ${o.windowSeconds} s: ${readings} readings, server ${(serverCores * 100).toFixed(0)}% of a core, ` +
        `latency p50 ${latency.p50.toFixed(0)} ms p99 ${latency.p99.toFixed(0)} ms, ${spooledAfterWindow} spooled` +
        (keptUp ? "" : " (SATURATED: the server does not keep up)"),
    );
    const phaseFailures: string[] = [];
    // A phase that cannot finish is a figure of this configuration; the run goes on to account for
    // every reading. A server that does not keep up with the steady load, or a fleet that did not
    // come back from the last phase, would only fail the next phases too: they are skipped.
    let skipWhy = keptUp ? undefined : "the server did not keep up with the steady load";
    const phase = async <T>(name: string, run: () => Promise<T>): Promise<T | undefined> => {
      if (skipWhy) {
        phaseFailures.push(`${name}: skipped (${skipWhy})`);
        return undefined;
      }
      try {
        return await run();
      } catch (err) {
        const why = `${name}: ${(err as Error).message.split("\n")[0]!.slice(0, 300)}`;
        phaseFailures.push(why);
        say(`FAILED ${why}`);
        skipWhy = `the fleet did not come back from: ${name}`;
        return undefined;
      }
    };

    // 3. storms through the proxy, 4. a restart
    const storms: StormFigures[] = [];
    let restartSkipped: string | undefined;
    if (o.storms) {
      for (const j of [true, false]) {
        jitter = j;
        const s = await phase(`storm (reset, jitter ${j ? "on" : "off"})`, () =>
          storm(fleet, server, "reset", j, () => proxy.reset(), say),
        );
        if (s) {
          storms.push(s);
          say(stormLine(s));
        }
        await sleep(2 * o.intervalMs);
      }
      jitter = true;
      if (server.restart) {
        const s = await phase("storm (restart)", () =>
          storm(fleet, server, "restart", true, () => server.restart!(), say),
        );
        if (s) {
          storms.push(s);
          say(stormLine(s));
        }
        await sleep(2 * o.intervalMs);
      } else restartSkipped = server.restartUnsupported ?? "this configuration cannot restart on the same data";
    }
    let burst: BurstFigures | undefined;
    if (o.outageSeconds > 0) {
      burst = await phase("burst", () => outageBurst(fleet, server, proxy, o.outageSeconds, say));
      if (burst)
        say(
          `burst: ${burst.spooledAtRestore} readings spooled during a ${o.outageSeconds} s outage; all online ` +
            `${(burst.onlineMs / 1000).toFixed(1)} s and all replayed ${(burst.drainMs / 1000).toFixed(1)} s after the ` +
            `links came back, server peak ${(burst.peakServerCores * 100).toFixed(0)}% of a core`,
        );
      await sleep(2 * o.intervalMs);
    }

    // 5. the whole run's accounting
    const spooledAtEnd = fleet.stats().spooledReadings;
    await fleet.stop();
    await sleep(1000);
    await collector.settled();
    await collector.fetchItems(ids, { concurrency: 32 });
    const report = collector.report();
    collector.close();
    return {
      kind: server.kind,
      devices: o.devices,
      intervalMs: o.intervalMs,
      accountsPerSecond,
      loginSeconds,
      windowSeconds: windowMs / 1000,
      readings,
      items,
      serverCpuMs,
      serverCores,
      serverCpuMsPerReading: serverCpuMs / Math.max(1, readings),
      serverCpuSecondsPerDeviceHour: serverCpuMs / 1000 / o.devices / (windowMs / 3_600_000),
      serverRssIdle,
      serverRssLoaded,
      serverRssPerDevice: (serverRssLoaded - serverRssIdle) / o.devices,
      fleetRssPerDevice: (fleetRss - fleetRss0) / o.devices,
      fleetCores: (own.user + own.system) / 1000 / windowMs,
      latency,
      spooledAfterWindow,
      keptUp,
      storms,
      phaseFailures,
      ...(burst ? { burst } : {}),
      ...(restartSkipped ? { restartSkipped } : {}),
      collector: report,
      spooledAtEnd,
    };
  } finally {
    await fleet.stop().catch((err: unknown) => say(`fleet stop: ${(err as Error).message}`));
    await collectorSession?.stop();
    await proxy.stop();
    dir.remove();
  }
}

function stormLine(s: StormFigures): string {
  return (
    `storm (${s.cause}, jitter ${s.jitter ? "on" : "off"}): all online in ${(s.allOnlineMs / 1000).toFixed(1)} s ` +
    `(half in ${(s.halfOnlineMs / 1000).toFixed(1)} s), ${s.resumed} resumed, ${s.bound} bound afresh, ` +
    `server peak ${(s.peakServerCores * 100).toFixed(0)}% of a core`
  );
}

/** The server side's CPU from now on: in total, and its busiest slice between two sample() calls, in cores. */
class CpuSlices {
  private readonly startMs: number;
  private lastMs: number;
  private lastAt = performance.now();
  peakCores = 0;

  constructor(private readonly server: FleetServer) {
    this.startMs = sideCpuMs(server);
    this.lastMs = this.startMs;
  }

  sample(): void {
    const now = performance.now();
    const ms = sideCpuMs(this.server);
    this.peakCores = Math.max(this.peakCores, (ms - this.lastMs) / (now - this.lastAt));
    this.lastMs = ms;
    this.lastAt = now;
  }

  totalMs(): number {
    return sideCpuMs(this.server) - this.startMs;
  }
}

/** Breaks every link with `cause` and measures the way back. */
async function storm(
  fleet: Fleet,
  server: FleetServer,
  cause: "reset" | "restart",
  jitter: boolean,
  breakLinks: () => unknown,
  say: (line: string) => void,
): Promise<StormFigures> {
  const n = fleet.devices.length;
  await fleet.waitOnline(300_000);
  let resumed = 0;
  let bound = 0;
  const back = new Set<string>();
  const unlisten = fleet.devices.map(({ id, agent }) => {
    const on = (e: { resumed: boolean }) => {
      if (back.has(id)) return;
      back.add(id);
      if (e.resumed) resumed++;
      else bound++;
    };
    agent.session.on("online", on);
    return () => agent.session.off("online", on);
  });
  let cpu = new CpuSlices(server);
  const t0 = performance.now();
  let half: number | undefined;
  let nextProgress = t0 + 30_000;
  try {
    await breakLinks();
    // A restart replaced the server process: measure the new one from its start.
    if (cause === "restart") cpu = new CpuSlices(server);
    const deadline = t0 + 300_000;
    while (back.size < n) {
      if (performance.now() > deadline) {
        const why = fleet.devices
          .filter((d) => !back.has(d.id))
          .slice(0, 3)
          .map((d) => `${d.id}: ${d.agent.session.stats().lastError ?? d.agent.session.state}`);
        throw new BenchError(
          "bench_storm_timeout",
          `${back.size} of ${n} devices back online 300 s after the ${cause} (${why.join("; ")})`,
          { cause, jitter },
        );
      }
      await sleep(250);
      cpu.sample();
      const now = performance.now();
      if (half === undefined && back.size >= n / 2) half = now - t0;
      if (now > nextProgress) {
        nextProgress = now + 30_000;
        say(
          `storm (${cause}, jitter ${jitter ? "on" : "off"}), ${((now - t0) / 1000).toFixed(0)} s: ${back.size} of ${n} back; ` +
            `${fleet.offlineSummary()}; server ${((cpu.totalMs() / (now - t0)) * 100).toFixed(0)}% of a core on average`,
        );
      }
    }
    const allOnlineMs = performance.now() - t0;
    return {
      cause,
      jitter,
      allOnlineMs,
      halfOnlineMs: half ?? allOnlineMs,
      resumed,
      bound,
      peakServerCores: cpu.peakCores,
      serverCpuMs: cpu.totalMs(),
    };
  } finally {
    for (const u of unlisten) u();
  }
}

/**
 * Every link down for `outageSeconds` (the proxy refuses new connections and resets the open
 * ones: the devices keep sampling into their spools, their sessions hibernate on the server), then
 * back: how long until every spool is empty, and what the replay costs the server.
 */
async function outageBurst(
  fleet: Fleet,
  server: FleetServer,
  proxy: { refuse(on: boolean): Promise<void>; reset(): void },
  outageSeconds: number,
  say: (line: string) => void,
): Promise<BurstFigures> {
  await fleet.waitOnline(300_000);
  await proxy.refuse(true);
  proxy.reset();
  await sleep(outageSeconds * 1000);
  const spooledAtRestore = fleet.stats().spooledReadings;
  await proxy.refuse(false);
  const t0 = performance.now();
  const cpu = new CpuSlices(server);
  const deadline = t0 + 600_000;
  let onlineMs: number | undefined;
  let nextProgress = t0 + 30_000;
  // Drained: every device online and holding no more than the batch it is publishing now (live
  // sampling goes on, so the fleet's total is almost never 0).
  const drained = () =>
    fleet.devices.every(
      ({ agent }) => agent.session.state === "online" && (agent.telemetry?.status()?.spool.readings ?? 0) <= 2,
    );
  while (!drained()) {
    if (performance.now() > deadline)
      throw new BenchError(
        "bench_burst_timeout",
        `spools not empty 600 s after the outage: ${fleet.offlineSummary()}`,
        {
          spooled: fleet.stats().spooledReadings,
        },
      );
    await sleep(250);
    cpu.sample();
    const now = performance.now();
    if (onlineMs === undefined && fleet.devices.every(({ agent }) => agent.session.state === "online"))
      onlineMs = now - t0;
    if (now > nextProgress) {
      nextProgress = now + 30_000;
      const behind = fleet.devices.filter(({ agent }) => (agent.telemetry?.status()?.spool.readings ?? 0) > 2).length;
      say(
        `burst, ${((now - t0) / 1000).toFixed(0)} s after the links came back: ${fleet.offlineSummary()}; ` +
          `${fleet.stats().spooledReadings} readings spooled, ${behind} devices more than a batch behind`,
      );
    }
  }
  const drainMs = performance.now() - t0;
  return {
    outageSeconds,
    spooledAtRestore,
    onlineMs: onlineMs ?? drainMs,
    drainMs,
    peakServerCores: cpu.peakCores,
    serverCpuMs: cpu.totalMs(),
  };
}

/**
 * Devices one server core holds at one batch per interval, from a run's measured CPU. Only a run
 * whose server kept up says so: a saturated server's CPU is its ceiling, not the fleet's need.
 */
export function devicesPerCore(r: RunFigures): number {
  return r.serverCores > 0 ? r.devices / r.serverCores : Number.POSITIVE_INFINITY;
}
