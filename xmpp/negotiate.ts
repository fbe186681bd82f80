/**
 * Stream negotiation (RFC 6120 §4.3 and §5-7, XEP-0198 §3 and §5), from the first byte to a
 * usable stream: STARTTLS (required), SASL, stream restart, then either SM resumption or
 * resource binding followed by SM enable. When the server offers SASL2 (XEP-0388) and the config
 * allows it, authentication goes through sasl2.ts instead: no restart, a FAST token instead of
 * SCRAM when one is stored, and resumption or Bind2 inside the exchange where the server offers
 * them; what the server did not do inline is then done the classic way on the same stream.
 *
 * Each step has a deadline: a server that goes silent after its features cannot leave the agent
 * waiting forever. The SM exchanges themselves are stream-management.ts's, the SASL2 exchange
 * sasl2.ts's; this module only puts them in their place.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import type { Logger } from "../kernel/log.js";
import { type Connection, ConnectionError } from "./connection.js";
import { selectMechanism } from "./sasl/index.js";
import type { SaltedPasswordCache } from "./sasl/cache.js";
import type { ChannelBinding } from "./sasl/types.js";
import { offersSm, type ResumeRefusal, requestEnable, requestResume, type SmOutcome } from "./stream-management.js";
import type { FastTokenStore } from "./fast-token.js";
import { bestHtMechanism, HtMechanism, htBindingType, isHtMechanism } from "./sasl/ht.js";
import { authenticateSasl2, Sasl2Failure, type Sasl2Offer, sasl2Offer } from "./sasl2.js";
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
  /** Empty for a device that logs in with its certificate only. */
  password: string;
  /** Our bare JID: the stream header's `from` once encrypted (a FAST server needs it). */
  jid?: string;
  /** A client certificate was configured (presented in the TLS handshake): EXTERNAL is usable. */
  clientCertificate?: boolean;
  /** SASL2 when the server offers it; undefined: classic SASL only. */
  sasl2?: {
    fast: boolean;
    bind2: boolean;
    tokens: FastTokenStore;
    /** <user-agent><software/> */
    software: string;
  };
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
  /** The login went through SASL2 (XEP-0388). */
  sasl2: boolean;
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

async function restart(conn: Connection, ms: number, from: string | undefined): Promise<Element> {
  await conn.open(ms, from);
  return expectFeatures(conn, ms);
}

export async function negotiate(conn: Connection, o: NegotiateOptions): Promise<NegotiateResult> {
  const ms = o.stepTimeoutMs;
  let features = await restart(conn, ms, o.jid);

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
    features = await restart(conn, ms, o.jid);
  }

  const offer = o.sasl2 ? sasl2Offer(features) : undefined;
  if (offer && o.sasl2) return negotiateSasl2(conn, features, offer, o, o.sasl2);

  const mechanism = await authenticate(conn, features, o);
  features = await restart(conn, ms, o.jid);

  const smOffered = o.sm.enabled && offersSm(features);
  let resumeFailed: NegotiateResult["resumeFailed"];
  if (o.resume && smOffered) {
    const answer = await requestResume(conn, o.resume, ms);
    if (answer.kind === "resumed") return { jid: "", sm: answer, mechanism, sasl2: false, early: [] };
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
  return { jid, sm, ...(resumeFailed ? { resumeFailed } : {}), mechanism, sasl2: false, early };
}

/** The channel-binding data this TLS connection can give, by type (for HT-* and SCRAM -PLUS). */
function bindingsOf(conn: Connection): Partial<Record<ChannelBinding["type"], Buffer>> {
  const t = conn.tlsSocket;
  if (!t) return {};
  const out: Partial<Record<ChannelBinding["type"], Buffer>> = {};
  if (t.getProtocol() === "TLSv1.3")
    out["tls-exporter"] = t.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0));
  else {
    const finished = t.getFinished();
    if (finished) out["tls-unique"] = finished;
  }
  return out;
}

async function negotiateSasl2(
  conn: Connection,
  offered: Element,
  offer: Sasl2Offer,
  o: NegotiateOptions,
  s2: NonNullable<NegotiateOptions["sasl2"]>,
): Promise<NegotiateResult> {
  const ms = o.stepTimeoutMs;
  const bindings = bindingsOf(conn);
  const useFast = s2.fast && offer.fast !== undefined;
  const stored = useFast ? s2.tokens.token() : undefined;
  let withToken = false;
  let mech: ReturnType<typeof selectMechanism>;
  if (
    stored &&
    isHtMechanism(stored.mechanism) &&
    offer.fast!.includes(stored.mechanism) &&
    stored.expiresAt > Date.now() + 60_000 &&
    (htBindingType(stored.mechanism) === undefined || bindings[htBindingType(stored.mechanism)!] !== undefined)
  ) {
    const type = htBindingType(stored.mechanism);
    mech = new HtMechanism(stored.mechanism, o.username, stored.secret, type ? bindings[type] : undefined);
    withToken = true;
  } else {
    if (stored) s2.tokens.dropToken("the server no longer offers its mechanism, or it expired");
    const serverChannelBindings = childOf(offered, "sasl-channel-binding", NS_SASL_CB)
      ?.getChildren("channel-binding")
      .map((c) => String(c.attrs.type));
    mech = chooseMechanism(conn, offer.mechanisms, serverChannelBindings, o);
  }
  const requestToken = useFast && !withToken ? bestHtMechanism(offer.fast!, bindings) : undefined;
  const smWanted = o.sm.enabled;
  const inlineResume = o.resume && smWanted && offer.sm ? o.resume : undefined;
  // A server binds at <success/> when asked to; a classic <resume/> after that is refused
  // ("tried to resume after resource binding", Prosody). So Bind2 goes with a resumption only when
  // the resumption is inline too, and the server then binds only if it could not resume.
  const bindRequest =
    s2.bind2 && offer.bind2 && (o.resume === undefined || inlineResume !== undefined)
      ? {
          tag: o.resource,
          enableSm: smWanted && offer.bind2Sm ? { resumeMaxSeconds: o.sm.resumeMaxSeconds } : undefined,
        }
      : undefined;
  o.log.debug("sasl2", {
    mechanism: mech.name,
    fast: withToken,
    requestToken,
    bind2: bindRequest !== undefined,
    inlineResume: inlineResume !== undefined,
  });

  let success: Awaited<ReturnType<typeof authenticateSasl2>>;
  try {
    success = await authenticateSasl2(conn, {
      mechanism: mech,
      withToken,
      requestToken,
      userAgent: { id: s2.tokens.clientId(), software: s2.software },
      bind: bindRequest,
      resume: inlineResume,
      stepTimeoutMs: ms,
    });
  } catch (err) {
    if (!(err instanceof Sasl2Failure)) throw err;
    if (withToken) {
      // The token is gone on the server (expired, revoked, the account re-created): log in with
      // the password on the next connection. Not an AuthError: the password may be fine.
      s2.tokens.dropToken(`refused by the server: ${String(err.context.condition)}`);
      throw new NegotiationError("fast_token_refused", `${err.message}; the next login uses the password`, {
        ...err.context,
      });
    }
    throw new AuthError(err.code, err.message, err.context);
  }
  if (success.token) s2.tokens.saveToken(success.token);
  const mechanism = mech.name;
  if (success.resumed)
    return { jid: "", sm: { kind: "resumed", h: success.resumed.h }, mechanism, sasl2: true, early: [] };
  let resumeFailed = success.resumeFailed;
  if (resumeFailed) o.log.info("stream resumption refused", { condition: resumeFailed.condition, h: resumeFailed.h });
  if (success.bindFailed)
    throw new NegotiationError("bind_failed", `resource binding (Bind2) failed: ${success.bindFailed}`, {
      condition: success.bindFailed,
    });

  const early: Element[] = [];
  if (success.bound && success.sm && success.sm.kind !== "none") {
    return {
      jid: success.jid ?? "",
      sm: success.sm,
      ...(resumeFailed ? { resumeFailed } : {}),
      mechanism,
      sasl2: true,
      early,
    };
  }
  // Without a restart the server sends its post-authentication features at once (XEP-0388).
  const features = await expectFeatures(conn, ms);
  const smOffered = smWanted && offersSm(features);
  if (o.resume && !inlineResume) {
    if (smOffered) {
      const answer = await requestResume(conn, o.resume, ms);
      if (answer.kind === "resumed") return { jid: "", sm: answer, mechanism, sasl2: true, early: [] };
      resumeFailed = { h: answer.h, condition: answer.condition };
      o.log.info("stream resumption refused", { condition: answer.condition, h: answer.h });
    } else resumeFailed = { h: undefined, condition: "sm-not-offered" };
  }
  const jid = success.bound ? (success.jid ?? "") : await bind(conn, features, o, early);
  const sm: SmOutcome = smOffered
    ? await requestEnable(conn, o.sm.resumeMaxSeconds, ms, early)
    : { kind: "none", reason: o.sm.enabled ? "server does not offer XEP-0198" : "disabled in config" };
  return { jid, sm, ...(resumeFailed ? { resumeFailed } : {}), mechanism, sasl2: true, early };
}

async function authenticate(conn: Connection, features: Element, o: NegotiateOptions): Promise<string> {
  const offered = (childOf(features, "mechanisms", NS_SASL)?.getChildren("mechanism") ?? []).map((m) =>
    m.text().trim(),
  );
  if (offered.length === 0) throw new NegotiationError("sasl_unavailable", "server offers no SASL mechanisms");
  const serverChannelBindings = childOf(features, "sasl-channel-binding", NS_SASL_CB)
    ?.getChildren("channel-binding")
    .map((c) => String(c.attrs.type));
  const mech = chooseMechanism(conn, offered, serverChannelBindings, o);
  o.log.debug("sasl", { mechanism: mech.name, offered });
  try {
    return await runSasl(conn, mech, o.stepTimeoutMs);
  } catch (err) {
    // A certificate the server does not accept (another CA, not enrolled there) need not cost the
    // device its login when it also has a password: RFC 6120 §6.4.5 lets the client try another
    // mechanism on the same stream.
    if (!(err instanceof AuthError) || mech.name !== "EXTERNAL" || o.password.length === 0) throw err;
    o.log.warn("certificate login refused; trying the password", { condition: err.context.condition });
    const next = chooseMechanism(conn, offered, serverChannelBindings, {
      ...o,
      saslMechanisms: o.saslMechanisms.filter((m) => m.trim().toUpperCase() !== "EXTERNAL"),
    });
    return runSasl(conn, next, o.stepTimeoutMs);
  }
}

/** One classic SASL exchange, <auth/> to <success/>; AuthError on <failure/>. */
async function runSasl(conn: Connection, mech: ReturnType<typeof selectMechanism>, ms: number): Promise<string> {
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

/** The mechanism for a password or certificate login (xmpp/sasl/select.ts has the rules). */
function chooseMechanism(
  conn: Connection,
  offered: string[],
  serverChannelBindings: string[] | undefined,
  o: NegotiateOptions,
): ReturnType<typeof selectMechanism> {
  const tlsSocket = conn.tlsSocket;
  let cb: ChannelBinding | undefined;
  try {
    cb = tlsSocket ? channelBinding(tlsSocket, serverChannelBindings) : undefined;
  } catch (err) {
    o.log.warn("channel binding data unavailable; -PLUS mechanisms disabled", { error: err });
  }
  return selectMechanism(
    { username: o.username, password: o.password },
    {
      preferences: o.saslMechanisms,
      offered,
      allowPlain: o.allowPlain,
      tlsActive: conn.secure,
      clientCertificate: o.clientCertificate === true,
      ...(cb ? { channelBinding: cb } : {}),
      ...(serverChannelBindings ? { serverChannelBindings } : {}),
      cache: o.saltedCache,
      logger: o.log,
    },
  );
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
    // The server's policy shuts this account out after authentication (ejabberd's access rule
    // c2s, which is how it refuses a revoked certificate): as final as a refused password.
    if (cond === "not-allowed" || cond === "forbidden")
      throw new AuthError("bind_refused", `the server refused this account a session: ${cond}`, { condition: cond });
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
