/**
 * The fleet simulator against a real Prosody: accounts created in bulk through XEP-0133, N whole
 * agents in this process publishing to the pubsub component, and the collector accounting for every
 * reading by sequence number. Then `iot-sim fleet` as a user runs it (bin/iot-sim.js dispatches it).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createAccounts } from "../../fleet-sim/accounts.js";
import { openClientSession } from "../../fleet-sim/client-session.js";
import { TelemetryCollector } from "../../fleet-sim/collector.js";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../../fleet-sim/device-config.js";
import { Fleet } from "../../fleet-sim/fleet.js";
import { connectAdmin } from "../../provisioning/admin-session.js";
import type { XmppSession } from "../../xmpp/session.js";
import { withTimeout } from "../harness/cleanup.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { testLogger } from "../xmpp/helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const N = 20;
const CLI_N = 5;
const DEVICE_PASS = "fleet-device-pw";
const ADMIN_PASS = "fleet-admin-pw";
const OPERATOR_PASS = "fleet-operator-pw";

describe("fleet simulator against Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  const ids = Array.from({ length: N }, (_, i) => fleetDeviceId("dev-", i, N));
  const cliIds = Array.from({ length: CLI_N }, (_, i) => fleetDeviceId("cli-", i, CLI_N));

  before(async () => {
    dir = makeTempDir("iot-fleet-test-");
    prosody = await startProsody({
      admins: ["admin@iot.test"],
      // Prosody 0.12 lets only admins create nodes on a pubsub component (docs/servers.md).
      pubsubAdmins: [...ids, ...cliIds].map((id) => `${id}@iot.test`),
    });
    await prosody.register("admin", ADMIN_PASS);
    await prosody.register("operator", OPERATOR_PASS);
  });
  after(async () => {
    await prosody?.stop();
    dir?.remove();
  });

  it(`${N} devices: accounts in bulk, every reading at the subscriber once, none lost`, async () => {
    const admin = await connectAdmin({
      jid: "admin@iot.test",
      password: ADMIN_PASS,
      server: `127.0.0.1:${prosody.port}`,
      caFile: prosody.caFile!,
    });
    try {
      const r = await createAccounts({
        admin: admin.session,
        jids: ids.map((id) => `${id}@iot.test`),
        password: () => DEVICE_PASS,
      });
      assert.deepEqual(r, { created: N, existing: 0 });
      // Again: a re-run keeps what is there.
      const again = await createAccounts({
        admin: admin.session,
        jids: ids.slice(0, 3).map((id) => `${id}@iot.test`),
        password: () => DEVICE_PASS,
      });
      assert.deepEqual(again, { created: 0, existing: 3 });
    } finally {
      await admin.close();
    }

    const fleet = new Fleet({
      template: {
        ...FLEET_TEMPLATE_DEFAULTS,
        servers: [`127.0.0.1:${prosody.port}`],
        domain: "iot.test",
        caFile: prosody.caFile!,
        operators: ["operator@iot.test"],
        intervalMs: 500,
      },
      devices: N,
      idPrefix: "dev-",
      dataRoot: join(dir.path, "fleet"),
      password: () => DEVICE_PASS,
      startPerSecond: 50,
      log: testLogger(),
    });
    assert.deepEqual(fleet.ids(), ids);
    let session: XmppSession | undefined;
    try {
      const rssBefore = process.memoryUsage().rss;
      await fleet.start();
      await fleet.waitOnline(30_000);
      session = await openClientSession({
        jid: "operator@iot.test",
        password: OPERATOR_PASS,
        server: `127.0.0.1:${prosody.port}`,
        caFile: prosody.caFile!,
      });
      const collector = new TelemetryCollector({ session, service: prosody.pubsubJid });
      await collector.subscribe(ids, { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 4000));
      const perDevice = (process.memoryUsage().rss - rssBefore) / N / 1024 / 1024;
      const running = fleet.stats();
      await fleet.stop();
      // Whatever was published before the subscriptions, and what arrived while stopping.
      await collector.fetchItems(ids);
      const report = collector.report();
      collector.close();
      console.log(
        `# fleet of ${N}: ${JSON.stringify({ stats: running, report, rssPerDeviceMiB: Number(perDevice.toFixed(2)) })}`,
      );
      assert.equal(running.online, N);
      assert.equal(report.reporting, N, "every device's readings arrived");
      assert.equal(report.missing, 0, `no reading lost (${report.missingExamples.join(", ")})`);
      assert.equal(report.duplicates, 0, "no reading in two items");
      assert.equal(report.badPayloads, 0);
      // Two channels every 500 ms for at least 4 s.
      assert.ok(report.readings >= N * 2 * 6, `${report.readings} readings`);
      assert.ok(
        report.latencyMs.samples > 0 && report.latencyMs.p99 < 10_000,
        `latency ${JSON.stringify(report.latencyMs)}`,
      );
    } finally {
      await fleet.stop();
      await session?.stop();
    }
  });

  it("`iot-sim fleet` creates the accounts, runs the devices, collects and reports", async () => {
    const args = [
      join(root, "bin", "iot-sim.js"),
      "fleet",
      "--devices",
      String(CLI_N),
      "--prefix",
      "cli-",
      "--server",
      `127.0.0.1:${prosody.port}`,
      "--domain",
      "iot.test",
      "--ca",
      prosody.caFile!,
      "--interval-ms",
      "500",
      "--duration",
      "4",
      "--report-every",
      "2",
      "--create-accounts",
      "--admin",
      "admin@iot.test",
      "--collect",
      "--json",
    ];
    const child = spawn(process.execPath, args, {
      env: {
        ...process.env,
        FLEET_DEVICE_PASSWORD: DEVICE_PASS,
        ADMIN_PASSWORD: ADMIN_PASS,
        OPERATOR_PASSWORD: OPERATOR_PASS,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await withTimeout(
      new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c))),
      90_000,
      "iot-sim fleet",
    ).catch((e: Error) => {
      child.kill("SIGKILL");
      throw new Error(`${e.message}\nstdout:\n${out}\nstderr:\n${err}`);
    });
    assert.equal(code, 0, `exit ${code}\nstdout:\n${out}\nstderr:\n${err}`);
    assert.match(out, new RegExp(`accounts: ${CLI_N} created, 0 already there`));
    assert.match(out, new RegExp(`online ${CLI_N}/${CLI_N}`));
    const json = JSON.parse(out.trim().split("\n").at(-1)!) as {
      fleet: { online: number };
      collector: { reporting: number; missing: number; duplicates: number; readings: number };
    };
    assert.equal(json.collector.reporting, CLI_N);
    assert.equal(json.collector.missing, 0);
    assert.equal(json.collector.duplicates, 0);
    assert.ok(json.collector.readings > 0);
  });
});
