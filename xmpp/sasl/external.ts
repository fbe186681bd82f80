/**
 * SASL EXTERNAL (RFC 4422 Appendix A, XEP-0178): the identity is the client certificate presented
 * in the TLS handshake; the message is empty (the server takes the JID from the certificate's
 * id-on-xmppAddr) or an authorization identity. Only meaningful over TLS with a certificate, which
 * the selector checks before building one.
 */
import { SaslError } from "./errors.js";
import type { SaslMechanism } from "./types.js";

export class ExternalMechanism implements SaslMechanism {
  readonly name = "EXTERNAL";
  #sent = false;

  /** `authzid`: the bare JID to act as; empty lets the server derive it from the certificate. */
  constructor(private readonly authzid = "") {}

  initialResponse(): Buffer {
    if (this.#sent) throw new SaslError("sasl_bad_state", "EXTERNAL: initialResponse() called twice", {});
    this.#sent = true;
    return Buffer.from(this.authzid, "utf8");
  }

  challenge(data: Buffer): Buffer {
    // Some servers send an empty challenge when the initial response was empty (RFC 6120 §6.4.2).
    if (data.length === 0) return Buffer.from(this.authzid, "utf8");
    throw new SaslError("sasl_bad_challenge", "EXTERNAL: the server sent a non-empty challenge", {
      reason: "unexpected challenge",
      bytes: data.length,
    });
  }

  verifySuccess(data: Buffer | null): void {
    if (!this.#sent) throw new SaslError("sasl_bad_state", "EXTERNAL: verifySuccess() before initialResponse()", {});
    if (data !== null && data.length > 0)
      throw new SaslError("sasl_bad_challenge", "EXTERNAL: <success/> carried data, EXTERNAL has none", {
        reason: "unexpected success data",
        bytes: data.length,
      });
  }
}
