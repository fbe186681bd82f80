/**
 * Fleet provisioning end to end against a real Prosody 0.12 (invites, admin_adhoc, register):
 * iot-fleet (CLI entry point, in process) as the admin, iot-agent enroll as the device, and the
 * agent's XmppSession as the running device.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import { loadConfig } from "../../agent/config/load.js";
import { XmppSession } from "../../xmpp/session.js";
import { main as fleet } from "../../provisioning/cli.js";
import { connectOnce } from "../../provisioning/device/connect-check.js";
import { enrollMain } from "../../provisioning/device/cli.js";
import { CredentialStore } from "../../provisioning/device/credentials.js";
import { rotationCommand } from "../../provisioning/device/rotation.js";
import { AdhocCommands } from "../../agent/commands/adhoc.js";
import { MemoryAuditSink } from "../../agent/commands/audit.js";
import { Authorizer } from "../../agent/commands/authorize.js";
import { CommandRegistry } from "../../agent/commands/registry.js";
import { isProvisioningError } from "../../provisioning/errors.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";

const ADMIN = "admin@iot.test";
const ADMIN_PASS = "admin-pass-123";

interface Captured {
  code: number;
  out: string;
  err: string;
}

describe("fleet provisioning against Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;
  let home: string;
  const env: NodeJS.ProcessEnv = {};

  async function runFleet(...args: string[]): Promise<Captured> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await fleet(args, { out: (s) => out.push(s), err: (s) => err.push(s), env }, { caKeyBits: 2048 });
    assert.ok(![...out, ...err].some((l) => l.includes(ADMIN_PASS)), "admin password printed");
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  async function runEnroll(...args: string[]): Promise<Captured> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await enrollMain(args, { out: (s) => out.push(s), err: (s) => err.push(s) }, { timeoutMs: 10_000 });
    assert.ok(![...out, ...err].some((l) => l.includes(ADMIN_PASS)), "admin password printed");
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  const server = () => [`--server`, `127.0.0.1:${prosody.port}`, "--ca-file", prosody.caFile!];

  before(async () => {
    prosody = await startProsody({ admins: [ADMIN] });
    await prosody.register("admin", ADMIN_PASS);
    dir = makeTempDir("iot-prov-");
    home = join(dir.path, "fleet");
    const pwFile = join(dir.path, "admin.pw");
    writeFileSync(pwFile, `${ADMIN_PASS}\n`, { mode: 0o600 });
    Object.assign(env, { IOT_FLEET_HOME: home, IOT_FLEET_ADMIN_JID: ADMIN, IOT_FLEET_ADMIN_PASSWORD_FILE: pwFile });
    const r = await runFleet("ca", "init", "--cn", "test fleet");
    assert.equal(r.code, 0, r.err);
  });

  after(async () => {
    await prosody?.stop();
    dir?.remove();
  });

  function devicePaths(name: string) {
    const base = join(dir.path, name);
    return {
      base,
      config: join(base, "etc", "agent.yaml"),
      data: join(base, "data"),
      bundle: join(dir.path, `${name}.bundle.json`),
    };
  }

  /**
   * The enrolled device online with its config: its session, and rotate-credentials wired the way
   * agent/main.ts is expected to (one more command in the registry, authorised by the operator
   * rules enrol wrote: the admin may run only this command).
   */
  async function runDevice(configFile: string, credentials: CredentialStore) {
    const loaded = loadConfig(configFile, {});
    const session = new XmppSession({ config: loaded.config.xmpp, password: loaded.password });
    const offline: string[] = [];
    session.on("offline", (i) => offline.push(i.reason));
    const online = new Promise((res) => session.once("online", res));
    session.start();
    await online;
    const audit = new MemoryAuditSink();
    const adhoc = new AdhocCommands({
      registry: new CommandRegistry().register(rotationCommand({ session, credentials })),
      authorizer: new Authorizer(loaded.config.operators),
      audit,
      ownJid: () => session.jid,
    });
    adhoc.start(session);
    return { session, offline, audit, stop: () => adhoc.stop() };
  }

  async function publish(session: XmppSession, n: number): Promise<void> {
    const iq = new Element("iq", { type: "set" })
      .c("pubsub", { xmlns: "http://jabber.org/protocol/pubsub" })
      .c("publish", { node: "telemetry" })
      .c("item")
      .c("reading", { xmlns: "urn:example:reading", n: String(n) })
      .root();
    await session.request(iq, { timeoutMs: 5000 });
  }

  it("provision -> enroll -> online -> rotate -> still online and publishing -> revoke -> login refused", async () => {
    const d = devicePaths("dev1");
    let r = await runFleet(
      "provision",
      "dev1",
      ...server(),
      "--pubsub",
      "pubsub.iot.test",
      "--operator",
      "alice@iot.test",
      "--out",
      d.bundle,
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(statSync(d.bundle).mode & 0o777, 0o600);
    const bundleText = readFileSync(d.bundle, "utf8");
    assert.match(bundleText, /"type": "invite"/);

    r = await runEnroll(d.bundle, "--fleet-ca", join(home, "ca", "ca.cert.pem"), "-c", d.config, "--data-dir", d.data);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /"boundJid":"dev1@iot.test\//);
    const creds = new CredentialStore(join(d.data, "credentials"));
    const password = creds.readPassword();
    assert.equal(password.length, 43);
    assert.equal(statSync(creds.dir).mode & 0o777, 0o700);
    assert.equal(statSync(creds.passwordFile).mode & 0o777, 0o600);
    assert.ok(!r.err.includes(password) && !r.out.includes(password), "password printed");
    assert.ok(!readFileSync(d.config, "utf8").includes(password), "password in config");

    // The device runs.
    const loaded = loadConfig(d.config, {});
    assert.deepEqual(loaded.config.operators, [
      { jid: "alice@iot.test", commands: ["*"] },
      { jid: ADMIN, commands: ["rotate-credentials"] },
    ]);
    assert.equal(loaded.config.pubsub.service, "pubsub.iot.test");
    const { session, offline, audit, stop: unregister } = await runDevice(d.config, creds);
    try {
      await publish(session, 1);
      r = await runFleet("list", "--online", ...server());
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /dev1\s+dev1@iot\.test\s+enrolled\s+invite\s+-\s+20\d\d-/);

      const t0 = Date.now();
      r = await runFleet("rotate", "dev1", ...server());
      const rotateMs = Date.now() - t0;
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /rotated/i);
      const newPassword = creds.readPassword();
      assert.notEqual(newPassword, password);
      assert.equal(creds.pendingRotation(), undefined);
      assert.equal(statSync(creds.passwordFile).mode & 0o777, 0o600);
      // Still online on the same session, still publishing.
      assert.ok(session.online);
      assert.deepEqual(offline, []);
      await publish(session, 2);
      // The new password logs in; the old one no longer does.
      await connectOnce(d.config, { timeoutMs: 8000, log: undefined as never });
      writeFileSync(creds.passwordFile, password);
      await assert.rejects(connectOnce(d.config, { timeoutMs: 8000, log: undefined as never }), (e: unknown) =>
        isProvisioningError(e, "enroll_login_failed"),
      );
      writeFileSync(creds.passwordFile, newPassword);
      assert.ok(audit.records.some((a) => a.node === "rotate-credentials" && a.outcome === "completed"));
      assert.ok(!JSON.stringify(audit.records).includes(newPassword), "password in the audit log");
      console.log(`# rotate round trip (CLI connect + ad-hoc + XEP-0077): ${rotateMs} ms`);

      r = await runFleet("revoke", "dev1", ...server());
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /revoked: account dev1@iot.test deleted/);
      const deadline = Date.now() + 5000;
      while (session.online && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(!session.online, "revoked device still online");
    } finally {
      unregister();
      await session.stop();
    }
    await assert.rejects(connectOnce(d.config, { timeoutMs: 8000, log: undefined as never }), (e: unknown) =>
      isProvisioningError(e, "enroll_login_failed"),
    );
    r = await runFleet("list", "--json");
    const dev = (JSON.parse(r.out) as Array<{ id: string; state: string }>).find((x) => x.id === "dev1");
    assert.equal(dev?.state, "revoked");
    const revocations = JSON.parse(readFileSync(join(home, "revocations.json"), "utf8"));
    assert.deepEqual(revocations.payload.jids, ["dev1@iot.test"]);
    // The bundle is now on the revocation list: enrolling it again is refused before any network step.
    const again = devicePaths("dev1-again");
    r = await runEnroll(
      d.bundle,
      "--fleet-ca",
      join(home, "ca", "ca.cert.pem"),
      "--revocations",
      join(home, "revocations.json"),
      "-c",
      again.config,
      "--data-dir",
      again.data,
    );
    assert.equal(r.code, 4, r.err);
    assert.match(r.err, /bundle_revoked/);
  });

  it("bulk: rotate --tag on three enrolled devices (all stay online, old passwords refused), then revoke --tag", async () => {
    const names = ["bulk1", "bulk2", "bulk3"];
    const running: Array<{
      name: string;
      session: XmppSession;
      creds: CredentialStore;
      config: string;
      stop: () => void;
    }> = [];
    try {
      for (const name of names) {
        const d = devicePaths(name);
        let r = await runFleet("provision", name, ...server(), "--tag", "group=bulk", "--out", d.bundle);
        assert.equal(r.code, 0, r.err);
        r = await runEnroll(
          d.bundle,
          "--fleet-ca",
          join(home, "ca", "ca.cert.pem"),
          "-c",
          d.config,
          "--data-dir",
          d.data,
        );
        assert.equal(r.code, 0, r.err);
        const creds = new CredentialStore(join(d.data, "credentials"));
        const { session, stop } = await runDevice(d.config, creds);
        running.push({ name, session, creds, config: d.config, stop });
      }
      const before = running.map((d) => d.creds.readPassword());
      let r = await runFleet("rotate", "--tag", "group=bulk", ...server(), "--json");
      assert.equal(r.code, 0, r.err);
      const job = JSON.parse(r.out) as { devices: Array<{ id: string; status: string; note?: string }> };
      assert.deepEqual(
        job.devices.map((d) => [d.id, d.status]),
        names.map((n) => [n, "completed"]),
      );
      for (const [i, d] of running.entries()) {
        const now = d.creds.readPassword();
        assert.notEqual(now, before[i], `${d.name} has a new password`);
        assert.ok(d.session.online, `${d.name} is still online`);
        await connectOnce(d.config, { timeoutMs: 8000, log: undefined as never });
        writeFileSync(d.creds.passwordFile, before[i]!);
        await assert.rejects(connectOnce(d.config, { timeoutMs: 8000, log: undefined as never }), (e: unknown) =>
          isProvisioningError(e, "enroll_login_failed"),
        );
        writeFileSync(d.creds.passwordFile, now);
      }
      r = await runFleet("list", "--tag", "group=bulk", "--json");
      for (const d of JSON.parse(r.out) as Array<{ rotatedAt?: string }>) assert.ok(d.rotatedAt, "rotation recorded");

      r = await runFleet("revoke", "--tag", "group=bulk", ...server(), "--json");
      assert.equal(r.code, 0, r.err);
      const revoked = JSON.parse(r.out) as { devices: Array<{ status: string; note?: string }> };
      assert.deepEqual(
        revoked.devices.map((d) => [d.status, d.note]),
        names.map(() => ["completed", "account deleted"]),
      );
      for (const d of running)
        await assert.rejects(connectOnce(d.config, { timeoutMs: 8000, log: undefined as never }), (e: unknown) =>
          isProvisioningError(e, "enroll_login_failed"),
        );
      const list = JSON.parse(readFileSync(join(home, "revocations.json"), "utf8"));
      for (const n of names) assert.ok(list.payload.jids.includes(`${n}@iot.test`));
    } finally {
      for (const d of running) {
        d.stop();
        await d.session.stop();
      }
    }
  });

  it("refuses a reused invite token", async () => {
    const d = devicePaths("dev2");
    let r = await runFleet("provision", "dev2", ...server(), "--out", d.bundle);
    assert.equal(r.code, 0, r.err);
    r = await runEnroll(
      d.bundle,
      "--fleet-ca",
      join(home, "ca", "ca.cert.pem"),
      "-c",
      d.config,
      "--data-dir",
      d.data,
      "--no-connect",
    );
    assert.equal(r.code, 0, r.err);
    const copy = devicePaths("dev2-copy");
    r = await runEnroll(
      d.bundle,
      "--fleet-ca",
      join(home, "ca", "ca.cert.pem"),
      "-c",
      copy.config,
      "--data-dir",
      copy.data,
    );
    assert.equal(r.code, 5, r.err);
    assert.match(r.err, /invite_invalid/);
    // A refused enrolment leaves nothing behind: no password, no CA files, no config.
    assert.equal(existsSync(join(copy.data, "credentials")), false, "credentials directory left behind");
    assert.equal(existsSync(copy.config), false);
  });

  it("refuses tampered, wrong-CA and expired bundles before touching the server", async () => {
    const d = devicePaths("dev3");
    const r0 = await runFleet("provision", "dev3", ...server(), "--valid-for", "1m", "--out", d.bundle);
    assert.equal(r0.code, 0, r0.err);
    const good = JSON.parse(readFileSync(d.bundle, "utf8"));
    const ca = join(home, "ca", "ca.cert.pem");

    const tampered = structuredClone(good);
    tampered.payload.server.port = 1;
    const tFile = join(dir.path, "tampered.json");
    writeFileSync(tFile, JSON.stringify(tampered));
    let r = await runEnroll(tFile, "--fleet-ca", ca, "-c", d.config, "--data-dir", d.data);
    assert.equal(r.code, 4);
    assert.match(r.err, /bundle_tampered/);

    // Another fleet's CA.
    const otherHome = join(dir.path, "other-fleet");
    const other = await fleet(
      ["ca", "init", "--home", otherHome],
      { out: () => {}, err: () => {}, env: {} },
      { caKeyBits: 2048 },
    );
    assert.equal(other, 0);
    r = await runEnroll(
      d.bundle,
      "--fleet-ca",
      join(otherHome, "ca", "ca.cert.pem"),
      "-c",
      d.config,
      "--data-dir",
      d.data,
    );
    assert.equal(r.code, 4);
    assert.match(r.err, /bundle_wrong_ca/);

    const { enroll } = await import("../../provisioning/device/enroll.js");
    await assert.rejects(
      enroll({
        bundle: good,
        fleetCaFile: ca,
        configFile: d.config,
        dataDir: d.data,
        now: new Date(Date.now() + 5 * 60_000),
      }),
      (e: unknown) => isProvisioningError(e, "bundle_expired"),
    );
    assert.throws(() => statSync(d.config), "a refused bundle must not write a config");
  });

  it("admin path with a device CSR: the password is sealed, never in clear in the bundle", async () => {
    const d = devicePaths("dev4");
    let r = await runEnroll("--make-csr", "--jid", "dev4@iot.test", "--data-dir", d.data);
    assert.equal(r.code, 0, r.err);
    const csrFile = r.out.trim();
    assert.equal(statSync(join(d.data, "credentials", "device.key.pem")).mode & 0o777, 0o600);
    r = await runFleet("provision", "dev4", ...server(), "--admin-password", "--csr", csrFile, "--out", d.bundle);
    assert.equal(r.code, 0, r.err);
    const bundle = JSON.parse(readFileSync(d.bundle, "utf8"));
    assert.equal(bundle.payload.credential.type, "password-sealed");
    assert.ok(bundle.payload.clientCert.certPem.includes("BEGIN CERTIFICATE"));
    r = await runEnroll(d.bundle, "--fleet-ca", join(home, "ca", "ca.cert.pem"), "-c", d.config, "--data-dir", d.data);
    assert.equal(r.code, 0, r.err);
    const password = new CredentialStore(join(d.data, "credentials")).readPassword();
    assert.ok(!readFileSync(d.bundle, "utf8").includes(password));
  });
});
