/**
 * A plain client session for the fleet's helpers (the collector, the admin creating accounts): the
 * agent's own XmppSession, online before this resolves, reconnecting (and resuming) by itself, and
 * with inbound budgets wide enough for a whole fleet's notifications.
 */
import { Ctx, formatPath, INVALID } from "../kernel/schema-dsl.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import { xmppConfigSchema } from "../xmpp/config.js";
import { XmppSession } from "../xmpp/session.js";
import { startOnline } from "../xmpp/start-online.js";
import { FleetError } from "./fleet.js";

export interface ClientSessionOptions {
  jid: string;
  password: string;
  /** host:port */
  server: string;
  caFile: string;
  resource?: string;
  timeoutMs?: number;
  log?: Logger;
}

export async function openClientSession(o: ClientSessionOptions): Promise<XmppSession> {
  const ctx = new Ctx();
  const wide = { perSecond: 1_000_000, burst: 1_000_000 };
  const config = xmppConfigSchema.parse(
    {
      jid: o.jid,
      password: o.password,
      resource: o.resource ?? "fleet-sim",
      server: o.server,
      caFile: o.caFile,
      reconnect: { initialDelayMs: 500, maxDelayMs: 5000 },
      limits: { maxPendingIq: 10_000 },
      inbound: { operator: wide, stranger: wide, strangersTotal: wide },
      streamManagement: { maxQueue: 100_000, maxStrangerReplies: 1000 },
    },
    ctx,
  );
  if (config === INVALID || ctx.issues.length > 0)
    throw new FleetError(
      "fleet_usage",
      `session settings for ${o.jid} are invalid: ${ctx.issues.map((i) => `${formatPath(i.path)} ${i.message}`).join("; ")}`,
    );
  const session = new XmppSession({ config, password: o.password, log: o.log ?? silentLogger, presence: false });
  const timeoutMs = o.timeoutMs ?? 20_000;
  const started = await startOnline(session, timeoutMs);
  if (!started.online) {
    if (started.timedOut)
      throw new FleetError(
        "fleet_session_offline",
        `${o.jid} not online within ${timeoutMs} ms: ${started.lastError ?? "no answer"}`,
        { jid: o.jid },
      );
    throw new FleetError(
      "fleet_session_refused",
      `${o.jid} cannot log in: ${started.fault.message}`,
      { jid: o.jid },
      { cause: started.fault },
    );
  }
  return session;
}
