/**
 * The running agent's revocation check, made once at start: is this device's enrolment bundle or
 * client certificate on the fleet's signed revocation list? A revoked device refuses to start with
 * a clear error (ConfigError, exit 3: restarting cannot fix it) instead of retrying a login that the
 * server refuses forever.
 *
 * Trust: the list must be signed by the fleet CA saved at enrolment (credentials/fleet-ca.pem),
 * whose fingerprint is also recorded in credentials/enrolment.json; a list signed by anyone else,
 * malformed or altered stops the agent too (fail closed: an unverifiable list says nothing safe).
 *
 * Never backwards: the newest verified list is kept in credentials/revocations.json. A configured
 * file with a lower `sequence` (an old image, a replay) is ignored in favour of that copy, and a
 * missing file falls back to it, so a revocation once seen stays in force.
 *
 * This module loads node-forge (through the CA code); the agent imports it only when
 * provisioning.revocationListFile is set.
 */
import { readFileSync } from "node:fs";
import { ConfigError, describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { parseCaCert } from "../ca.js";
import { isProvisioningError } from "../errors.js";
import { isRevoked, type RevocationPayload, verifyRevocationList } from "../revocation.js";
import { type CredentialStore, ENROLMENT_FILE, FLEET_CA_FILE } from "./credentials.js";

/** The newest verified revocation list this device has seen (public, 0644). */
export const REVOCATION_CACHE_FILE = "revocations.json";

export interface EnrolmentRecord {
  bundleId: string;
  deviceId?: string;
  jid?: string;
  fleetCaFingerprint?: string;
  clientCertSerial?: string;
}

export interface RevocationCheckOptions {
  credentials: CredentialStore;
  /** provisioning.revocationListFile, absolute. */
  listFile: string;
  log?: Logger;
}

export interface RevocationCheckResult {
  /** The list in force: the configured file's or the kept copy's, whichever is newer. */
  list: RevocationPayload;
  /** Where it came from; "none" when no list exists yet (nothing revoked). */
  source: "file" | "kept" | "none";
}

const EMPTY: RevocationPayload = {
  issuedAt: new Date(0).toISOString(),
  sequence: 0,
  bundleIds: [],
  certSerials: [],
  jids: [],
};

export function readEnrolmentRecord(credentials: CredentialStore): EnrolmentRecord {
  const file = credentials.path(ENROLMENT_FILE);
  const text = credentials.read(ENROLMENT_FILE);
  if (text === undefined)
    throw new ConfigError(
      "enrolment_record_missing",
      `provisioning.revocationListFile is set, but ${file} (written by iot-agent enroll) does not exist: this device's bundle cannot be checked`,
      { path: "provisioning.revocationListFile", file },
    );
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch (err) {
    throw new ConfigError("enrolment_record_invalid", `${file} is not JSON: ${(err as Error).message}`, { file });
  }
  const r = rec as Record<string, unknown>;
  if (typeof rec !== "object" || rec === null || typeof r.bundleId !== "string" || r.bundleId.length === 0)
    throw new ConfigError("enrolment_record_invalid", `${file} has no bundleId`, { file });
  const opt = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : undefined);
  const out: EnrolmentRecord = { bundleId: r.bundleId };
  for (const k of ["deviceId", "jid", "fleetCaFingerprint", "clientCertSerial"] as const) {
    const v = opt(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function fleetCa(credentials: CredentialStore, record: EnrolmentRecord): string {
  const file = credentials.path(FLEET_CA_FILE);
  const pem = credentials.read(FLEET_CA_FILE);
  if (pem === undefined)
    throw new ConfigError(
      "revocation_no_trust_anchor",
      `provisioning.revocationListFile is set, but the fleet CA saved at enrolment (${file}) is missing: re-enrol the device`,
      { path: "provisioning.revocationListFile", file },
    );
  let fingerprint: string;
  try {
    fingerprint = parseCaCert(pem, file).fingerprint;
  } catch (err) {
    throw new ConfigError(
      "revocation_no_trust_anchor",
      `${file} is not a usable CA certificate`,
      { file },
      { cause: err },
    );
  }
  if (record.fleetCaFingerprint && record.fleetCaFingerprint !== fingerprint)
    throw new ConfigError(
      "revocation_no_trust_anchor",
      `${file} is not the fleet CA this device enrolled with (fingerprint ${fingerprint}, enrolment recorded ${record.fleetCaFingerprint})`,
      { file, expected: record.fleetCaFingerprint, got: fingerprint },
    );
  return pem;
}

/** Parses and verifies one list document; throws the ProvisioningError of the first failed check. */
function verifyText(text: string, caCertPem: string): { payload: RevocationPayload; doc: unknown } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError("revocation_list_invalid", `not JSON: ${(err as Error).message}`);
  }
  return { payload: verifyRevocationList(doc, { caCertPem }), doc };
}

export function checkRevocation(opts: RevocationCheckOptions): RevocationCheckResult {
  const log = (opts.log ?? silentLogger).child({ component: "revocation" });
  const { credentials, listFile } = opts;
  const record = readEnrolmentRecord(credentials);
  const caCertPem = fleetCa(credentials, record);

  // The configured file: missing is allowed (nothing revoked yet, or not delivered yet); anything
  // else that fails stops the agent.
  let configured: { payload: RevocationPayload; text: string } | undefined;
  let text: string | undefined;
  try {
    text = readFileSync(listFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw new ConfigError(
        "revocation_list_invalid",
        `cannot read provisioning.revocationListFile ${listFile}: ${(err as Error).message}`,
        { path: "provisioning.revocationListFile", file: listFile },
        { cause: err },
      );
  }
  if (text !== undefined) {
    try {
      configured = { payload: verifyText(text, caCertPem).payload, text };
    } catch (err) {
      const code = isProvisioningError(err) || err instanceof ConfigError ? err.code : "error";
      throw new ConfigError(
        "revocation_list_invalid",
        `revocation list ${listFile} refused: ${(err as Error).message} [${code}]; the agent does not start on a list it cannot verify [revocation_list_invalid]`,
        { path: "provisioning.revocationListFile", file: listFile, reason: code },
        { cause: err },
      );
    }
  }

  // The kept copy: damaged means lost (it is only a cache of something verified earlier).
  let kept: RevocationPayload | undefined;
  const keptText = credentials.read(REVOCATION_CACHE_FILE);
  if (keptText !== undefined) {
    try {
      kept = verifyText(keptText, caCertPem).payload;
    } catch (err) {
      log.warn("kept revocation list is unusable; ignoring it", {
        file: credentials.path(REVOCATION_CACHE_FILE),
        error: describeError(err),
      });
    }
  }

  let list: RevocationPayload;
  let source: RevocationCheckResult["source"];
  if (configured && (!kept || configured.payload.sequence >= kept.sequence)) {
    list = configured.payload;
    source = "file";
    if (keptText !== configured.text) {
      try {
        credentials.writePublic(REVOCATION_CACHE_FILE, configured.text);
      } catch (err) {
        log.warn("cannot keep a copy of the revocation list", { error: describeError(err) });
      }
    }
  } else if (kept) {
    list = kept;
    source = "kept";
    if (configured)
      log.warn("revocation list file is older than one seen before; using the newer one", {
        file: listFile,
        sequence: configured.payload.sequence,
        keptSequence: kept.sequence,
      });
    else log.warn("revocation list file missing; using the copy kept from before", { file: listFile });
  } else {
    list = EMPTY;
    source = "none";
    log.warn("revocation list file does not exist yet; nothing is revoked", { file: listFile });
  }

  const byBundle = isRevoked(list, { bundleId: record.bundleId });
  const byCert = record.clientCertSerial !== undefined && isRevoked(list, { certSerial: record.clientCertSerial });
  if (byBundle || byCert) {
    const what = byBundle
      ? `enrolment bundle ${record.bundleId}`
      : `client certificate serial ${record.clientCertSerial}`;
    throw new ConfigError(
      "device_revoked",
      `this device${record.deviceId ? ` (${record.deviceId})` : ""} is revoked by its fleet: ${what} is on the revocation list (sequence ${list.sequence}, issued ${list.issuedAt}). It will not start; re-enrol it with a new bundle from iot-fleet provision [device_revoked]`,
      {
        path: "provisioning.revocationListFile",
        bundleId: record.bundleId,
        ...(byCert ? { certSerial: record.clientCertSerial } : {}),
        sequence: list.sequence,
      },
    );
  }
  log.info("not revoked", { sequence: list.sequence, source });
  return { list, source };
}
