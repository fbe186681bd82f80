/**
 * `rotate`: the device changes its own password (its `rotate-credentials` command), or, when it is
 * unreachable, the admin resets it on the server and issues a new admin-path bundle to re-enrol with.
 */
import type { BundleServer } from "../bundle.js";
import type { FleetCa } from "../ca.js";
import { generatePassword } from "../device/credentials.js";
import { readCsr } from "../device-key.js";
import { ProvisioningError } from "../errors.js";
import { type DeviceRecord, getDevice, markRotated, type StoreData } from "../store.js";
import { withAccounts } from "./accounts.js";
import { issueBundle, passwordCredential } from "./issue-bundle.js";
import type { FleetServices } from "./services.js";

/** The device, unless it is unknown (`device_unknown`) or revoked (`device_revoked`): neither has a password to rotate. */
export function rotatableDevice(data: StoreData, id: string): DeviceRecord {
  const device = getDevice(data, id);
  if (device.state === "revoked")
    throw new ProvisioningError("device_revoked", `device "${id}" is revoked`, { deviceId: id });
  return device;
}

export interface RotateResult {
  deviceId: string;
  /** The device's notes, joined; empty when it said nothing. */
  note: string;
}

export async function rotateDevice(id: string, services: FleetServices): Promise<RotateResult> {
  const device = rotatableDevice(services.store.read(), id);
  const now = services.now();
  const full = `${device.jid}/${device.resource}`;
  const notes = await withAccounts(services.connect, (accounts) => {
    services.progress(`asking ${full} to rotate its credentials (ad-hoc rotate-credentials)...`);
    return accounts.requestRotation(full);
  });
  await services.store.update((data) => markRotated(data, id, now));
  return { deviceId: id, note: notes.join("; ") };
}

export interface ResetRequest {
  id: string;
  server: BundleServer;
  /** Device CSR (PEM): the new password is sealed to its key. */
  csrPem?: string;
  /** The admin's JID, granted `rotate-credentials` on the device again. */
  adminJid?: string;
  validForMs: number;
  bundleFile: string;
}

export interface ResetResult {
  deviceId: string;
  jid: string;
  bundleFile: string;
  bundleId: string;
}

export async function resetDevicePassword(
  req: ResetRequest,
  ca: FleetCa,
  services: FleetServices,
): Promise<ResetResult> {
  const { id } = req;
  const device = rotatableDevice(services.store.read(), id);
  const now = services.now();
  // Read before the reset: a CSR refused afterwards would leave the device locked out without a bundle.
  const csr = req.csrPem ? readCsr(req.csrPem) : undefined;
  const password = generatePassword();
  await withAccounts(services.connect, (accounts) => {
    services.progress(`resetting the password of ${device.jid} (XEP-0133 change-user-password)...`);
    return accounts.setPassword(device.jid, password);
  });
  const { credential, path } = passwordCredential(password, csr?.publicKeyPem);
  const admin = req.adminJid?.split("/")[0];
  const bundle = issueBundle(
    {
      device: { id, jid: device.jid },
      server: req.server,
      operators: [],
      fleetAdmins: admin ? [admin] : [],
      credential,
      validForMs: req.validForMs,
      now,
      file: req.bundleFile,
    },
    ca,
  );
  await services.store.update((data) => {
    const d = markRotated(data, id, now);
    d.bundleIds.push(bundle.payload.bundleId);
    d.credentialPath = path;
  });
  return { deviceId: id, jid: device.jid, bundleFile: req.bundleFile, bundleId: bundle.payload.bundleId };
}
