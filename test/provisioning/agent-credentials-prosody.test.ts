/**
 * The composed agent (agent/main.ts) with an enrolled device's credential directory, against a real
 * Prosody: a rotation interrupted by a crash is resolved at login, and a revoked device refuses to
 * start through the real CLI (exit 3).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { main as cli } from "../../agent/cli.js";
import { loadConfig } from "../../agent/config/load.js";
import { createAgent } from "../../agent/main.js";
import { initCa, loadCa } from "../../provisioning/ca.js";
import { CredentialStore, ENROLMENT_FILE, FLEET_CA_FILE } from "../../provisioning/device/credentials.js";
import { createRevocationList } from "../../provisioning/revocation.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { testLogger, waitOnline } from "../xmpp/helpers.js";

const pw = () => randomBytes(32).toString("base64url");

describe("enrolled device credentials in the running agent (Prosody)", () => {
  let prosody: ProsodyHandle;
  let dir: TempDir;

  before(async () => {
    prosody = await startProsody();
    dir = makeTempDir("iot-agent-creds-");
  });

  after(async () => {
    await prosody?.stop();
    dir?.remove();
  });

  /** A device laid out as `iot-agent enroll` leaves it; authFailureDelayMs stays at its 10-minute default. */
  function device(id: string, extraYaml = ""): { file: string; credentials: CredentialStore } {
    const base = join(dir.path, id);
    const credentials = new CredentialStore(join(base, "data", "credentials"));
    credentials.init();
    mkdirSync(join(base, "etc"));
    const file = join(base, "etc", "agent.yaml");
    writeFileSync(
      file,
      `device: { id: ${id}, dataDir: ${join(base, "data")} }
xmpp:
  jid: ${id}@iot.test
  passwordFile: ${credentials.passwordFile}
  server: 127.0.0.1:${prosody.port}
  caFile: ${prosody.caFile}
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 }
hardware: { gpio: sim, serial: sim }
telemetry: { enabled: false }
log: { level: error }
${extraYaml}`,
    );
    return { file, credentials };
  }

  async function runUntilOnline(file: string) {
    const agent = await createAgent(loadConfig(file, {}), { log: testLogger() });
    const faults: string[] = [];
    const refusals: string[] = [];
    agent.session.on("fault", (e) => faults.push(e.code));
    agent.session.on("refused", (e) => refusals.push(e.code));
    const online = waitOnline(agent.session, 8000);
    const t0 = Date.now();
    await agent.start();
    await online;
    const ms = Date.now() - t0;
    const connects = agent.session.stats().connects;
    await agent.stop();
    return { faults, refusals, connects, ms };
  }

  it("crash after the server changed the password: the journalled one logs in and becomes current", async () => {
    const d = device("rec-01");
    const serverPw = pw();
    await prosody.register("rec-01", serverPw);
    d.credentials.writePassword(pw()); // the old password, no longer valid on the server
    d.credentials.beginRotation(serverPw); // the journal the crash left behind
    const r = await runUntilOnline(d.file);
    assert.deepEqual(r.refusals, ["auth_failed"], "one refused login with the old password");
    assert.deepEqual(r.faults, [], "a first refusal is not yet a fault (xmpp.reconnect.authFailureRetries)");
    assert.equal(r.connects, 2);
    assert.ok(r.ms < 5000, `retried at once, not after authFailureDelayMs (took ${r.ms} ms)`);
    assert.equal(d.credentials.readPassword(), serverPw);
    assert.equal(d.credentials.pendingRotation(), undefined, "journal settled");
    console.log(`# interrupted rotation resolved in ${r.ms} ms (refused login + retry with the journalled password)`);
    // And the next start simply logs in.
    const again = await runUntilOnline(d.file);
    assert.deepEqual(again.refusals, []);
  });

  it("crash before the server changed it: the current password logs in and the journal is dropped", async () => {
    const d = device("rec-02");
    const serverPw = pw();
    await prosody.register("rec-02", serverPw);
    d.credentials.writePassword(serverPw);
    d.credentials.beginRotation(pw());
    const r = await runUntilOnline(d.file);
    assert.deepEqual(r.faults, []);
    assert.equal(r.connects, 1);
    assert.equal(d.credentials.readPassword(), serverPw);
    assert.equal(d.credentials.pendingRotation(), undefined);
  });

  it("a revoked device refuses to start: iot-agent run exits 3 with a clear message, before connecting", async () => {
    const d = device("rev-01", "provisioning: { revocationListFile: revocations.json }\n");
    const serverPw = pw();
    await prosody.register("rev-01", serverPw);
    d.credentials.writePassword(serverPw);
    initCa({ dir: join(dir.path, "fleet-ca"), subject: { commonName: "fleet" }, keyBits: 2048 });
    const ca = loadCa({ dir: join(dir.path, "fleet-ca") });
    d.credentials.writePublic(FLEET_CA_FILE, ca.certPem);
    d.credentials.writeSecret(
      ENROLMENT_FILE,
      JSON.stringify({ bundleId: "bundle-rev-01", deviceId: "rev-01", fleetCaFingerprint: ca.fingerprint }),
    );
    const listFile = join(dir.path, "rev-01", "etc", "revocations.json");
    const payload = { issuedAt: new Date().toISOString(), certSerials: [], jids: [] };
    const run = async () => {
      const err: string[] = [];
      // runAgent installs SIGTERM/SIGINT handlers; keep the test process's own (the harness teardown).
      const before = { SIGTERM: process.listeners("SIGTERM"), SIGINT: process.listeners("SIGINT") };
      try {
        const code = await cli(["run", "--config", d.file], { out: () => {}, err: (s) => err.push(s), env: {} });
        return { code, err: err.join("\n") };
      } finally {
        for (const sig of ["SIGTERM", "SIGINT"] as const)
          for (const l of process.listeners(sig)) if (!before[sig].includes(l)) process.off(sig, l);
      }
    };

    writeFileSync(listFile, JSON.stringify(createRevocationList({ ...payload, sequence: 1, bundleIds: ["x"] }, ca)));
    const ok = await createAgent(loadConfig(d.file, {}), { log: testLogger() });
    const online = waitOnline(ok.session, 8000);
    await ok.start();
    await online;
    await ok.stop();

    writeFileSync(
      listFile,
      JSON.stringify(createRevocationList({ ...payload, sequence: 2, bundleIds: ["bundle-rev-01"] }, ca)),
    );
    let r = await run();
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /rev-01.*revoked by its fleet.*bundle-rev-01.*\[device_revoked\]/);

    // Tampered: someone strips the entry but cannot re-sign.
    const doc = JSON.parse(
      JSON.stringify(createRevocationList({ ...payload, sequence: 3, bundleIds: ["bundle-rev-01"] }, ca)),
    );
    doc.payload.bundleIds = [];
    writeFileSync(listFile, JSON.stringify(doc));
    r = await run();
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /revocation_list_invalid/);
  });
});
