import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { initCa, loadCa } from "./ca.js";
import { createCrl, ejabberdRevokedAcl } from "./crl.js";

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("fleet CRL", () => {
  const dir = mkdtempSync(join(tmpdir(), "crl-"));
  initCa({ dir, subject: { commonName: "Test Fleet CA" }, keyBits: 2048 });
  const ca = loadCa({ dir });
  const caFile = join(dir, "ca.cert.pem");

  it("is a v2 CRL signed by the fleet CA that OpenSSL reads, with the serials and the CRL number", () => {
    const pem = createCrl(ca, { serials: ["0a1b", "ff01", "7c"], number: 5, now: new Date("2026-12-01T00:00:00Z") });
    const file = join(dir, "list.crl.pem");
    writeFileSync(file, pem);
    const verify = openssl(["crl", "-in", file, "-CAfile", caFile, "-noout"]);
    assert.equal(verify.status, 0, verify.out);
    assert.match(verify.out, /verify OK/);
    const text = openssl(["crl", "-in", file, "-noout", "-text"]).out;
    assert.match(text, /Version 2/);
    assert.match(text, /X509v3 CRL Number:\s*\n\s*5/);
    for (const serial of ["0A1B", "FF01", "7C"]) assert.match(text, new RegExp(`Serial Number: ${serial}\\b`));
    assert.match(text, /Next Update: Dec 31 00:00:00 2026 GMT/);
  });

  it("is written even when nothing is revoked (a server checking CRLs needs one)", () => {
    const file = join(dir, "empty.crl.pem");
    writeFileSync(file, createCrl(ca, { serials: [], number: 0, now: new Date() }));
    const r = openssl(["crl", "-in", file, "-CAfile", caFile, "-noout", "-text"]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /No Revoked Certificates/);
  });

  it("writes the ejabberd ACL fragment, never with an empty member list", () => {
    assert.match(ejabberdRevokedAcl(["b@iot.test", "a@iot.test"]), /- "a@iot\.test"\n {6}- "b@iot\.test"/);
    assert.match(ejabberdRevokedAcl([]), /nobody@revoked\.invalid/);
  });
});
