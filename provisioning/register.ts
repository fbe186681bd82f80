/**
 * XEP-0077 in-band registration on a fresh, unauthenticated stream: connect, STARTTLS (or Direct
 * TLS), then, with an invite, Prosody's pre-authentication (`<preauth xmlns='urn:xmpp:pars:0'
 * token=.../>`, what mod_invites_register checks) and the `jabber:iq:register` query. The session
 * (xmpp/session.ts) only speaks to authenticated streams, so this small client reuses its
 * transport and Connection and stops before SASL. Never logs the password or the token.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import { Connection } from "../xmpp/connection.js";
import { NS_TLS } from "../xmpp/negotiate.js";
import { connectTcp, startTls, type TlsOptions } from "../xmpp/transport.js";
import { ProvisioningError } from "./errors.js";
import { NS_REGISTER } from "./xmpp-admin.js";

export const NS_PREAUTH = "urn:xmpp:pars:0";

export interface StreamTarget {
  /** The XMPP domain (the JID's domain). */
  domain: string;
  host: string;
  port: number;
  tls: TlsOptions;
  directTls?: boolean;
  /** Per step (connect, TLS, each answer). */
  timeoutMs?: number;
}

export interface RegisterOptions extends StreamTarget {
  username: string;
  password: string;
  /** Invite / pre-authentication token (Prosody invites). */
  token?: string;
}

const LIMITS = { maxStanzaBytes: 256 * 1024, maxDepth: 32 };

function wrap(err: unknown, step: string): ProvisioningError {
  if (err instanceof ProvisioningError) return err;
  const code = err instanceof AgentError ? err.code : "";
  const tls = code.startsWith("tls_");
  const timeout = code.endsWith("timeout");
  return new ProvisioningError(
    tls ? "xmpp_tls" : timeout ? "xmpp_timeout" : code.startsWith("connect") ? "xmpp_connect" : "xmpp_stream",
    `${step}: ${(err as Error).message}`,
    { step, ...(code ? { cause: code } : {}) },
    { cause: err },
  );
}

/** Opens a TLS-protected stream and returns it with its (post-TLS) features, before any authentication. */
export async function openUnauthenticatedStream(t: StreamTarget): Promise<{ conn: Connection; features: Element }> {
  const ms = t.timeoutMs ?? 15_000;
  let socket: Awaited<ReturnType<typeof connectTcp>>;
  try {
    socket = await connectTcp({ host: t.host, port: t.port }, ms);
    if (t.directTls) socket = await startTls(socket, t.tls, ms);
  } catch (err) {
    throw wrap(err, `connecting to ${t.host}:${t.port}`);
  }
  const conn = new Connection(socket, t.domain, LIMITS);
  try {
    await conn.open(ms);
    let features = await conn.next(ms, "stream features");
    if (!conn.secure) {
      if (!features.getChild("starttls", NS_TLS))
        throw new ProvisioningError("xmpp_tls", "server offers no STARTTLS; refusing to register in clear", {
          host: t.host,
        });
      conn.send(new Element("starttls", { xmlns: NS_TLS }));
      const answer = await conn.next(ms, "<starttls/>");
      if (!answer.is("proceed", NS_TLS)) throw new ProvisioningError("xmpp_tls", "server refused STARTTLS");
      await conn.upgrade((plain) => startTls(plain, t.tls, ms));
      await conn.open(ms);
      features = await conn.next(ms, "stream features");
    }
    return { conn, features };
  } catch (err) {
    conn.close(0);
    throw wrap(err, "opening the stream");
  }
}

let seq = 0;
async function iq(conn: Connection, payload: Element, to: string, ms: number, what: string): Promise<Element> {
  const id = `reg${++seq}`;
  conn.send(new Element("iq", { type: "set", id, to }).cnode(payload).root());
  for (;;) {
    const el = await conn.next(ms, what);
    if (el.name === "iq" && el.attrs.id === id) return el;
    if (el.name === "stream:error") throw new ProvisioningError("xmpp_stream", `stream error during ${what}`);
  }
}

function condition(iqEl: Element): { condition: string; text: string | undefined } {
  const err = iqEl.getChild("error");
  let cond = "undefined-condition";
  let text: string | undefined;
  for (const c of err?.children ?? []) {
    if (typeof c === "string") continue;
    if (c.name === "text") text = c.text();
    else cond = c.name;
  }
  return { condition: cond, text };
}

/**
 * Registers `username@domain` with `password`. Refusals: invite_invalid (token unknown, used or
 * expired), register_conflict (account exists), register_refused (anything else the server says no to).
 */
export async function registerAccount(o: RegisterOptions): Promise<void> {
  const ms = o.timeoutMs ?? 15_000;
  const { conn } = await openUnauthenticatedStream(o);
  try {
    if (o.token !== undefined) {
      const answer = await iq(
        conn,
        new Element("preauth", { xmlns: NS_PREAUTH, token: o.token }),
        o.domain,
        ms,
        "<preauth/>",
      );
      if (answer.attrs.type !== "result") {
        const c = condition(answer);
        throw new ProvisioningError(
          "invite_invalid",
          `the server refused the invite token: ${c.text ?? c.condition} (already used, expired, or from another server)`,
          { condition: c.condition },
        );
      }
    }
    const query = new Element("query", { xmlns: NS_REGISTER });
    query.c("username").t(o.username);
    query.c("password").t(o.password);
    const answer = await iq(conn, query, o.domain, ms, "registration");
    if (answer.attrs.type !== "result") {
      const c = condition(answer);
      if (c.condition === "conflict")
        throw new ProvisioningError("register_conflict", `account ${o.username}@${o.domain} already exists`, {
          condition: c.condition,
        });
      throw new ProvisioningError(
        o.token !== undefined && c.condition === "forbidden" ? "invite_invalid" : "register_refused",
        `the server refused to register ${o.username}@${o.domain}: ${c.condition}${c.text ? ` (${c.text})` : ""}`,
        { condition: c.condition, ...(c.text ? { text: c.text } : {}) },
      );
    }
  } catch (err) {
    throw wrap(err, "registering");
  } finally {
    conn.close(200);
  }
}
