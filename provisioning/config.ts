/**
 * The `provisioning` section of the agent config: what the running agent does with the fleet's
 * credential material (docs/provisioning.md, "The running agent"). Everything here applies only to
 * an enrolled device, whose `xmpp.passwordFile` is `<dataDir>/credentials/password`.
 */
import { def, int, obj, opt, refine, str } from "../kernel/schema-dsl.js";

/** Below this a "self-rotation" is a misconfiguration that would hammer the server. */
export const MIN_SELF_ROTATION_MS = 60 * 60 * 1000;
const MAX_SELF_ROTATION_MS = 366 * 24 * 60 * 60 * 1000;

export const provisioningConfigSchema = obj({
  /**
   * Signed revocation list (`iot-fleet revocations --out`, or `revoke --export`), verified against
   * the fleet CA saved at enrolment and checked at start: a device whose bundle id or client
   * certificate serial is listed refuses to start (exit 3). Relative to the config file.
   */
  revocationListFile: opt(str({ minLength: 1 })),
  /**
   * Self-rotation: change the account password when the current one is this old (by the password
   * file's age, so restarts do not postpone it). 0 = off. At least one hour when on.
   */
  selfRotationIntervalMs: def(
    refine(int({ min: 0, max: MAX_SELF_ROTATION_MS }), (v, ctx) =>
      v === 0 || v >= MIN_SELF_ROTATION_MS
        ? v
        : ctx.fail(`must be 0 (off) or at least ${MIN_SELF_ROTATION_MS} (one hour), got ${v}`),
    ),
    0,
  ),
});
