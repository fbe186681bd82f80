/**
 * The reconnect loop: one connection attempt after another until stopped, with a wait between
 * them. Waits use exponential backoff with full jitter, reset after an attempt that got online; a
 * failure that needs a person (a refused password, an untrusted certificate) waits
 * `authFailureDelayMs` instead, so the agent never hammers a server that said no.
 *
 * A refused password is the one such failure a server may report by mistake: ejabberd on SQL
 * answers a login whose account query failed (its connection pool restarting after a node joined
 * a cluster, the database away) with the same not-authorized as a wrong password. So the first
 * `authFailureRetries` refusals in a row are retried on the normal backoff, logged as warnings and
 * not yet a fault; the one after them is the fault and waits the long delay.
 */
import { Backoff } from "../kernel/backoff.js";
import { AgentError, describeError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import type { TimerHandle, Timers } from "../kernel/timers.js";
import type { XmppConfig } from "./config.js";
import { AuthError } from "./negotiate.js";

/** Failures that need a person (credentials, certificates, server policy), not a quick retry. */
const PERSISTENT_FAILURES = new Set([
  "auth_failed",
  "tls_cert_rejected",
  "tls_pin_mismatch",
  "tls_unavailable",
  "tls_refused",
  "sasl_no_mechanism",
  "sasl_plain_refused",
  "sasl_server_signature",
  "tls_ca_unreadable",
  "tls_file_unreadable",
]);

export function isPersistentFailure(err: AgentError): boolean {
  return err instanceof AuthError || PERSISTENT_FAILURES.has(err.code);
}

export interface ReconnectOptions {
  config: XmppConfig["reconnect"];
  timers: Timers;
  log: Logger;
  random?: () => number;
  /** One connection from connect to close; resolves true when it got online. */
  attempt: () => Promise<boolean>;
  /** An attempt failed; `persistent` when it needs a person. */
  failed: (err: AgentError, persistent: boolean) => void;
  /** The wait before the next attempt begins. */
  waiting: () => void;
}

export class ReconnectLoop {
  private readonly backoff: Backoff;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wait: { handle: TimerHandle; wake: () => void } | undefined;
  /** retryNow() was called during an attempt: the wait after it is skipped. */
  private skipNextWait = false;
  /** Refused logins in a row since the last attempt that got online. */
  private refusals = 0;

  constructor(private readonly o: ReconnectOptions) {
    this.backoff = new Backoff(o.config, o.random);
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  /** stop() was asked for: the current attempt is the last. */
  get stopRequested(): boolean {
    return this.stopping;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /**
   * Ends the loop: the wait, if any, ends now; `endAttempt` ends an attempt under way (closes its
   * connection). Resolves when the loop has finished.
   */
  async stop(endAttempt: () => void): Promise<void> {
    this.stopping = true;
    this.wait?.wake();
    endAttempt();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * Ends the current wait now; during an attempt that is still connecting (`connecting`), skips
   * the wait after it instead. No effect when not running or stopping.
   */
  retryNow(connecting: boolean): void {
    if (this.stopping || !this.loop) return;
    if (this.wait) this.wait.wake();
    else if (connecting) this.skipNextWait = true;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let wasOnline = false;
      let failure: AgentError | undefined;
      try {
        wasOnline = await this.o.attempt();
      } catch (err) {
        failure =
          err instanceof AgentError
            ? err
            : new AgentError("connect_failed", (err as Error).message, {}, { cause: err });
      }
      if (this.stopping) break;
      let delay: number;
      if (failure) {
        const refused = failure.code === "auth_failed";
        if (refused) this.refusals++;
        const persistent =
          isPersistentFailure(failure) && !(refused && this.refusals <= this.o.config.authFailureRetries);
        // A refused password or certificate will not fix itself in a second: wait long, and say so loudly.
        delay = persistent ? this.o.config.authFailureDelayMs : this.backoff.next();
        this.o.log[persistent ? "error" : "warn"]("connection attempt failed", {
          error: describeError(failure),
          retryInMs: delay,
          ...(refused && !persistent ? { refusalsInARow: this.refusals } : {}),
        });
        this.o.failed(failure, persistent);
      } else {
        if (wasOnline) {
          this.backoff.reset();
          this.refusals = 0;
          // A retryNow() aimed at an attempt that then succeeded is spent.
          this.skipNextWait = false;
        }
        delay = this.backoff.next();
        this.o.log.info("reconnecting", { retryInMs: delay });
      }
      this.o.waiting();
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.skipNextWait) {
      this.skipNextWait = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = () => {
        this.wait?.handle.cancel();
        this.wait = undefined;
        resolve();
      };
      this.wait = { handle: this.o.timers.setTimeout(wake, ms), wake };
    });
  }
}
