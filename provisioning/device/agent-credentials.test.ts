import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse, type Element } from "ltx";
import { parseConfig } from "../../agent/config/load.js";
import { ConfigError } from "../../kernel/errors.js";
import { FakeTimers } from "../../kernel/timers.js";
import { initCa, loadCa } from "../ca.js";
import { createRevocationList } from "../revocation.js";
import { FakeSession } from "../../xmpp/testing/index.js";
import { deviceCredentialsFor, enrolledCredentialStore, type ProvisioningConfig } from "./agent-credentials.js";
import { CredentialStore, ENROLMENT_FILE, FLEET_CA_FILE } from "./credentials.js";

const root = mkdtempSync(join(tmpdir(), "prov-agentcreds-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const ok = (iq: Element) => parse(`<iq type="result" id="${iq.attrs.id ?? "x"}"/>`) as Element;
const OFF: ProvisioningConfig = { revocationListFile: undefined, selfRotationIntervalMs: 0 };
const HOUR = 3_600_000;

function enrolled(): { dir: string; credentials: CredentialStore; configFile: string } {
  const dir = join(root, `d${++n}`);
  const credentials = new CredentialStore(join(dir, "data", "credentials"));
  credentials.writePassword("pw-now");
  mkdirSync(join(dir, "etc"));
  return { dir, credentials, configFile: join(dir, "etc", "agent.yaml") };
}

describe("device credentials in the running agent", () => {
  it("applies only to enrolled devices (xmpp.passwordFile = credentials/password)", () => {
    const e = enrolled();
    assert.equal(enrolledCredentialStore(e.credentials.passwordFile)?.dir, e.credentials.dir);
    assert.equal(enrolledCredentialStore(undefined), undefined);
    assert.equal(enrolledCredentialStore(join(e.dir, "missing", "password")), undefined);
    const other = join(e.dir, "secret.txt");
    writeFileSync(other, "pw");
    assert.equal(enrolledCredentialStore(other), undefined);
    const session = new FakeSession(ok);
    const common = { session, sessionPassword: "pw", configFile: e.configFile };
    assert.equal(deviceCredentialsFor({ ...common, passwordFile: other, config: OFF }), undefined);
    assert.throws(
      () => deviceCredentialsFor({ ...common, passwordFile: other, config: { ...OFF, revocationListFile: "r.json" } }),
      (err: unknown) => err instanceof ConfigError && err.code === "revocation_not_enrolled",
    );
  });

  it("the config section: off by default, self-rotation 0 or >= 1 h", () => {
    const base = "device: { id: d1 }\nxmpp: { jid: d1@iot.test, password: x }\n";
    assert.deepEqual(parseConfig(base, "/etc/a.yaml").config.provisioning, OFF);
    assert.throws(
      () => parseConfig(`${base}provisioning: { selfRotationIntervalMs: 1000 }\n`, "/etc/a.yaml"),
      /provisioning\.selfRotationIntervalMs: must be 0 \(off\) or at least 3600000/,
    );
    assert.throws(() => parseConfig(`${base}provisioning: { revocationList: x }\n`, "/etc/a.yaml"), /unknown key/);
  });

  it("start() refuses a revoked device; the list path is relative to the config file", async () => {
    const e = enrolled();
    initCa({ dir: join(root, "ca"), subject: { commonName: "fleet" }, keyBits: 2048, force: true });
    const ca = loadCa({ dir: join(root, "ca") });
    e.credentials.writePublic(FLEET_CA_FILE, ca.certPem);
    e.credentials.writeSecret(ENROLMENT_FILE, JSON.stringify({ bundleId: "b-1", fleetCaFingerprint: ca.fingerprint }));
    const payload = { issuedAt: new Date().toISOString(), sequence: 1, certSerials: [], jids: [] };
    const session = new FakeSession(ok);
    const creds = deviceCredentialsFor({
      session,
      sessionPassword: "pw-now",
      configFile: e.configFile,
      passwordFile: e.credentials.passwordFile,
      config: { ...OFF, revocationListFile: "revocations.json" },
    })!;
    assert.equal(creds.revocationListFile, join(e.dir, "etc", "revocations.json"));
    writeFileSync(
      creds.revocationListFile!,
      JSON.stringify(createRevocationList({ ...payload, bundleIds: ["b-2"] }, ca)),
    );
    await creds.start();
    assert.equal(creds.revocation?.source, "file");
    creds.stop();
    writeFileSync(
      creds.revocationListFile!,
      JSON.stringify(createRevocationList({ ...payload, sequence: 2, bundleIds: ["b-1"] }, ca)),
    );
    await assert.rejects(creds.start(), (err: unknown) => err instanceof ConfigError && err.code === "device_revoked");
  });

  it("self-rotation: due by the password file's age, checked hourly, only online; stop() clears the timer", async () => {
    const e = enrolled();
    const session = new FakeSession(ok);
    const timers = new FakeTimers(Date.now());
    const creds = deviceCredentialsFor({
      session,
      sessionPassword: "pw-now",
      configFile: e.configFile,
      passwordFile: e.credentials.passwordFile,
      config: { ...OFF, selfRotationIntervalMs: 2 * HOUR },
      timers,
    })!;
    await creds.start();
    const settle = () => new Promise((r) => setImmediate(r));
    timers.advance(HOUR);
    await settle();
    assert.equal(session.requests.length, 0, "password only 1 h old");
    session.online = false;
    timers.advance(HOUR);
    await settle();
    assert.equal(session.requests.length, 0, "offline: no rotation");
    session.online = true;
    timers.advance(HOUR);
    await settle();
    assert.equal(session.requests.length, 1, "due and online: rotated");
    assert.notEqual(e.credentials.readPassword(), "pw-now");
    assert.equal(session.password, e.credentials.readPassword(), "the session got the new password");
    creds.stop();
    assert.equal(timers.pendingCount, 0);
  });

  it("self-rotation after a restart: a password older than the interval is rotated at the first check", async () => {
    const e = enrolled();
    const old = (Date.now() - 3 * HOUR) / 1000;
    utimesSync(e.credentials.passwordFile, old, old);
    const session = new FakeSession(ok);
    const timers = new FakeTimers(Date.now());
    const creds = deviceCredentialsFor({
      session,
      sessionPassword: "pw-now",
      configFile: e.configFile,
      passwordFile: e.credentials.passwordFile,
      config: { ...OFF, selfRotationIntervalMs: 2 * HOUR },
      timers,
    })!;
    await creds.start();
    timers.advance(HOUR);
    await new Promise((r) => setImmediate(r));
    assert.equal(session.requests.length, 1);
    creds.stop();
  });

  it("registers rotate-credentials", () => {
    const e = enrolled();
    const creds = deviceCredentialsFor({
      session: new FakeSession(ok),
      sessionPassword: "pw-now",
      configFile: e.configFile,
      passwordFile: e.credentials.passwordFile,
      config: OFF,
    })!;
    assert.equal(creds.command().node, "rotate-credentials");
  });
});
