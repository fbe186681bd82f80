/**
 * A small fleet against each server configuration of the fleet benchmark (test/harness/fleet-servers.ts:
 * Prosody as installed, Prosody with the shipped fleet settings on PostgreSQL, ejabberd with the
 * shipped fleet settings on PostgreSQL): 50 fleet-sim devices through a link-breaking proxy, every
 * link reset once mid-run (the devices resume), and a collector accounting for every reading by seq.
 * Then the fleet admin's tool on the same server: `iot-fleet exec`, `inventory` and `watch` over
 * the 50 devices (the admin account is one of their operators).
 * bench/fleet.ts measures the same configurations at 100 to 1000 devices.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createAccountsAsAdmin } from "../../fleet-sim/accounts.js";
import { openClientSession } from "../../fleet-sim/client-session.js";
import { TelemetryCollector } from "../../fleet-sim/collector.js";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../../fleet-sim/device-config.js";
import { Fleet } from "../../fleet-sim/fleet.js";
import { main as fleetMain } from "../../provisioning/cli.js";
import type { Job } from "../../provisioning/jobs/job.js";
import { addProvisioned, FleetStore, markEnrolled } from "../../provisioning/store.js";
import type { InventoryRow } from "../../provisioning/usecases/inventory.js";
import type { XmppSession } from "../../xmpp/session.js";
import { ejabberdInstalled } from "../harness/ejabberd.js";
import { ADMIN, OPERATOR, SERVER_KINDS, startFleetServer } from "../harness/fleet-servers.js";
import { postgresInstalled } from "../harness/postgres.js";
import { prosodySqlDriverInstalled } from "../harness/prosody.js";
import { startProxy } from "../harness/proxy.js";
import { makeTempDir } from "../harness/tmp.js";
import { testLogger, waitFor } from "../xmpp/helpers.js";

const N = 50;
const DEVICE_PASS = "fleet-servers-device";

function missing(kind: string): string | false {
  if (kind !== "prosody-file" && !postgresInstalled()) return "PostgreSQL 15 is not installed";
  if (kind === "prosody-postgresql" && !prosodySqlDriverInstalled("PostgreSQL"))
    return "lua-dbi-postgresql is not installed";
  if (kind === "ejabberd-postgresql" && !ejabberdInstalled()) return "ejabberd is not installed";
  return false;
}

/** iot-fleet exec, inventory and watch on this server's devices, through the CLI in this process. */
async function fleetToolOn(
  kind: string,
  server: { port: number; domain: string; caFile: string; pubsubJid: string },
  ids: string[],
  dir: string,
): Promise<void> {
  const home = join(dir, "fleet-home");
  await new FleetStore(join(home, "fleet.json")).update((data) => {
    for (const id of ids) {
      addProvisioned(
        data,
        {
          id,
          jid: `${id}@${server.domain}`,
          credentialPath: "invite",
          bundleId: `b-${id}`,
          pubsubService: server.pubsubJid,
        },
        new Date(),
      );
      markEnrolled(data, id, new Date());
    }
  });
  writeFileSync(join(dir, "admin.pw"), ADMIN.password, { mode: 0o600 });
  const env = {
    IOT_FLEET_HOME: home,
    IOT_FLEET_ADMIN_JID: `${ADMIN.user}@${server.domain}`,
    IOT_FLEET_ADMIN_PASSWORD_FILE: join(dir, "admin.pw"),
    IOT_FLEET_SERVER: `127.0.0.1:${server.port}`,
    IOT_FLEET_SERVER_CA_FILE: server.caFile,
  };
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await fleetMain(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };
  const exec = await cli("exec", "--all", "set-sampling", "channel=humidity", "intervalMs=1100", "--json");
  assert.equal(exec.code, 0, `${kind} exec: ${exec.err}`);
  assert.equal((JSON.parse(exec.out) as Job).devices.filter((d) => d.status === "completed").length, ids.length);
  const inv = await cli("inventory", "--json");
  assert.equal(inv.code, 0, `${kind} inventory: ${inv.err}`);
  const rows = JSON.parse(inv.out) as InventoryRow[];
  assert.equal(rows.filter((r) => r.online).length, ids.length, `${kind}: every device online`);
  assert.equal(
    rows.filter((r) => r.status?.agentVersion && r.status.channels.length === 2).length,
    ids.length,
    `${kind}: a status item from every device (${rows.find((r) => !r.status)?.statusProblem})`,
  );
  const watch = await cli("watch", "--device", ids[0]!, "--json", "--seconds", "3");
  assert.equal(watch.code, 0, `${kind} watch: ${watch.err}`);
  assert.ok(watch.out.split("\n").filter(Boolean).length >= 2, `${kind}: readings while watching`);
}

describe(`a fleet of ${N} on each server configuration`, () => {
  for (const kind of SERVER_KINDS) {
    it(`${kind}: every reading arrives once, through a reset of every link`, { skip: missing(kind) }, async () => {
      const ids = Array.from({ length: N }, (_, i) => fleetDeviceId("dev-", i, N));
      const server = await startFleetServer(
        kind,
        ids.map((id) => `${id}@iot.test`),
      );
      const dir = makeTempDir("iot-fleet-servers-");
      const proxy = await startProxy({ targetPort: server.port });
      const direct = `127.0.0.1:${server.port}`;
      let session: XmppSession | undefined;
      const fleet = new Fleet({
        template: {
          ...FLEET_TEMPLATE_DEFAULTS,
          servers: [`127.0.0.1:${proxy.port}`],
          domain: server.domain,
          caFile: server.caFile,
          pubsubService: server.pubsubJid,
          operators: [`${OPERATOR.user}@${server.domain}`, `${ADMIN.user}@${server.domain}`],
          intervalMs: 1000,
          reconnect: { initialDelayMs: 500, maxDelayMs: 5000 },
        },
        devices: N,
        idPrefix: "dev-",
        dataRoot: join(dir.path, "devices"),
        password: () => DEVICE_PASS,
        startPerSecond: 50,
        log: testLogger(),
      });
      try {
        await createAccountsAsAdmin(
          { jid: `${ADMIN.user}@${server.domain}`, password: ADMIN.password, server: direct, caFile: server.caFile },
          { jids: ids.map((id) => `${id}@${server.domain}`), password: () => DEVICE_PASS, concurrency: 16 },
        );
        await fleet.start();
        await fleet.waitOnline(60_000);
        session = await openClientSession({
          jid: `${OPERATOR.user}@${server.domain}`,
          password: OPERATOR.password,
          server: direct,
          caFile: server.caFile,
        });
        const collector = new TelemetryCollector({ session, service: server.pubsubJid });
        await collector.subscribe(ids, { concurrency: 16, timeoutMs: 60_000 });
        await new Promise((r) => setTimeout(r, 3000));

        const resumesBefore = fleet.stats().resumes;
        proxy.reset();
        await waitFor(
          () => fleet.stats().resumes - resumesBefore >= N,
          30_000,
          `every device resumed (${fleet.offlineSummary()})`,
        );
        await fleet.waitOnline(30_000);
        await new Promise((r) => setTimeout(r, 3000));
        await fleetToolOn(kind, server, ids, dir.path);

        const running = fleet.stats();
        await fleet.stop();
        await collector.fetchItems(ids, { concurrency: 16 });
        const report = collector.report();
        collector.close();
        console.log(`# ${kind}: ${JSON.stringify({ fleet: running, collector: report })}`);
        assert.equal(report.reporting, N, "every device's readings arrived");
        assert.equal(report.missing, 0, `no reading lost (${report.missingExamples.join(", ")})`);
        assert.equal(report.duplicates, 0, "no reading in two items");
        assert.equal(report.badPayloads, 0);
        assert.equal(running.resumes - resumesBefore, N, "every device resumed its session");
      } finally {
        await fleet.stop();
        await session?.stop();
        await proxy.stop();
        await server.stop();
        dir.remove();
      }
    });
  }
});
