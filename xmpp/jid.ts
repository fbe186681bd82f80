/**
 * JIDs (RFC 7622), the basics a device agent needs: split into local/domain/resource, enforce the
 * length limits and the characters the localpart may not contain, normalise what the RFC says to
 * normalise, and compare bare JIDs.
 *
 * Covered: the split rules of RFC 7622 §3.1 (resource = everything after the first "/", local =
 * before the first "@" of the rest), 1..1023 bytes per part after normalisation, localpart
 * forbidden characters `"&'/:<>@` and whitespace, control characters anywhere, NFC normalisation of
 * local and resource, case mapping of local and domain (the localpart's PRECIS profile,
 * UsernameCaseMapped, lowercases too: servers already treat "Dev@x" and "dev@x" as one account),
 * stripping of one trailing dot in the domain, bracketed IPv6 literals, 63-byte DNS labels.
 * Not covered (honestly): the full PRECIS IdentifierClass / FreeformClass tables, IDNA2008
 * (U-label validation and A-label conversion), and bidi rules. Non-ASCII domains are accepted
 * as-is, only lowercased.
 */
import { isIPv6 } from "node:net";
import { AgentError } from "../kernel/errors.js";

export interface Jid {
  local?: string;
  domain: string;
  resource?: string;
  /** local@domain, or domain alone. */
  bare: string;
  /** bare, plus /resource when there is one. */
  full: string;
}

/** The input is not a valid JID. `context.input` holds the input (truncated when absurdly long), `context.reason` why. */
export class JidError extends AgentError {}

export const MAX_JID_PART_BYTES = 1023;
const MAX_LABEL_BYTES = 63;
/** A JID is at most 3 x 1023 bytes plus 2 separators; echoing more of a garbage input into logs helps nobody. */
const MAX_INPUT_ECHO = 3071;

const LOCAL_FORBIDDEN = /["&'/:<>@\s]/u;
// Cc: C0/C1 controls and DEL. Zl/Zp: line/paragraph separators. Cs: lone surrogates.
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}]/u;
// ":" and brackets only make sense in an IPv6 literal, which is handled before this check.
const DOMAIN_FORBIDDEN = /[\s"&'<>@/\\:[\]]/u;
// OpaqueString (resource) maps every non-ASCII space to U+0020.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/gu;

function fail(input: string, reason: string, part?: "local" | "domain" | "resource"): never {
  const shown = input.length > MAX_INPUT_ECHO ? `${input.slice(0, MAX_INPUT_ECHO)}…` : input;
  throw new JidError("jid_invalid", `invalid JID ${JSON.stringify(shown)}: ${reason}`, {
    input: shown,
    ...(input.length > MAX_INPUT_ECHO ? { inputLength: input.length } : {}),
    ...(part === undefined ? {} : { part }),
    reason,
  });
}

function checkLength(input: string, value: string, part: "local" | "domain" | "resource"): void {
  if (value.length === 0) fail(input, `empty ${part}part`, part);
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_JID_PART_BYTES) fail(input, `${part}part is ${bytes} bytes (max ${MAX_JID_PART_BYTES})`, part);
}

function normaliseLocal(input: string, raw: string): string {
  if (CONTROL.test(raw)) fail(input, "localpart contains a control character", "local");
  const local = raw.normalize("NFC").toLowerCase();
  const bad = LOCAL_FORBIDDEN.exec(local);
  if (bad) fail(input, `localpart contains forbidden character ${JSON.stringify(bad[0])}`, "local");
  checkLength(input, local, "local");
  return local;
}

function normaliseDomain(input: string, raw: string): string {
  // RFC 7622 §3.2: a trailing label separator MUST be stripped before any other processing.
  const stripped = raw.endsWith(".") ? raw.slice(0, -1) : raw;
  if (CONTROL.test(stripped)) fail(input, "domainpart contains a control character", "domain");
  checkLength(input, stripped, "domain");
  if (stripped.startsWith("[")) {
    if (!stripped.endsWith("]") || !isIPv6(stripped.slice(1, -1)))
      fail(input, "domainpart is not a valid [IPv6] literal", "domain");
    return stripped.toLowerCase();
  }
  const domain = stripped.normalize("NFC").toLowerCase();
  const bad = DOMAIN_FORBIDDEN.exec(domain);
  if (bad) fail(input, `domainpart contains forbidden character ${JSON.stringify(bad[0])}`, "domain");
  for (const label of domain.split(".")) {
    if (label.length === 0) fail(input, "domainpart has an empty label", "domain");
    if (Buffer.byteLength(label, "utf8") > MAX_LABEL_BYTES)
      fail(input, `domainpart has a label longer than ${MAX_LABEL_BYTES} bytes`, "domain");
  }
  checkLength(input, domain, "domain");
  return domain;
}

function normaliseResource(input: string, raw: string): string {
  const resource = raw.replace(NON_ASCII_SPACE, " ").normalize("NFC");
  if (CONTROL.test(resource)) fail(input, "resourcepart contains a control character", "resource");
  checkLength(input, resource, "resource");
  return resource;
}

/** Parses and normalises a JID; throws JidError (code `jid_invalid`) on anything RFC 7622 forbids (see the file comment for scope). */
export function parseJid(input: string): Jid {
  if (typeof input !== "string") fail(String(input), `expected a string, got ${typeof input}`);
  const slash = input.indexOf("/");
  const beforeResource = slash === -1 ? input : input.slice(0, slash);
  const at = beforeResource.indexOf("@");
  const local = at === -1 ? undefined : normaliseLocal(input, beforeResource.slice(0, at));
  const domain = normaliseDomain(input, at === -1 ? beforeResource : beforeResource.slice(at + 1));
  const resource = slash === -1 ? undefined : normaliseResource(input, input.slice(slash + 1));
  const bare = local === undefined ? domain : `${local}@${domain}`;
  const full = resource === undefined ? bare : `${bare}/${resource}`;
  return {
    ...(local === undefined ? {} : { local }),
    domain,
    ...(resource === undefined ? {} : { resource }),
    bare,
    full,
  };
}

/** Like parseJid, but returns null instead of throwing (for untrusted `from` attributes the caller will drop anyway). */
export function tryParseJid(input: string): Jid | null {
  try {
    return parseJid(input);
  } catch (err) {
    if (err instanceof JidError) return null;
    throw err;
  }
}

function toJid(j: string | Jid): Jid {
  return typeof j === "string" ? parseJid(j) : j;
}

/** The normalised bare JID (local@domain or domain). Throws JidError on invalid input. */
export function bareJid(j: string | Jid): string {
  return toJid(j).bare;
}

/** True when both name the same account (or the same domain), after normalisation. Throws JidError on invalid input. */
export function sameBare(a: string | Jid, b: string | Jid): boolean {
  return toJid(a).bare === toJid(b).bare;
}

/** True for a JID that is only a domainpart (a server or component), e.g. "example.org". */
export function isDomainJid(j: string | Jid): boolean {
  const p = toJid(j);
  return p.local === undefined && p.resource === undefined;
}
