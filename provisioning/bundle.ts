/**
 * Enrolment bundles: everything one device needs to join the fleet, signed by the fleet CA.
 * Format documented in docs/provisioning.md. `createBundle` runs on the admin's machine,
 * `verifyBundle` on the device before anything in the bundle is used.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { normaliseFingerprint } from "./ca.js";
import type { SealedSecret } from "./device-key.js";
import { ProvisioningError } from "./errors.js";
import { type SignedDocument, signDocument, type TrustAnchor, verifyDocument } from "./signed.js";

export const BUNDLE_FORMAT = "iot-enrolment-bundle";
export const BUNDLE_VERSION = 1;

export type BundleCredential =
  /** Preferred: the device registers its own account (XEP-0077 + Prosody invite token); its password never leaves it. */
  | { type: "invite"; token: string; uri?: string }
  /** Admin path, device made a CSR: the password sealed to the device key (RSA-OAEP-256). */
  | ({ type: "password-sealed" } & SealedSecret)
  /** Admin path without a device key: the password in clear inside the signed bundle (the weaker path). */
  | { type: "password"; password: string };

export interface BundleServer {
  host: string;
  port: number;
  /** The server's CA certificate (PEM), trusted instead of the system store. */
  caCertPem?: string;
  /** SHA-256 of the server certificate DER, hex. */
  pinSha256?: string;
  tlsServername?: string;
  directTls?: boolean;
}

export interface BundlePayload {
  bundleId: string;
  nonce: string;
  issuedAt: string;
  notBefore: string;
  notAfter: string;
  device: { id: string; jid: string };
  server: BundleServer;
  pubsub: { service?: string; nodePrefix?: string };
  /** Bare JIDs (or domains) granted every device command. */
  operators: string[];
  /** Fleet admin JIDs granted only the `rotate-credentials` command (least privilege). */
  fleetAdmins?: string[];
  credential: BundleCredential;
  /** Client certificate for SASL EXTERNAL (XEP-0178), when the device sent a CSR. */
  clientCert?: { certPem: string; serial: string };
}

export type EnrolmentBundle = SignedDocument<BundlePayload>;

export interface CreateBundleInput {
  device: { id: string; jid: string };
  server: BundleServer;
  pubsub?: { service?: string; nodePrefix?: string };
  operators?: string[];
  fleetAdmins?: string[];
  credential: BundleCredential;
  clientCert?: { certPem: string; serial: string };
  validForMs: number;
  now?: Date;
}

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;
const DOMAIN_OR_JID = /^([^@/\s]+@)?[^@/\s]+$/;

export function createBundle(input: CreateBundleInput, ca: Parameters<typeof signDocument>[3]): EnrolmentBundle {
  const now = input.now ?? new Date();
  const payload: BundlePayload = {
    bundleId: randomUUID(),
    nonce: randomBytes(16).toString("base64url"),
    issuedAt: now.toISOString(),
    notBefore: new Date(now.getTime() - 60_000).toISOString(),
    notAfter: new Date(now.getTime() + input.validForMs).toISOString(),
    device: input.device,
    server: input.server,
    pubsub: input.pubsub ?? {},
    operators: input.operators ?? [],
    ...(input.fleetAdmins && input.fleetAdmins.length > 0 ? { fleetAdmins: input.fleetAdmins } : {}),
    credential: input.credential,
    ...(input.clientCert ? { clientCert: input.clientCert } : {}),
  };
  // Refuse to sign something the device would refuse to read.
  checkPayload(payload as unknown as Record<string, unknown>);
  return signDocument(BUNDLE_FORMAT, BUNDLE_VERSION, payload, ca);
}

export interface VerifyOptions {
  /** Bundle ids the fleet revoked (revocation.ts); a listed bundle is `bundle_revoked`. */
  revokedBundleIds?: Iterable<string>;
}

/**
 * Verifies a parsed bundle against the trusted fleet CA at time `now`. Refusals, in the order
 * checked: bundle_malformed, bundle_unsupported_version, bundle_wrong_ca, bundle_tampered,
 * bundle_not_yet_valid, bundle_expired, bundle_revoked.
 */
export function verifyBundle(bundle: unknown, trust: TrustAnchor, now: Date, opts: VerifyOptions = {}): BundlePayload {
  const { payload, ca } = verifyDocument(bundle, BUNDLE_FORMAT, BUNDLE_VERSION, trust, "bundle");
  const p = checkPayload(payload);
  const t = now.getTime();
  if (t < ca.notBefore.getTime() || t > ca.notAfter.getTime())
    throw new ProvisioningError("bundle_expired", "the fleet CA certificate is outside its validity period", {
      notBefore: ca.notBefore.toISOString(),
      notAfter: ca.notAfter.toISOString(),
    });
  if (t < Date.parse(p.notBefore))
    throw new ProvisioningError(
      "bundle_not_yet_valid",
      `bundle ${p.bundleId} is not valid before ${p.notBefore} (check the device clock)`,
      { bundleId: p.bundleId, notBefore: p.notBefore, now: now.toISOString() },
    );
  if (t > Date.parse(p.notAfter))
    throw new ProvisioningError(
      "bundle_expired",
      `bundle ${p.bundleId} expired at ${p.notAfter}; provision a new one`,
      {
        bundleId: p.bundleId,
        notAfter: p.notAfter,
        now: now.toISOString(),
      },
    );
  for (const id of opts.revokedBundleIds ?? [])
    if (id === p.bundleId)
      throw new ProvisioningError("bundle_revoked", `bundle ${p.bundleId} has been revoked`, { bundleId: p.bundleId });
  return p;
}

/** Parses bundle file text; malformed JSON is `bundle_malformed`. */
export function parseBundleText(text: string, source = "bundle"): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProvisioningError(
      "bundle_malformed",
      `${source} is not valid JSON: ${(err as Error).message}`,
      { source },
      {
        cause: err,
      },
    );
  }
}

export function serialiseBundle(bundle: EnrolmentBundle): string {
  return `${JSON.stringify(bundle, null, 2)}\n`;
}

// ---- payload validation: a signed payload is trusted for origin, still checked for shape ----

function fail(path: string, msg: string): never {
  throw new ProvisioningError("bundle_malformed", `bundle ${path} ${msg}`, { path });
}

function obj(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "must be an object");
  return v as Record<string, unknown>;
}

function str(v: unknown, path: string, re?: RegExp): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 16_384) fail(path, "must be a non-empty string");
  if (re && !re.test(v)) fail(path, `is malformed: ${JSON.stringify(v.slice(0, 80))}`);
  return v;
}

function optStr(v: unknown, path: string, re?: RegExp): string | undefined {
  return v === undefined ? undefined : str(v, path, re);
}

function date(v: unknown, path: string): string {
  const s = str(v, path);
  if (Number.isNaN(Date.parse(s))) fail(path, "must be an ISO 8601 timestamp");
  return s;
}

function checkPayload(p: Record<string, unknown>): BundlePayload {
  str(p.bundleId, "payload.bundleId");
  str(p.nonce, "payload.nonce");
  date(p.issuedAt, "payload.issuedAt");
  const nb = date(p.notBefore, "payload.notBefore");
  const na = date(p.notAfter, "payload.notAfter");
  if (Date.parse(na) <= Date.parse(nb)) fail("payload.notAfter", "must be after notBefore");
  const device = obj(p.device, "payload.device");
  str(device.id, "payload.device.id", DEVICE_ID);
  str(device.jid, "payload.device.jid", BARE_JID);
  const server = obj(p.server, "payload.server");
  str(server.host, "payload.server.host");
  if (typeof server.port !== "number" || !Number.isInteger(server.port) || server.port < 1 || server.port > 65535)
    fail("payload.server.port", "must be a port number");
  optStr(server.caCertPem, "payload.server.caCertPem", /-----BEGIN CERTIFICATE-----/);
  if (server.pinSha256 !== undefined && !normaliseFingerprint(str(server.pinSha256, "payload.server.pinSha256")))
    fail("payload.server.pinSha256", "must be 64 hex digits");
  optStr(server.tlsServername, "payload.server.tlsServername");
  if (server.directTls !== undefined && typeof server.directTls !== "boolean")
    fail("payload.server.directTls", "must be true or false");
  const pubsub = obj(p.pubsub, "payload.pubsub");
  optStr(pubsub.service, "payload.pubsub.service", DOMAIN_OR_JID);
  if (pubsub.nodePrefix !== undefined && typeof pubsub.nodePrefix !== "string")
    fail("payload.pubsub.nodePrefix", "must be a string");
  if (!Array.isArray(p.operators)) fail("payload.operators", "must be a list");
  for (const [i, o] of p.operators.entries()) str(o, `payload.operators[${i}]`, DOMAIN_OR_JID);
  if (p.fleetAdmins !== undefined) {
    if (!Array.isArray(p.fleetAdmins)) fail("payload.fleetAdmins", "must be a list");
    for (const [i, o] of p.fleetAdmins.entries()) str(o, `payload.fleetAdmins[${i}]`, BARE_JID);
  }
  const cred = obj(p.credential, "payload.credential");
  switch (cred.type) {
    case "invite":
      str(cred.token, "payload.credential.token");
      optStr(cred.uri, "payload.credential.uri");
      break;
    case "password":
      str(cred.password, "payload.credential.password");
      break;
    case "password-sealed":
      if (cred.alg !== "RSA-OAEP-256") fail("payload.credential.alg", "must be RSA-OAEP-256");
      str(cred.ciphertext, "payload.credential.ciphertext");
      str(cred.keyFingerprint, "payload.credential.keyFingerprint", /^[0-9a-f]{64}$/);
      break;
    default:
      fail("payload.credential.type", "must be invite, password or password-sealed");
  }
  if (p.clientCert !== undefined) {
    const cc = obj(p.clientCert, "payload.clientCert");
    str(cc.certPem, "payload.clientCert.certPem", /-----BEGIN CERTIFICATE-----/);
    str(cc.serial, "payload.clientCert.serial", /^[0-9a-f]+$/);
  }
  return p as unknown as BundlePayload;
}
