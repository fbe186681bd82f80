import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProvisioningError } from "../errors.js";
import { countStatuses, type Job, type JobSpec, parseAmount } from "./job.js";
import { type DevicePort, JobRunner } from "./runner.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function makeJob(n: number, spec: Partial<JobSpec> = {}): Job {
  return {
    version: 1,
    id: "j-20261130-120000-abcd",
    createdAt: "2026-11-30T12:00:00.000Z",
    updatedAt: "2026-11-30T12:00:00.000Z",
    spec: {
      kind: "command",
      node: "set-sampling",
      fields: {},
      selector: { all: true },
      concurrency: 4,
      deviceTimeoutMs: 1000,
      ...spec,
    },
    state: "running",
    devices: Array.from({ length: n }, (_, i) => {
      const id = `d${String(i).padStart(3, "0")}`;
      return { id, jid: `${id}@iot.test/agent`, status: "pending" as const };
    }),
  };
}

/** A fleet in memory: who is online, how each device answers, and what it was asked. */
class FakeFleet implements DevicePort {
  readonly offline = new Set<string>();
  readonly runs = new Map<string, number>();
  inFlight = 0;
  maxInFlight = 0;
  started: string[] = [];
  /** Per device id: what it does when asked. */
  behaviour: (id: string) => "ok" | "fail" | "hang" = () => "ok";
  /** The job file as last saved, to check "running" is written before the command goes out. */
  saved: Job | undefined;
  onlineCalls = 0;
  readonly ended = new Map<string, number>();

  async form(): Promise<Record<string, string[]>> {
    return {};
  }
  async statusItem(): Promise<undefined> {
    return undefined;
  }

  async watch(): Promise<{ subscribed: number; stop(): Promise<void> }> {
    return { subscribed: 0, stop: async () => {} };
  }

  async online(): Promise<Set<string>> {
    this.onlineCalls++;
    const all = [...Array(1000).keys()].map((i) => `d${String(i).padStart(3, "0")}`);
    return new Set(all.filter((id) => !this.offline.has(id)).map((id) => `${id}@iot.test`));
  }

  async execute(fullJid: string): Promise<string[]> {
    const id = fullJid.split("@")[0]!;
    const inFile = this.saved?.devices.find((d) => d.id === id)?.status;
    assert.equal(inFile, "running", `${id} saved as running before its command was sent`);
    this.runs.set(id, (this.runs.get(id) ?? 0) + 1);
    this.started.push(id);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await sleep(5);
      const b = this.behaviour(id);
      if (b === "hang") await sleep(10_000);
      if (b === "fail")
        throw new ProvisioningError("adhoc_failed", "set-sampling failed", { note: "Channel temp0 is not known" });
      return [`Changed on ${id}`];
    } finally {
      this.inFlight--;
      this.ended.set(id, Date.now());
    }
  }
}

function runner(job: Job, fleet: FakeFleet, extra: { pollMs?: number; needsOnline?: boolean } = {}) {
  return new JobRunner(job, {
    online: () => fleet.online(),
    action: { needsOnline: extra.needsOnline ?? true, run: (d) => fleet.execute(d.jid) },
    save: (j) => {
      fleet.saved = JSON.parse(JSON.stringify(j));
    },
    pollMs: extra.pollMs ?? 20,
    resultSaveMs: 5,
  });
}

describe("JobRunner", () => {
  it("runs every device once, never more than `concurrency` at a time, and saves each result", async () => {
    const fleet = new FakeFleet();
    const job = await runner(makeJob(50, { concurrency: 4 }), fleet).run();
    assert.equal(job.state, "finished");
    assert.equal(countStatuses(job.devices).completed, 50);
    assert.ok(fleet.maxInFlight <= 4 && fleet.maxInFlight >= 2, `max in flight ${fleet.maxInFlight}`);
    assert.ok([...fleet.runs.values()].every((n) => n === 1));
    assert.equal(job.devices[7]!.note, "Changed on d007");
    assert.equal(fleet.saved?.state, "finished");
    assert.equal(countStatuses(fleet.saved!.devices).completed, 50, "the file has every result");
  });

  it("offline devices: reported at once without a wait; with one, sent the command when they come online", async () => {
    const fleet = new FakeFleet();
    for (const id of ["d001", "d003"]) fleet.offline.add(id);
    let job = await runner(makeJob(5), fleet).run();
    assert.deepEqual(
      job.devices.map((d) => d.status),
      ["completed", "offline", "completed", "offline", "completed"],
    );
    assert.equal(fleet.runs.has("d001"), false);

    const waitUntil = new Date(Date.now() + 600).toISOString();
    const r = runner(makeJob(5, { waitUntil }), fleet, { pollMs: 20 });
    const done = r.run();
    await sleep(80);
    assert.equal(r.job.devices[1]!.status, "waiting");
    fleet.offline.delete("d001");
    job = await Promise.race([done, sleep(3000).then(() => assert.fail("d003 is still offline: the wait must end"))]);
    assert.equal(job.devices[1]!.status, "completed", "came back in time");
    assert.equal(job.devices[3]!.status, "offline");
    assert.match(job.devices[3]!.note ?? "", /not online before/);
    assert.equal(job.state, "finished");
  });

  it("aborts the devices not yet started past --max-failures; the ones in flight finish", async () => {
    const fleet = new FakeFleet();
    fleet.behaviour = () => "fail";
    const job = await runner(makeJob(40, { concurrency: 2, maxFailures: { count: 3 } }), fleet).run();
    const c = countStatuses(job.devices);
    assert.equal(job.state, "aborted");
    assert.match(job.abortReason ?? "", /4 devices failed, more than --max-failures 3/);
    assert.ok(c.error >= 4 && c.error <= 5, `errors ${c.error}`);
    assert.equal(c.aborted, 40 - c.error);
    assert.equal(job.devices[0]!.note, "Channel temp0 is not known", "the device's note");
    assert.equal(fleet.runs.size, c.error, "no aborted device was sent anything");
    assert.deepEqual(parseAmount("10%"), { percent: 10 });
    assert.deepEqual(parseAmount("3"), { count: 3 });
    assert.equal(parseAmount("101%"), undefined);
    assert.equal(parseAmount("x"), undefined);
  });

  it("an action that needs no device online (revoke) runs on offline devices too, without asking who is online", async () => {
    const fleet = new FakeFleet();
    fleet.offline.add("d001");
    const job = await runner(makeJob(3, { kind: "revoke" }), fleet, { needsOnline: false }).run();
    assert.deepEqual(
      job.devices.map((d) => d.status),
      ["completed", "completed", "completed"],
    );
    assert.equal(fleet.onlineCalls, 0);
  });

  it("a device that does not answer within deviceTimeoutMs is timed out; the others go on", async () => {
    const fleet = new FakeFleet();
    fleet.behaviour = (id) => (id === "d002" ? "hang" : "ok");
    const job = await runner(makeJob(6, { deviceTimeoutMs: 100 }), fleet).run();
    assert.equal(job.devices[2]!.status, "timed-out");
    assert.match(job.devices[2]!.note ?? "", /no answer within 100 ms/);
    assert.equal(countStatuses(job.devices).completed, 5);
  });

  it("stopped, then resumed: no device runs twice; one in flight at a crash is 'unknown', not re-sent", async () => {
    const fleet = new FakeFleet();
    const first = runner(makeJob(30, { concurrency: 3 }), fleet);
    const done = first.run();
    await sleep(30);
    first.stop();
    let job = await done;
    assert.equal(job.state, "interrupted");
    const ranBefore = fleet.runs.size;
    assert.ok(ranBefore > 0 && ranBefore < 30, `ran ${ranBefore}`);
    // A crash (kill -9) right after a dispatch was written: the file says running.
    const crashed = JSON.parse(JSON.stringify(job)) as Job;
    const victim = crashed.devices.find((d) => d.status === "pending")!;
    victim.status = "running";
    fleet.runs.set(victim.id, 1); // it did get the command before the crash
    job = await runner(crashed, fleet).run();
    assert.equal(job.state, "finished");
    assert.equal(job.devices.find((d) => d.id === victim.id)!.status, "unknown");
    assert.equal(fleet.runs.size, 30);
    assert.ok(
      [...fleet.runs.entries()].every(([, n]) => n === 1),
      "every device ran exactly once",
    );
    await assert.rejects(runner(job, fleet).run(), /finished: nothing left to run/);
  });

  it("--batch: a wave starts only when every device of the one before has finished", async () => {
    const fleet = new FakeFleet();
    fleet.offline.add("d004"); // waiting devices do not hold a wave back
    const order: Array<{ id: string; wave: number; at: number }> = [];
    const job = makeJob(25, {
      concurrency: 8,
      batch: { count: 10 },
      waitUntil: new Date(Date.now() + 300).toISOString(),
    });
    const r = new JobRunner(job, {
      online: () => fleet.online(),
      action: {
        needsOnline: true,
        run: async ({ id, jid }) => {
          order.push({ id, wave: Math.floor(Number(id.slice(1)) / 10), at: Date.now() });
          return fleet.execute(jid);
        },
      },
      save: (j) => {
        fleet.saved = JSON.parse(JSON.stringify(j));
      },
      pollMs: 50,
      resultSaveMs: 5,
    });
    await r.run();
    for (const later of order)
      for (const earlier of order)
        if (earlier.wave < later.wave)
          assert.ok(
            fleet.ended.get(earlier.id)! <= later.at,
            `${earlier.id} (wave ${earlier.wave}) ended before ${later.id} started`,
          );
    assert.ok(new Set(order.map((o) => o.wave)).size === 3);
    assert.equal(countStatuses(job.devices).completed, 24);
    assert.equal(job.devices[4]!.status, "offline");
  });
});
