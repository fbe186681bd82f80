import { AgentError, type ErrorContext } from "../../kernel/errors.js";

/**
 * Stable codes, so the session and the reconnect policy can branch without reading messages:
 * - sasl_no_mechanism: nothing both offered by the server and allowed by us (context: offered, preferences, rejected).
 * - sasl_plain_refused: PLAIN was the only usable candidate but allowPlain is off or TLS is not active.
 * - sasl_server_signature: the server's final message is missing or its signature is wrong: the
 *   server does not know our credentials (impostor or downgrade), so do not treat it as "bad password".
 * - sasl_server_error: the server answered SCRAM with `e=<reason>` (context.serverError).
 * - sasl_bad_challenge: a server message is malformed or unacceptable (context.reason): bad syntax,
 *   foreign nonce, iteration count out of range, invalid base64, unsupported mandatory extension.
 * - sasl_bad_state: a method was called out of order (a bug in the caller, or a replayed message).
 * - sasl_bad_credentials: username/password/authzid unusable (empty, or prohibited by SASLprep). Never carries the value.
 * - sasl_channel_binding: a -PLUS mechanism was requested without usable channel-binding data.
 */
export type SaslErrorCode =
  | "sasl_no_mechanism"
  | "sasl_plain_refused"
  | "sasl_server_signature"
  | "sasl_server_error"
  | "sasl_bad_challenge"
  | "sasl_bad_state"
  | "sasl_bad_credentials"
  | "sasl_channel_binding";

export class SaslError extends AgentError {
  declare readonly code: SaslErrorCode;

  constructor(code: SaslErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}
