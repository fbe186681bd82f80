/**
 * SASL EXTERNAL with the fleet's client certificates (XEP-0178), against real servers:
 * - ejabberd 23.01: `tls_verify` on the c2s listener and `c2s_cafile` = the fleet CA. It checks no
 *   CRL and accepts a certificate whether or not its account exists, so a revoked device is shut
 *   out by the ACL file iot-fleet writes (revoked-devices.ejabberd.yml) and `reload_config`: the
 *   login succeeds and resource binding is refused (not-allowed).
 * - Prosody 0.12 with Debian's mod_auth_ccert: the fleet CA plus the CRL iot-fleet writes
 *   (revoked-certs.crl.pem) checked by the TLS layer (`crl_check`); a revoked certificate is
 *   refused (account-disabled).
 * Certificates come from provisioning/ca.ts as `iot-fleet` issues them (CSR from the device key).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FleetCa, initCa, loadCa, signDeviceCsr } from "../../provisioning/ca.js";
import { createCrl, ejabberdRevokedAcl } from "../../provisioning/crl.js";
import { createCsr, generateDeviceKey } from "../../provisioning/device-key.js";
import type { XmppSession } from "../../xmpp/session.js";
import { type EjabberdHandle, ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { type ProsodyHandle, prosodyModulesInstalled, startProsody } from "../harness/prosody.js";
import { makeTempDir } from "../harness/tmp.js";
import { newSession, type ServerLike, testXmppConfig, waitOnline } from "./helpers.js";

interface DeviceFiles {
  cert: string;
  key: string;
  serial: string;
}

function issue(dir: string, ca: FleetCa, jid: string, name: string): DeviceFiles {
  const key = generateDeviceKey(2048);
  const issued = signDeviceCsr(ca, createCsr(key.privateKeyPem, jid), { jid });
  const files = { cert: join(dir, `${name}.cert.pem`), key: join(dir, `${name}.key.pem`), serial: issued.serial };
  writeFileSync(files.cert, issued.certPem);
  writeFileSync(files.key, key.privateKeyPem, { mode: 0o600 });
  return files;
}

function newCa(dir: string, name: string): FleetCa {
  const caDir = join(dir, name);
  initCa({ dir: caDir, subject: { commonName: name }, keyBits: 2048 });
  return loadCa({ dir: caDir });
}

function certSession(server: ServerLike, jid: string, files: DeviceFiles, password = ""): XmppSession {
  const cfg = testXmppConfig(server, jid, password, {
    ...(password ? {} : { password: undefined }),
    clientCertFile: files.cert,
    clientKeyFile: files.key,
    sasl2: { enabled: false },
  });
  return newSession(cfg, password);
}

function nextFault(s: XmppSession, timeoutMs = 15_000): Promise<{ code: string; message: string }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no fault within ${timeoutMs} ms (state ${s.state})`)), timeoutMs);
    s.once("fault", (e) => {
      clearTimeout(t);
      resolve({ code: e.code, message: e.message });
    });
  });
}

describe("certificate login (SASL EXTERNAL) on ejabberd 23.01", {
  skip: ejabberdInstalled() ? false : "no ejabberd",
}, () => {
  let ejabberd: EjabberdHandle;
  let dir: string;
  let fleet: FleetCa;
  let aclFile: string;

  before(async () => {
    dir = makeTempDir("cert-login-ej-").path;
    fleet = newCa(dir, "fleet-ca");
    aclFile = join(dir, "revoked-devices.ejabberd.yml");
    writeFileSync(aclFile, ejabberdRevokedAcl([]));
    ejabberd = await startEjabberd({
      c2sOptions: { tls_verify: true },
      extraTopLevelYaml: `c2s_cafile: ${JSON.stringify(join(dir, "fleet-ca", "ca.cert.pem"))}\n`,
      includeConfigFiles: [aclFile],
      c2sDeny: ["iot_revoked"],
    });
    for (const u of ["dev1", "dev2", "dev3"]) await ejabberd.register(u, `${u}-pw`);
  });

  after(async () => {
    await ejabberd?.stop();
  });

  it("logs in with the certificate alone (no password configured)", async () => {
    const s = certSession(ejabberd, "dev1@iot.test", issue(dir, fleet, "dev1@iot.test", "dev1"));
    s.start();
    const online = await waitOnline(s);
    assert.equal(online.jid, "dev1@iot.test/agent");
    assert.equal(s.stats().mechanism, "EXTERNAL");
    await s.stop();
  });

  it("falls back to the password on the same stream when the server refuses the certificate", async () => {
    const other = newCa(dir, "other-ca");
    const s = certSession(ejabberd, "dev2@iot.test", issue(dir, other, "dev2@iot.test", "dev2-other"), "dev2-pw");
    s.start();
    await waitOnline(s);
    assert.match(s.stats().mechanism ?? "", /^SCRAM-SHA-/);
    assert.equal(s.stats().connects, 1, "one connection: the retry was on the same stream");
    await s.stop();
  });

  it("refuses a revoked device once the ACL file lists it and the config is reloaded", async () => {
    const files = issue(dir, fleet, "dev3@iot.test", "dev3");
    const before = certSession(ejabberd, "dev3@iot.test", files);
    before.start();
    await waitOnline(before);
    await before.stop();

    writeFileSync(aclFile, ejabberdRevokedAcl(["dev3@iot.test"]));
    await ejabberd.ctl(["reload_config"]);
    const s = certSession(ejabberd, "dev3@iot.test", files);
    const fault = nextFault(s);
    s.start();
    const f = await fault;
    assert.equal(f.code, "bind_refused");
    assert.match(f.message, /not-allowed/);
    await s.stop();
  });
});

describe("certificate login (SASL EXTERNAL) on Prosody 0.12 with mod_auth_ccert and the fleet CRL", {
  skip: prosodyModulesInstalled() ? false : "Debian's prosody-modules is not installed",
}, () => {
  let prosody: ProsodyHandle;
  let dir: string;
  let fleet: FleetCa;
  let good: DeviceFiles;
  let revoked: DeviceFiles;

  before(async () => {
    dir = makeTempDir("cert-login-pr-").path;
    fleet = newCa(dir, "fleet-ca");
    good = issue(dir, fleet, "dev1@iot.test", "dev1");
    revoked = issue(dir, fleet, "dev2@iot.test", "dev2");
    // The trust file: the fleet CA and its CRL, as docs/servers.md tells an admin to build it.
    const trust = join(dir, "fleet-ca-and-crl.pem");
    const caPem = fleet.certPem;
    writeFileSync(trust, `${caPem}${createCrl(fleet, { serials: [revoked.serial], number: 1, now: new Date() })}`);
    prosody = await startProsody({
      extraHostLua: [
        '  authentication = "ccert"',
        '  certificate_match = "xmppaddr"',
        `  c2s_ssl = { cafile = ${JSON.stringify(trust)}; capath = false; verify = { "peer", "client_once" }; verifyext = { lsec_ignore_purpose = false, "crl_check" } }`,
      ].join("\n"),
    });
  });

  after(async () => {
    await prosody?.stop();
  });

  it("logs in with a certificate the fleet CA issued (no account, no password)", async () => {
    const s = certSession(prosody, "dev1@iot.test", good);
    s.start();
    const online = await waitOnline(s);
    assert.equal(online.jid, "dev1@iot.test/agent");
    assert.equal(s.stats().mechanism, "EXTERNAL");
    await s.stop();
  });

  it("refuses a certificate the CRL revokes", async () => {
    const s = certSession(prosody, "dev2@iot.test", revoked);
    const fault = nextFault(s);
    s.start();
    const f = await fault;
    assert.equal(f.code, "auth_failed");
    assert.match(f.message, /account-disabled/);
    await s.stop();
  });
});
