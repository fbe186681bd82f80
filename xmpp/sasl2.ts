/**
 * XEP-0388 Extensible SASL Profile (SASL2), with what rides inside it: XEP-0386 Bind2 (resource
 * binding, and XEP-0198 enable, in the authentication exchange), XEP-0198 resumption inline, and
 * XEP-0484 FAST tokens (request one; authenticate with one in a single round trip).
 *
 * The point on a device is round trips: SASL2 needs no stream restart after authentication, Bind2
 * folds bind and enable into it, and FAST replaces SCRAM's two round trips with one. This module
 * only speaks the exchange; negotiate.ts decides what to ask for and what to do after it.
 */
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import type { Connection } from "./connection.js";
import type { FastToken } from "./fast-token.js";
import type { SaslMechanism } from "./sasl/types.js";
import {
  enableAnswerOf,
  enableElement,
  NS_SM,
  type ResumeRefusal,
  resumeAnswerOf,
  resumeElement,
  type SmOutcome,
} from "./stream-management.js";

export const NS_SASL2 = "urn:xmpp:sasl:2";
export const NS_BIND2 = "urn:xmpp:bind:0";
export const NS_FAST = "urn:xmpp:fast:0";

export class Sasl2Error extends AgentError {}

/** What the server's <authentication/> feature offers. */
export interface Sasl2Offer {
  mechanisms: string[];
  /** XEP-0484 mechanisms (HT-*), when FAST is offered. */
  fast: string[] | undefined;
  /** XEP-0386 Bind2 is offered. */
  bind2: boolean;
  /** XEP-0198 enable inside Bind2. */
  bind2Sm: boolean;
  /** XEP-0198 resumption inline in <authenticate/>. */
  sm: boolean;
}

export function sasl2Offer(features: Element): Sasl2Offer | undefined {
  const auth = features.getChild("authentication", NS_SASL2);
  if (!auth) return undefined;
  const texts = (el: Element | undefined) =>
    (el?.getChildren("mechanism") ?? []).map((m) => m.text().trim()).filter((m) => m.length > 0);
  const inline = auth.getChild("inline");
  const bind = inline?.getChild("bind", NS_BIND2);
  const fast = inline?.getChild("fast", NS_FAST);
  return {
    mechanisms: texts(auth),
    fast: fast ? texts(fast) : undefined,
    bind2: bind !== undefined,
    bind2Sm: (bind?.getChild("inline")?.getChildren("feature") ?? []).some((f) => f.attrs.var === NS_SM),
    sm: inline?.getChild("sm", NS_SM) !== undefined,
  };
}

export interface Sasl2Request {
  mechanism: SaslMechanism;
  /** Authenticating with a FAST token (adds <fast/>). */
  withToken: boolean;
  /** Ask for a FAST token for this HT mechanism. */
  requestToken: string | undefined;
  userAgent: { id: string; software: string; device?: string };
  /** Bind2: the tag the server builds the resource from; `enableSm` asks for XEP-0198 inline. */
  bind: { tag: string; enableSm: { resumeMaxSeconds: number } | undefined } | undefined;
  /** XEP-0198 resumption inline. */
  resume: { id: string; h: number } | undefined;
  stepTimeoutMs: number;
}

export interface Sasl2Success {
  /** <authorization-identifier/>: the full JID once bound, else the bare JID. */
  jid: string | undefined;
  bound: boolean;
  /** Bind2 asked for a resource and the server refused (the condition). */
  bindFailed: string | undefined;
  /** SM enabled inside Bind2. */
  sm: SmOutcome | undefined;
  resumed: { h: number } | undefined;
  resumeFailed: ResumeRefusal | undefined;
  /** A FAST token the server issued (asked for, or rotated). */
  token: FastToken | undefined;
}

/** The server said no: `condition` is the SASL condition (not-authorized, credentials-expired...). */
export class Sasl2Failure extends Sasl2Error {}

function b64(buf: Buffer): string {
  return buf.toString("base64");
}

function unb64(text: string): Buffer {
  const t = text.trim();
  if (t === "" || t === "=") return Buffer.alloc(0);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw new Sasl2Error("sasl_bad_base64", "server sent invalid base64 in SASL2");
  return Buffer.from(t, "base64");
}

export function authenticateElement(r: Sasl2Request): Element {
  const auth = new Element("authenticate", { xmlns: NS_SASL2, mechanism: r.mechanism.name });
  auth.c("initial-response").t(b64(r.mechanism.initialResponse()));
  const ua = auth.c("user-agent", { id: r.userAgent.id });
  ua.c("software").t(r.userAgent.software);
  if (r.userAgent.device) ua.c("device").t(r.userAgent.device);
  if (r.withToken) auth.c("fast", { xmlns: NS_FAST });
  if (r.requestToken) auth.c("request-token", { xmlns: NS_FAST, mechanism: r.requestToken });
  if (r.resume) auth.cnode(resumeElement(r.resume));
  if (r.bind) {
    const bind = auth.c("bind", { xmlns: NS_BIND2 });
    bind.c("tag").t(r.bind.tag);
    if (r.bind.enableSm) bind.cnode(enableElement(r.bind.enableSm.resumeMaxSeconds));
  }
  return auth;
}

/** Runs <authenticate/> to <success/> (or throws Sasl2Failure on <failure/>). */
export async function authenticateSasl2(conn: Connection, r: Sasl2Request): Promise<Sasl2Success> {
  conn.send(authenticateElement(r));
  for (let round = 0; round < 10; round++) {
    const el = await conn.next(r.stepTimeoutMs, "SASL2");
    if (el.is("challenge", NS_SASL2)) {
      const resp = new Element("response", { xmlns: NS_SASL2 });
      resp.t(b64(r.mechanism.challenge(unb64(el.text()))));
      conn.send(resp);
      continue;
    }
    if (el.is("success", NS_SASL2)) return readSuccess(el, r);
    if (el.is("failure", NS_SASL2)) {
      const condition =
        el.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")?.name ?? "not-authorized";
      const text = el.getChildText("text") ?? undefined;
      throw new Sasl2Failure("auth_failed", `authentication failed: ${condition}${text ? ` (${text})` : ""}`, {
        mechanism: r.mechanism.name,
        condition,
        ...(text ? { text } : {}),
      });
    }
    throw new Sasl2Error("unexpected_element", `unexpected <${el.name}/> during SASL2`, { got: el.name });
  }
  throw new Sasl2Error("sasl_too_many_rounds", "SASL2 exchange did not finish in 10 rounds");
}

function readSuccess(el: Element, r: Sasl2Request): Sasl2Success {
  const data = el.getChild("additional-data");
  r.mechanism.verifySuccess(data ? unb64(data.text()) : null);
  const out: Sasl2Success = {
    jid: el.getChildText("authorization-identifier")?.trim() || undefined,
    bound: false,
    bindFailed: undefined,
    sm: undefined,
    resumed: undefined,
    resumeFailed: undefined,
    token: undefined,
  };
  const bound = el.getChild("bound", NS_BIND2);
  if (bound) {
    out.bound = true;
    const enabled = bound.getChildren("enabled", NS_SM)[0] ?? bound.getChildren("failed", NS_SM)[0];
    if (enabled) out.sm = enableAnswerOf(enabled);
  } else if (r.bind) {
    const failed = el.getChild("failed", NS_BIND2);
    if (failed)
      out.bindFailed =
        failed.getChild("error")?.children.find((c): c is Element => typeof c !== "string")?.name ??
        "undefined-condition";
  }
  if (r.resume) {
    const answer = el.getChild("resumed", NS_SM) ?? el.getChild("failed", NS_SM);
    if (answer) {
      const a = resumeAnswerOf(answer);
      if (a.kind === "resumed") out.resumed = { h: a.h };
      else out.resumeFailed = { h: a.h, condition: a.condition };
    }
  }
  const token = el.getChild("token", NS_FAST);
  if (token?.attrs.token) {
    const expiresAt = Date.parse(String(token.attrs.expiry ?? ""));
    out.token = {
      mechanism: r.withToken ? r.mechanism.name : (r.requestToken ?? r.mechanism.name),
      secret: String(token.attrs.token),
      // A token without a readable expiry is kept a day: the server says when it stops working.
      expiresAt: Number.isFinite(expiresAt) ? expiresAt : Date.now() + 86_400_000,
    };
  }
  return out;
}
