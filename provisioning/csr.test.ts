import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import forge from "node-forge";
import { initCa, loadCa, signDeviceCsr } from "./ca.js";
import { parseCsr } from "./csr.js";
import { createCsr, generateDeviceKey, readCsr } from "./device-key.js";
import { isProvisioningError } from "./errors.js";

const root = mkdtempSync(join(tmpdir(), "prov-csr-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A CSR whose subject was changed after signing: well-formed, but its self-signature no longer verifies. */
function alteredCsr(pem: string): string {
  const csr = forge.pki.certificationRequestFromPem(pem);
  csr.setSubject([{ name: "commonName", value: "someone-else@iot.test" }]);
  (csr as { certificationRequestInfo: unknown }).certificationRequestInfo = null;
  return forge.pki.certificationRequestToPem(csr);
}

describe("CSR parsing (shared by the CA and the sealing step)", () => {
  const key = generateDeviceKey();
  const good = createCsr(key.privateKeyPem, "dev-1@iot.test");
  initCa({ dir: root, subject: { commonName: "CSR test CA" }, keyBits: 2048 });
  const ca = loadCa({ dir: root });

  it("reads a device's CSR", () => {
    assert.equal(parseCsr(good).subject.getField("CN").value, "dev-1@iot.test");
    assert.equal(readCsr(good).commonName, "dev-1@iot.test");
  });

  it("refuses the same requests on both sides: not a CSR, and a self-signature that does not verify", () => {
    const altered = alteredCsr(good);
    for (const pem of ["garbage", altered]) {
      const refused = (e: unknown) => isProvisioningError(e, "csr_invalid");
      assert.throws(() => parseCsr(pem), refused);
      assert.throws(() => readCsr(pem), refused);
      assert.throws(() => signDeviceCsr(ca, pem, { jid: "dev-1@iot.test" }), refused);
    }
    assert.throws(() => parseCsr(altered), /self-signature does not verify/);
  });
});
