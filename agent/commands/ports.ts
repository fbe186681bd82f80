/**
 * The narrow ports the built-in commands work against. The composition root (agent/main.ts) wires
 * them: `hal-adapter.ts` builds the hardware and MCU ports from drivers/ HAL objects, the telemetry
 * room provides the sampling settings, the session/spool/publisher provide the status snapshot.
 * Commands never see a session, a driver backend or a spool directly.
 */
import { AgentError } from "../../kernel/errors.js";

/**
 * What a port rejects with when the device side fails: the hardware refused (a pulse out of range),
 * did not answer (serial timeout, an MQTT switch that never confirmed), is offline (broker down,
 * unplugged) or is not there. The command engine answers it as XEP-0050 asks for a command that
 * ran but failed: `completed` with `<note type='error'>CODE: message</note>`, audited as `failed`.
 * The code is the failing layer's own stable code (docs/commands.md lists them per backend).
 * Anything else a handler throws is a bug in the agent and answers internal-server-error.
 */
export class DeviceFailure extends AgentError {
  /** The error as the operator reads it in the note. */
  get noteText(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Turns a typed error from the hardware side into a DeviceFailure (keeping code, message, context, cause); anything else passes through untouched. */
export function asDeviceFailure(err: unknown): unknown {
  if (err instanceof DeviceFailure || !(err instanceof AgentError)) return err;
  return new DeviceFailure(err.code, err.message, err.context, { cause: err });
}

/** What the device exposes, as listed by `list-channels`. */
export interface ChannelInfo {
  id: string;
  /** "sensor" channels are sampled, "input" are digital inputs, "output" are driven (relays, LEDs, actuators). */
  direction: "sensor" | "input" | "output";
  /** What is measured or driven ("temperature", "relay", ...). */
  kind: string;
  unit?: string;
  /** Sampling interval for sampled channels. */
  intervalMs?: number;
}

export interface ChannelReading {
  channelId: string;
  /** Digital channels read as booleans; null when the read failed (see quality/error). */
  value: number | boolean | null;
  unit?: string;
  /** ms since the epoch, UTC. */
  timestamp: number;
  quality: "good" | "stale" | "error";
  error?: string;
}

export interface OutputChange {
  outputId: string;
  /** Level before the command (read back from the device), when it could be read. */
  previous: boolean | undefined;
  /** Level now (for a pulse: the level during the pulse). */
  value: boolean;
  /** Set for a pulse: the level returns to `restoresTo` after `pulseMs`. */
  pulseMs?: number;
  restoresTo?: boolean;
}

/** Channels and outputs. Device-side failures reject with DeviceFailure; an unknown id with code "channel_not_found". */
export interface HardwarePort {
  listChannels(): Promise<ChannelInfo[]>;
  read(channelId: string): Promise<ChannelReading>;
  setOutput(outputId: string, value: boolean, opts?: { pulseMs?: number }): Promise<OutputChange>;
}

/** Per-channel sampling settings, persisted by their owner (the telemetry room) so they survive a restart. */
export interface ChannelSettings {
  intervalMs: number;
  /** Whether readings of this channel are published. */
  enabled: boolean;
}

export interface SamplingPort {
  /** Channels whose sampling can be configured. */
  channels(): Promise<string[]>;
  get(channelId: string): Promise<ChannelSettings>;
  /** Applies and persists `patch`; resolves with the settings before and after. */
  update(
    channelId: string,
    patch: Partial<ChannelSettings>,
  ): Promise<{ before: ChannelSettings; after: ChannelSettings }>;
  /** Bounds the telemetry room accepts, shown in the form (XEP-0122 range). */
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
}

/** One documented request to the microcontroller (docs/serial-protocol.md). */
export interface McuRequestInfo {
  name: string;
  description: string;
  /** Label of the argument when the request takes one (e.g. "sensor name"). */
  argument?: string;
}

export interface McuPort {
  readonly requests: readonly McuRequestInfo[];
  /** Sends a documented request, resolves with a human-readable answer; rejects on timeout or device error. */
  request(name: string, argument: string | undefined, timeoutMs: number): Promise<string>;
}

export interface DriversPort {
  /** Stops and restarts every driver (GPIO lines, serial links); resolves with what was restarted. */
  restart(): Promise<{ restarted: string[] }>;
}

/**
 * One hardware backend's health as `status` shows it to a person: "open; 1204 frames in; 3 bad CRC;
 * 1 reopen". Built from the drivers' counters by hal-adapter.ts.
 */
export interface BackendStatus {
  /** Field name in the status form: "gpio", "serial.mcu0", "mqtt". */
  id: string;
  /** "GPIO", "Serial mcu0", "MQTT devices". */
  label: string;
  /** "open", "unplugged", "connected to mqtt://...", "2 lines held: relay (gpio:chip/17, out), ...". */
  state: string;
  /** Counts of normal work, always shown. */
  activity: ReadonlyArray<readonly [what: string, count: number]>;
  /** Counts of trouble, shown when non-zero ("no errors" when all are zero). */
  problems: ReadonlyArray<readonly [what: string, count: number]>;
}

/** The process's memory as `status` shows it, in bytes (process.memoryUsage() and the memory limit). */
export interface MemoryStatus {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** The memory limit the agent runs under (the unit's MemoryMax=, or memory.limitBytes); absent: none found. */
  limitBytes?: number;
  /** Heap used right after a full GC: only when Node runs with --expose-gc (benchmarks, diagnostics). */
  heapLiveBytes?: number;
}

/** Everything `status` shows. Fields the composition root cannot fill are left undefined ("unknown"). */
export interface StatusSnapshot {
  uptimeS: number;
  agentVersion: string;
  firmwareVersion?: string;
  memory: MemoryStatus;
  link: { state: string; since?: number; server?: string };
  streamManagement?: { enabled: boolean; resumes: number; unacked: number };
  reconnects: number;
  /** What the session refused to handle: stanzas over limits, floods over budget (docs/xmpp-session.md). */
  inbound?: {
    skipped: number;
    droppedFromStrangers: number;
    droppedFromOperators: number;
    strangerRepliesDropped: number;
    topDropped?: { sender: string; dropped: number };
  };
  spool?: { depth: number; drops: number };
  /** Telemetry as a person reads it: "publishing", "blocked: ...", "...; 2 batches dead-lettered". */
  telemetry?: string;
  pubsub?: { service: string; nodes: string[] };
  /** Each hardware backend the board uses. */
  hardware?: BackendStatus[];
}

export interface StatusSource {
  snapshot(): Promise<StatusSnapshot>;
}
