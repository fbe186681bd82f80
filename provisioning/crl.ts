/**
 * The fleet's certificate revocation list (RFC 5280 §5): the serials of revoked device
 * certificates, signed by the fleet CA, for the servers that check client certificates against a
 * CRL (Prosody's TLS layer with `crl_check`, docs/servers.md). node-forge writes certificates but
 * not CRLs, so the structure is built here with its ASN.1 writer and signed with Node's crypto.
 *
 * A CRL is published even when nothing is revoked: a server told to check CRLs refuses every
 * client certificate whose issuer has none ("unable to get certificate CRL").
 */
import { sign } from "node:crypto";
import forge from "node-forge";
import type { FleetCa } from "./ca.js";
import { ProvisioningError } from "./errors.js";

const OID_SHA256_RSA = "1.2.840.113549.1.1.11";
const OID_CRL_NUMBER = "2.5.29.20";
const OID_AUTHORITY_KEY_ID = "2.5.29.35";

/** How long a server may rely on one list; a server refuses certificates once it is past. */
export const CRL_VALID_DAYS = 30;

const { asn1 } = forge;

function integerFromHex(hex: string): forge.asn1.Asn1 {
  if (!/^[0-9a-fA-F]+$/.test(hex))
    throw new ProvisioningError("bundle_malformed", `certificate serial is not hex: ${JSON.stringify(hex)}`);
  let h = hex.length % 2 === 1 ? `0${hex}` : hex;
  // DER INTEGER is signed: a leading byte >= 0x80 needs a zero byte in front to stay positive.
  if (Number.parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(h));
}

function time(d: Date): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));
}

function algorithm(): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID_SHA256_RSA).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""),
  ]);
}

function extension(oid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, asn1.toDer(value).getBytes()),
  ]);
}

export interface CrlInput {
  /** Revoked certificate serials, lowercase hex (as the fleet store records them). */
  serials: readonly string[];
  /** Grows with every list (the revocation list's sequence): the CRL number. */
  number: number;
  now: Date;
  validDays?: number;
}

/** A PEM X.509 v2 CRL signed by the fleet CA. */
export function createCrl(ca: FleetCa, input: CrlInput): string {
  const now = input.now;
  const next = new Date(now.getTime() + (input.validDays ?? CRL_VALID_DAYS) * 86_400_000);
  const revoked = [...new Set(input.serials.map((s) => s.toLowerCase()))].map((serial) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [integerFromHex(serial), time(now)]),
  );
  const keyId = ca.forgeCert.generateSubjectKeyIdentifier().getBytes();
  const tbs = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(1).getBytes()),
    algorithm(),
    forge.pki.distinguishedNameToAsn1(ca.forgeCert.subject),
    time(now),
    time(next),
    ...(revoked.length > 0 ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, revoked)] : []),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        extension(
          OID_AUTHORITY_KEY_ID,
          asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
            asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, keyId),
          ]),
        ),
        extension(OID_CRL_NUMBER, integerFromHex(input.number.toString(16))),
      ]),
    ]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign("sha256", tbsDer, ca.privateKey);
  const crl = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithm(),
    // BIT STRING: a leading byte with the count of unused bits (none).
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\0${signature.toString("binary")}`),
  ]);
  const der = Buffer.from(asn1.toDer(crl).getBytes(), "binary");
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN X509 CRL-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END X509 CRL-----\n`;
}

/**
 * An ejabberd config fragment (`include_config_file`) naming the revoked devices' JIDs in the ACL
 * `iot_revoked`: ejabberd 23.01 checks no CRL and lets a certificate log in whether or not its
 * account exists, so the server's own access rule is what shuts a revoked certificate out
 * (docs/servers.md). An ACL with no member is written with a JID that cannot exist.
 */
export function ejabberdRevokedAcl(jids: readonly string[]): string {
  const members = jids.length > 0 ? [...new Set(jids)].sort() : ["nobody@revoked.invalid"];
  const lines = [
    "# Written by iot-fleet (revocations): the devices whose certificates are revoked.",
    "# Include it and deny the ACL in access_rules c2s; then run: ejabberdctl reload_config",
    "acl:",
    "  iot_revoked:",
    "    user:",
    ...members.map((j) => `      - ${JSON.stringify(j)}`),
    "",
  ];
  return lines.join("\n");
}
