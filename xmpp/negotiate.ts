/**
 * Stream negotiation (RFC 6120 §4.3 and §5-7, XEP-0198 §3 and §5), from the first byte to a
 * usable stream: STARTTLS (required), SASL, stream restart, then either SM resumption or
 * resource binding followed by SM enable. Each step has a deadline: a server that goes silent
 * after its features cannot leave the agent waiting forever. The SM exchanges themselves are
 * stream-management.ts's; this module only puts them in their place.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import { type Connection, ConnectionError } from "./connection.js";
import { selectMechanism } from "./sasl/index.js";
import type { SaltedPasswordCache } from "./sasl/cache.js";
import type { ChannelBinding } from "./sasl/types.js";
import { offersSm, type ResumeRefusal, requestEnable, requestResume, type SmOutcome } from "./stream-management.js";
import { channelBinding, type TlsOptions } from "./transport.js";

export const NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls";
export const NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl";
export const NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind";
export const NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session";
export const NS_SASL_CB = "urn:xmpp:sasl-cb:0";

/** The server refused our credentials: retrying soon will not help. */
export class AuthError extends AgentError {}
/** The server did not offer what we insist on (TLS, a usable SASL mechanism, binding). */
export class NegotiationError extends AgentError {}

export interface NegotiateOptions {
  username: string;
  password: string;
  resource: string;
  tls: TlsOptions;
  /** Direct TLS: the socket is already encrypted. */
  directTls: boolean;
  allowPlain: boolean;
  saslMechanisms: string[];
  saltedCache: SaltedPasswordCache;
  stepTimeoutMs: number;
  sm: { enabled: boolean; resumeMaxSeconds: number };
  /** The SM session to resume, if any. */
  resume?: { id: string; h: number };
  log: Logger;
}

export type { SmOutcome };

export interface NegotiateResult {
  jid: string;
  sm: SmOutcome;
  /** Set when a resumption was attempted and refused; `h` is the server's count when it told us. */
  resumeFailed?: ResumeRefusal;
  mechanism: string;
  /** Stanzas that arrived before SM was enabled (not counted by SM). */
  early: Element[];
}

function childOf(features: Element, name: string, xmlns: string): Element | undefined {
  return features.getChild(name, xmlns);
}

async function expectFeatures(conn: Connection, ms: number): Promise<Element> {
  const el = await conn.next(ms, "stream features");
  if (el.name !== "stream:features") {
    throw new NegotiationError("unexpected_element", `expected <stream:features>, got <${el.name}>`, { got: el.name });
  }
  return el;
}

async function restart(conn: Connection, ms: number): Promise<Element> {
  await conn.open(ms);
  return expectFeatures(conn, ms);
}

export async function negotiate(conn: Connection, o: NegotiateOptions): Promise<NegotiateResult> {
  const ms = o.stepTimeoutMs;
  let features = await restart(conn, ms);

  if (!conn.secure) {
    if (o.directTls) throw new NegotiationError("tls_unavailable", "direct TLS connection is not encrypted");
    if (!childOf(features, "starttls", NS_TLS)) {
      // RFC 6120 §5.3.1: without TLS we would send the password's proof and all telemetry in clear.
      throw new NegotiationError(
        "tls_unavailable",
        "server does not offer STARTTLS; refusing to continue without TLS",
        {
          server: conn.domain,
        },
      );
    }
    conn.send(new Element("starttls", { xmlns: NS_TLS }));
    const answer = await conn.next(ms, "<starttls/>");
    if (!answer.is("proceed", NS_TLS))
      throw new NegotiationError("tls_refused", "server refused STARTTLS", { got: answer.name });
    await conn.startTls(o.tls, ms);
    o.log.debug("tls established", {
      protocol: conn.tlsSocket?.getProtocol(),
      cipher: conn.tlsSocket?.getCipher().name,
    });
    features = await restart(conn, ms);
  }

  const mechanism = await authenticate(conn, features, o);
  features = await restart(conn, ms);

  const smOffered = o.sm.enabled && offersSm(features);
  let resumeFailed: NegotiateResult["resumeFailed"];
  if (o.resume && smOffered) {
    const answer = await requestResume(conn, o.resume, ms);
    if (answer.kind === "resumed") return { jid: "", sm: answer, mechanism, early: [] };
    resumeFailed = { h: answer.h, condition: answer.condition };
    o.log.info("stream resumption refused", { condition: answer.condition, h: answer.h });
  } else if (o.resume) {
    resumeFailed = { h: undefined, condition: "sm-not-offered" };
  }

  const early: Element[] = [];
  const jid = await bind(conn, features, o, early);
  const sm: SmOutcome = smOffered
    ? await requestEnable(conn, o.sm.resumeMaxSeconds, ms, early)
    : { kind: "none", reason: o.sm.enabled ? "server does not offer XEP-0198" : "disabled in config" };
  return { jid, sm, ...(resumeFailed ? { resumeFailed } : {}), mechanism, early };
}

async function authenticate(conn: Connection, features: Element, o: NegotiateOptions): Promise<string> {
  const ms = o.stepTimeoutMs;
  const offered = (childOf(features, "mechanisms", NS_SASL)?.getChildren("mechanism") ?? []).map((m) =>
    m.text().trim(),
  );
  if (offered.length === 0) throw new NegotiationError("sasl_unavailable", "server offers no SASL mechanisms");
  const serverChannelBindings = childOf(features, "sasl-channel-binding", NS_SASL_CB)
    ?.getChildren("channel-binding")
    .map((c) => String(c.attrs.type));
  const tlsSocket = conn.tlsSocket;
  let cb: ChannelBinding | undefined;
  try {
    cb = tlsSocket ? channelBinding(tlsSocket, serverChannelBindings) : undefined;
  } catch (err) {
    o.log.warn("channel binding data unavailable; -PLUS mechanisms disabled", { error: err });
  }
  const mech = selectMechanism(
    { username: o.username, password: o.password },
    {
      preferences: o.saslMechanisms,
      offered,
      allowPlain: o.allowPlain,
      tlsActive: conn.secure,
      ...(cb ? { channelBinding: cb } : {}),
      ...(serverChannelBindings ? { serverChannelBindings } : {}),
      cache: o.saltedCache,
      logger: o.log,
    },
  );
  o.log.debug("sasl", { mechanism: mech.name, offered });
  const auth = new Element("auth", { xmlns: NS_SASL, mechanism: mech.name });
  auth.t(b64(mech.initialResponse()));
  conn.send(auth);
  for (let round = 0; round < 10; round++) {
    const el = await conn.next(ms, "SASL");
    if (el.is("challenge", NS_SASL)) {
      const resp = new Element("response", { xmlns: NS_SASL });
      resp.t(b64(mech.challenge(unb64(el.text()))));
      conn.send(resp);
      continue;
    }
    if (el.is("success", NS_SASL)) {
      const text = el.text().trim();
      mech.verifySuccess(text && text !== "=" ? unb64(text) : null);
      return mech.name;
    }
    if (el.is("failure", NS_SASL)) {
      const condition =
        el.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")?.name ?? "not-authorized";
      const text = el.getChildText("text") ?? undefined;
      throw new AuthError("auth_failed", `authentication failed: ${condition}${text ? ` (${text})` : ""}`, {
        mechanism: mech.name,
        condition,
        ...(text ? { text } : {}),
      });
    }
    throw new NegotiationError("unexpected_element", `unexpected <${el.name}/> during SASL`);
  }
  throw new NegotiationError("sasl_too_many_rounds", "SASL exchange did not finish in 10 rounds");
}

async function bind(conn: Connection, features: Element, o: NegotiateOptions, early: Element[]): Promise<string> {
  if (!childOf(features, "bind", NS_BIND))
    throw new NegotiationError("bind_unavailable", "server does not offer resource binding");
  const iq = new Element("iq", { type: "set", id: "bind-1" });
  iq.c("bind", { xmlns: NS_BIND }).c("resource").t(o.resource);
  conn.send(iq);
  const result = await awaitIq(conn, "bind-1", o.stepTimeoutMs, early);
  if (result.attrs.type !== "result") {
    const cond = result.getChild("error")?.children.find((c): c is Element => typeof c !== "string")?.name ?? "unknown";
    throw new NegotiationError("bind_failed", `resource binding failed: ${cond}`, { condition: cond });
  }
  const jid = result.getChild("bind", NS_BIND)?.getChildText("jid");
  if (!jid) throw new NegotiationError("bind_failed", "bind result carries no JID");

  // RFC 3921 sessions: only when the server says it is not optional (RFC 6121 dropped it).
  const session = childOf(features, "session", NS_SESSION);
  if (session && !session.getChild("optional")) {
    const s = new Element("iq", { type: "set", id: "session-1" });
    s.c("session", { xmlns: NS_SESSION });
    conn.send(s);
    const r = await awaitIq(conn, "session-1", o.stepTimeoutMs, early);
    if (r.attrs.type !== "result") throw new NegotiationError("session_failed", "legacy session establishment failed");
  }
  return jid;
}

async function awaitIq(conn: Connection, id: string, ms: number, early: Element[]): Promise<Element> {
  for (;;) {
    const el = await conn.next(ms, `iq ${id}`);
    if (el.name === "iq" && el.attrs.id === id && (el.attrs.type === "result" || el.attrs.type === "error")) return el;
    early.push(el);
  }
}

function b64(buf: Buffer): string {
  return buf.length === 0 ? "=" : buf.toString("base64");
}

function unb64(text: string): Buffer {
  const t = text.trim();
  if (t === "" || t === "=") return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t))
    throw new NegotiationError("sasl_bad_base64", "server sent invalid base64 in SASL");
  return Buffer.from(t, "base64");
}

export { ConnectionError };
