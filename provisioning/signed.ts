/**
 * The signed-document envelope shared by enrolment bundles and revocation lists:
 *   { format, version, payload, signature: { alg, value, caFingerprint, caCertPem } }
 * The signature (RSASSA-PKCS1-v1_5, SHA-256) covers canonicalJson({ format, version, payload }), so
 * pretty-printing or key order never breaks it, and the format name is bound in (a revocation list
 * can never be replayed as a bundle).
 */
import { createPublicKey, createSign, createVerify, type KeyObject } from "node:crypto";
import { type CaCertInfo, parseCaCert } from "./ca.js";
import { canonicalJson } from "./canonical.js";
import { ProvisioningError } from "./errors.js";

export const SIGNATURE_ALG = "RS256";

export interface Signature {
  alg: typeof SIGNATURE_ALG;
  /** base64 */
  value: string;
  caFingerprint: string;
  caCertPem: string;
}

export interface SignedDocument<P> {
  format: string;
  version: number;
  payload: P;
  signature: Signature;
}

/** What a verifier trusts: the fleet CA certificate, or just its SHA-256 pin. */
export type TrustAnchor = { caCertPem: string } | { caFingerprint: string };

export function signDocument<P>(
  format: string,
  version: number,
  payload: P,
  ca: { privateKey: KeyObject; certPem: string; fingerprint: string },
): SignedDocument<P> {
  const signer = createSign("sha256");
  signer.update(canonicalJson({ format, version, payload }));
  return {
    format,
    version,
    payload,
    signature: {
      alg: SIGNATURE_ALG,
      value: signer.sign(ca.privateKey).toString("base64"),
      caFingerprint: ca.fingerprint,
      caCertPem: ca.certPem,
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks envelope shape, trust anchor and signature; returns the untyped payload and the CA used.
 * `what` names the document in messages ("bundle", "revocation list").
 */
export function verifyDocument(
  doc: unknown,
  expectedFormat: string,
  supportedVersion: number,
  trust: TrustAnchor,
  what: string,
): { payload: Record<string, unknown>; ca: CaCertInfo } {
  if (!isObject(doc)) throw new ProvisioningError("bundle_malformed", `${what} is not a JSON object`);
  if (doc.format !== expectedFormat)
    throw new ProvisioningError(
      "bundle_malformed",
      `${what} has format ${JSON.stringify(doc.format)}, expected ${expectedFormat}`,
    );
  if (doc.version !== supportedVersion)
    throw new ProvisioningError(
      "bundle_unsupported_version",
      `${what} version ${JSON.stringify(doc.version)} is not supported (this agent reads version ${supportedVersion})`,
      { version: doc.version },
    );
  const sig = doc.signature;
  if (
    !isObject(doc.payload) ||
    !isObject(sig) ||
    typeof sig.value !== "string" ||
    typeof sig.caFingerprint !== "string"
  )
    throw new ProvisioningError("bundle_malformed", `${what} lacks a payload or a signature`);
  if (sig.alg !== SIGNATURE_ALG)
    throw new ProvisioningError(
      "bundle_malformed",
      `${what} signature algorithm ${JSON.stringify(sig.alg)} is not supported`,
    );

  // The CA that verifies is always the one the verifier trusts, never simply the one the document carries.
  let ca: CaCertInfo;
  if ("caCertPem" in trust) {
    ca = parseCaCert(trust.caCertPem, "trusted fleet CA");
  } else {
    if (typeof sig.caCertPem !== "string")
      throw new ProvisioningError(
        "bundle_wrong_ca",
        `${what} carries no CA certificate to match the pinned fingerprint`,
      );
    let embedded: CaCertInfo;
    try {
      embedded = parseCaCert(sig.caCertPem, `${what}'s CA certificate`);
    } catch (err) {
      throw new ProvisioningError("bundle_wrong_ca", `${what}'s CA certificate is unusable`, {}, { cause: err });
    }
    if (embedded.fingerprint !== trust.caFingerprint.replace(/:/g, "").toLowerCase())
      throw new ProvisioningError("bundle_wrong_ca", `${what} is signed by a CA other than the trusted fleet CA`, {
        expected: trust.caFingerprint,
        got: embedded.fingerprint,
      });
    ca = embedded;
  }
  if (sig.caFingerprint !== ca.fingerprint)
    throw new ProvisioningError("bundle_wrong_ca", `${what} is signed by a CA other than the trusted fleet CA`, {
      expected: ca.fingerprint,
      got: sig.caFingerprint,
    });

  let canonical: string;
  try {
    canonical = canonicalJson({ format: doc.format, version: doc.version, payload: doc.payload });
  } catch (err) {
    throw new ProvisioningError(
      "bundle_tampered",
      `${what} payload cannot be canonicalised: ${(err as Error).message}`,
      {},
      {
        cause: err,
      },
    );
  }
  const verifier = createVerify("sha256");
  verifier.update(canonical);
  const key = createPublicKey(ca.certPem);
  if (!verifier.verify(key, Buffer.from(sig.value, "base64")))
    throw new ProvisioningError("bundle_tampered", `${what} signature does not verify: it was altered after signing`, {
      caFingerprint: ca.fingerprint,
    });
  return { payload: doc.payload, ca };
}
