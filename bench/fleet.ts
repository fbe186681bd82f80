/**
 * Fleet benchmark: how many devices a server holds, per server configuration, measured with the
 * fleet simulator (fleet-sim/: N whole agents in this process) on this machine.
 *
 * For each configuration (test/harness/fleet-servers.ts) and each fleet size, a fresh server, N accounts,
 * N devices publishing one batch (two readings) every --interval-ms, and a collector subscribed to
 * all of them (bench/fleet/measure.ts): server CPU per reading and per device-hour, server RSS per
 * connected device, latency sample -> subscriber, reconnect storms (links reset with jitter on and
 * off, a server restart), a burst (every link down for --outage-seconds, then every spool replayed
 * at once), and every reading accounted for by seq. Ends with a capacity table:
 * devices per server core at one batch per interval, from the largest size measured.
 *
 * Run: node --import tsx bench/fleet.ts [--configs prosody-file,...] [--sizes 100,300,1000]
 *      [--seconds 60] [--warmup S|full] [--interval-ms 5000] [--start-rate 100] [--no-storms]
 *      [--outage-seconds 60] (the burst phase; 0 skips it)
 * Output: tables on stdout, every figure in .tmp/bench/fleet.json.
 *
 * The fleet and the collector share this process and the machine's two cores with the server:
 * the server's figures come from /proc (its process trees), the fleet's own cost is printed apart.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../fleet-sim/device-config.js";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { devicesPerCore, type RunFigures, runFleet } from "./fleet/measure.js";
import { SERVER_KINDS, type ServerKind, startFleetServer } from "../test/harness/fleet-servers.js";
import { MiB } from "./lib/stats.js";

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: SERVER_KINDS.join(",") },
    sizes: { type: "string", default: "100,300,1000" },
    seconds: { type: "string", default: "60" },
    // full: until every telemetry node holds its maxItems (32) items, plus 15 s. Prosody's file
    // storage costs more per publish the more a node holds; a shorter warm-up flatters it.
    warmup: { type: "string", default: "full" },
    "interval-ms": { type: "string", default: "5000" },
    "start-rate": { type: "string", default: "100" },
    "no-storms": { type: "boolean", default: false },
    "outage-seconds": { type: "string", default: "60" },
  },
});
const CONFIGS = values.configs!.split(",") as ServerKind[];
for (const c of CONFIGS)
  if (!SERVER_KINDS.includes(c)) throw new Error(`--configs: unknown ${c} (${SERVER_KINDS.join(", ")})`);
const SIZES = values.sizes!.split(",").map(Number);
const SECONDS = Number(values.seconds);
const WARMUP =
  values.warmup === "full"
    ? Math.ceil((FLEET_TEMPLATE_DEFAULTS.maxItems * Number(values["interval-ms"])) / 1000) + 15
    : Number(values.warmup);
const INTERVAL = Number(values["interval-ms"]);
const START_RATE = Number(values["start-rate"]);

const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
const pad = (s: string, w: number) => s.padStart(w);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : pad(c, widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const keepAlive = setInterval(() => undefined, 60_000);
  const runs: RunFigures[] = [];
  const failures: { kind: ServerKind; devices: number; reason: string }[] = [];
  const t0 = performance.now();
  try {
    for (const kind of CONFIGS) {
      for (const n of SIZES) {
        console.log(`\n--- ${kind}, ${n} devices, one batch every ${INTERVAL} ms ---`);
        const jids = Array.from({ length: n }, (_, i) => `${fleetDeviceId("dev-", i, n)}@iot.test`);
        try {
          const server = await startFleetServer(kind, jids);
          try {
            const r = await runFleet({
              server,
              devices: n,
              intervalMs: INTERVAL,
              windowSeconds: SECONDS,
              warmupSeconds: WARMUP,
              startPerSecond: START_RATE,
              storms: !values["no-storms"],
              outageSeconds: Number(values["outage-seconds"]),
              log: (l) => console.log(`  ${l}`),
            });
            runs.push(r);
            console.log(
              `  lost ${r.collector.missing}, duplicated ${r.collector.duplicates}, readings accounted ${r.collector.readings}` +
                ` (the collector caught up ${r.collector.catchUps} time(s) after logging in again, ${r.collector.catchUpFailures} failed)` +
                (r.collector.missing ? ` (e.g. ${r.collector.missingExamples.join(", ")})` : ""),
            );
          } finally {
            await server.stop();
          }
        } catch (err) {
          // A configuration that cannot hold this many devices is a result, not the end of the run.
          const reason = (err as Error).message.split("\n")[0]!.slice(0, 300);
          failures.push({ kind, devices: n, reason });
          console.log(`  FAILED: ${reason}`);
        }
      }
    }
  } finally {
    clearInterval(keepAlive);
    await runAllTeardowns();
  }
  const totalS = (performance.now() - t0) / 1000;

  console.log(
    `\nFleet benchmark (${cpus().length} cores, ${cpus()[0]?.model ?? "?"}; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}), ${f(totalS / 60)} min`,
  );
  console.log(
    `Each device publishes one item of 2 readings every ${INTERVAL} ms; steady window ${SECONDS} s after ${WARMUP} s (nodes keep ${FLEET_TEMPLATE_DEFAULTS.maxItems} items).\n`,
  );
  console.log(
    table(
      [
        "config",
        "devices",
        "readings/s",
        "server CPU",
        "ms/reading",
        "CPU s/dev-h",
        "RSS/dev",
        "latency p50",
        "p99",
        "spooled",
        "kept up",
        "lost",
        "dup",
        "login s",
      ],
      runs.map((r) => [
        r.kind,
        String(r.devices),
        f(r.readings / r.windowSeconds, 0),
        `${f(r.serverCores * 100, 0)}%`,
        f(r.serverCpuMsPerReading, 2),
        f(r.serverCpuSecondsPerDeviceHour, 2),
        `${f(r.serverRssPerDevice / 1024, 0)} KiB`,
        `${f(r.latency.p50, 0)} ms`,
        `${f(r.latency.p99, 0)} ms`,
        String(r.spooledAfterWindow),
        r.keptUp ? "yes" : "NO",
        String(r.collector.missing),
        String(r.collector.duplicates),
        f(r.loginSeconds, 1),
      ]),
    ),
  );
  const storms = runs.flatMap((r) => r.storms.map((s) => ({ r, s })));
  if (storms.length > 0) {
    console.log("\nReconnect storms (every link broken at once):\n");
    console.log(
      table(
        ["config", "devices", "cause", "jitter", "all online", "half", "resumed", "bound", "peak server", "server CPU"],
        storms.map(({ r, s }) => [
          r.kind,
          String(r.devices),
          s.cause,
          s.jitter ? "on" : "off",
          `${f(s.allOnlineMs / 1000)} s`,
          `${f(s.halfOnlineMs / 1000)} s`,
          String(s.resumed),
          String(s.bound),
          `${f(s.peakServerCores * 100, 0)}%`,
          `${f(s.serverCpuMs / 1000)} s`,
        ]),
      ),
    );
  }
  for (const r of runs) if (r.restartSkipped) console.log(`  ${r.kind}: no restart storm: ${r.restartSkipped}`);
  const bursts = runs.filter((r) => r.burst);
  if (bursts.length > 0) {
    console.log("\nBurst: every link down, the devices spool, then all replay at once:\n");
    console.log(
      table(
        [
          "config",
          "devices",
          "outage",
          "spooled",
          "all online after",
          "all replayed after",
          "peak server",
          "server CPU",
          "CPU/reading",
        ],
        bursts.map((r) => [
          r.kind,
          String(r.devices),
          `${r.burst!.outageSeconds} s`,
          String(r.burst!.spooledAtRestore),
          `${f(r.burst!.onlineMs / 1000)} s`,
          `${f(r.burst!.drainMs / 1000)} s`,
          `${f(r.burst!.peakServerCores * 100, 0)}%`,
          `${f(r.burst!.serverCpuMs / 1000)} s`,
          // Reconnects included: every device re-authenticates or resumes during the replay.
          `${f(r.burst!.serverCpuMs / Math.max(1, r.burst!.spooledAtRestore), 2)} ms`,
        ]),
      ),
    );
  }
  for (const r of runs)
    for (const why of r.phaseFailures) console.log(`\nPhase not finished: ${r.kind} with ${r.devices} devices: ${why}`);
  for (const x of failures) console.log(`\nNot measured: ${x.kind} with ${x.devices} devices failed: ${x.reason}`);
  console.log(
    `\nCapacity at one batch per ${INTERVAL / 1000} s (devices one server core holds, from the largest fleet it kept up with):\n`,
  );
  const largest = CONFIGS.map((k) => {
    const ofKind = runs.filter((r) => r.kind === k).sort((a, b) => b.devices - a.devices);
    const saturated = ofKind.filter((r) => !r.keptUp).map((r) => r.devices);
    return { run: ofKind.find((r) => r.keptUp), saturated, kind: k };
  });
  console.log(
    table(
      ["config", "measured at", "server CPU", "devices per core", "server RSS per device", "saturated at"],
      largest.map(({ run: r, saturated, kind }) => [
        kind,
        r ? `${r.devices} devices` : "-",
        r ? `${f(r.serverCores * 100, 0)}%` : "-",
        r ? f(devicesPerCore(r), 0) : "-",
        r ? `${f(r.serverRssPerDevice / 1024, 0)} KiB` : "-",
        saturated.length ? saturated.sort((a, b) => a - b).join(", ") : "-",
      ]),
    ),
  );
  // Only the first run starts from a fresh process: later ones reuse the heap the earlier left.
  const first = runs[0];
  if (first)
    console.log(
      `\nThe simulator's own cost (devices + collector + proxy in one Node process), from the first run (${first.kind}, ${first.devices} devices): ${f(first.fleetRssPerDevice / MiB, 2)} MiB RSS and ${f((first.fleetCores * 100) / first.devices, 3)}% of a core per device`,
    );
  mkdirSync(".tmp/bench", { recursive: true });
  writeFileSync(
    ".tmp/bench/fleet.json",
    `${JSON.stringify({ at: new Date().toISOString(), intervalMs: INTERVAL, seconds: SECONDS, runs }, null, 2)}\n`,
  );
  const lost = runs.reduce((a, r) => a + r.collector.missing + r.collector.duplicates, 0);
  if (lost > 0 || failures.length > 0) {
    console.error(`\n${lost} readings lost or duplicated, ${failures.length} runs failed: see above`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
