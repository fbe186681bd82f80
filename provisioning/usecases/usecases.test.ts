import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type BundlePayload, verifyBundle } from "../bundle.js";
import { initCa, isIssuedBy, loadCa } from "../ca.js";
import { createCsr, generateDeviceKey, openSealed } from "../device-key.js";
import { isProvisioningError, ProvisioningError, type ProvisioningErrorCode } from "../errors.js";
import { verifyRevocationList } from "../revocation.js";
import { FleetStore } from "../store.js";
import { listDevices } from "./list.js";
import { type MemoryAccountsOptions, MemoryAccounts } from "./memory-accounts.js";
import { type ProvisionRequest, provisionDevice } from "./provision.js";
import type { RevocationOutput } from "./revocations.js";
import { revokeDevice } from "./revoke.js";
import { resetDevicePassword, rotateDevice } from "./rotate.js";
import type { FleetServices } from "./services.js";

const root = mkdtempSync(join(tmpdir(), "prov-usecases-"));
after(() => rmSync(root, { recursive: true, force: true }));

const NOW = new Date("2026-01-10T12:00:00Z");
const DAY = 86_400_000;
initCa({ dir: join(root, "ca"), subject: { commonName: "Test fleet CA" }, keyBits: 2048, now: new Date("2026-01-01") });
const ca = loadCa({ dir: join(root, "ca") });
const deviceKey = generateDeviceKey();

let fleets = 0;
/** A fleet home of its own, a server of its own. */
function fleet(serverOpts: MemoryAccountsOptions = {}) {
  const dir = join(root, `fleet-${++fleets}`);
  mkdirSync(dir);
  const server = new MemoryAccounts(serverOpts);
  const progress: string[] = [];
  const services: FleetServices = {
    store: new FleetStore(join(dir, "fleet.json")),
    now: () => NOW,
    progress: (l) => progress.push(l),
    connect: server.connect,
  };
  const revocations: RevocationOutput = { loadCa: () => ca, file: join(dir, "revocations.json") };
  const request = (over: Partial<ProvisionRequest> = {}): ProvisionRequest => ({
    id: "dev-1",
    jid: "dev-1@iot.test",
    credential: { kind: "invite" },
    server: { host: "xmpp.iot.test", port: 5222 },
    operators: [],
    adminJid: "admin@iot.test/iot-fleet",
    validForMs: 7 * DAY,
    force: false,
    bundleFile: join(dir, `${over.id ?? "dev-1"}.bundle`),
    ...over,
  });
  const device = (id = "dev-1") => services.store.read().devices[id];
  return { dir, server, progress, services, revocations, request, device };
}

function payload(file: string): BundlePayload {
  return verifyBundle(JSON.parse(readFileSync(file, "utf8")), { caCertPem: ca.certPem }, NOW);
}

async function refused(code: ProvisioningErrorCode, p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isProvisioningError(err), `expected ProvisioningError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

function csrFor(jid: string): string {
  return createCsr(deviceKey.privateKeyPem, jid);
}

describe("provisionDevice", () => {
  it("invite path: one connection for one invite, which the device can redeem; the admin may only rotate", async () => {
    const f = fleet();
    const req = f.request({ operators: ["ops@iot.test"], pubsubService: "pubsub.iot.test", resource: "gw" });
    const r = await provisionDevice(req, ca, f.services);
    assert.deepEqual(f.server.calls, ["createInvite iot.test"]);
    assert.equal(f.server.connections, 1);
    assert.equal(f.server.closed, 1);
    const p = payload(req.bundleFile);
    assert.equal(p.credential.type, "invite");
    assert.equal(p.bundleId, r.bundleId);
    assert.deepEqual(p.operators, ["ops@iot.test"]);
    assert.deepEqual(p.fleetAdmins, ["admin@iot.test"], "bare JID, without the admin's resource");
    assert.deepEqual(p.pubsub, { service: "pubsub.iot.test" });
    assert.equal(r.credentialPath, "invite");
    assert.equal(r.notAfter, new Date(NOW.getTime() + 7 * DAY).toISOString());
    assert.deepEqual(
      { state: f.device()?.state, resource: f.device()?.resource, bundleIds: f.device()?.bundleIds },
      { state: "provisioned", resource: "gw", bundleIds: [r.bundleId] },
    );
    if (p.credential.type !== "invite") return;
    f.server.redeemInvite(p.credential.token, "dev-1@iot.test", "device-made");
    assert.equal(f.server.accounts.get("dev-1@iot.test"), "device-made");
  });

  it("an invite token from elsewhere needs no server", async () => {
    const f = fleet();
    const req = f.request({ credential: { kind: "invite-token", token: "T1" } });
    await provisionDevice(req, ca, f.services);
    assert.equal(f.server.connections, 0);
    assert.deepEqual(payload(req.bundleFile).credential, { type: "invite", token: "T1" });
  });

  it("notes an invite that expires before the bundle", async () => {
    const f = fleet({ inviteExpires: new Date(NOW.getTime() + DAY).toISOString() });
    await provisionDevice(f.request(), ca, f.services);
    assert.ok(
      f.progress.some((l) => /invite expires at .*before the bundle does/.test(l)),
      f.progress.join("\n"),
    );
  });

  it("admin path without a CSR: the server's password in clear, with a warning", async () => {
    const f = fleet();
    const req = f.request({ credential: { kind: "admin-password" } });
    const r = await provisionDevice(req, ca, f.services);
    assert.deepEqual(f.server.calls, ["addUser dev-1@iot.test"]);
    const p = payload(req.bundleFile);
    assert.deepEqual(p.credential, { type: "password", password: f.server.accounts.get("dev-1@iot.test") });
    assert.equal(r.credentialPath, "admin-password");
    assert.ok(f.progress.some((l) => l.includes("in clear")));
    assert.ok(!f.progress.join("\n").includes(f.server.accounts.get("dev-1@iot.test")!), "password in progress");
  });

  it("admin path with a CSR: password sealed to the device key, client certificate issued and recorded", async () => {
    const f = fleet();
    const req = f.request({ credential: { kind: "admin-password" }, csrPem: csrFor("dev-1@iot.test"), certDays: 30 });
    const r = await provisionDevice(req, ca, f.services);
    const p = payload(req.bundleFile);
    assert.equal(r.credentialPath, "admin-password-sealed");
    assert.equal(p.credential.type, "password-sealed");
    if (p.credential.type !== "password-sealed") return;
    assert.equal(openSealed(deviceKey.privateKeyPem, p.credential), f.server.accounts.get("dev-1@iot.test"));
    assert.ok(p.clientCert && isIssuedBy(p.clientCert.certPem, ca.certPem));
    assert.deepEqual(f.device()?.certSerials, [p.clientCert?.serial]);
  });

  it("an admin who is also an operator is not added again as a fleet admin", async () => {
    const f = fleet();
    const req = f.request({ operators: ["admin@iot.test"], credential: { kind: "invite-token", token: "T" } });
    await provisionDevice(req, ca, f.services);
    const p = payload(req.bundleFile);
    assert.deepEqual(p.operators, ["admin@iot.test"]);
    assert.equal(p.fleetAdmins, undefined);
  });

  it("refuses before the server is asked: revoked, enrolled without force, a bad CSR", async () => {
    const f = fleet();
    await provisionDevice(f.request({ credential: { kind: "invite-token", token: "T" } }), ca, f.services);
    await f.services.store.update((d) => {
      d.devices["dev-1"]!.state = "enrolled";
    });
    await refused("device_exists", provisionDevice(f.request({ bundleFile: join(f.dir, "x") }), ca, f.services));
    await refused(
      "csr_invalid",
      provisionDevice(
        f.request({ id: "dev-2", csrPem: "garbage", credential: { kind: "admin-password" } }),
        ca,
        f.services,
      ),
    );
    await revokeDevice({ id: "dev-1", disable: false, localOnly: true }, f.services, f.revocations);
    await refused("device_revoked", provisionDevice(f.request({ force: true }), ca, f.services));
    assert.equal(f.server.connections, 0);
    assert.ok(!existsSync(join(f.dir, "x")) && !existsSync(join(f.dir, "dev-2.bundle")), "bundle written");
  });

  it("--force re-provisions an enrolled device with a second bundle", async () => {
    const f = fleet();
    const first = await provisionDevice(
      f.request({ credential: { kind: "invite-token", token: "T" } }),
      ca,
      f.services,
    );
    await f.services.store.update((d) => {
      d.devices["dev-1"]!.state = "enrolled";
    });
    const second = await provisionDevice(f.request({ force: true }), ca, f.services);
    assert.equal(f.device()?.state, "provisioned");
    assert.deepEqual(f.device()?.bundleIds, [first.bundleId, second.bundleId]);
  });

  it("a refused account creation writes no bundle and records nothing", async () => {
    const f = fleet();
    f.server.accounts.set("dev-1@iot.test", "taken");
    const req = f.request({ credential: { kind: "admin-password" } });
    await refused("adhoc_failed", provisionDevice(req, ca, f.services));
    assert.equal(f.server.closed, 1, "connection closed after the failure");
    assert.ok(!existsSync(req.bundleFile));
    assert.equal(f.device(), undefined);
  });
});

describe("rotateDevice and resetDevicePassword", () => {
  async function provisioned(f: ReturnType<typeof fleet>, online: boolean) {
    await provisionDevice(f.request({ credential: { kind: "admin-password" }, resource: "agent" }), ca, f.services);
    if (online) f.server.online.add("dev-1@iot.test/agent");
    f.server.calls.length = 0;
    return f.server.accounts.get("dev-1@iot.test")!;
  }

  it("asks the device at its full JID and records the rotation", async () => {
    const f = fleet();
    const before = await provisioned(f, true);
    const r = await rotateDevice("dev-1", f.services);
    assert.deepEqual(f.server.calls, ["requestRotation dev-1@iot.test/agent"]);
    assert.deepEqual(r, { deviceId: "dev-1", note: "Password rotated" });
    assert.notEqual(f.server.accounts.get("dev-1@iot.test"), before);
    assert.equal(f.device()?.rotatedAt, NOW.toISOString());
  });

  it("an unreachable device fails typed and is not recorded as rotated", async () => {
    const f = fleet();
    await provisioned(f, false);
    await refused("adhoc_unsupported", rotateDevice("dev-1", f.services));
    assert.equal(f.device()?.rotatedAt, undefined);
  });

  it("unknown and revoked devices are refused without a connection", async () => {
    const f = fleet();
    await refused("device_unknown", rotateDevice("nobody", f.services));
    await provisioned(f, true);
    await revokeDevice({ id: "dev-1", disable: false, localOnly: true }, f.services, f.revocations);
    const connections = f.server.connections;
    await refused("device_revoked", rotateDevice("dev-1", f.services));
    const reset = { id: "dev-1", server: { host: "h", port: 1 }, validForMs: DAY, bundleFile: join(f.dir, "r") };
    await refused("device_revoked", resetDevicePassword(reset, ca, f.services));
    assert.equal(f.server.connections, connections);
  });

  it("admin reset: new server password sealed into a new bundle, sessions closed, store updated", async () => {
    const f = fleet();
    const before = await provisioned(f, true);
    const bundleFile = join(f.dir, "reset.bundle");
    const r = await resetDevicePassword(
      {
        id: "dev-1",
        server: { host: "xmpp.iot.test", port: 5222 },
        csrPem: csrFor("dev-1@iot.test"),
        adminJid: "admin@iot.test/x",
        validForMs: DAY,
        bundleFile,
      },
      ca,
      f.services,
    );
    assert.deepEqual(f.server.calls, ["setPassword dev-1@iot.test"]);
    const now = f.server.accounts.get("dev-1@iot.test")!;
    assert.notEqual(now, before);
    assert.equal(f.server.online.size, 0, "the device's session is closed");
    const p = payload(bundleFile);
    assert.equal(p.bundleId, r.bundleId);
    assert.deepEqual(p.fleetAdmins, ["admin@iot.test"]);
    if (p.credential.type !== "password-sealed") assert.fail(`credential ${p.credential.type}`);
    assert.equal(openSealed(deviceKey.privateKeyPem, p.credential), now);
    assert.equal(f.device()?.credentialPath, "admin-password-sealed");
    assert.equal(f.device()?.bundleIds.at(-1), r.bundleId);
  });

  it("admin reset with a bad CSR leaves the server's password alone", async () => {
    const f = fleet();
    const before = await provisioned(f, true);
    const reset = {
      id: "dev-1",
      server: { host: "h", port: 1 },
      csrPem: "garbage",
      validForMs: DAY,
      bundleFile: join(f.dir, "r"),
    };
    await refused("csr_invalid", resetDevicePassword(reset, ca, f.services));
    assert.deepEqual(f.server.calls, []);
    assert.equal(f.server.accounts.get("dev-1@iot.test"), before);
  });
});

describe("revokeDevice", () => {
  async function withDevice(f: ReturnType<typeof fleet>) {
    await provisionDevice(
      f.request({ credential: { kind: "admin-password" }, csrPem: csrFor("dev-1@iot.test") }),
      ca,
      f.services,
    );
    f.server.online.add("dev-1@iot.test/agent");
    f.server.calls.length = 0;
  }

  function list(f: ReturnType<typeof fleet>, file = f.revocations.file) {
    return verifyRevocationList(JSON.parse(readFileSync(file, "utf8")), { caCertPem: ca.certPem });
  }

  it("lists the device's bundles, certificate and JID, then ends its sessions and deletes the account", async () => {
    const f = fleet();
    await withDevice(f);
    const exportFile = join(f.dir, "export.json");
    const r = await revokeDevice({ id: "dev-1", disable: false, localOnly: false }, f.services, {
      ...f.revocations,
      exportFile,
    });
    assert.deepEqual(r, {
      deviceId: "dev-1",
      jid: "dev-1@iot.test",
      revocationFile: f.revocations.file,
      account: "deleted",
    });
    assert.deepEqual(f.server.calls, ["endSessions dev-1@iot.test", "deleteUser dev-1@iot.test"]);
    assert.equal(f.server.accounts.size, 0);
    assert.equal(f.server.online.size, 0);
    const d = f.device()!;
    assert.deepEqual(list(f), {
      issuedAt: NOW.toISOString(),
      sequence: 1,
      bundleIds: d.bundleIds,
      certSerials: d.certSerials,
      jids: ["dev-1@iot.test"],
    });
    assert.equal(readFileSync(exportFile, "utf8"), readFileSync(f.revocations.file, "utf8"));
  });

  it("re-running finds the account gone: 'already deleted', and the list does not grow", async () => {
    const f = fleet();
    await withDevice(f);
    await revokeDevice({ id: "dev-1", disable: false, localOnly: false }, f.services, f.revocations);
    const r = await revokeDevice({ id: "dev-1", disable: false, localOnly: false }, f.services, f.revocations);
    assert.equal(r.account, "already deleted");
    assert.equal(list(f).sequence, 1);
  });

  it("a first deletion that fails is an error, with the revocation already recorded", async () => {
    const f = fleet();
    await withDevice(f);
    f.server.accounts.clear();
    await refused(
      "adhoc_failed",
      revokeDevice({ id: "dev-1", disable: false, localOnly: false }, f.services, f.revocations),
    );
    assert.equal(f.device()?.state, "revoked");
    assert.deepEqual(list(f).jids, ["dev-1@iot.test"]);
  });

  it("records and signs the revocation before the server is reached", async () => {
    const f = fleet();
    await withDevice(f);
    const down: FleetServices = {
      ...f.services,
      connect: async () => {
        throw new ProvisioningError("xmpp_connect", "server down");
      },
    };
    await refused("xmpp_connect", revokeDevice({ id: "dev-1", disable: false, localOnly: false }, down, f.revocations));
    assert.equal(f.device()?.state, "revoked");
    assert.deepEqual(list(f).jids, ["dev-1@iot.test"]);
  });

  it("records the revocation even when the CA key cannot be opened", async () => {
    const f = fleet();
    await withDevice(f);
    const locked: RevocationOutput = {
      ...f.revocations,
      loadCa: () => {
        throw new ProvisioningError("ca_passphrase", "wrong passphrase");
      },
    };
    await refused("ca_passphrase", revokeDevice({ id: "dev-1", disable: false, localOnly: true }, f.services, locked));
    assert.equal(f.device()?.state, "revoked");
  });

  it("--local-only: no connection, the account stays", async () => {
    const f = fleet();
    await withDevice(f);
    const r = await revokeDevice({ id: "dev-1", disable: false, localOnly: true }, f.services, f.revocations);
    assert.equal(r.account, "untouched");
    assert.equal(f.server.connections, 1, "only the provisioning connection");
    assert.ok(f.server.accounts.has("dev-1@iot.test"));
  });

  it("--disable falls back to deletion where the server cannot disable, and disables where it can", async () => {
    const f = fleet();
    await withDevice(f);
    const r = await revokeDevice({ id: "dev-1", disable: true, localOnly: false }, f.services, f.revocations);
    assert.equal(r.account, "deleted");
    assert.deepEqual(f.server.calls, [
      "disableUser dev-1@iot.test",
      "endSessions dev-1@iot.test",
      "deleteUser dev-1@iot.test",
    ]);
    assert.ok(f.progress.includes("the server has no disable-user; deleting the account instead"));

    const g = fleet({ supportsDisable: true });
    await withDevice(g);
    const s = await revokeDevice({ id: "dev-1", disable: true, localOnly: false }, g.services, g.revocations);
    assert.equal(s.account, "disabled");
    assert.deepEqual(g.server.calls, ["disableUser dev-1@iot.test", "endSessions dev-1@iot.test"]);
    assert.ok(g.server.disabled.has("dev-1@iot.test") && g.server.accounts.has("dev-1@iot.test"));
  });

  it("an unknown device is refused before anything is written", async () => {
    const f = fleet();
    await refused(
      "device_unknown",
      revokeDevice({ id: "nobody", disable: false, localOnly: false }, f.services, f.revocations),
    );
    assert.ok(!existsSync(f.revocations.file));
  });
});

describe("listDevices", () => {
  it("sorted by id; --online asks each domain once and marks online devices enrolled", async () => {
    const f = fleet();
    for (const [id, jid] of [
      ["b", "b@iot.test"],
      ["a", "a@other.test"],
      ["c", "c@iot.test"],
    ] as const)
      await provisionDevice(f.request({ id, jid, credential: { kind: "invite-token", token: id } }), ca, f.services);
    let devices = await listDevices({ online: false }, f.services);
    assert.deepEqual(
      devices.map((d) => d.id),
      ["a", "b", "c"],
    );
    assert.equal(f.server.connections, 0);

    f.server.online.add("b@iot.test/agent");
    devices = await listDevices({ online: true }, f.services);
    assert.deepEqual(f.server.calls.toSorted(), ["onlineUsers iot.test", "onlineUsers other.test"]);
    assert.equal(f.server.connections, 1);
    assert.deepEqual(
      devices.map((d) => [d.id, d.state, d.lastSeen]),
      [
        ["a", "provisioned", undefined],
        ["b", "enrolled", NOW.toISOString()],
        ["c", "provisioned", undefined],
      ],
    );
  });
});
