/**
 * The session step of the composition root: the XMPP session (created, not started) and, for an
 * enrolled device, what it does with its credentials (revocation check, recovery of an interrupted
 * rotation, rotate-credentials, optional self-rotation: provisioning/device/).
 */
import type { Element } from "ltx";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import { type DeviceCredentials, deviceCredentialsFor } from "../../provisioning/device/agent-credentials.js";
import { XmppSession } from "../../xmpp/session.js";
import type { LoadedConfig } from "../config/load.js";
import { AGENT_NAME, AGENT_VERSION } from "../version.js";

export interface SessionParts {
  session: XmppSession;
  /** Undefined for a device that is not enrolled (no credential store behind xmpp.passwordFile). */
  credentials: DeviceCredentials | undefined;
}

export interface SessionDeps {
  log: Logger;
  timers: Timers;
  /**
   * Who is an operator is known before the session exists: it decides what strangers are told
   * (XEP-0092).
   */
  isOperator: (jid: string) => boolean;
  /** Read at every presence: the device status comes from telemetry, built after the session. */
  presenceChildren: () => Element[];
  /** The reconnect jitter's random source (the fleet simulator turns jitter off to measure storms). */
  random?: () => number;
}

export function composeSession(loaded: LoadedConfig, deps: SessionDeps): SessionParts {
  const { config, password } = loaded;
  const { log, timers } = deps;
  const session = new XmppSession({
    config: config.xmpp,
    password,
    log,
    timers,
    software: { name: AGENT_NAME, version: AGENT_VERSION },
    isOperator: deps.isOperator,
    presenceChildren: deps.presenceChildren,
    ...(deps.random ? { random: deps.random } : {}),
  });
  session.on("fault", (err) => log.error("needs attention", { error: err }));
  const credentials = deviceCredentialsFor({
    passwordFile: config.xmpp.passwordFile,
    config: config.provisioning,
    configFile: loaded.file,
    session,
    sessionPassword: password,
    log,
    timers,
  });
  return { session, credentials };
}
