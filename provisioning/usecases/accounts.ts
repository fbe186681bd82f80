/**
 * What the fleet use cases need from the XMPP server's account administration. The XMPP
 * implementation (../xmpp-accounts.ts) runs XEP-0133 and invite ad-hoc commands over the admin's
 * session; memory-accounts.ts keeps accounts in a Map, so the use cases are tested without a server.
 */
import type { DevicePort } from "../jobs/runner.js";
import type { AccountInvite } from "../xmpp-admin.js";

export type { AccountInvite };

export interface AccountBackend {
  /** A one-time invite to create an account on `domain`; the device registers itself with it. */
  createInvite(domain: string): Promise<AccountInvite>;
  addUser(jid: string, password: string): Promise<void>;
  /** Sets a new password; servers close the account's sessions. */
  setPassword(jid: string, password: string): Promise<void>;
  /** Fails with `adhoc_unsupported` where the server cannot disable accounts (Prosody 0.12, ejabberd 23.01). */
  disableUser(jid: string): Promise<void>;
  endSessions(jid: string): Promise<void>;
  /** Fails with `adhoc_failed` when the account was not deleted, e.g. because there is none. */
  deleteUser(jid: string): Promise<void>;
  /** Full or bare JIDs online on `domain`. */
  onlineUsers(domain: string): Promise<string[]>;
  /** Runs the device's own `rotate-credentials` command at its full JID; returns the texts of its notes. */
  requestRotation(deviceFullJid: string): Promise<string[]>;
}

export interface AccountConnection {
  accounts: AccountBackend;
  /** The devices' own commands and who is online: what fleet jobs need (absent in account-only tests). */
  devices?: DevicePort;
  /** The server's XEP-0363 file share, for releases (absent in account-only tests). */
  upload?: (service: string, file: string) => Promise<{ getUrl: string; bytes: number; ms: number }>;
  close(): Promise<void>;
}

/** Opens a connection to the server; called only by steps that need one, so offline paths stay offline. */
export type AccountConnector = () => Promise<AccountConnection>;

export async function withAccounts<T>(
  connect: AccountConnector,
  fn: (accounts: AccountBackend) => Promise<T>,
): Promise<T> {
  const c = await connect();
  try {
    return await fn(c.accounts);
  } finally {
    await c.close();
  }
}
