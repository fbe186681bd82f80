/**
 * Test support, not used by the agent at run time: a minimal SCRAM *server* (RFC 5802 §3 from the
 * other side), independent of ScramMechanism's code paths, so tests can check a whole exchange
 * (including -PLUS binding data) and scripted-server session tests can answer <auth/> properly.
 * It trusts its input more than a real server would; it is not a server implementation to ship.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { ScramHash } from "./scram.js";
import type { ChannelBinding } from "./types.js";

export interface ScramServerOptions {
  hash: ScramHash;
  username: string;
  /** Already SASLprep'ed. */
  password: string;
  salt?: Buffer;
  iterations?: number;
  /** Appended to the client nonce; random by default. */
  serverNonce?: string;
  /** The binding this server sees on its side of the TLS channel; without it, "p=" is refused. */
  channelBinding?: ChannelBinding;
  /** Whether this server advertises -PLUS (then a client "y" flag is a downgrade and fails). */
  supportsPlus?: boolean;
}

export class ScramServer {
  readonly #o: Required<Omit<ScramServerOptions, "channelBinding">> & { channelBinding?: ChannelBinding };
  #clientFirstBare = "";
  #gs2Header = "";
  #serverFirst = "";
  #nonce = "";

  constructor(options: ScramServerOptions) {
    this.#o = {
      salt: randomBytes(16),
      iterations: 4096,
      serverNonce: randomBytes(12).toString("base64"),
      supportsPlus: options.channelBinding !== undefined,
      ...options,
    };
  }

  /** client-first -> server-first (or "e=..." as a string when the client's first message is unacceptable). */
  first(clientFirst: Buffer): Buffer {
    const text = clientFirst.toString("utf8");
    const m = /^((?:n|y|p=[a-z0-9.-]+),(?:a=[^,]*)?,)(n=([^,]*),r=([^,]+))$/.exec(text);
    if (!m) return Buffer.from("e=other-error");
    this.#gs2Header = m[1]!;
    this.#clientFirstBare = m[2]!;
    if (m[3] !== this.#o.username.replace(/=/g, "=3D").replace(/,/g, "=2C")) return Buffer.from("e=unknown-user");
    if (this.#gs2Header.startsWith("y") && this.#o.supportsPlus)
      return Buffer.from("e=server-does-support-channel-binding");
    this.#nonce = m[4]! + this.#o.serverNonce;
    this.#serverFirst = `r=${this.#nonce},s=${this.#o.salt.toString("base64")},i=${this.#o.iterations}`;
    return Buffer.from(this.#serverFirst);
  }

  /** client-final -> server-final ("v=..." on success, "e=..." otherwise). */
  final(clientFinal: Buffer): Buffer {
    const text = clientFinal.toString("utf8");
    const m = /^(c=([^,]*),r=([^,]*)),p=([^,]*)$/.exec(text);
    if (!m) return Buffer.from("e=other-error");
    const [, withoutProof, c, r, p] = m as unknown as [string, string, string, string, string];
    if (r !== this.#nonce) return Buffer.from("e=other-error");
    const cbData =
      this.#gs2Header.startsWith("p=") && this.#o.channelBinding !== undefined
        ? this.#o.channelBinding.data
        : Buffer.alloc(0);
    if (this.#gs2Header.startsWith("p=") && this.#o.channelBinding === undefined)
      return Buffer.from("e=channel-binding-not-supported");
    const expectedC = Buffer.concat([Buffer.from(this.#gs2Header), cbData]).toString("base64");
    if (c !== expectedC) return Buffer.from("e=channel-bindings-dont-match");

    const digest = this.#o.hash === "SHA-1" ? "sha1" : "sha256";
    const len = this.#o.hash === "SHA-1" ? 20 : 32;
    const salted = pbkdf2Sync(this.#o.password, this.#o.salt, this.#o.iterations, len, digest);
    const clientKey = createHmac(digest, salted).update("Client Key").digest();
    const storedKey = createHash(digest).update(clientKey).digest();
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientSignature = createHmac(digest, storedKey).update(authMessage).digest();
    const proof = Buffer.from(p, "base64");
    const recoveredKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
    if (!createHash(digest).update(recoveredKey).digest().equals(storedKey)) return Buffer.from("e=invalid-proof");
    const serverKey = createHmac(digest, salted).update("Server Key").digest();
    return Buffer.from(`v=${createHmac(digest, serverKey).update(authMessage).digest("base64")}`);
  }
}
