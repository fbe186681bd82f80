/**
 * `revoke`: shut a device out. The revocation is recorded and the signed list written before the
 * server is contacted, so the list names the device even when the server is unreachable; the
 * account is then deleted (or disabled, where a server can), which also ends its sessions.
 */
import { isProvisioningError } from "../errors.js";
import { getDevice, markRevoked } from "../store.js";
import { type AccountBackend, withAccounts } from "./accounts.js";
import { publishRevocations, type RevocationOutput } from "./revocations.js";
import type { FleetServices } from "./services.js";

export interface RevokeRequest {
  id: string;
  /** Try XEP-0133 disable-user first, falling back to deletion where the server has none. */
  disable: boolean;
  /** Record the revocation without contacting the server. */
  localOnly: boolean;
}

/** What became of the account: "untouched" with localOnly; "already deleted" when a re-run found none. */
export type AccountOutcome = "untouched" | "disabled" | "deleted" | "already deleted";

export interface RevokeResult {
  deviceId: string;
  jid: string;
  /** The fleet home's signed revocation list. */
  revocationFile: string;
  account: AccountOutcome;
}

export async function revokeDevice(
  req: RevokeRequest,
  services: FleetServices,
  revocations: RevocationOutput,
): Promise<RevokeResult> {
  const { id } = req;
  const now = services.now();
  const device = getDevice(services.store.read(), id);
  await services.store.update((data) => {
    if (data.devices[id]?.state !== "revoked") markRevoked(data, id, now);
  });
  const revocationFile = publishRevocations(services.store, now, revocations);
  services.progress(`revocation recorded; signed list written to ${revocationFile}`);
  const result = { deviceId: id, jid: device.jid, revocationFile };
  if (req.localOnly) return { ...result, account: "untouched" };
  const account = await withAccounts(services.connect, (accounts) =>
    shutOut(accounts, device.jid, req.disable, device.state === "revoked", services.progress),
  );
  return { ...result, account };
}

/** Shuts the account out on the server: disable where it can (with `disable`), else delete; ends its sessions. */
export async function shutOut(
  accounts: AccountBackend,
  jid: string,
  disable: boolean,
  revokedBefore: boolean,
  progress: (line: string) => void,
): Promise<AccountOutcome> {
  let outcome: AccountOutcome = "deleted";
  if (disable) {
    try {
      progress(`disabling ${jid} (XEP-0133 disable-user)...`);
      await accounts.disableUser(jid);
      outcome = "disabled";
    } catch (err) {
      if (!isProvisioningError(err, "adhoc_unsupported")) throw err;
      progress("the server has no disable-user; deleting the account instead");
    }
  }
  try {
    await accounts.endSessions(jid);
  } catch {
    // Best effort: deletion also closes sessions on Prosody and ejabberd; an absent session is fine.
  }
  if (outcome === "disabled") return outcome;
  progress(`deleting ${jid} (XEP-0133 delete-user)...`);
  try {
    await accounts.deleteUser(jid);
  } catch (err) {
    // Re-running revoke after a successful delete finds no account: that is the goal reached.
    if (!(isProvisioningError(err, "adhoc_failed") && revokedBefore)) throw err;
    return "already deleted";
  }
  return outcome;
}
