/**
 * `provision`: give one device an account path and a signed enrolment bundle, and record it.
 * The store is asked first, so a revoked or enrolled device costs no account or invite on the server.
 */
import type { BundleCredential, BundleServer } from "../bundle.js";
import { type FleetCa, signDeviceCsr } from "../ca.js";
import { generatePassword } from "../device/credentials.js";
import { readCsr } from "../device-key.js";
import { ProvisioningError } from "../errors.js";
import type { Tags } from "../selector.js";
import { addProvisioned, type CredentialPath } from "../store.js";
import { withAccounts } from "./accounts.js";
import { issueBundle, passwordCredential } from "./issue-bundle.js";
import type { FleetServices } from "./services.js";

export type CredentialRequest =
  /** Ask the server for a one-time invite: the device registers with a password that never leaves it. */
  | { kind: "invite" }
  /** An invite token obtained elsewhere (e.g. prosodyctl): no server step at all. */
  | { kind: "invite-token"; token: string }
  /** Create the account now (XEP-0133 add-user) with a random password carried by the bundle. */
  | { kind: "admin-password" };

export interface ProvisionRequest {
  id: string;
  jid: string;
  credential: CredentialRequest;
  server: BundleServer;
  /** Device CSR (PEM): a client certificate is issued and an admin-path password sealed to its key. */
  csrPem?: string;
  /** Client certificate validity; default 365. */
  certDays?: number;
  /** Resource the agent binds, where `rotate` addresses the device. */
  resource?: string;
  /** Tags recorded for the device (selector.ts). */
  tags?: Tags;
  pubsubService?: string;
  operators: string[];
  /** The admin's JID: granted `rotate-credentials` on the device (and nothing more unless an operator). */
  adminJid?: string;
  validForMs: number;
  /** Issue a new bundle for a device that already enrolled. */
  force: boolean;
  bundleFile: string;
}

export interface ProvisionResult {
  deviceId: string;
  jid: string;
  bundleFile: string;
  bundleId: string;
  credentialPath: CredentialPath;
  notAfter: string;
}

export async function provisionDevice(
  req: ProvisionRequest,
  ca: FleetCa,
  services: FleetServices,
): Promise<ProvisionResult> {
  const { id, jid } = req;
  const csr = req.csrPem ? readCsr(req.csrPem) : undefined;
  const admin = req.adminJid?.split("/")[0];
  const fleetAdmins = admin && !req.operators.includes(admin) ? [admin] : [];
  const now = services.now();

  // Asked before the server: a refusal must not leave an account or an invite behind.
  const existing = services.store.read().devices[id];
  if (existing?.state === "revoked")
    throw new ProvisioningError("device_revoked", `device "${id}" was revoked; use a new device id`, { deviceId: id });
  if (existing?.state === "enrolled" && !req.force)
    throw new ProvisioningError(
      "device_exists",
      `device "${id}" is already enrolled; pass --force to issue a new bundle`,
      { deviceId: id },
    );

  const { credential, path } = await obtainCredential(req, csr?.publicKeyPem, now, services);
  const clientCert = req.csrPem
    ? signDeviceCsr(ca, req.csrPem, { jid, validDays: req.certDays ?? 365, now })
    : undefined;
  const bundle = issueBundle(
    {
      device: { id, jid },
      server: req.server,
      pubsubService: req.pubsubService,
      operators: req.operators,
      fleetAdmins,
      credential,
      clientCert: clientCert && { certPem: clientCert.certPem, serial: clientCert.serial },
      validForMs: req.validForMs,
      now,
      file: req.bundleFile,
    },
    ca,
  );
  await services.store.update((data) =>
    addProvisioned(
      data,
      {
        id,
        jid,
        credentialPath: path,
        bundleId: bundle.payload.bundleId,
        ...(req.resource ? { resource: req.resource } : {}),
        ...(clientCert ? { certSerial: clientCert.serial } : {}),
        ...(req.tags ? { tags: req.tags } : {}),
        ...(req.pubsubService ? { pubsubService: req.pubsubService } : {}),
      },
      now,
      { allowReprovision: req.force },
    ),
  );
  return {
    deviceId: id,
    jid,
    bundleFile: req.bundleFile,
    bundleId: bundle.payload.bundleId,
    credentialPath: path,
    notAfter: bundle.payload.notAfter,
  };
}

async function obtainCredential(
  req: ProvisionRequest,
  devicePublicKeyPem: string | undefined,
  now: Date,
  services: FleetServices,
): Promise<{ credential: BundleCredential; path: CredentialPath }> {
  const { progress } = services;
  switch (req.credential.kind) {
    case "invite-token":
      return { credential: { type: "invite", token: req.credential.token }, path: "invite" };
    case "invite": {
      const domain = req.jid.split("@")[1]!;
      const invite = await withAccounts(services.connect, (accounts) => {
        progress(`creating a one-time account invite on ${domain}...`);
        return accounts.createInvite(domain);
      });
      if (invite.expires && Date.parse(invite.expires) < now.getTime() + req.validForMs)
        progress(`note: the server's invite expires at ${invite.expires}, before the bundle does`);
      return { credential: { type: "invite", token: invite.token, uri: invite.uri }, path: "invite" };
    }
    case "admin-password": {
      const password = generatePassword();
      await withAccounts(services.connect, (accounts) => {
        progress(`creating account ${req.jid} (XEP-0133 add-user)...`);
        return accounts.addUser(req.jid, password);
      });
      if (!devicePublicKeyPem)
        progress("warning: no --csr: the password is in clear inside the (signed) bundle; protect and delete the file");
      return passwordCredential(password, devicePublicKeyPem);
    }
  }
}
