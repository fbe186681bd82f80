/** The `update` section of the agent config: over-the-air updates of the agent itself (docs/update.md). */
import { bool, bytes, def, int, ms, obj, opt, str } from "../../kernel/schema-dsl.js";

export const updateConfigSchema = obj({
  /**
   * Offer the `update` command. Only for an agent started by the releases launcher
   * (IOT_AGENT_RELEASES_DIR, deploy/iot-agent.service), which can run another release.
   */
  enabled: def(bool(), false),
  /** Where releases, `current` and the update state live: the service's state directory. */
  dir: def(str(), "/var/lib/iot-agent"),
  /** The fleet CA certificate that signs releases. Default: FLEET_CA beside xmpp.passwordFile (enrolment puts it there). */
  fleetCaFile: opt(str()),
  /** CA certificates to trust for an https download URL, besides the system's. Default: xmpp.caFile. */
  downloadCaFile: opt(str()),
  /** Largest release archive the device downloads. */
  maxDownloadBytes: def(bytes({ min: 1024 }), 64 * 1024 * 1024),
  /** The whole download. */
  downloadTimeoutMs: def(ms({ min: 1000 }), 600_000),
  /** Starts a new release gets to pass its health check before the previous one is restored. */
  maxStarts: def(int({ min: 1, max: 10 }), 3),
  /** After a start on trial: session bound and a telemetry batch acknowledged within this, or roll back. */
  healthDeadlineMs: def(ms({ min: 5000 }), 300_000),
});

export type UpdateConfig = Exclude<ReturnType<typeof updateConfigSchema.parse>, symbol>;
