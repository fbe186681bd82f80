/**
 * SASL PLAIN (RFC 4616): the password in clear inside the TLS tunnel. Refused unless the operator
 * allowed it and TLS is active; the constructor enforces that too, so no caller can bypass the
 * selector by building one directly.
 */
import { SaslError } from "./errors.js";
import { saslprep } from "./saslprep.js";
import type { SaslCredentials, SaslMechanism } from "./types.js";

export interface PlainOptions {
  allowPlain: boolean;
  tlsActive: boolean;
}

export class PlainMechanism implements SaslMechanism {
  readonly name = "PLAIN";
  readonly #message: Buffer;
  #sent = false;

  constructor(creds: SaslCredentials, options: PlainOptions) {
    if (!options.allowPlain || !options.tlsActive)
      throw new SaslError(
        "sasl_plain_refused",
        options.allowPlain
          ? "SASL PLAIN refused: TLS is not active"
          : "SASL PLAIN refused: not allowed by configuration (xmpp.allowPlain)",
        { allowPlain: options.allowPlain, tlsActive: options.tlsActive },
      );
    const authzid = creds.authzid === undefined ? "" : saslprep(creds.authzid, "authzid");
    // RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; SASLprep excludes NUL already.
    this.#message = Buffer.from(
      `${authzid}\0${saslprep(creds.username, "username")}\0${saslprep(creds.password, "password")}`,
      "utf8",
    );
  }

  initialResponse(): Buffer {
    if (this.#sent) throw new SaslError("sasl_bad_state", "PLAIN: initialResponse() called twice", {});
    this.#sent = true;
    return Buffer.from(this.#message);
  }

  challenge(data: Buffer): Buffer {
    // PLAIN is one message from the client and nothing else; a challenge means a confused or hostile server.
    throw new SaslError("sasl_bad_challenge", "PLAIN: the server sent a challenge, PLAIN has none", {
      reason: "unexpected challenge",
      bytes: Buffer.isBuffer(data) ? data.length : null,
    });
  }

  verifySuccess(data: Buffer | null): void {
    if (!this.#sent) throw new SaslError("sasl_bad_state", "PLAIN: verifySuccess() before initialResponse()", {});
    if (data !== null && data.length > 0)
      throw new SaslError("sasl_bad_challenge", "PLAIN: <success/> carried data, PLAIN has none", {
        reason: "unexpected success data",
        bytes: data.length,
      });
  }
}
