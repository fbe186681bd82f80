/**
 * Credential rotation on the device. The fleet admin runs the ad-hoc command `rotate-credentials`
 * at the device's full JID (iot-fleet rotate); the device then
 *   1. generates a new password and journals it (password.next, 0600),
 *   2. changes it on the server with XEP-0077 over its live session (Prosody keeps the changing
 *      session and closes the account's other sessions),
 *   3. makes the journalled password current (atomic rename) and hands it to the session for
 *      future logins.
 * The live session is never interrupted, so telemetry keeps flowing. If the server refuses, the
 * journal is dropped and the old password stays; if the answer never comes (timeout), the journal
 * stays and CredentialStore.candidates() tries both at the next login.
 */
import { Element } from "ltx";
import type { TimerHandle, Timers } from "../../kernel/timers.js";
import { realTimers } from "../../kernel/timers.js";
import type { Logger } from "../../kernel/log.js";
import { silentLogger } from "../../kernel/log.js";
import { isAgentError } from "../../kernel/errors.js";
import type { CommandDefinition } from "../../agent/commands/registry.js";
import { StanzaError } from "../../xmpp/stanza-error.js";
import type { PasswordUpdatable, SessionPort } from "../session-port.js";
import { changeOwnPassword, NODE_ROTATE_CREDENTIALS, NS_COMMANDS } from "../xmpp-admin.js";
import { type CredentialStore, generatePassword } from "./credentials.js";

export interface RotationDeps {
  session: SessionPort & PasswordUpdatable;
  credentials: CredentialStore;
  log?: Logger;
  timeoutMs?: number;
  /** Called after the new password is current (e.g. the composition root updates the session). */
  onRotated?: (password: string) => void;
}

export interface RotationOutcome {
  rotatedAt: string;
}

const inFlight = new WeakMap<CredentialStore, Promise<RotationOutcome>>();

/** Rotates the account password once. Concurrent calls for one credential store share one rotation. */
export function rotateOwnPassword(deps: RotationDeps): Promise<RotationOutcome> {
  let p = inFlight.get(deps.credentials);
  if (!p) {
    p = doRotate(deps).finally(() => inFlight.delete(deps.credentials));
    inFlight.set(deps.credentials, p);
  }
  return p;
}

async function doRotate(deps: RotationDeps): Promise<RotationOutcome> {
  const log = (deps.log ?? silentLogger).child({ component: "rotation" });
  const next = generatePassword();
  // A journal from a rotation whose answer never came: the server may hold that password. A change
  // that succeeds now settles it; one that is refused must put it back, not lose it.
  const earlier = deps.credentials.pendingRotation();
  deps.credentials.beginRotation(next);
  try {
    await changeOwnPassword(deps.session, next, deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {});
  } catch (err) {
    // A refusal means the old password is still valid: drop the journal. A timeout is unknown: keep it.
    if (!isAgentError(err, "iq_timeout") && !isAgentError(err, "xmpp_timeout")) {
      if (earlier !== undefined) deps.credentials.beginRotation(earlier);
      else deps.credentials.abortRotation();
    }
    log.warn("password rotation failed", { error: err });
    throw err;
  }
  deps.credentials.commitRotation();
  deps.session.setPassword?.(next);
  deps.onRotated?.(next);
  const rotatedAt = new Date().toISOString();
  log.info("password rotated", { rotatedAt });
  return { rotatedAt };
}

/** The `rotate-credentials` command for the agent's command registry (agent/commands). */
export function rotationCommand(deps: RotationDeps): CommandDefinition {
  return {
    node: NODE_ROTATE_CREDENTIALS,
    name: "Rotate account credentials",
    description: "Generate a new account password on the device and change it on the server (XEP-0077).",
    timeoutMs: (deps.timeoutMs ?? 30_000) + 5_000,
    async run() {
      try {
        const { rotatedAt } = await rotateOwnPassword(deps);
        return { notes: [{ type: "info", text: `Password rotated at ${rotatedAt}` }] };
      } catch (err) {
        return { failed: true, notes: [{ type: "error", text: `Rotation failed: ${(err as Error).message}` }] };
      }
    },
  };
}

/**
 * A minimal XEP-0050 responder for `rotate-credentials` alone, for use when the agent's command
 * router is not running (tests, a recovery tool). The agent proper registers rotationCommand()
 * with its registry instead: both claim the <command/> IQ, so never install both on one session.
 */
export function installRotationResponder(deps: RotationDeps & { allowed: string[] }): () => void {
  const allowed = new Set(deps.allowed.map((j) => j.toLowerCase()));
  return deps.session.handleIq("set", "command", NS_COMMANDS, async (iq) => {
    const cmd = iq.getChild("command", NS_COMMANDS)!;
    if (cmd.attrs.node !== NODE_ROTATE_CREDENTIALS) throw new StanzaError("item-not-found", "cancel");
    const from = String(iq.attrs.from ?? "")
      .split("/")[0]!
      .toLowerCase();
    const domain = from.includes("@") ? from.slice(from.indexOf("@") + 1) : from;
    if (!allowed.has(from) && !allowed.has(domain)) throw new StanzaError("forbidden", "auth");
    const out = new Element("command", {
      xmlns: NS_COMMANDS,
      node: NODE_ROTATE_CREDENTIALS,
      sessionid: `rot-${Date.now().toString(36)}`,
      status: "completed",
    });
    try {
      const { rotatedAt } = await rotateOwnPassword(deps);
      out.c("note", { type: "info" }).t(`Password rotated at ${rotatedAt}`);
    } catch (err) {
      out.c("note", { type: "error" }).t(`Rotation failed: ${(err as Error).message}`);
    }
    return out;
  });
}

/** How often periodic rotation checks whether a rotation is due (when the interval is longer). */
export const ROTATION_CHECK_MS = 60 * 60 * 1000;

export interface PeriodicRotationOptions extends RotationDeps {
  intervalMs: number;
  timers?: Timers;
  /**
   * When the current password was set (epoch ms, same clock as `timers.now()`), e.g. the password
   * file's mtime. With it, a rotation is due `intervalMs` after that moment, so an agent that
   * restarts more often than `intervalMs` still rotates. Without it, the clock starts at start().
   */
  lastRotatedAt?: () => number | undefined;
  /** How often to check whether a rotation is due; default min(intervalMs, ROTATION_CHECK_MS). */
  checkEveryMs?: number;
}

/**
 * Optional periodic self-rotation; `intervalMs` comes from config (provisioning.selfRotationIntervalMs).
 * A check runs every `checkEveryMs`; when online and the password is at least `intervalMs` old, it
 * rotates. Failures are logged and retried at the next check.
 */
export function startPeriodicRotation(deps: PeriodicRotationOptions): { stop(): void } {
  const timers = deps.timers ?? realTimers;
  const log = (deps.log ?? silentLogger).child({ component: "rotation" });
  let since = timers.now();
  let running = false;
  const due = () => {
    const last = deps.lastRotatedAt?.() ?? since;
    return timers.now() - last >= deps.intervalMs;
  };
  let handle: TimerHandle | undefined = timers.setInterval(
    () => {
      if (!deps.session.online || running || !due()) return;
      running = true;
      rotateOwnPassword(deps)
        .then(() => {
          since = timers.now();
        })
        .catch((err) => log.warn("periodic rotation failed", { error: err }))
        .finally(() => {
          running = false;
        });
    },
    Math.min(deps.intervalMs, deps.checkEveryMs ?? ROTATION_CHECK_MS),
  );
  return {
    stop() {
      handle?.cancel();
      handle = undefined;
    },
  };
}
