import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../../kernel/errors.js";
import { initCa, loadCa } from "../ca.js";
import { createRevocationList, type RevocationPayload } from "../revocation.js";
import { CredentialStore, ENROLMENT_FILE, FLEET_CA_FILE } from "./credentials.js";
import { checkRevocation, REVOCATION_CACHE_FILE } from "./revocation-check.js";

const root = mkdtempSync(join(tmpdir(), "prov-revcheck-"));
after(() => rmSync(root, { recursive: true, force: true }));
initCa({ dir: join(root, "ca"), subject: { commonName: "fleet" }, keyBits: 2048 });
const ca = loadCa({ dir: join(root, "ca") });
initCa({ dir: join(root, "other"), subject: { commonName: "other fleet" }, keyBits: 2048 });
const otherCa = loadCa({ dir: join(root, "other") });
let n = 0;

const BUNDLE = "11111111-2222-4333-8444-555555555555";
const SERIAL = "0a1b2c";

/** An enrolled device's credential directory, as iot-agent enroll leaves it. */
function device(opts: { serial?: string; fleetCaPem?: string; record?: boolean } = {}) {
  const credentials = new CredentialStore(join(root, `dev${++n}`, "credentials"));
  credentials.writePassword("pw");
  credentials.writePublic(FLEET_CA_FILE, opts.fleetCaPem ?? ca.certPem);
  if (opts.record !== false)
    credentials.writeSecret(
      ENROLMENT_FILE,
      JSON.stringify({
        bundleId: BUNDLE,
        deviceId: "dev-1",
        jid: "dev-1@iot.test",
        fleetCaFingerprint: ca.fingerprint,
        ...(opts.serial ? { clientCertSerial: opts.serial } : {}),
      }),
    );
  return { credentials, listFile: join(root, `dev${n}`, "revocations.json") };
}

function list(p: Partial<RevocationPayload>, signer = ca): string {
  return JSON.stringify(
    createRevocationList(
      {
        issuedAt: new Date().toISOString(),
        sequence: 1,
        bundleIds: [],
        certSerials: [],
        jids: [],
        ...p,
      },
      signer,
    ),
  );
}

function refused(code: string, fn: () => unknown): ConfigError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return e instanceof ConfigError && e.code === code;
  });
  return caught as ConfigError;
}

describe("revocation check at agent start", () => {
  it("not revoked: passes, and keeps a copy of the list (0644)", () => {
    const d = device({ serial: SERIAL });
    writeFileSync(
      d.listFile,
      list({ sequence: 4, bundleIds: ["someone-else"], certSerials: ["ff"], jids: ["dev-1@iot.test"] }),
    );
    const r = checkRevocation(d);
    assert.equal(r.source, "file");
    assert.equal(r.list.sequence, 4);
    assert.equal(statSync(d.credentials.path(REVOCATION_CACHE_FILE)).mode & 0o777, 0o644);
  });

  it("revoked by bundle id: refuses with device_revoked and a message that says what to do", () => {
    const d = device();
    writeFileSync(d.listFile, list({ sequence: 2, bundleIds: [BUNDLE] }));
    const err = refused("device_revoked", () => checkRevocation(d));
    assert.match(err.message, /dev-1.*revoked by its fleet.*enrolment bundle 1111.*sequence 2.*re-enrol/);
  });

  it("revoked by client certificate serial (case-insensitive)", () => {
    const d = device({ serial: SERIAL.toUpperCase() });
    writeFileSync(d.listFile, list({ certSerials: [SERIAL] }));
    const err = refused("device_revoked", () => checkRevocation(d));
    assert.match(err.message, /client certificate serial/);
  });

  it("tampered list (entry removed after signing): refused, the agent does not start", () => {
    const d = device();
    const doc = JSON.parse(list({ bundleIds: [BUNDLE] }));
    doc.payload.bundleIds = [];
    writeFileSync(d.listFile, JSON.stringify(doc));
    const err = refused("revocation_list_invalid", () => checkRevocation(d));
    assert.match(err.message, /bundle_tampered/);
  });

  it("list signed by another CA, or not JSON: refused", () => {
    const d = device();
    writeFileSync(d.listFile, list({}, otherCa));
    assert.match(refused("revocation_list_invalid", () => checkRevocation(d)).message, /bundle_wrong_ca/);
    writeFileSync(d.listFile, "{ not json");
    refused("revocation_list_invalid", () => checkRevocation(d));
  });

  it("no list file yet: nothing revoked", () => {
    const d = device();
    const r = checkRevocation(d);
    assert.equal(r.source, "none");
    assert.equal(r.list.sequence, 0);
  });

  it("never goes backwards: an older list or a missing file falls back to the newest one seen", () => {
    const d = device();
    writeFileSync(d.listFile, list({ sequence: 5, bundleIds: [BUNDLE] }));
    refused("device_revoked", () => checkRevocation(d));
    // An old image restores sequence 3, from before the revocation.
    writeFileSync(d.listFile, list({ sequence: 3 }));
    refused("device_revoked", () => checkRevocation(d));
    rmSync(d.listFile);
    refused("device_revoked", () => checkRevocation(d));
    // A damaged kept copy is only a lost cache: the file decides again.
    writeFileSync(d.credentials.path(REVOCATION_CACHE_FILE), "garbage");
    writeFileSync(d.listFile, list({ sequence: 6 }));
    assert.equal(checkRevocation(d).source, "file");
  });

  it("refuses without an enrolment record, or with a fleet CA other than the one enrolled with", () => {
    refused("enrolment_record_missing", () => checkRevocation(device({ record: false })));
    const swapped = device({ fleetCaPem: otherCa.certPem });
    writeFileSync(swapped.listFile, list({}, otherCa));
    refused("revocation_no_trust_anchor", () => checkRevocation(swapped));
    const noCa = device();
    rmSync(noCa.credentials.path(FLEET_CA_FILE));
    refused("revocation_no_trust_anchor", () => checkRevocation(noCa));
  });
});
