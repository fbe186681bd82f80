/**
 * SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants (RFC 5802, RFC 7677), client side.
 *
 * Unlike @xmpp/client 0.14 this (1) derives SaltedPassword with one native PBKDF2 call instead of
 * 10,000 sequential WebCrypto HMACs, (2) verifies the server signature (a server that does not
 * know the password cannot fake `v=`), (3) validates the server-first message strictly, and
 * (4) supports channel binding, so a TLS-terminating impostor with a trusted certificate cannot
 * relay the exchange.
 *
 * Flow: initialResponse() -> client-first; challenge(server-first) -> client-final;
 * verifySuccess(server-final). Some servers deliver server-final as a last <challenge/> instead of
 * in <success/>: challenge() accepts it then, verifies it and returns an empty response, and the
 * following verifySuccess(null) passes.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { type Logger, silentLogger } from "../../kernel/log.js";
import type { SaltedPasswordCache } from "./cache.js";
import { SaslError } from "./errors.js";
import { escapeSaslName, saslprep } from "./saslprep.js";
import { CHANNEL_BINDING_TYPES, type ChannelBinding, type SaslCredentials, type SaslMechanism } from "./types.js";

export type ScramHash = "SHA-1" | "SHA-256";

/** Same shape as crypto.pbkdf2Sync; injectable so tests can count derivations. */
export type Pbkdf2Fn = (password: string, salt: Buffer, iterations: number, keylen: number, digest: string) => Buffer;

/**
 * The gs2 channel-binding flag (RFC 5802 §7):
 * - "n": the client does not support channel binding (or the server does, but we chose a non-PLUS mechanism);
 * - "y": the client supports it but believes the server does not (lets the server detect a -PLUS downgrade);
 * - "p": channel binding is used (the -PLUS mechanism).
 */
export type ScramChannelBinding = { flag: "n" } | { flag: "y" } | { flag: "p"; binding: ChannelBinding };

export interface ScramOptions {
  hash: ScramHash;
  /** Defaults to { flag: "n" }. */
  channelBinding?: ScramChannelBinding;
  /** Fixed client nonce, for the RFC test vectors only; by default 24 random base64 characters. */
  clientNonce?: string;
  pbkdf2?: Pbkdf2Fn;
  cache?: SaltedPasswordCache;
  /** Receives a warning when the server's iteration count is below RECOMMENDED_MIN_ITERATIONS. */
  logger?: Logger;
  /** Upper bound on the server's iteration count (CPU bound per login). Default MAX_SCRAM_ITERATIONS. */
  maxIterations?: number;
}

/** RFC 7677 §4 asks for at least 4096; fewer is accepted but logged. */
export const RECOMMENDED_MIN_ITERATIONS = 4096;
/** A server asking for more would pin the CPU of a small device for many seconds per login. */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

const DIGEST: Record<ScramHash, { node: string; bytes: number }> = {
  "SHA-1": { node: "sha1", bytes: 20 },
  "SHA-256": { node: "sha256", bytes: 32 },
};

// RFC 5802 "printable": %x21-2B / %x2D-7E (printable ASCII except ",").
const NONCE = /^[\x21-\x2B\x2D-\x7E]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const POSITIVE_NUMBER = /^[1-9][0-9]*$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

type State = "initial" | "awaiting-server-first" | "awaiting-server-final" | "verified" | "failed";

export function scramMechanismName(hash: ScramHash, plus: boolean): string {
  return `SCRAM-${hash}${plus ? "-PLUS" : ""}`;
}

export class ScramMechanism implements SaslMechanism {
  readonly name: string;
  readonly #hash: ScramHash;
  readonly #cb: ScramChannelBinding;
  readonly #pbkdf2: Pbkdf2Fn;
  readonly #cache: SaltedPasswordCache | undefined;
  readonly #logger: Logger;
  readonly #maxIterations: number;
  readonly #username: string;
  readonly #password: string;
  readonly #gs2Header: string;
  readonly #clientNonce: string;
  #state: State = "initial";
  #clientFirstBare = "";
  #expectedServerSignature: Buffer | undefined;
  #iterations: number | undefined;

  constructor(creds: SaslCredentials, options: ScramOptions) {
    if (!(options.hash in DIGEST))
      throw new SaslError("sasl_bad_state", `unsupported SCRAM hash ${String(options.hash)}`, { hash: options.hash });
    this.#hash = options.hash;
    this.#cb = options.channelBinding ?? { flag: "n" };
    if (this.#cb.flag === "p") checkBinding(this.#cb.binding);
    this.name = scramMechanismName(this.#hash, this.#cb.flag === "p");
    this.#pbkdf2 = options.pbkdf2 ?? pbkdf2Sync;
    this.#cache = options.cache;
    this.#logger = options.logger ?? silentLogger;
    this.#maxIterations = options.maxIterations ?? MAX_SCRAM_ITERATIONS;
    // Prepared once, up front: bad credentials fail before anything is sent.
    this.#username = saslprep(creds.username, "username");
    this.#password = saslprep(creds.password, "password");
    const authzid = creds.authzid === undefined ? "" : `a=${escapeSaslName(saslprep(creds.authzid, "authzid"))}`;
    const flag = this.#cb.flag === "p" ? `p=${this.#cb.binding.type}` : this.#cb.flag;
    this.#gs2Header = `${flag},${authzid},`;
    this.#clientNonce = options.clientNonce ?? randomBytes(18).toString("base64");
    if (!NONCE.test(this.#clientNonce))
      throw new SaslError("sasl_bad_state", "client nonce must be printable ASCII without ','", {});
  }

  /** The server's iteration count, once its first message was accepted. */
  get iterations(): number | undefined {
    return this.#iterations;
  }

  initialResponse(): Buffer {
    this.#expect("initial", "initialResponse");
    this.#clientFirstBare = `n=${escapeSaslName(this.#username)},r=${this.#clientNonce}`;
    this.#state = "awaiting-server-first";
    return Buffer.from(this.#gs2Header + this.#clientFirstBare, "utf8");
  }

  challenge(data: Buffer): Buffer {
    if (this.#state === "awaiting-server-final") {
      this.verifySuccess(data);
      return Buffer.alloc(0);
    }
    this.#expect("awaiting-server-first", "challenge");
    try {
      return this.#answerServerFirst(data);
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  verifySuccess(data: Buffer | null): void {
    // Already verified from a last <challenge/>: the <success/> that follows carries nothing new.
    if (this.#state === "verified" && (data === null || data.length === 0)) return;
    this.#expect("awaiting-server-final", "verifySuccess");
    try {
      this.#checkServerFinal(data);
      this.#state = "verified";
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  #answerServerFirst(data: Buffer): Buffer {
    const text = decode(data, "server-first");
    const attrs = parseAttributes(text, "server-first");
    const first = attrs[0];
    if (first?.key === "e") throw serverError(first.value);
    if (first?.key === "m") throw bad("server requires an unsupported mandatory extension (m=)", {});
    const [r, s, i] = attrs;
    if (r?.key !== "r" || s?.key !== "s" || i?.key !== "i")
      throw bad("server-first must start with r=, s=, i= in that order", { keys: attrs.map((a) => a.key).join(",") });

    const nonce = r.value;
    if (!NONCE.test(nonce)) throw bad("server nonce has characters outside printable ASCII", {});
    if (!nonce.startsWith(this.#clientNonce) || nonce.length === this.#clientNonce.length)
      throw bad("server nonce does not extend our client nonce", {});
    if (!BASE64.test(s.value) || s.value.length === 0) throw bad("salt is not valid base64", {});
    const salt = Buffer.from(s.value, "base64");
    if (!POSITIVE_NUMBER.test(i.value)) throw bad("iteration count is not a positive integer", { i: i.value });
    const iterations = Number(i.value);
    if (iterations > this.#maxIterations)
      throw bad(`iteration count ${i.value} exceeds the limit of ${this.#maxIterations}`, {
        iterations: i.value,
        max: this.#maxIterations,
      });
    if (iterations < RECOMMENDED_MIN_ITERATIONS)
      this.#logger.warn("SCRAM iteration count below the RFC 7677 recommendation", {
        mechanism: this.name,
        iterations,
        recommended: RECOMMENDED_MIN_ITERATIONS,
      });
    this.#iterations = iterations;

    const cbindInput =
      this.#cb.flag === "p"
        ? Buffer.concat([Buffer.from(this.#gs2Header, "utf8"), this.#cb.binding.data])
        : Buffer.from(this.#gs2Header, "utf8");
    const finalWithoutProof = `c=${cbindInput.toString("base64")},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${text},${finalWithoutProof}`;

    const { node } = DIGEST[this.#hash];
    const saltedPassword = this.#saltedPassword(salt, iterations);
    try {
      const clientKey = hmac(node, saltedPassword, "Client Key");
      const storedKey = createHash(node).update(clientKey).digest();
      const clientSignature = hmac(node, storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let k = 0; k < proof.length; k++) proof[k] = clientKey[k]! ^ clientSignature[k]!;
      this.#expectedServerSignature = hmac(node, hmac(node, saltedPassword, "Server Key"), authMessage);
      clientKey.fill(0);
      this.#state = "awaiting-server-final";
      return Buffer.from(`${finalWithoutProof},p=${proof.toString("base64")}`, "utf8");
    } finally {
      saltedPassword.fill(0);
    }
  }

  #saltedPassword(salt: Buffer, iterations: number): Buffer {
    const { node, bytes } = DIGEST[this.#hash];
    const cached = this.#cache?.get(this.#hash, this.#password, salt, iterations);
    if (cached !== undefined) return cached;
    const derived = this.#pbkdf2(this.#password, salt, iterations, bytes, node);
    this.#cache?.set(this.#hash, this.#password, salt, iterations, derived);
    return derived;
  }

  #checkServerFinal(data: Buffer | null): void {
    if (data === null || data.length === 0)
      throw new SaslError(
        "sasl_server_signature",
        "server reported success without a SCRAM server-final message: its identity is unverified",
        { mechanism: this.name, reason: "missing" },
      );
    const text = decode(data, "server-final");
    const attrs = parseAttributes(text, "server-final");
    const first = attrs[0];
    if (first?.key === "e") throw serverError(first.value);
    if (first?.key !== "v") throw bad("server-final must start with v= or e=", { key: first?.key });
    if (!BASE64.test(first.value)) throw bad("server signature is not valid base64", {});
    const got = Buffer.from(first.value, "base64");
    const expected = this.#expectedServerSignature!;
    if (got.length !== expected.length || !timingSafeEqual(got, expected))
      throw new SaslError(
        "sasl_server_signature",
        "SCRAM server signature mismatch: the server does not know our credentials",
        {
          mechanism: this.name,
          reason: "mismatch",
        },
      );
  }

  #expect(state: State, method: string): void {
    if (this.#state !== state)
      throw new SaslError("sasl_bad_state", `${this.name}: ${method}() called in state ${this.#state}`, {
        mechanism: this.name,
        state: this.#state,
        method,
      });
  }
}

function checkBinding(binding: ChannelBinding | undefined): void {
  if (binding === undefined || !CHANNEL_BINDING_TYPES.includes(binding.type))
    throw new SaslError("sasl_channel_binding", "unknown channel-binding type", { type: binding?.type });
  if (!Buffer.isBuffer(binding.data) || binding.data.length === 0)
    throw new SaslError("sasl_channel_binding", "channel-binding data is empty", { type: binding.type });
}

function hmac(digest: string, key: Buffer, data: string): Buffer {
  return createHmac(digest, key).update(data, "utf8").digest();
}

function decode(data: Buffer, what: string): string {
  if (!Buffer.isBuffer(data)) throw bad(`${what} is not a Buffer`, {});
  try {
    return utf8.decode(data);
  } catch {
    throw bad(`${what} is not valid UTF-8`, { bytes: data.length });
  }
}

/** Splits "k=v,k=v"; every attribute is one ASCII letter, "=", and a value without ",". */
function parseAttributes(text: string, what: string): { key: string; value: string }[] {
  return text.split(",").map((part, index) => {
    const m = /^([A-Za-z])=(.*)$/s.exec(part);
    if (!m) throw bad(`${what}: attribute ${index} is not of the form x=value`, { index });
    return { key: m[1]!, value: m[2]! };
  });
}

function bad(reason: string, context: Record<string, unknown>): SaslError {
  return new SaslError("sasl_bad_challenge", `SCRAM: ${reason}`, { reason, ...context });
}

function serverError(value: string): SaslError {
  // RFC 5802 server-error-value is a short token like "invalid-proof"; bound what we echo anyway.
  const reason = value.slice(0, 200);
  return new SaslError("sasl_server_error", `SCRAM server error: ${reason}`, { serverError: reason });
}
