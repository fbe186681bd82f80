/**
 * Typed errors of the telemetry room. Callers branch on `code`; `context` says what and where.
 * - `reading_invalid`: a reading failed validation (bad channel id, NaN, bad timestamp, ...).
 * - `payload_invalid`: a telemetry/status XML payload could not be decoded.
 * - `spool_*`: spool store failures (full under reject-new, closed, out-of-order append, I/O).
 * - `sequence_*`: sequence counter failures.
 * - `pubsub_*`: the server refused node creation or publishing, or answered something unusable;
 *   `pubsub_node_not_owned`: the node belongs to another account (node-guard.ts), a security fault.
 * - `sampler_*`: unknown channel, interval out of range.
 */
import { AgentError } from "../../kernel/errors.js";

export class TelemetryError extends AgentError {}

/** A reading or payload failed validation; nothing was stored or sent. */
export class ReadingError extends TelemetryError {}

/** A telemetry or status XML payload is malformed. `context.reason` says why, `context.at` where. */
export class PayloadError extends TelemetryError {}

export class SpoolError extends TelemetryError {}

export class SequenceError extends TelemetryError {}

/**
 * The pubsub service refused us. `context.condition` is the stanza error condition, `context.node`
 * the node, `context.operation` create|configure|publish|verify-owner. Readings stay in the spool.
 * Code `pubsub_node_not_owned` adds `context.reason` (not-owner, untrusted-owner, unverifiable) and
 * `context.owners` (the owners the server listed, when it listed any).
 */
export class PubsubError extends TelemetryError {}

export class SamplerError extends TelemetryError {}
