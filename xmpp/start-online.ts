/**
 * Starts a session and waits for its first "online", for tools that need a session before they can
 * do anything (the fleet admin's CLI, the fleet simulator's helpers). It never throws: the caller
 * turns the outcome into its own typed error. On any outcome but online the session is stopped.
 */
import type { AgentError } from "../kernel/errors.js";
import type { XmppSession } from "./session.js";

export type StartOutcome =
  | { online: true }
  /** Not online in time; lastError is the session's last connection error, if it had one. */
  | { online: false; timedOut: true; lastError?: string }
  /** The session gave up for good (refused login, untrusted certificate). */
  | { online: false; timedOut: false; fault: AgentError };

export async function startOnline(session: XmppSession, timeoutMs: number): Promise<StartOutcome> {
  const outcome = await new Promise<StartOutcome>((resolve) => {
    const done = (o: StartOutcome) => {
      clearTimeout(timer);
      session.off("online", onOnline);
      session.off("fault", onFault);
      resolve(o);
    };
    const onOnline = () => done({ online: true });
    const onFault = (fault: AgentError) => done({ online: false, timedOut: false, fault });
    const timer = setTimeout(() => {
      const lastError = session.stats().lastError;
      done({ online: false, timedOut: true, ...(lastError ? { lastError } : {}) });
    }, timeoutMs);
    session.on("online", onOnline);
    session.on("fault", onFault);
    session.start();
  });
  if (!outcome.online) await session.stop();
  return outcome;
}
