/**
 * The step `provision` and `rotate --admin-reset` share: sign an enrolment bundle and write it
 * where the admin asked, readable by the owner only (it may hold an invite token or a password).
 */
import {
  type BundleCredential,
  type BundleServer,
  createBundle,
  type EnrolmentBundle,
  serialiseBundle,
} from "../bundle.js";
import type { FleetCa } from "../ca.js";
import { sealToPublicKey } from "../device-key.js";
import { writeFileAtomic } from "../fsutil.js";
import type { CredentialPath } from "../store.js";

export interface BundleOrder {
  device: { id: string; jid: string };
  server: BundleServer;
  pubsubService?: string;
  operators: string[];
  fleetAdmins: string[];
  credential: BundleCredential;
  clientCert?: { certPem: string; serial: string };
  validForMs: number;
  now: Date;
  file: string;
}

export function issueBundle(order: BundleOrder, ca: FleetCa): EnrolmentBundle {
  const bundle = createBundle(
    {
      device: order.device,
      server: order.server,
      pubsub: order.pubsubService ? { service: order.pubsubService } : {},
      operators: order.operators,
      fleetAdmins: order.fleetAdmins,
      credential: order.credential,
      clientCert: order.clientCert,
      validForMs: order.validForMs,
      now: order.now,
    },
    ca,
  );
  writeFileAtomic(order.file, serialiseBundle(bundle), 0o600);
  return bundle;
}

/**
 * An admin-path password as a bundle credential: sealed to the device's key when it sent a CSR,
 * so only that device can read it; in clear inside the signed bundle otherwise.
 */
export function passwordCredential(
  password: string,
  devicePublicKeyPem: string | undefined,
): { credential: BundleCredential; path: CredentialPath } {
  return devicePublicKeyPem
    ? {
        credential: { type: "password-sealed", ...sealToPublicKey(devicePublicKeyPem, password) },
        path: "admin-password-sealed",
      }
    : { credential: { type: "password", password }, path: "admin-password" };
}
