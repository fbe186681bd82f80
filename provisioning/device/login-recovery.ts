/**
 * Finishes a rotation that a crash interrupted. A rotation journals the new password in
 * `password.next` before asking the server; if the agent died before renaming it over `password`,
 * nobody knows which of the two the server has. At start this tries them in order
 * (CredentialStore.candidates(): current, then journalled): each refused login (the session's
 * `refused` event, sent for every auth_failed, also those not yet counted as a fault) switches the
 * session to the next candidate and asks it to retry at once, instead of waiting out its backoff
 * or xmpp.reconnect.authFailureDelayMs. The first login that works settles the journal:
 *   - the current password worked: the server never got the change, drop the journal;
 *   - the journalled one worked: the server did, make it current (commitRotation).
 * If every candidate is refused, the session keeps alternating between them at its slow
 * auth-failure pace and the journal stays for a person (or the admin's reset) to resolve.
 * The same happens while running: a rotation whose answer never came leaves its journal, and if a
 * later re-login (not a resumption) is refused, the journalled password is tried at once.
 */
import type { AgentError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import type { SessionEvents } from "../../xmpp/session.js";
import type { CredentialStore } from "./credentials.js";

/** What this needs of the session (XmppSession fits). */
export interface RecoverableSession {
  setPassword(password: string): void;
  retryNow(): void;
  on(event: "refused", listener: (...args: SessionEvents["refused"]) => void): unknown;
  on(event: "online", listener: (...args: SessionEvents["online"]) => void): unknown;
  off(event: "refused", listener: (...args: SessionEvents["refused"]) => void): unknown;
  off(event: "online", listener: (...args: SessionEvents["online"]) => void): unknown;
}

export type RecoveryOutcome = "nothing-pending" | "kept-current" | "committed-journalled";

export interface LoginRecoveryOptions {
  session: RecoverableSession;
  credentials: CredentialStore;
  /** The password the session was created with; recovery applies only if it is the store's current one. */
  sessionPassword: string;
  log?: Logger;
  /** Told once the journal is settled (tests, status). */
  onSettled?: (outcome: RecoveryOutcome) => void;
}

export class LoginRecovery {
  private readonly log: Logger;
  private candidates: string[] = [];
  private index = 0;
  private attempts = 0;
  private active = false;
  private watching = false;

  constructor(private readonly opts: LoginRecoveryOptions) {
    this.log = (opts.log ?? silentLogger).child({ component: "credential-recovery" });
  }

  /** True while a journalled rotation is being resolved. */
  get pending(): boolean {
    return this.active;
  }

  /**
   * Call before session.start(). Resolves a journal left by an earlier run, and from then on also
   * one left while running (a rotation whose answer never came, then a re-login the server
   * refuses). Returns whether there was an interrupted rotation to resolve at start.
   */
  start(): boolean {
    if (this.watching) return this.active;
    const { credentials, session } = this.opts;
    if (credentials.readPassword() !== this.opts.sessionPassword) {
      // The session's password came from elsewhere (AGENT_PASSWORD, xmpp.password): guessing would
      // only mislead. Leave any journal as it is and say so.
      if (credentials.pendingRotation() !== undefined)
        this.log.warn(
          "interrupted rotation left unresolved: the session does not use the credential store's password",
          { dir: credentials.dir },
        );
      return false;
    }
    this.watching = true;
    session.on("refused", this.onRefused);
    if (credentials.pendingRotation() === undefined) return false;
    if (!this.activate()) return false;
    session.setPassword(this.candidates[0]!);
    this.log.warn("a password rotation was interrupted; trying the current password, then the journalled one", {
      candidates: this.candidates.length,
    });
    return true;
  }

  stop(): void {
    this.deactivate();
    if (!this.watching) return;
    this.watching = false;
    this.opts.session.off("refused", this.onRefused);
  }

  /** Takes the store's candidates; false when there is nothing to choose between. */
  private activate(): boolean {
    const { credentials } = this.opts;
    const candidates = credentials.candidates();
    if (candidates.length < 2) {
      // The journal holds the current password: the rename was all that was left to do, or never needed.
      credentials.abortRotation();
      this.opts.onSettled?.("kept-current");
      return false;
    }
    this.candidates = candidates;
    this.index = 0;
    this.attempts = 1;
    this.active = true;
    this.opts.session.on("online", this.onOnline);
    return true;
  }

  private deactivate(): void {
    if (!this.active) return;
    this.active = false;
    this.opts.session.off("online", this.onOnline);
  }

  private readonly onRefused = (_err: AgentError): void => {
    if (!this.active) {
      // The current password was just refused: if a journal appeared while running, the server may
      // have taken the journalled password after all.
      if (this.opts.credentials.pendingRotation() === undefined || !this.activate()) return;
      this.log.warn("login refused while a rotation journal exists; trying the journalled password");
    }
    this.index = (this.index + 1) % this.candidates.length;
    this.opts.session.setPassword(this.candidates[this.index]!);
    // One prompt round through the candidates; after that the session's slow pace applies.
    const prompt = this.attempts < this.candidates.length;
    this.attempts++;
    this.log.warn("login refused; switching to the other password candidate", {
      candidate: this.index === 0 ? "current" : "journalled",
      retry: prompt ? "now" : "after xmpp.reconnect.authFailureDelayMs",
    });
    if (prompt) this.opts.session.retryNow();
  };

  private readonly onOnline = (): void => {
    if (!this.active) return;
    const { credentials } = this.opts;
    const outcome: RecoveryOutcome = this.index === 0 ? "kept-current" : "committed-journalled";
    this.deactivate();
    try {
      if (outcome === "kept-current") credentials.abortRotation();
      else credentials.commitRotation();
    } catch (err) {
      // The session is up with a known-good password; only the files lag. The next start resolves it again.
      this.log.error("could not settle the rotation journal", { error: err, outcome });
      return;
    }
    this.log.info("interrupted rotation settled", { outcome });
    this.opts.onSettled?.(outcome);
  };
}
