/**
 * Opens the fleet admin's XMPP session for iot-fleet: the agent's own XmppSession (same TLS, SASL
 * and limits as devices), logged in as the admin account, no presence broadcast. Returns once
 * online, or fails with a typed error on a refused login or an untrusted certificate.
 */
import { xmppConfigSchema } from "../xmpp/config.js";
import { XmppSession } from "../xmpp/session.js";
import { startOnline } from "../xmpp/start-online.js";
import { Ctx, formatPath, INVALID } from "../kernel/schema-dsl.js";
import type { Logger } from "../kernel/log.js";
import { silentLogger } from "../kernel/log.js";
import { ProvisioningError } from "./errors.js";
import type { SessionPort } from "./session-port.js";

export interface AdminConnectOptions {
  jid: string;
  password: string;
  /** host:port */
  server?: string;
  caFile?: string;
  pinSha256?: string;
  timeoutMs?: number;
  log?: Logger;
}

export interface AdminSession {
  session: SessionPort;
  close(): Promise<void>;
}

export type AdminConnector = (o: AdminConnectOptions) => Promise<AdminSession>;

export const connectAdmin: AdminConnector = async (o) => {
  const ctx = new Ctx();
  const raw: Record<string, unknown> = { jid: o.jid, password: o.password, resource: "iot-fleet" };
  if (o.server) raw.server = o.server;
  if (o.caFile) raw.caFile = o.caFile;
  if (o.pinSha256) raw.pinSha256 = o.pinSha256;
  // One attempt only: a CLI reports a failure (a refused password too) instead of retrying for minutes.
  raw.reconnect = { initialDelayMs: 60_000, authFailureDelayMs: 600_000, authFailureRetries: 0 };
  const config = xmppConfigSchema.parse(raw, ctx);
  if (config === INVALID || ctx.issues.length > 0)
    throw new ProvisioningError(
      "usage",
      `admin connection settings are invalid: ${ctx.issues.map((i) => `${formatPath(i.path)} ${i.message}`).join("; ")}`,
    );
  const timeoutMs = o.timeoutMs ?? 20_000;
  const session = new XmppSession({ config, password: o.password, log: o.log ?? silentLogger, presence: false });
  const started = await startOnline(session, timeoutMs);
  if (!started.online) {
    if (started.timedOut)
      throw new ProvisioningError(
        "xmpp_connect",
        `admin session for ${o.jid} not online within ${timeoutMs} ms${started.lastError ? `: ${started.lastError}` : ""}`,
        { jid: o.jid },
      );
    const err = started.fault;
    throw new ProvisioningError(
      err.code.startsWith("tls_") ? "xmpp_tls" : "xmpp_auth",
      `admin login as ${o.jid} failed: ${err.message}`,
      { jid: o.jid, cause: err.code },
      { cause: err },
    );
  }
  return { session, close: () => session.stop() };
};
