/**
 * The XEP-0133 admin path against ejabberd 23.01 (mod_configure): add-user at provisioning, the
 * device's own XEP-0077 password change on rotation, change-user-password for a break-glass reset,
 * delete-user at revocation, and disable-user reported as unsupported.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../agent/config/load.js";
import { XmppSession } from "../../xmpp/session.js";
import { main as fleet } from "../../provisioning/cli.js";
import { connectOnce } from "../../provisioning/device/connect-check.js";
import { enrollMain } from "../../provisioning/device/cli.js";
import { CredentialStore } from "../../provisioning/device/credentials.js";
import { installRotationResponder } from "../../provisioning/device/rotation.js";
import { isProvisioningError } from "../../provisioning/errors.js";
import { type EjabberdHandle, ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";

const ADMIN = "admin@iot.test";
const ADMIN_PASS = "admin-pass-123";
const silent = { timeoutMs: 10_000, log: undefined as never };

describe("fleet provisioning against ejabberd (XEP-0133 path)", {
  skip: !ejabberdInstalled() && "ejabberd not installed",
}, () => {
  let ej: EjabberdHandle;
  let dir: TempDir;
  let home: string;
  const env: NodeJS.ProcessEnv = {};

  async function run(cli: "fleet" | "enroll", ...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env };
    const code =
      cli === "fleet" ? await fleet(args, io, { caKeyBits: 2048 }) : await enrollMain(args, io, { timeoutMs: 10_000 });
    assert.ok(![...out, ...err].some((l) => l.includes(ADMIN_PASS)), "admin password printed");
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  before(async () => {
    ej = await startEjabberd({ admins: [ADMIN], extraModulesYaml: "  mod_register:\n    access: none\n" });
    await ej.register("admin", ADMIN_PASS);
    dir = makeTempDir("iot-prov-ej-");
    home = join(dir.path, "fleet");
    const pwFile = join(dir.path, "admin.pw");
    writeFileSync(pwFile, ADMIN_PASS, { mode: 0o600 });
    Object.assign(env, {
      IOT_FLEET_HOME: home,
      IOT_FLEET_ADMIN_JID: ADMIN,
      IOT_FLEET_ADMIN_PASSWORD_FILE: pwFile,
      IOT_FLEET_SERVER: `127.0.0.1:${ej.port}`,
      IOT_FLEET_SERVER_CA_FILE: ej.caFile,
    });
    assert.equal((await run("fleet", "ca", "init")).code, 0);
  });

  after(async () => {
    await ej?.stop();
    dir?.remove();
  });

  it("add-user (sealed to the device key) -> enroll -> rotate (XEP-0077) -> revoke (delete-user) -> login refused", async () => {
    const base = join(dir.path, "dev1");
    const config = join(base, "agent.yaml");
    const data = join(base, "data");
    const bundle = join(dir.path, "dev1.json");
    const fleetCa = join(home, "ca", "ca.cert.pem");
    let r = await run("enroll", "--make-csr", "--jid", "dev1@iot.test", "--data-dir", data);
    assert.equal(r.code, 0, r.err);
    r = await run("fleet", "provision", "dev1", "--admin-password", "--csr", r.out.trim(), "--out", bundle);
    assert.equal(r.code, 0, r.err);
    r = await run("enroll", bundle, "--fleet-ca", fleetCa, "-c", config, "--data-dir", data);
    assert.equal(r.code, 0, r.err);

    const creds = new CredentialStore(join(data, "credentials"));
    const loaded = loadConfig(config, {});
    const session = new XmppSession({ config: loaded.config.xmpp, password: loaded.password });
    const online = new Promise((res) => session.once("online", res));
    session.start();
    await online;
    const off = installRotationResponder({ session, credentials: creds, allowed: [ADMIN] });
    try {
      const before = creds.readPassword();
      r = await run("fleet", "rotate", "dev1");
      assert.equal(r.code, 0, r.err);
      assert.notEqual(creds.readPassword(), before);
      assert.ok(session.online, "rotation dropped the session");
      await connectOnce(config, silent);

      // disable-user is not offered by ejabberd 23.01: revoke --disable falls back to delete.
      r = await run("fleet", "revoke", "dev1", "--disable");
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /no disable-user/);
      assert.match(r.out, /deleted/);
      const deadline = Date.now() + 5000;
      while (session.online && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.ok(!session.online, "revoked device still online");
    } finally {
      off();
      await session.stop();
    }
    await assert.rejects(connectOnce(config, silent), (e: unknown) => isProvisioningError(e, "enroll_login_failed"));
    assert.ok(readFileSync(join(home, "revocations.json"), "utf8").includes("dev1@iot.test"));
  });

  it("break-glass admin reset with change-user-password issues a new bundle that logs in", async () => {
    const base = join(dir.path, "dev2");
    const config = join(base, "agent.yaml");
    const data = join(base, "data");
    const fleetCa = join(home, "ca", "ca.cert.pem");
    let r = await run("fleet", "provision", "dev2", "--admin-password", "--out", join(dir.path, "dev2.json"));
    assert.equal(r.code, 0, r.err);
    r = await run("enroll", join(dir.path, "dev2.json"), "--fleet-ca", fleetCa, "-c", config, "--data-dir", data);
    assert.equal(r.code, 0, r.err);
    r = await run("fleet", "rotate", "dev2", "--admin-reset", "--out", join(dir.path, "dev2-reset.json"));
    assert.equal(r.code, 0, r.err);
    await assert.rejects(connectOnce(config, silent), (e: unknown) => isProvisioningError(e, "enroll_login_failed"));
    r = await run(
      "enroll",
      join(dir.path, "dev2-reset.json"),
      "--fleet-ca",
      fleetCa,
      "-c",
      config,
      "--data-dir",
      data,
      "--force",
    );
    assert.equal(r.code, 0, r.err);
  });
});
