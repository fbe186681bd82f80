/**
 * Accounts for a simulated fleet, created in bulk through the server's admin commands (XEP-0133
 * add-user, what `iot-fleet` uses for one device: provisioning/xmpp-admin.ts), a bounded number at
 * a time. Works on Prosody (mod_admin_adhoc) and ejabberd (mod_configure) alike, whatever the
 * storage behind them.
 */
import { forEachBounded } from "../kernel/bounded.js";
import { describeError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import { connectAdmin } from "../provisioning/admin-session.js";
import type { SessionPort } from "../provisioning/session-port.js";
import { addUser } from "../provisioning/xmpp-admin.js";
import { FleetError } from "./fleet.js";

export interface BulkAccountsOptions {
  /** The fleet admin's session (an admin of the server). */
  admin: SessionPort;
  jids: string[];
  password: (jid: string) => string;
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
  /** An account that already exists is kept as it is (a re-run of the same fleet). Default true. */
  keepExisting?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Creates the accounts; resolves with how many were new; rejects listing every failure. */
export async function createAccounts(o: BulkAccountsOptions): Promise<{ created: number; existing: number }> {
  let done = 0;
  let created = 0;
  let existing = 0;
  const failures: string[] = [];
  await forEachBounded(o.jids, o.concurrency ?? 8, async (jid) => {
    try {
      await addUser(o.admin, jid, o.password(jid));
      created++;
    } catch (err) {
      // Prosody says so in an error note, ejabberd with a <conflict/>.
      const text = `${(err as Error).message} ${JSON.stringify(describeError(err))}`;
      if ((o.keepExisting ?? true) && /already exists|conflict/i.test(text)) existing++;
      else failures.push(`${jid}: ${(err as Error).message}`);
    }
    o.onProgress?.(++done, o.jids.length);
  });
  if (failures.length > 0)
    throw new FleetError(
      "fleet_accounts_failed",
      `${failures.length} of ${o.jids.length} accounts not created: ${failures.slice(0, 5).join("; ")}`,
      { failures: failures.slice(0, 50) },
    );
  return { created, existing };
}

/** How the fleet admin logs in (one session for the whole bulk run). */
export interface AdminLogin {
  jid: string;
  password: string;
  /** host:port */
  server: string;
  caFile: string;
  log?: Logger;
}

/** createAccounts() on a session of its own: logs in as the admin, creates, logs out. */
export async function createAccountsAsAdmin(
  login: AdminLogin,
  o: Omit<BulkAccountsOptions, "admin">,
): Promise<{ created: number; existing: number }> {
  const admin = await connectAdmin(login);
  try {
    return await createAccounts({ ...o, admin: admin.session });
  } finally {
    await admin.close();
  }
}
