import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { isProvisioningError } from "./errors.js";
import { acquireLock } from "./fsutil.js";
import { addProvisioned, FleetStore, getDevice, markEnrolled, markRevoked, recordSeen } from "./store.js";

const root = mkdtempSync(join(tmpdir(), "prov-store-"));
after(() => rmSync(root, { recursive: true, force: true }));
const NOW = new Date("2026-01-10T12:00:00Z");

describe("fleet store", () => {
  it("starts empty, writes 0600 in a 0700 dir, and leaves no temp files", async () => {
    const store = new FleetStore(join(root, "a", "fleet.json"));
    assert.deepEqual(store.read().devices, {});
    await store.update((d) =>
      addProvisioned(d, { id: "d1", jid: "d1@iot.test", credentialPath: "invite", bundleId: "b1" }, NOW),
    );
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, "a")).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(root, "a")), ["fleet.json"]);
    assert.equal(store.read().devices.d1?.state, "provisioned");
  });

  it("tracks the lifecycle and the revocation list", async () => {
    const store = new FleetStore(join(root, "b", "fleet.json"));
    await store.update((d) => {
      addProvisioned(
        d,
        { id: "d1", jid: "d1@iot.test", credentialPath: "admin-password-sealed", bundleId: "b1", certSerial: "0AB" },
        NOW,
      );
      markEnrolled(d, "d1", NOW);
    });
    await assert.rejects(
      store.update((d) =>
        addProvisioned(d, { id: "d1", jid: "d1@iot.test", credentialPath: "invite", bundleId: "b2" }, NOW),
      ),
      (e: unknown) => isProvisioningError(e, "device_exists"),
    );
    await store.update((d) => markRevoked(d, "d1", NOW));
    const data = store.read();
    assert.equal(data.devices.d1?.state, "revoked");
    assert.deepEqual(data.revocations, { sequence: 1, bundleIds: ["b1"], certSerials: ["0ab"], jids: ["d1@iot.test"] });
    await assert.rejects(
      store.update((d) =>
        addProvisioned(d, { id: "d1", jid: "d1@iot.test", credentialPath: "invite", bundleId: "b3" }, NOW),
      ),
      (e: unknown) => isProvisioningError(e, "device_revoked"),
    );
    assert.throws(
      () => getDevice(data, "nope"),
      (e: unknown) => isProvisioningError(e, "device_unknown"),
    );
  });

  it("keeps the old file when the transaction throws", async () => {
    const store = new FleetStore(join(root, "c", "fleet.json"));
    await store.update((d) =>
      addProvisioned(d, { id: "d1", jid: "d1@iot.test", credentialPath: "invite", bundleId: "b1" }, NOW),
    );
    await assert.rejects(
      store.update((d) => {
        d.devices = {};
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.ok(store.read().devices.d1);
  });

  it("marks provisioned devices seen online as enrolled", () => {
    const store = new FleetStore(join(root, "nothing.json"));
    const d = store.read();
    addProvisioned(d, { id: "d1", jid: "d1@iot.test", credentialPath: "invite", bundleId: "b1" }, NOW);
    assert.deepEqual(recordSeen(d, ["D1@iot.test/agent", "x@iot.test/a"], NOW), ["d1"]);
    assert.equal(d.devices.d1?.state, "enrolled");
  });

  it("refuses a corrupt store with store_corrupt", () => {
    const file = join(root, "bad.json");
    for (const text of ["{nope", "[]", '{"version":9}', '{"version":1,"devices":{"x":{"id":"y"}},"revocations":{}}']) {
      writeFileSync(file, text);
      assert.throws(
        () => new FleetStore(file).read(),
        (e: unknown) => isProvisioningError(e, "store_corrupt"),
      );
    }
  });

  it("locks out a concurrent writer and takes over a dead holder's lock", async () => {
    const file = join(root, "d", "fleet.json");
    const store = new FleetStore(file, 100);
    await store.update(() => undefined);
    const lock = await acquireLock(`${file}.lock`);
    await assert.rejects(
      store.update(() => undefined),
      (e: unknown) => isProvisioningError(e, "store_locked"),
    );
    lock.release();
    // Two overlapping transactions: the second waits for the first, and neither change is lost.
    const patient = new FleetStore(file, 2000);
    const slow = patient.update(async (d) => {
      await new Promise((r) => setTimeout(r, 150));
      addProvisioned(d, { id: "a", jid: "a@iot.test", credentialPath: "invite", bundleId: "ba" }, NOW);
    });
    const fast = patient.update((d) =>
      addProvisioned(d, { id: "b", jid: "b@iot.test", credentialPath: "invite", bundleId: "bb" }, NOW),
    );
    await Promise.all([slow, fast]);
    assert.deepEqual(Object.keys(patient.read().devices).sort(), ["a", "b"]);
    // A lock file naming a process that no longer exists is stale.
    const child = spawn(process.execPath, ["-e", ""]);
    const deadPid = child.pid!;
    await new Promise((r) => child.on("exit", r));
    writeFileSync(`${file}.lock`, `${deadPid}\n`);
    await store.update(() => undefined);
  });
});
