/**
 * Typed errors of the provisioning room. Every refusal a fleet admin or a device can meet has a
 * stable `code`, so the CLIs map codes to exit statuses and tests assert on codes, not messages.
 */
import { AgentError, type ErrorContext } from "../kernel/errors.js";

export type ProvisioningErrorCode =
  // bundle verification
  | "bundle_malformed"
  | "bundle_unsupported_version"
  | "bundle_tampered"
  | "bundle_wrong_ca"
  | "bundle_expired"
  | "bundle_not_yet_valid"
  | "bundle_revoked"
  | "bundle_no_trust_anchor"
  | "bundle_key_mismatch"
  // CA / keys
  | "ca_exists"
  | "ca_missing"
  | "ca_invalid"
  | "ca_passphrase"
  | "csr_invalid"
  | "key_invalid"
  | "decrypt_failed"
  // fleet store
  | "store_corrupt"
  | "store_locked"
  | "store_io"
  | "device_exists"
  | "device_unknown"
  | "device_revoked"
  | "job_unknown"
  | "job_running"
  // usage
  | "usage"
  // XMPP operations
  | "xmpp_connect"
  | "xmpp_tls"
  | "xmpp_auth"
  | "xmpp_stream"
  | "xmpp_timeout"
  | "register_refused"
  | "register_conflict"
  | "invite_invalid"
  | "adhoc_failed"
  | "adhoc_unsupported"
  | "enroll_io"
  | "enroll_login_failed"
  // releases (XEP-0363 upload)
  | "upload_refused";

export class ProvisioningError extends AgentError {
  declare readonly code: ProvisioningErrorCode;

  constructor(code: ProvisioningErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(code, message, context, options);
  }
}

export function isProvisioningError(err: unknown, code?: ProvisioningErrorCode): err is ProvisioningError {
  return err instanceof ProvisioningError && (code === undefined || err.code === code);
}
