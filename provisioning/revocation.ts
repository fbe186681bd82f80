/**
 * The revocation list the agent honours: bundle ids, client-certificate serials and JIDs the fleet
 * revoked, signed by the fleet CA like a bundle. `iot-fleet revoke` rewrites it; it travels to
 * devices as a file (config, image, or pushed by the operator), and `enroll` refuses listed bundles.
 * `sequence` only grows, so a device can refuse an older list replayed over a newer one.
 */
import { readFileSync } from "node:fs";
import { ProvisioningError } from "./errors.js";
import { type SignedDocument, signDocument, type TrustAnchor, verifyDocument } from "./signed.js";

export const REVOCATION_FORMAT = "iot-revocation-list";
export const REVOCATION_VERSION = 1;

export interface RevocationPayload {
  issuedAt: string;
  sequence: number;
  bundleIds: string[];
  certSerials: string[];
  jids: string[];
}

export type RevocationList = SignedDocument<RevocationPayload>;

export function createRevocationList(
  payload: RevocationPayload,
  ca: Parameters<typeof signDocument>[3],
): RevocationList {
  return signDocument(REVOCATION_FORMAT, REVOCATION_VERSION, payload, ca);
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw new ProvisioningError("bundle_malformed", `revocation list ${what} must be a list of strings`);
  return v as string[];
}

export function verifyRevocationList(doc: unknown, trust: TrustAnchor, minSequence = 0): RevocationPayload {
  const { payload } = verifyDocument(doc, REVOCATION_FORMAT, REVOCATION_VERSION, trust, "revocation list");
  const seq = payload.sequence;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0)
    throw new ProvisioningError("bundle_malformed", "revocation list sequence must be a whole number");
  if (seq < minSequence)
    throw new ProvisioningError(
      "bundle_tampered",
      `revocation list sequence ${seq} is older than ${minSequence} (replayed?)`,
      {
        sequence: seq,
        minSequence,
      },
    );
  return {
    issuedAt: String(payload.issuedAt),
    sequence: seq,
    bundleIds: strings(payload.bundleIds, "bundleIds"),
    certSerials: strings(payload.certSerials, "certSerials"),
    jids: strings(payload.jids, "jids"),
  };
}

/** True when the list names this bundle, certificate serial or JID. */
export function isRevoked(
  list: RevocationPayload,
  what: { bundleId?: string; certSerial?: string; jid?: string },
): boolean {
  return (
    (what.bundleId !== undefined && list.bundleIds.includes(what.bundleId)) ||
    (what.certSerial !== undefined && list.certSerials.includes(what.certSerial.toLowerCase())) ||
    (what.jid !== undefined && list.jids.includes(what.jid.toLowerCase()))
  );
}

/**
 * Reads and verifies a revocation list file for the running agent. A missing file is an empty list
 * (a fleet that never revoked anything); an unreadable, forged or replayed one is an error.
 */
export function loadRevocationListFile(file: string, trust: TrustAnchor, minSequence = 0): RevocationPayload {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return { issuedAt: new Date(0).toISOString(), sequence: 0, bundleIds: [], certSerials: [], jids: [] };
    throw new ProvisioningError("enroll_io", `cannot read revocation list ${file}: ${(err as Error).message}`, {
      file,
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ProvisioningError("bundle_malformed", `revocation list ${file} is not JSON: ${(err as Error).message}`, {
      file,
    });
  }
  return verifyRevocationList(doc, trust, minSequence);
}
