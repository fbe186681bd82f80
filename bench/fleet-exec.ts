/**
 * `iot-fleet exec` at fleet size: one ad-hoc command (set-sampling, which changes and persists a
 * setting on the device) on every device of a simulated fleet (fleet-sim, whole agents), run by
 * the real CLI (provisioning/cli.ts main(), its admin session, its job file), per server
 * configuration and concurrency. Figures: wall time, commands per second, server CPU (its process
 * trees, from /proc) per command, and whether every device completed. The baseline in the same run
 * is the smallest fleet (default 100) at the same concurrency: the ratio says how exec scales.
 *
 * Run: node --import tsx bench/fleet-exec.ts [--configs prosody-postgresql,...] [--sizes 100,1000]
 *      [--concurrency 16,64] [--runs 3]
 * A script that prints figures, not a timed test: numbers depend on the machine and its load.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createAccountsAsAdmin } from "../fleet-sim/accounts.js";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../fleet-sim/device-config.js";
import { Fleet } from "../fleet-sim/fleet.js";
import { silentLogger } from "../kernel/log.js";
import { main } from "../provisioning/cli.js";
import type { Job } from "../provisioning/jobs/job.js";
import { addProvisioned, FleetStore, markEnrolled } from "../provisioning/store.js";
import { runAllTeardowns } from "../test/harness/cleanup.js";
import { ADMIN, SERVER_KINDS, type ServerKind, startFleetServer } from "../test/harness/fleet-servers.js";
import { makeTempDir } from "../test/harness/tmp.js";
import { treeCpuMs } from "./lib/proc.js";
import { median } from "./lib/stats.js";

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "prosody-postgresql,ejabberd-postgresql" },
    sizes: { type: "string", default: "100,1000" },
    concurrency: { type: "string", default: "16,64" },
    runs: { type: "string", default: "3" },
  },
});
const CONFIGS = values.configs!.split(",") as ServerKind[];
for (const c of CONFIGS)
  if (!SERVER_KINDS.includes(c)) throw new Error(`--configs: unknown ${c} (${SERVER_KINDS.join(", ")})`);
const SIZES = values.sizes!.split(",").map(Number);
const CONCURRENCY = values.concurrency!.split(",").map(Number);
const RUNS = Number(values.runs);
const DEVICE_PASSWORD = "fleet-exec-bench";

interface Row {
  config: ServerKind;
  devices: number;
  concurrency: number;
  wallMs: number;
  serverCpuMsPerCommand: number;
  completed: number;
}

async function measureSize(config: ServerKind, n: number): Promise<Row[]> {
  const ids = Array.from({ length: n }, (_, i) => fleetDeviceId("dev-", i, n));
  const server = await startFleetServer(
    config,
    ids.map((id) => `${id}@iot.test`),
  );
  const dir = makeTempDir("iot-fleet-exec-bench-");
  const addr = `127.0.0.1:${server.port}`;
  const adminJid = `${ADMIN.user}@${server.domain}`;
  const fleet = new Fleet({
    template: {
      ...FLEET_TEMPLATE_DEFAULTS,
      servers: [addr],
      domain: server.domain,
      caFile: server.caFile,
      pubsubService: server.pubsubJid,
      operators: [adminJid],
      // Light telemetry: what is measured is the commands, not publishing.
      intervalMs: 60_000,
    },
    devices: n,
    idPrefix: "dev-",
    dataRoot: join(dir.path, "devices"),
    password: () => DEVICE_PASSWORD,
    startPerSecond: 100,
    log: silentLogger,
  });
  try {
    await createAccountsAsAdmin(
      { jid: adminJid, password: ADMIN.password, server: addr, caFile: server.caFile },
      { jids: ids.map((id) => `${id}@${server.domain}`), password: () => DEVICE_PASSWORD, concurrency: 16 },
    );
    await fleet.start();
    await fleet.waitOnline(600_000);
    const home = join(dir.path, "home");
    await new FleetStore(join(home, "fleet.json")).update((data) => {
      for (const id of ids) {
        addProvisioned(
          data,
          { id, jid: `${id}@${server.domain}`, credentialPath: "invite", bundleId: `b-${id}` },
          new Date(),
        );
        markEnrolled(data, id, new Date());
      }
    });
    const pw = join(dir.path, "admin.pw");
    writeFileSync(pw, ADMIN.password, { mode: 0o600 });
    const env = {
      IOT_FLEET_HOME: home,
      IOT_FLEET_ADMIN_JID: adminJid,
      IOT_FLEET_ADMIN_PASSWORD_FILE: pw,
      IOT_FLEET_SERVER: addr,
      IOT_FLEET_SERVER_CA_FILE: server.caFile,
    };
    const cpu = () => server.pids().reduce((sum, pid) => sum + treeCpuMs(pid), 0);
    const rows: Row[] = [];
    let value = 61_000;
    for (const c of CONCURRENCY) {
      const walls: number[] = [];
      const cpus: number[] = [];
      let completed = n;
      for (let r = 0; r < RUNS; r++) {
        const out: string[] = [];
        const cpu0 = cpu();
        const t0 = performance.now();
        const code = await main(
          [
            "exec",
            "--all",
            "set-sampling",
            "channel=temperature",
            `intervalMs=${value++}`,
            "--concurrency",
            String(c),
            "--json",
          ],
          { out: (s) => out.push(s), err: () => undefined, env },
        );
        walls.push(performance.now() - t0);
        cpus.push((cpu() - cpu0) / n);
        const job = JSON.parse(out.join("")) as Job;
        completed = Math.min(completed, job.devices.filter((d) => d.status === "completed").length);
        if (code !== 0) console.log(`  ${config} ${n} devices, concurrency ${c}: exit ${code}, ${completed} completed`);
      }
      rows.push({
        config,
        devices: n,
        concurrency: c,
        wallMs: median(walls),
        serverCpuMsPerCommand: median(cpus),
        completed,
      });
      console.log(
        `  ${config}: ${n} devices, concurrency ${c}: ${(median(walls) / 1000).toFixed(2)} s (median of ${RUNS}), server CPU ${median(cpus).toFixed(2)} ms per device, ${completed}/${n} completed`,
      );
    }
    return rows;
  } finally {
    await fleet.stop();
    await server.stop();
    dir.remove();
  }
}

async function run(): Promise<void> {
  const rows: Row[] = [];
  for (const config of CONFIGS) for (const n of SIZES) rows.push(...(await measureSize(config, n)));
  console.log(
    `\niot-fleet exec set-sampling on every device (whole simulated agents on this machine, median of ${RUNS} runs)`,
  );
  console.log(
    "config                devices  concurrency   wall      per second  server CPU/command  completed  vs smallest",
  );
  for (const r of rows) {
    const base = rows.find((b) => b.config === r.config && b.concurrency === r.concurrency && b.devices === SIZES[0]);
    const perDeviceRatio = base ? r.wallMs / r.devices / (base.wallMs / base.devices) : Number.NaN;
    console.log(
      `${r.config.padEnd(20)}  ${String(r.devices).padStart(7)}  ${String(r.concurrency).padStart(11)}  ${(r.wallMs / 1000).toFixed(2).padStart(6)} s  ${(r.devices / (r.wallMs / 1000)).toFixed(0).padStart(10)}  ${r.serverCpuMsPerCommand.toFixed(2).padStart(15)} ms  ${`${r.completed}/${r.devices}`.padStart(9)}  ${r.devices === SIZES[0] ? "baseline" : `x${perDeviceRatio.toFixed(2)} per device`}`,
    );
  }
}

run()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => runAllTeardowns());
