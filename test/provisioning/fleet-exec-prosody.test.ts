/**
 * `iot-fleet exec` and its jobs against a real Prosody and 200 whole simulated agents (fleet-sim),
 * the admin account being the devices' operator: every device gets the command once, with a
 * concurrency bound and a result each; devices offline at the start get it when they come back;
 * an interrupted job resumed without running any device twice (counted in each device's own audit
 * log); the rest of a rollout aborted past --max-failures. The CLI runs in this process (main()),
 * talking to Prosody over its real admin session.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createAccountsAsAdmin } from "../../fleet-sim/accounts.js";
import { FLEET_TEMPLATE_DEFAULTS, fleetDeviceId } from "../../fleet-sim/device-config.js";
import { Fleet } from "../../fleet-sim/fleet.js";
import { Element } from "ltx";
import { main } from "../../provisioning/cli.js";
import type { Job } from "../../provisioning/jobs/job.js";
import { JobStore } from "../../provisioning/jobs/job-store.js";
import type { InventoryRow } from "../../provisioning/usecases/inventory.js";
import { addProvisioned, FleetStore, markEnrolled } from "../../provisioning/store.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { sleep, testLogger, waitFor } from "../xmpp/helpers.js";

const N = 200;
const DEVICE_PASS = "exec-device-pw";
const ADMIN_PASS = "exec-admin-pw";

describe(`iot-fleet exec on ${N} simulated devices against Prosody`, () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let fleet: Fleet;
  const ids = Array.from({ length: N }, (_, i) => fleetDeviceId("x-", i, N));
  let env: NodeJS.ProcessEnv;

  /** Runs iot-fleet in this process; `interrupt` gets the Ctrl-C handler exec installs. */
  async function fleetCli(args: string[], interrupt?: (fn: () => void) => void) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      env,
      onInterrupt: (fn) => {
        interrupt?.(fn);
        return () => {};
      },
    });
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  /** Completed runs of `node` with these params in a device's audit log. */
  function audited(id: string, node: string, match: (params: Record<string, unknown>) => boolean): number {
    const file = join(dir.path, "fleet", id, "audit.jsonl");
    if (!existsSync(file)) return 0;
    return readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { node: string; outcome: string; params?: Record<string, unknown> })
      .filter((r) => r.node === node && r.outcome === "completed" && match(r.params ?? {})).length;
  }

  before(async () => {
    dir = makeTempDir("iot-fleet-exec-");
    prosody = await startProsody({
      admins: ["admin@iot.test"],
      pubsubAdmins: ids.map((id) => `${id}@iot.test`),
    });
    await prosody.register("admin", ADMIN_PASS);
    await createAccountsAsAdmin(
      { jid: "admin@iot.test", password: ADMIN_PASS, server: `127.0.0.1:${prosody.port}`, caFile: prosody.caFile! },
      { jids: ids.map((id) => `${id}@iot.test`), password: () => DEVICE_PASS },
    );
    fleet = new Fleet({
      template: {
        ...FLEET_TEMPLATE_DEFAULTS,
        servers: [`127.0.0.1:${prosody.port}`],
        domain: "iot.test",
        caFile: prosody.caFile!,
        operators: ["admin@iot.test"],
        intervalMs: 30_000,
      },
      devices: N,
      idPrefix: "x-",
      dataRoot: join(dir.path, "fleet"),
      password: () => DEVICE_PASS,
      startPerSecond: 100,
      log: testLogger(),
    });
    await fleet.start();
    await fleet.waitOnline(90_000);
    // The fleet store the admin keeps: every simulated device, enrolled, tagged by its half.
    const home = join(dir.path, "home");
    const store = new FleetStore(join(home, "fleet.json"));
    await store.update((data) => {
      for (const [i, id] of ids.entries()) {
        addProvisioned(
          data,
          {
            id,
            jid: `${id}@iot.test`,
            credentialPath: "invite",
            bundleId: `b-${id}`,
            tags: { half: i < N / 2 ? "a" : "b" },
          },
          new Date(),
        );
        markEnrolled(data, id, new Date());
      }
    });
    const pw = join(dir.path, "admin.pw");
    writeFileSync(pw, ADMIN_PASS, { mode: 0o600 });
    env = {
      IOT_FLEET_HOME: home,
      IOT_FLEET_ADMIN_JID: "admin@iot.test",
      IOT_FLEET_ADMIN_PASSWORD_FILE: pw,
      IOT_FLEET_SERVER: `127.0.0.1:${prosody.port}`,
      IOT_FLEET_SERVER_CA_FILE: prosody.caFile!,
    };
  });

  after(async () => {
    await fleet?.stop();
    await prosody?.stop();
    dir?.remove();
  });

  it(`runs set-sampling on all ${N}, 16 at a time, one result per device, each device once`, async () => {
    const t0 = Date.now();
    const r = await fleetCli([
      "exec",
      "--all",
      "set-sampling",
      "channel=temperature",
      "intervalMs=31000",
      "--concurrency",
      "16",
      "--json",
    ]);
    const ms = Date.now() - t0;
    assert.equal(r.code, 0, r.err);
    const job = JSON.parse(r.out) as Job;
    assert.equal(job.state, "finished");
    assert.equal(job.devices.length, N);
    assert.deepEqual(new Set(job.devices.map((d) => d.status)), new Set(["completed"]));
    assert.match(job.devices[0]!.note ?? "", /sampling interval of temperature/);
    console.log(`# exec on ${N} devices, concurrency 16: ${ms} ms (${((ms / N) * 16).toFixed(0)} ms per command)`);
    await sleep(300); // audit lines are appended asynchronously
    for (const id of ids)
      assert.equal(
        audited(id, "set-sampling", (p) => p.intervalMs === 31000),
        1,
        `${id} ran it once`,
      );
    // The table a person reads, from the saved job.
    const shown = await fleetCli(["job", job.id]);
    assert.equal(shown.code, 0);
    assert.match(shown.out, new RegExp(`${ids[0]}\\s+completed\\s+Changed`));
    assert.match(shown.out, /finished: 200 completed/);
    const list = await fleetCli(["jobs"]);
    assert.match(list.out, new RegExp(`${job.id}.*set-sampling\\s+200\\s+finished\\s+200 completed`));
  });

  it("devices offline at the start get the command when they come back (--wait)", async () => {
    const away = ids.slice(0, 5);
    const here = ids.slice(5, 10);
    for (const id of away) await fleet.devices.find((d) => d.id === id)!.agent.session.stop();
    const running = fleetCli([
      "exec",
      ...[...away, ...here].flatMap((id) => ["--device", id]),
      "set-sampling",
      "channel=humidity",
      "intervalMs=32000",
      "--wait",
      "1m",
      "--poll",
      "1",
      "--json",
    ]);
    await sleep(2500);
    for (const id of away) fleet.devices.find((d) => d.id === id)!.agent.session.start();
    const r = await running;
    assert.equal(r.code, 0, r.err);
    const job = JSON.parse(r.out) as Job;
    assert.deepEqual(
      job.devices.map((d) => [d.id, d.status]),
      [...away, ...here].sort().map((id) => [id, "completed"]),
    );
    // The ones that were away ran it after they came back, the others at once.
    const started = (id: string) => Date.parse(job.devices.find((d) => d.id === id)!.startedAt!);
    assert.ok(Math.min(...away.map(started)) > Math.max(...here.map(started)));
  });

  it("an interrupted job, resumed, runs every device exactly once", async () => {
    let interrupt: (() => void) | undefined;
    const first = fleetCli(
      [
        "exec",
        "--tag",
        "half=b",
        "set-sampling",
        "channel=temperature",
        "intervalMs=33000",
        "--concurrency",
        "2",
        "--json",
      ],
      (fn) => {
        interrupt = fn;
      },
    );
    const home = env.IOT_FLEET_HOME!;
    // Interrupt once some devices have their result saved.
    await waitFor(
      () => {
        const newest = new JobStore(home).list()[0];
        return (newest?.devices.filter((d) => d.status === "completed").length ?? 0) >= 10;
      },
      30_000,
      "ten results saved",
    );
    interrupt!();
    const r1 = await first;
    assert.equal(r1.code, 7, "not every device completed");
    const job1 = JSON.parse(r1.out) as Job;
    assert.equal(job1.state, "interrupted");
    const done1 = job1.devices.filter((d) => d.status === "completed").length;
    assert.ok(done1 >= 10 && done1 < N / 2, `${done1} completed before the interruption`);
    assert.match(r1.err, new RegExp(`iot-fleet job ${job1.id} --resume`));
    const r2 = await fleetCli(["job", job1.id, "--resume", "--json"]);
    assert.equal(r2.code, 0, r2.err);
    const job2 = JSON.parse(r2.out) as Job;
    assert.equal(job2.state, "finished");
    assert.equal(job2.devices.filter((d) => d.status === "completed").length, N / 2);
    await sleep(300);
    for (const id of ids.slice(N / 2))
      assert.equal(
        audited(id, "set-sampling", (p) => p.intervalMs === 33000),
        1,
        `${id} ran it exactly once`,
      );
    assert.equal((await fleetCli(["job", job1.id, "--resume"])).code, 2, "a finished job has nothing left");
  });

  it("past --max-failures the rest is aborted; each failed device's note is kept", async () => {
    const r = await fleetCli([
      "exec",
      "--all",
      "set-sampling",
      "channel=no-such-channel",
      "intervalMs=5000",
      "--max-failures",
      "3",
      "--concurrency",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 7);
    const job = JSON.parse(r.out) as Job;
    assert.equal(job.state, "aborted");
    const errors = job.devices.filter((d) => d.status === "error");
    const aborted = job.devices.filter((d) => d.status === "aborted");
    assert.ok(errors.length >= 4 && errors.length <= 5, `errors ${errors.length}`);
    assert.equal(errors.length + aborted.length, N);
    assert.match(errors[0]!.note ?? "", /no-such-channel|not one of|choice|option/i);
    assert.match(job.abortReason ?? "", /more than --max-failures 3/);
  });
  it("inventory: online and offline from the server, versions and telemetry from each status item", async () => {
    const away = ids.slice(20, 23);
    for (const id of away) await fleet.devices.find((d) => d.id === id)!.agent.session.stop();
    try {
      const sample = fleet.devices[0]!.agent.telemetry!.deviceStatus();
      const r = await fleetCli(["inventory", "--pubsub", "pubsub.iot.test", "--json"]);
      assert.equal(r.code, 0, r.err);
      const rows = JSON.parse(r.out) as InventoryRow[];
      assert.equal(rows.length, N);
      assert.deepEqual(
        rows.filter((x) => !x.online).map((x) => x.id),
        away,
      );
      for (const row of rows) {
        assert.equal(row.status?.agentVersion, sample.agentVersion, `${row.id}: ${row.statusProblem}`);
        assert.equal(row.status?.firmwareVersion, sample.firmwareVersion);
        assert.equal(row.status?.channels.length, 2);
        assert.equal(typeof row.status?.spooledReadings, "number");
        assert.equal(row.status?.device, row.id);
      }
      const table = await fleetCli(["inventory", "--pubsub", "pubsub.iot.test", "--offline", "--tag", "half=a"]);
      assert.equal(table.code, 0, table.err);
      for (const id of away)
        assert.match(
          table.out,
          new RegExp(`${id}\\s+no\\s+\\S+ (min|s) ago\\s+${sample.agentVersion.replace(/\./g, "\\.")}`),
        );
      assert.match(table.out, /3 device\(s\) of 100 selected: 0 online, 3 offline/);
      const none = await fleetCli(["inventory", "--pubsub", "pubsub.iot.test", "--agent-below", "0.0.1", "--json"]);
      assert.deepEqual(JSON.parse(none.out), []);
    } finally {
      for (const id of away) fleet.devices.find((d) => d.id === id)!.agent.session.start();
    }
  });
  it("watch: live readings of a group (JSON lines), each device and channel, then unsubscribed", async () => {
    await fleet.waitOnline(30_000);
    // The fleet's own tool speeds half a up for the watch: temperature every 500 ms.
    const fast = await fleetCli(["exec", "--tag", "half=a", "set-sampling", "channel=temperature", "intervalMs=500"]);
    assert.equal(fast.code, 0, fast.err);
    const r = await fleetCli(["watch", "--tag", "half=a", "--pubsub", "pubsub.iot.test", "--json", "--seconds", "8"]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out
      .split("\n")
      .filter(Boolean)
      .map(
        (l) =>
          JSON.parse(l) as {
            device: string;
            channel: string;
            seq: number;
            value?: string;
            unit?: string;
            quality: string;
          },
      );
    const devices = new Set(lines.filter((l) => l.channel === "temperature").map((l) => l.device));
    assert.equal(devices.size, N / 2, `temperature from every device of half a (${devices.size})`);
    assert.ok(
      lines.every((l) => ids.slice(0, N / 2).includes(l.device)),
      "nothing from half b",
    );
    assert.ok(lines.some((l) => l.unit === "°C" && l.quality === "good" && l.value !== undefined));
    const seen = new Set(lines.map((l) => `${l.device}/${l.channel}/${l.seq}`));
    assert.equal(seen.size, lines.length, "no reading shown twice");
    assert.match(r.err, /watched 100 of 100 device\(s\)/);
    // Unsubscribed. The node's owner, the device itself, lists every subscription of its node,
    // full JIDs included: the watch's one while it runs, none after.
    const owner = fleet.devices.find((d) => d.id === ids[0])!.agent.session;
    const subscribers = async (id: string) => {
      const answer = await owner.request(
        new Element("iq", { type: "get", to: "pubsub.iot.test" })
          .c("pubsub", { xmlns: "http://jabber.org/protocol/pubsub#owner" })
          .c("subscriptions", { node: `devices/${id}/telemetry` })
          .root(),
      );
      return (answer.getChild("pubsub")?.getChild("subscriptions")?.getChildren("subscription") ?? [])
        .map((x) => String(x.attrs.jid))
        .filter((jid) => jid.startsWith("admin@iot.test"));
    };
    assert.deepEqual(await subscribers(ids[0]!), [], "none left by the first watch");
    const second = fleetCli(["watch", "--device", ids[0]!, "--pubsub", "pubsub.iot.test", "--json", "--seconds", "6"]);
    // While it runs (its login and subscription take a moment): its own subscription is listed.
    let during: string[] = [];
    for (let i = 0; i < 25 && during.length === 0; i++) {
      await sleep(200);
      during = await subscribers(ids[0]!);
    }
    assert.equal(during.length, 1, `the watch's own subscription: ${during.join(", ")}`);
    assert.match(during[0]!, /^admin@iot\.test\/.+/, "a full JID");
    const again = await second;
    assert.equal(again.code, 0, again.err);
    assert.ok(again.out.split("\n").filter(Boolean).length >= 1, "readings in the second watch");
    assert.deepEqual(await subscribers(ids[0]!), [], "none left by the second watch");
  });
});
