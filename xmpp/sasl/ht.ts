/**
 * HT-SHA-256-* (draft-schmaus-kitten-sasl-ht, as XEP-0484 FAST uses it): one message each way,
 * proving possession of a token the server issued earlier instead of running SCRAM's two round
 * trips over the password. Both sides prove themselves: the client sends HMAC(token, "Initiator" ||
 * cb), the server answers HMAC(token, "Responder" || cb), and an answer that does not match is a
 * server that does not know the token (an impostor), not a refusal.
 *
 * The suffix names the channel binding mixed in: NONE (none), UNIQ (tls-unique, TLS 1.2), EXPR
 * (tls-exporter, TLS 1.3). A token is issued for one mechanism and only works with that one.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { SaslError } from "./errors.js";
import { saslprep } from "./saslprep.js";
import type { ChannelBinding, SaslMechanism } from "./types.js";

export const HT_MECHANISMS = ["HT-SHA-256-EXPR", "HT-SHA-256-UNIQ", "HT-SHA-256-NONE"] as const;
export type HtMechanismName = (typeof HT_MECHANISMS)[number];

const BINDING_OF: Record<HtMechanismName, ChannelBinding["type"] | undefined> = {
  "HT-SHA-256-EXPR": "tls-exporter",
  "HT-SHA-256-UNIQ": "tls-unique",
  "HT-SHA-256-NONE": undefined,
};

export function isHtMechanism(name: string): name is HtMechanismName {
  return (HT_MECHANISMS as readonly string[]).includes(name);
}

/** The channel-binding type a HT mechanism needs (undefined: none). */
export function htBindingType(name: HtMechanismName): ChannelBinding["type"] | undefined {
  return BINDING_OF[name];
}

/**
 * The strongest HT mechanism among `offered` that this connection can run: EXPR needs tls-exporter
 * data (TLS 1.3), UNIQ tls-unique data (TLS 1.2); NONE always works over TLS.
 */
export function bestHtMechanism(
  offered: readonly string[],
  bindings: Partial<Record<ChannelBinding["type"], Buffer>>,
): HtMechanismName | undefined {
  const set = new Set(offered.map((m) => m.trim().toUpperCase()));
  for (const name of HT_MECHANISMS) {
    if (!set.has(name)) continue;
    const type = BINDING_OF[name];
    if (type === undefined || bindings[type] !== undefined) return name;
  }
  return undefined;
}

export class HtMechanism implements SaslMechanism {
  readonly #username: string;
  readonly #token: Buffer;
  readonly #cb: Buffer;
  #sent = false;

  constructor(
    readonly name: HtMechanismName,
    username: string,
    token: string,
    channelBindingData: Buffer | undefined,
  ) {
    const type = BINDING_OF[name];
    if (type !== undefined && (channelBindingData === undefined || channelBindingData.length === 0))
      throw new SaslError("sasl_channel_binding", `${name} needs ${type} channel-binding data`, { mechanism: name });
    if (token.length === 0) throw new SaslError("sasl_bad_credentials", "FAST token is empty", { mechanism: name });
    this.#username = saslprep(username, "username");
    this.#token = Buffer.from(token, "utf8");
    this.#cb = type === undefined ? Buffer.alloc(0) : Buffer.from(channelBindingData!);
  }

  private hmac(label: string): Buffer {
    return createHmac("sha256", this.#token)
      .update(Buffer.concat([Buffer.from(label, "utf8"), this.#cb]))
      .digest();
  }

  initialResponse(): Buffer {
    if (this.#sent) throw new SaslError("sasl_bad_state", `${this.name}: initialResponse() called twice`, {});
    this.#sent = true;
    return Buffer.concat([Buffer.from(`${this.#username}\0`, "utf8"), this.hmac("Initiator")]);
  }

  challenge(data: Buffer): Buffer {
    throw new SaslError("sasl_bad_challenge", `${this.name}: the server sent a challenge, HT has none`, {
      reason: "unexpected challenge",
      bytes: data.length,
    });
  }

  verifySuccess(data: Buffer | null): void {
    if (!this.#sent)
      throw new SaslError("sasl_bad_state", `${this.name}: verifySuccess() before initialResponse()`, {});
    const expected = this.hmac("Responder");
    if (data === null || data.length !== expected.length || !timingSafeEqual(data, expected))
      throw new SaslError(
        "sasl_server_signature",
        `${this.name}: the server's answer does not prove it knows the token (missing or wrong)`,
        { mechanism: this.name, bytes: data?.length ?? null },
      );
  }
}
