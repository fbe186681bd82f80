/**
 * Why a device refused or could not apply an update. Each code is stable: the `update` command's
 * result, the status item and the fleet's per-device report carry it.
 */
import { AgentError } from "../../kernel/errors.js";

export type UpdateErrorCode =
  /** Signature, fleet CA or manifest shape (the underlying ProvisioningError is the cause). */
  | "update_untrusted"
  | "update_not_newer"
  | "update_wrong_platform"
  /** The release writes a data format the running version (the rollback target) cannot read. */
  | "update_formats"
  | "update_no_space"
  | "update_too_large"
  | "update_download_failed"
  | "update_hash_mismatch"
  | "update_archive_invalid"
  | "update_io"
  /** Another update is being downloaded or installed. */
  | "update_busy"
  /** The agent was not started by the releases launcher, or `update.enabled` is off. */
  | "update_unavailable";

export class UpdateError extends AgentError {
  declare readonly code: UpdateErrorCode;
  constructor(
    code: UpdateErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, context, options);
  }
}
