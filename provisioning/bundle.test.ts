import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createBundle, parseBundleText, serialiseBundle, verifyBundle, type EnrolmentBundle } from "./bundle.js";
import { initCa, isIssuedBy, loadCa, loadCaCert, signDeviceCsr, type FleetCa } from "./ca.js";
import { canonicalJson } from "./canonical.js";
import { createCsr, generateDeviceKey, openSealed, readCsr, sealToPublicKey } from "./device-key.js";
import { isProvisioningError, type ProvisioningErrorCode } from "./errors.js";
import { createRevocationList, isRevoked, loadRevocationListFile, verifyRevocationList } from "./revocation.js";

const root = mkdtempSync(join(tmpdir(), "prov-bundle-"));
after(() => rmSync(root, { recursive: true, force: true }));

const NOW = new Date("2026-01-10T12:00:00Z");
const DAY = 86_400_000;

function makeCa(name: string, passphrase?: string): FleetCa {
  const dir = join(root, name);
  initCa({
    dir,
    subject: { commonName: `${name} fleet CA` },
    keyBits: 2048,
    now: new Date("2026-01-01T00:00:00Z"),
    ...(passphrase ? { passphrase } : {}),
  });
  return loadCa({ dir, ...(passphrase ? { passphrase } : {}) });
}

const ca = makeCa("main");
const otherCa = makeCa("other");

function bundle(overrides: Partial<Parameters<typeof createBundle>[0]> = {}, signer: FleetCa = ca): EnrolmentBundle {
  return createBundle(
    {
      device: { id: "dev-1", jid: "dev-1@iot.test" },
      server: { host: "127.0.0.1", port: 5222, pinSha256: "ab".repeat(32) },
      pubsub: { service: "pubsub.iot.test" },
      operators: ["alice@iot.test"],
      credential: { type: "invite", token: "tok123" },
      validForMs: 7 * DAY,
      now: NOW,
      ...overrides,
    },
    signer,
  );
}

function refused(code: ProvisioningErrorCode, fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isProvisioningError(err), `expected ProvisioningError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const trust = { caCertPem: ca.certPem };

describe("fleet CA", () => {
  it("writes the key 0600 in a 0700 directory and refuses to overwrite", () => {
    assert.equal(statSync(join(root, "main")).mode & 0o777, 0o700);
    assert.equal(statSync(join(root, "main", "ca.key.pem")).mode & 0o777, 0o600);
    refused("ca_exists", () => initCa({ dir: join(root, "main"), subject: { commonName: "x" }, keyBits: 2048 }));
    assert.equal(loadCaCert(join(root, "main", "ca.cert.pem")).fingerprint, ca.fingerprint);
  });

  it("encrypts the key with a passphrase and refuses a wrong or missing one", () => {
    const enc = makeCa("enc", "correct horse");
    assert.match(readFileSync(join(root, "enc", "ca.key.pem"), "utf8"), /ENCRYPTED PRIVATE KEY/);
    assert.ok(enc.fingerprint);
    refused("ca_passphrase", () => loadCa({ dir: join(root, "enc"), passphrase: "wrong" }));
    refused("ca_passphrase", () => loadCa({ dir: join(root, "enc") }));
    refused("ca_missing", () => loadCa({ dir: join(root, "nowhere") }));
  });

  it("signs a device CSR into a client certificate with the xmppAddr", () => {
    const key = generateDeviceKey();
    const csr = createCsr(key.privateKeyPem, "dev-1@iot.test");
    assert.equal(readCsr(csr).commonName, "dev-1@iot.test");
    const cert = signDeviceCsr(ca, csr, { jid: "dev-1@iot.test", now: NOW });
    assert.ok(isIssuedBy(cert.certPem, ca.certPem));
    assert.ok(!isIssuedBy(cert.certPem, otherCa.certPem));
    assert.match(cert.serial, /^[0-9a-f]{32}$/);
    refused("csr_invalid", () => signDeviceCsr(ca, "garbage", { jid: "x@y" }));
  });
});

describe("enrolment bundle", () => {
  it("verifies a good bundle, also after pretty-printing and key reordering", () => {
    const b = bundle();
    const text = serialiseBundle(b);
    const p = verifyBundle(parseBundleText(text), trust, NOW);
    assert.equal(p.device.jid, "dev-1@iot.test");
    const reordered = JSON.parse(
      JSON.stringify({ signature: b.signature, payload: b.payload, version: 1, format: b.format }),
    );
    assert.ok(verifyBundle(reordered, trust, NOW));
    assert.ok(verifyBundle(b, { caFingerprint: ca.fingerprint.toUpperCase() }, NOW));
  });

  it("refuses a tampered bundle", () => {
    const b = JSON.parse(JSON.stringify(bundle()));
    b.payload.operators.push("mallory@evil.test");
    refused("bundle_tampered", () => verifyBundle(b, trust, NOW));
    const c = JSON.parse(JSON.stringify(bundle()));
    c.payload.notAfter = "2099-01-01T00:00:00.000Z";
    refused("bundle_tampered", () => verifyBundle(c, trust, NOW));
    const d = JSON.parse(JSON.stringify(bundle()));
    d.signature.value = Buffer.from("x".repeat(256)).toString("base64");
    refused("bundle_tampered", () => verifyBundle(d, trust, NOW));
  });

  it("refuses a bundle from another CA, even one that carries the right fingerprint field", () => {
    refused("bundle_wrong_ca", () => verifyBundle(bundle({}, otherCa), trust, NOW));
    refused("bundle_wrong_ca", () => verifyBundle(bundle({}, otherCa), { caFingerprint: ca.fingerprint }, NOW));
    const forged = JSON.parse(JSON.stringify(bundle({}, otherCa)));
    forged.signature.caFingerprint = ca.fingerprint;
    refused("bundle_tampered", () => verifyBundle(forged, trust, NOW));
  });

  it("refuses expired and not-yet-valid bundles", () => {
    refused("bundle_expired", () => verifyBundle(bundle(), trust, new Date(NOW.getTime() + 8 * DAY)));
    refused("bundle_not_yet_valid", () => verifyBundle(bundle(), trust, new Date(NOW.getTime() - DAY)));
  });

  it("refuses malformed input and unknown versions", () => {
    refused("bundle_malformed", () => parseBundleText("{not json"));
    refused("bundle_malformed", () => verifyBundle(null, trust, NOW));
    refused("bundle_malformed", () => verifyBundle([], trust, NOW));
    refused("bundle_malformed", () => verifyBundle({ format: "iot-enrolment-bundle", version: 1 }, trust, NOW));
    const v2 = { ...bundle(), version: 2 };
    refused("bundle_unsupported_version", () => verifyBundle(v2, trust, NOW));
    refused("bundle_malformed", () => bundle({ device: { id: "bad id!", jid: "x@y" } }));
    refused("bundle_malformed", () => bundle({ credential: { type: "nope" } as never }));
  });

  it("refuses revoked bundles", () => {
    const b = bundle();
    refused("bundle_revoked", () => verifyBundle(b, trust, NOW, { revokedBundleIds: [b.payload.bundleId] }));
  });

  it("seals the admin password to the device key: not in clear, opened only by that key", () => {
    const key = generateDeviceKey();
    const other = generateDeviceKey();
    const password = "S3cret-password-that-must-not-leak";
    const b = bundle({ credential: { type: "password-sealed", ...sealToPublicKey(key.publicKeyPem, password) } });
    const text = serialiseBundle(b);
    assert.ok(!text.includes(password));
    const p = verifyBundle(parseBundleText(text), trust, NOW);
    assert.equal(p.credential.type, "password-sealed");
    if (p.credential.type !== "password-sealed") return;
    assert.equal(openSealed(key.privateKeyPem, p.credential), password);
    refused("bundle_key_mismatch", () => openSealed(other.privateKeyPem, p.credential as never));
  });

  it("canonical JSON sorts keys and refuses floats", () => {
    assert.equal(canonicalJson({ b: 1, a: [true, null, "x"], c: undefined }), '{"a":[true,null,"x"],"b":1}');
    refused("bundle_malformed", () => canonicalJson({ a: 1.5 }));
  });
});

describe("revocation list", () => {
  it("signs, verifies, matches and refuses replays and forgeries", () => {
    const list = createRevocationList(
      { issuedAt: NOW.toISOString(), sequence: 3, bundleIds: ["b1"], certSerials: ["0a"], jids: ["dev-1@iot.test"] },
      ca,
    );
    const p = verifyRevocationList(list, trust, 2);
    assert.ok(isRevoked(p, { bundleId: "b1" }));
    assert.ok(isRevoked(p, { certSerial: "0A" }));
    assert.ok(isRevoked(p, { jid: "DEV-1@iot.test" }));
    assert.ok(!isRevoked(p, { bundleId: "b2" }));
    refused("bundle_tampered", () => verifyRevocationList(list, trust, 4));
    const bad = JSON.parse(JSON.stringify(list));
    bad.payload.bundleIds = [];
    refused("bundle_tampered", () => verifyRevocationList(bad, trust));
    const file = join(root, "revocations.json");
    writeFileSync(file, JSON.stringify(list));
    assert.equal(loadRevocationListFile(file, trust).sequence, 3);
    assert.equal(loadRevocationListFile(join(root, "none.json"), trust).sequence, 0);
    writeFileSync(file, "{");
    refused("bundle_malformed", () => loadRevocationListFile(file, trust));
    // A revocation list is never accepted as a bundle, nor the reverse.
    refused("bundle_malformed", () => verifyBundle(list, trust, NOW));
  });
});
