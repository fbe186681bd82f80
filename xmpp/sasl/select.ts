/**
 * Picks the mechanism: the first of our `preferences` that the server offered and that is usable
 * on this connection. The rules that keep this from being a downgrade path:
 * - -PLUS only with channel-binding data, over TLS, and (when the server listed its XEP-0440
 *   channel-binding types) only with a type the server accepts;
 * - a plain SCRAM sends gs2 flag "y" when we could bind but the server offered no -PLUS at all,
 *   so a server that does support -PLUS (its list stripped by an attacker) fails the exchange;
 *   it sends "n" when the server offered -PLUS and we still chose plain SCRAM (by preference, or
 *   because its binding types exclude ours), since "y" would then be refused by RFC 5802 §6;
 * - PLAIN only when allowPlain && tlsActive;
 * - EXTERNAL only over TLS with a client certificate presented (xmpp.clientCertFile);
 * - password mechanisms only when there is a password (a certificate-only device has none).
 */
import type { Logger } from "../../kernel/log.js";
import type { SaltedPasswordCache } from "./cache.js";
import { SaslError } from "./errors.js";
import { ExternalMechanism } from "./external.js";
import { PlainMechanism } from "./plain.js";
import { type ScramChannelBinding, type ScramHash, ScramMechanism } from "./scram.js";
import type { ChannelBinding, SaslCredentials, SaslMechanism } from "./types.js";

export interface SelectOptions {
  /** Our order of preference (xmpp.saslMechanisms). Names are matched case-insensitively. */
  preferences: string[];
  /** What the server listed in <mechanisms/>. */
  offered: string[];
  allowPlain: boolean;
  tlsActive: boolean;
  channelBinding?: ChannelBinding;
  /** the server advertised XEP-0440 channel-binding types, if any */
  serverChannelBindings?: string[];
  cache?: SaltedPasswordCache;
  /** A client certificate was presented in the TLS handshake (EXTERNAL is usable). */
  clientCertificate?: boolean;
  /** Optional (an addition to the agreed shape): receives the low-iteration-count warning and a debug line on the choice. */
  logger?: Logger;
}

export const SUPPORTED_MECHANISMS = [
  "EXTERNAL",
  "SCRAM-SHA-256-PLUS",
  "SCRAM-SHA-256",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-1",
  "PLAIN",
] as const;

/** Strongest first; the same default as xmpp.saslMechanisms in xmpp/config.ts. */
export const DEFAULT_SASL_PREFERENCES: readonly string[] = SUPPORTED_MECHANISMS;

const SCRAM: Record<string, { hash: ScramHash; plus: boolean }> = {
  "SCRAM-SHA-1": { hash: "SHA-1", plus: false },
  "SCRAM-SHA-1-PLUS": { hash: "SHA-1", plus: true },
  "SCRAM-SHA-256": { hash: "SHA-256", plus: false },
  "SCRAM-SHA-256-PLUS": { hash: "SHA-256", plus: true },
};

export function selectMechanism(creds: SaslCredentials, opts: SelectOptions): SaslMechanism {
  const offered = new Set(opts.offered.map((m) => m.trim().toUpperCase()));
  const serverSupportsBinding = [...offered].some((m) => SCRAM[m]?.plus === true);
  const binding = opts.tlsActive ? opts.channelBinding : undefined;
  const rejected: { mechanism: string; reason: string }[] = [];

  for (const pref of opts.preferences) {
    const name = pref.trim().toUpperCase();
    if (!offered.has(name)) continue;
    if (name === "EXTERNAL") {
      if (opts.clientCertificate === true && opts.tlsActive)
        return chosen(opts, name, rejected, new ExternalMechanism());
      rejected.push({
        mechanism: name,
        reason: opts.tlsActive ? "no client certificate configured (xmpp.clientCertFile)" : "TLS is not active",
      });
      continue;
    }
    const scram = SCRAM[name];
    if ((scram || name === "PLAIN") && creds.password.length === 0) {
      rejected.push({ mechanism: name, reason: "no password configured" });
      continue;
    }
    if (scram?.plus) {
      const reason = plusUnusable(opts, binding);
      if (reason !== undefined) {
        rejected.push({ mechanism: name, reason });
        continue;
      }
      return chosen(opts, name, rejected, scramMechanism(creds, opts, scram.hash, { flag: "p", binding: binding! }));
    }
    if (scram) {
      const flag = binding !== undefined && !serverSupportsBinding ? "y" : "n";
      return chosen(opts, name, rejected, scramMechanism(creds, opts, scram.hash, { flag }));
    }
    if (name === "PLAIN") {
      if (opts.allowPlain && opts.tlsActive)
        return chosen(opts, name, rejected, new PlainMechanism(creds, { allowPlain: true, tlsActive: true }));
      rejected.push({
        mechanism: name,
        reason: opts.allowPlain ? "TLS is not active" : "not allowed by configuration (xmpp.allowPlain)",
      });
      continue;
    }
    rejected.push({ mechanism: name, reason: "not implemented by this client" });
  }

  const context = {
    offered: [...offered],
    preferences: opts.preferences,
    rejected,
  };
  if (rejected.length > 0 && rejected.every((r) => r.mechanism === "PLAIN"))
    throw new SaslError(
      "sasl_plain_refused",
      `the only usable mechanism the server offers is PLAIN, and PLAIN is refused: ${rejected[0]!.reason}`,
      context,
    );
  throw new SaslError(
    "sasl_no_mechanism",
    `no SASL mechanism in common: server offers [${[...offered].join(", ")}], we allow [${opts.preferences.join(", ")}]`,
    context,
  );
}

function plusUnusable(opts: SelectOptions, binding: ChannelBinding | undefined): string | undefined {
  if (!opts.tlsActive) return "TLS is not active";
  if (binding === undefined) return "no channel-binding data for this connection";
  if (opts.serverChannelBindings !== undefined && !opts.serverChannelBindings.includes(binding.type))
    return `server accepts channel-binding types [${opts.serverChannelBindings.join(", ")}], not ${binding.type}`;
  return undefined;
}

function scramMechanism(
  creds: SaslCredentials,
  opts: SelectOptions,
  hash: ScramHash,
  channelBinding: ScramChannelBinding,
): ScramMechanism {
  return new ScramMechanism(creds, {
    hash,
    channelBinding,
    ...(opts.cache === undefined ? {} : { cache: opts.cache }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}

function chosen(
  opts: SelectOptions,
  name: string,
  rejected: { mechanism: string; reason: string }[],
  mechanism: SaslMechanism,
): SaslMechanism {
  opts.logger?.debug("SASL mechanism selected", { mechanism: name, ...(rejected.length > 0 ? { rejected } : {}) });
  return mechanism;
}
