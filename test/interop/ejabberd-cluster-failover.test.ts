/**
 * The distributed engine under a fleet: a two-node ejabberd 23.01 cluster on one PostgreSQL
 * (test/harness/ejabberd-cluster.ts), the shipped fleet.yml on both nodes, and fleet-sim devices
 * configured with both nodes (xmpp.servers), so they spread over them. Node B is killed with
 * SIGKILL mid-run: every device is online again on node A within a stated time, commands work on
 * the devices that were on B, no reading is lost (continuous seq at a subscriber on node A, and in
 * pubsub) or duplicated; then B restarts and rejoins, and takes logins again.
 *
 * What happens to the sessions that were on B (measured in the cluster test too): ejabberd 23.01
 * answers the resumption on A with <failed/> (item-not-found, no h), so those devices bind afresh
 * and re-send what was unacknowledged; their re-sent publishes carry the same item ids, so
 * pubsub stores each batch once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createAccountsAsAdmin } from "../../fleet-sim/accounts.js";
import { openClientSession } from "../../fleet-sim/client-session.js";
import { TelemetryCollector } from "../../fleet-sim/collector.js";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../../fleet-sim/device-config.js";
import { Fleet } from "../../fleet-sim/fleet.js";
import { executeAdhoc } from "../../provisioning/xmpp-admin.js";
import type { XmppSession } from "../../xmpp/session.js";
import { ejabberdFleetConfig, ejabberdInstalled } from "../harness/ejabberd.js";
import { type EjabberdClusterHandle, startEjabberdCluster } from "../harness/ejabberd-cluster.js";
import { postgresInstalled } from "../harness/postgres.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { testLogger, waitFor } from "../xmpp/helpers.js";

const N = 20;
const DEVICE_PASS = "cluster-device-pw";
const ADMIN_PASS = "cluster-admin-pw";
const OPERATOR_PASS = "cluster-operator-pw";
/** The stated bound: every device of the dead node online again on the other within this. */
const FAILOVER_BOUND_MS = 30_000;
const skip = !ejabberdInstalled() || !postgresInstalled() ? "ejabberd or PostgreSQL is not installed" : false;

describe("a fleet on a two-node ejabberd cluster when one node dies", { skip }, () => {
  let cluster: EjabberdClusterHandle;
  let dir: TempDir;
  const ids = Array.from({ length: N }, (_, i) => fleetDeviceId("dev-", i, N));

  before(async () => {
    dir = makeTempDir("iot-cluster-fleet-");
    cluster = await startEjabberdCluster({
      admins: ["admin@iot.test", "operator@iot.test"],
      nodeCreators: "local",
      resumeTimeout: 300,
      ...ejabberdFleetConfig(),
    });
    await cluster.register("admin", ADMIN_PASS);
    await cluster.register("operator", OPERATOR_PASS);
    console.log(`# cluster: ${JSON.stringify(cluster.timings)}`);
  });
  after(async () => {
    await cluster?.stop();
    dir?.remove();
  });

  it(`${N} devices over both nodes: kill -9 node B, all back on A, nothing lost, commands work, B rejoins`, async () => {
    const [a, b] = cluster.nodes;
    const endpointA = `127.0.0.1:${a.port}`;
    const endpointB = `127.0.0.1:${b.port}`;
    await createAccountsAsAdmin(
      { jid: "admin@iot.test", password: ADMIN_PASS, server: endpointA, caFile: cluster.caFile },
      { jids: [...ids, "late-0001"].map((id) => `${id}@iot.test`), password: () => DEVICE_PASS },
    );
    const fleet = new Fleet({
      template: {
        ...FLEET_TEMPLATE_DEFAULTS,
        servers: [endpointA, endpointB],
        domain: "iot.test",
        caFile: cluster.caFile,
        operators: ["operator@iot.test"],
        intervalMs: 500,
        // Every item of the run stays in the nodes (fleet.yml's max_items_node), so the final read
        // of the nodes is a check of what pubsub holds, not only of what was notified.
        maxItems: 256,
        // A dead node is found by its closed sockets at once; retry soon after.
        reconnect: { initialDelayMs: 500, maxDelayMs: 5000 },
      },
      devices: N,
      idPrefix: "dev-",
      dataRoot: join(dir.path, "fleet"),
      password: () => DEVICE_PASS,
      startPerSecond: 50,
      log: testLogger(),
    });
    let session: XmppSession | undefined;
    try {
      await fleet.start();
      await fleet.waitOnline(60_000);
      const onB = fleet.devices.filter((d) => d.agent.session.stats().endpoint === endpointB).map((d) => d.id);
      const onA = fleet.devices.filter((d) => d.agent.session.stats().endpoint === endpointA).map((d) => d.id);
      console.log(`# spread: ${onA.length} devices on node A, ${onB.length} on node B`);
      assert.equal(onA.length + onB.length, N);
      assert.ok(onA.length > 0 && onB.length > 0, "the fleet spread over both nodes");

      session = await openClientSession({
        jid: "operator@iot.test",
        password: OPERATOR_PASS,
        server: endpointA,
        caFile: cluster.caFile,
      });
      const collector = new TelemetryCollector({ session, service: cluster.pubsubJid });
      await collector.subscribe(ids, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 2000));

      // Node B dies.
      const killedAt = Date.now();
      await cluster.kill(1);
      const resumedBefore = fleet.stats().resumes;
      const fromB = onB.map((id) => fleet.devices.find((d) => d.id === id)!.agent.session);
      // Back means: online again, through node A (the devices notice B's sockets closing at once).
      await waitFor(
        () => fromB.every((s) => s.state === "online" && s.stats().endpoint === endpointA),
        FAILOVER_BOUND_MS,
        `the devices of node B online on node A (${fleet.offlineSummary()})`,
      );
      await fleet.waitOnline(FAILOVER_BOUND_MS);
      const failoverMs = Date.now() - killedAt;
      const moved = fromB.map((s) => s.stats());
      console.log(
        `# failover: all ${N} online ${failoverMs} ms after kill -9 of node B; of the ${onB.length} from B: ${moved.filter((s) => s.endpoint === endpointA).length} now on A, resumptions refused ${moved.reduce((n, s) => n + s.resumeFailures, 0)}, resumed ${fleet.stats().resumes - resumedBefore}`,
      );
      for (const s of moved) assert.equal(s.endpoint, endpointA, "a device from B is on A");

      // Commands work on a device that was on B.
      const target = fleet.devices.find((d) => d.id === onB[0])!;
      const status = await executeAdhoc(session, target.agent.session.jid!, "status");
      assert.equal(status.status, "completed");

      // Readings keep flowing, then B comes back and rejoins.
      await new Promise((r) => setTimeout(r, 3000));
      const restart = await cluster.restart(1);
      console.log(`# node B back: ${JSON.stringify(restart)}`);
      assert.ok((await cluster.listCluster(0)).length === 2, "both nodes in the cluster again");
      const late = new Fleet({
        template: {
          ...FLEET_TEMPLATE_DEFAULTS,
          servers: [endpointB],
          domain: "iot.test",
          caFile: cluster.caFile,
          operators: ["operator@iot.test"],
        },
        devices: 1,
        idPrefix: "late-",
        dataRoot: join(dir.path, "late"),
        password: () => DEVICE_PASS,
        startPerSecond: 1,
        log: testLogger(),
      });
      try {
        await late.start();
        await late.waitOnline(30_000);
      } finally {
        await late.stop();
      }

      await fleet.stop();
      await collector.fetchItems(ids);
      const report = collector.report();
      collector.close();
      console.log(`# readings: ${JSON.stringify(report)}`);
      assert.equal(report.reporting, N);
      assert.equal(report.missing, 0, `no reading lost (${report.missingExamples.join(", ")})`);
      assert.equal(report.duplicates, 0, "no reading in two different items");
    } finally {
      await fleet.stop();
      await session?.stop();
    }
  });
});
