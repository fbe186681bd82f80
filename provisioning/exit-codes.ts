/**
 * Exit statuses shared by `iot-fleet` and `iot-agent enroll` (documented in docs/provisioning.md),
 * so scripts can tell "try again later" from "this bundle will never work".
 */
import { isAgentError } from "../kernel/errors.js";
import type { ProvisioningErrorCode } from "./errors.js";

export const EXIT = {
  ok: 0,
  /** Unexpected failure, file I/O. */
  failure: 1,
  /** Bad command line. */
  usage: 2,
  /** Fleet state forbids it: unknown / already enrolled / revoked device, CA missing or present. */
  state: 3,
  /** Refused on security grounds: bundle tampered, wrong CA, expired, revoked, wrong key, bad passphrase or CSR. */
  refused: 4,
  /** The XMPP server failed or refused: connect, TLS, login, ad-hoc, registration, invite. */
  server: 5,
  /** Fleet store locked by another run, or corrupt; a job run by another process. */
  store: 6,
  /** A fleet job ended with devices that did not complete (error, timed out, offline, aborted, unknown). */
  incomplete: 7,
} as const;

const BY_CODE: Partial<Record<ProvisioningErrorCode, number>> = {
  usage: EXIT.usage,
  device_unknown: EXIT.state,
  device_exists: EXIT.state,
  device_revoked: EXIT.state,
  job_unknown: EXIT.state,
  job_running: EXIT.store,
  ca_exists: EXIT.state,
  ca_missing: EXIT.state,
  bundle_malformed: EXIT.refused,
  bundle_unsupported_version: EXIT.refused,
  bundle_tampered: EXIT.refused,
  bundle_wrong_ca: EXIT.refused,
  bundle_expired: EXIT.refused,
  bundle_not_yet_valid: EXIT.refused,
  bundle_revoked: EXIT.refused,
  bundle_no_trust_anchor: EXIT.refused,
  bundle_key_mismatch: EXIT.refused,
  ca_invalid: EXIT.refused,
  ca_passphrase: EXIT.refused,
  csr_invalid: EXIT.refused,
  key_invalid: EXIT.refused,
  decrypt_failed: EXIT.refused,
  store_locked: EXIT.store,
  store_corrupt: EXIT.store,
  xmpp_connect: EXIT.server,
  xmpp_tls: EXIT.server,
  xmpp_auth: EXIT.server,
  xmpp_stream: EXIT.server,
  xmpp_timeout: EXIT.server,
  register_refused: EXIT.server,
  register_conflict: EXIT.server,
  invite_invalid: EXIT.server,
  adhoc_failed: EXIT.server,
  adhoc_unsupported: EXIT.server,
  enroll_login_failed: EXIT.server,
  upload_refused: EXIT.server,
};

export function exitCodeFor(err: unknown): number {
  if (isAgentError(err)) return BY_CODE[err.code as ProvisioningErrorCode] ?? EXIT.failure;
  return EXIT.failure;
}
