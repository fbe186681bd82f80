/**
 * Certificate login end to end with the fleet tool, against ejabberd 23.01: the device makes a key
 * and CSR, `iot-fleet provision --csr` issues its certificate, `enroll` writes the config, and the
 * agent's session logs in with SASL EXTERNAL. `iot-fleet revoke` then deletes the account (which
 * does not stop a certificate on ejabberd) and rewrites revoked-devices.ejabberd.yml in the fleet
 * home, which this server includes; after `reload_config` the certificate is refused a session.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../agent/config/load.js";
import { main as fleet } from "../../provisioning/cli.js";
import { ejabberdRevokedAcl } from "../../provisioning/crl.js";
import { enrollMain } from "../../provisioning/device/cli.js";
import { XmppSession } from "../../xmpp/session.js";
import { type EjabberdHandle, ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";

const ADMIN = "admin@iot.test";
const ADMIN_PASS = "admin-pass-123";

describe("certificate login provisioned by iot-fleet, on ejabberd", {
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
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  function session(config: string): XmppSession {
    const loaded = loadConfig(config, {});
    const cfg = {
      ...loaded.config.xmpp,
      reconnect: { ...loaded.config.xmpp.reconnect, initialDelayMs: 50, maxDelayMs: 400 },
    };
    return new XmppSession({ config: cfg, password: loaded.password });
  }

  before(async () => {
    dir = makeTempDir("iot-cert-ej-");
    home = join(dir.path, "fleet");
    const pwFile = join(dir.path, "admin.pw");
    writeFileSync(pwFile, ADMIN_PASS, { mode: 0o600 });
    Object.assign(env, {
      IOT_FLEET_HOME: home,
      IOT_FLEET_ADMIN_JID: ADMIN,
      IOT_FLEET_ADMIN_PASSWORD_FILE: pwFile,
    });
    // The fleet CA exists before the server that trusts it; the ACL file before the server includes it.
    assert.equal((await run("fleet", "ca", "init")).code, 0);
    writeFileSync(join(home, "revoked-devices.ejabberd.yml"), ejabberdRevokedAcl([]));
    ej = await startEjabberd({
      admins: [ADMIN],
      extraModulesYaml: "  mod_register:\n    access: none\n",
      c2sOptions: { tls_verify: true },
      extraTopLevelYaml: `c2s_cafile: ${JSON.stringify(join(home, "ca", "ca.cert.pem"))}\n`,
      includeConfigFiles: [join(home, "revoked-devices.ejabberd.yml")],
      c2sDeny: ["iot_revoked"],
    });
    await ej.register("admin", ADMIN_PASS);
    Object.assign(env, { IOT_FLEET_SERVER: `127.0.0.1:${ej.port}`, IOT_FLEET_SERVER_CA_FILE: ej.caFile });
  });

  after(async () => {
    await ej?.stop();
    dir?.remove();
  });

  it("make-csr -> provision --csr -> enroll -> EXTERNAL login -> revoke -> reload_config -> refused", async () => {
    const base = join(dir.path, "dev1");
    const config = join(base, "agent.yaml");
    const data = join(base, "data");
    const bundle = join(dir.path, "dev1.json");
    let r = await run("enroll", "--make-csr", "--jid", "dev1@iot.test", "--data-dir", data);
    assert.equal(r.code, 0, r.err);
    r = await run("fleet", "provision", "dev1", "--admin-password", "--csr", r.out.trim(), "--out", bundle);
    assert.equal(r.code, 0, r.err);
    r = await run("enroll", bundle, "--fleet-ca", join(home, "ca", "ca.cert.pem"), "-c", config, "--data-dir", data);
    assert.equal(r.code, 0, r.err);
    const written = loadConfig(config, {}).config.xmpp;
    assert.equal(written.clientCertFile, join(data, "credentials", "client.cert.pem"));
    assert.equal(written.clientKeyFile, join(data, "credentials", "device.key.pem"));

    const s = session(config);
    const online = new Promise((res) => s.once("online", res));
    s.start();
    await online;
    assert.equal(s.stats().mechanism, "EXTERNAL");

    r = await run("fleet", "revoke", "dev1");
    assert.equal(r.code, 0, r.err);
    await s.stop();
    const acl = readFileSync(join(home, "revoked-devices.ejabberd.yml"), "utf8");
    assert.match(acl, /"dev1@iot\.test"/);
    assert.match(readFileSync(join(home, "revoked-certs.crl.pem"), "utf8"), /BEGIN X509 CRL/);

    // The account is gone, yet ejabberd 23.01 would still let the certificate in: the ACL stops it.
    await ej.ctl(["reload_config"]);
    const again = session(config);
    const fault = new Promise<{ code: string }>((res) => again.once("fault", (e) => res({ code: e.code })));
    again.start();
    assert.equal((await fault).code, "bind_refused");
    await again.stop();
  });
});
