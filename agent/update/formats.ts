/**
 * The formats of what the agent keeps on disk across restarts, and the rule that keeps a rollback
 * safe (docs/update.md, "Data formats"): a release may only write formats that the version it
 * replaces can read, because that version is where a rollback lands, on the same data. Each release
 * says what it writes (`iot-agent --data-formats`, recorded in its manifest by `release build`), and
 * the running agent, before it accepts a release, checks that it reads every one of them.
 *
 * A format change therefore ships in two releases: first one that reads the new format but still
 * writes the old one, then, once the fleet runs it, one that writes the new format.
 */
import { SEGMENT_MAGIC } from "../telemetry/spool-record.js";
import { SAMPLING_SETTINGS_FORMAT } from "../telemetry/sampling-settings.js";
import { SEQUENCE_FORMAT } from "../telemetry/sequence.js";
import { FAST_TOKEN_FORMAT } from "../../xmpp/fast-token.js";

/** "ISPOOL01" -> 1. */
const SPOOL_FORMAT = Number(SEGMENT_MAGIC.toString("latin1").slice("ISPOOL".length));

/** What this version writes. */
export const WRITES: Readonly<Record<string, number>> = {
  /** Telemetry spool segments (agent/telemetry/spool-record.ts). */
  spool: SPOOL_FORMAT,
  /** The reading sequence counter (agent/telemetry/sequence.ts). */
  sequence: SEQUENCE_FORMAT,
  /** Per-channel sampling settings changed by operators (agent/telemetry/sampling-settings.ts). */
  samplingSettings: SAMPLING_SETTINGS_FORMAT,
  /** The credential store: password, journal, certificates (provisioning/device/credentials.ts). */
  credentials: 1,
  /** update-state.json (agent/update/state.ts). */
  updateState: 1,
  /** The XEP-0484 FAST token and SASL2 client id (xmpp/fast-token.ts). */
  fastToken: FAST_TOKEN_FORMAT,
};

/** What this version reads: for now exactly what it writes. */
export const READS: Readonly<Record<string, readonly number[]>> = Object.fromEntries(
  Object.entries(WRITES).map(([name, v]) => [name, [v]]),
);

/**
 * The formats in `writes` that `reads` cannot read, as "spool 2" strings. A kind of data `reads`
 * does not know at all is not counted: the older version never opens it, and it waits there.
 */
export function unreadable(
  writes: Readonly<Record<string, number>>,
  reads: Readonly<Record<string, readonly number[]>>,
): string[] {
  return Object.entries(writes)
    .filter(([name, v]) => reads[name] !== undefined && !reads[name].includes(v))
    .map(([name, v]) => `${name} ${v}`);
}
