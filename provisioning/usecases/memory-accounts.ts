/**
 * An in-memory AccountBackend for tests of the use cases: accounts, sessions and invites in Maps,
 * failing with the same error codes as the XMPP backend does against Prosody and ejabberd
 * (docs/provisioning.md), and counting connections so a test can tell an offline path from an online one.
 */
import { randomBytes } from "node:crypto";
import { ProvisioningError } from "../errors.js";
import type { AccountBackend, AccountConnector, AccountInvite } from "./accounts.js";

function bare(jid: string): string {
  return jid.split("/")[0]!.toLowerCase();
}

function domainOf(jid: string): string {
  return bare(jid).split("@")[1] ?? "";
}

export interface MemoryAccountsOptions {
  /** Neither Prosody 0.12 nor ejabberd 23.01 offer XEP-0133 disable-user, hence false by default. */
  supportsDisable?: boolean;
  /** Expiry the server reports for new invites (ISO time). */
  inviteExpires?: string;
}

export class MemoryAccounts implements AccountBackend {
  /** Bare JID -> password. */
  readonly accounts = new Map<string, string>();
  readonly disabled = new Set<string>();
  /** Full JIDs with a session. */
  readonly online = new Set<string>();
  /** Invite token -> domain, until redeemed. */
  readonly invites = new Map<string, string>();
  /** Every operation, in order, as "name arg": what a test asserts the use case asked for. */
  readonly calls: string[] = [];
  /** Makes the named operation fail with this error (once set, every call fails). */
  readonly failures = new Map<keyof AccountBackend, Error>();
  connections = 0;
  closed = 0;

  constructor(private readonly opts: MemoryAccountsOptions = {}) {}

  readonly connect: AccountConnector = async () => {
    this.connections++;
    return {
      accounts: this,
      close: async () => {
        this.closed++;
      },
    };
  };

  /** What the device does with an invite: registers its own account (XEP-0077 with the token). */
  redeemInvite(token: string, jid: string, password: string): void {
    if (this.invites.get(token) !== domainOf(jid))
      throw new ProvisioningError("invite_invalid", `invite ${token} is unknown, used or for another domain`);
    this.invites.delete(token);
    this.accounts.set(bare(jid), password);
  }

  async createInvite(domain: string): Promise<AccountInvite> {
    this.record("createInvite", domain);
    const token = randomBytes(8).toString("hex");
    this.invites.set(token, domain);
    const invite: AccountInvite = { token, uri: `xmpp:${domain}?register;preauth=${token}` };
    if (this.opts.inviteExpires) invite.expires = this.opts.inviteExpires;
    return invite;
  }

  async addUser(jid: string, password: string): Promise<void> {
    this.record("addUser", jid);
    if (this.accounts.has(bare(jid))) throw this.refused("add-user", `${jid} already exists (conflict)`);
    this.accounts.set(bare(jid), password);
  }

  async setPassword(jid: string, password: string): Promise<void> {
    this.record("setPassword", jid);
    this.existing(jid, "change-user-password");
    this.accounts.set(bare(jid), password);
    this.dropSessions(jid);
  }

  async disableUser(jid: string): Promise<void> {
    this.record("disableUser", jid);
    if (!this.opts.supportsDisable)
      throw new ProvisioningError("adhoc_unsupported", `${domainOf(jid)} does not offer the command disable-user`);
    this.existing(jid, "disable-user");
    this.disabled.add(bare(jid));
    this.dropSessions(jid);
  }

  async endSessions(jid: string): Promise<void> {
    this.record("endSessions", jid);
    this.dropSessions(jid);
  }

  async deleteUser(jid: string): Promise<void> {
    this.record("deleteUser", jid);
    if (!this.accounts.has(bare(jid)))
      throw new ProvisioningError("adhoc_failed", `${jid} was not deleted: the account does not exist`, { jid });
    this.accounts.delete(bare(jid));
    this.dropSessions(jid);
  }

  async onlineUsers(domain: string): Promise<string[]> {
    this.record("onlineUsers", domain);
    return [...this.online].filter((j) => domainOf(j) === domain.toLowerCase());
  }

  async requestRotation(deviceFullJid: string): Promise<string[]> {
    this.record("requestRotation", deviceFullJid);
    if (!this.online.has(deviceFullJid))
      throw new ProvisioningError(
        "adhoc_unsupported",
        `${deviceFullJid} does not offer the command rotate-credentials (service-unavailable)`,
      );
    this.accounts.set(bare(deviceFullJid), randomBytes(32).toString("base64url"));
    return ["Password rotated"];
  }

  private record(op: keyof AccountBackend, arg: string): void {
    this.calls.push(`${op} ${arg}`);
    const failure = this.failures.get(op);
    if (failure) throw failure;
  }

  private existing(jid: string, command: string): void {
    if (!this.accounts.has(bare(jid))) throw this.refused(command, `${jid} does not exist`);
  }

  private refused(command: string, why: string): ProvisioningError {
    return new ProvisioningError("adhoc_failed", `${command} failed: ${why}`);
  }

  private dropSessions(jid: string): void {
    for (const full of this.online) if (bare(full) === bare(jid)) this.online.delete(full);
  }
}
