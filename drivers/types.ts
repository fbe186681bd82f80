/**
 * The hardware abstraction layer (HAL): what the rest of the agent may know about hardware.
 * Telemetry and commands see only these interfaces; which backend serves them (onoff, serialport,
 * the simulator, a future libgpiod backend) is decided by the composition root.
 */
import { AgentError, type ErrorContext } from "../kernel/errors.js";
import type { EventSource } from "./events.js";

export type { EventSource, Unsubscribe } from "./events.js";

/** Every driver failure: `context.device` names the device (e.g. "gpio:pinctrl-bcm2711/17", "serial:mcu0"), `context.channel` the channel/pin id when there is one. */
export class DriverError extends AgentError {
  readonly device: string;
  readonly channel: string | undefined;

  constructor(
    code: DriverErrorCode,
    message: string,
    where: { device: string; channel?: string | undefined } & ErrorContext,
    options?: { cause?: unknown },
  ) {
    super(code, message, where, options);
    this.device = where.device;
    this.channel = where.channel;
  }
}

export type DriverErrorCode =
  | "driver_not_started"
  | "driver_backend_missing"
  | "driver_bad_argument"
  | "gpio_unavailable"
  | "gpio_no_chip"
  | "gpio_line_out_of_range"
  | "gpio_line_busy"
  | "gpio_unexported"
  | "gpio_wrong_direction"
  | "gpio_io"
  | "pulse_out_of_range"
  | "serial_open_failed"
  | "serial_not_open"
  | "serial_disconnected"
  | "serial_write_failed"
  | "serial_timeout"
  | "serial_busy"
  | "serial_frame_too_large"
  | "serial_bad_response"
  | "serial_remote_error"
  | "sensor_fault"
  | "sensor_stale";

// ---------------------------------------------------------------------------------------------
// Digital I/O

/** A pin driven by the agent (relay, LED, valve). `true` is the active level (activeLow is applied below). */
export interface DigitalOutput {
  readonly id: string;
  set(value: boolean): Promise<void>;
  /**
   * Drives `value` (default true) for `durationMs`, then the opposite (drivers/pulse.ts: one rule for
   * every kind). Resolves once the level is applied, rejects if the pulse is refused or cannot start;
   * `restored` settles when the pulse ends. A set() or a newer pulse cancels the restore.
   */
  pulse(durationMs: number, value?: boolean): Promise<PulseStarted>;
  /** Reads the level back from the backend (not a cached copy). */
  read(): Promise<boolean>;
}

/** A pulse that has started; `restored` resolves when the other level is back (or a set() took over), rejects if restoring failed. */
export interface PulseStarted {
  readonly restored: Promise<void>;
}

export type EdgeFilter = "rising" | "falling" | "both";

export interface InputEdge {
  inputId: string;
  edge: "rising" | "falling";
  /** The debounced level after the edge. */
  value: boolean;
  /** ms since the epoch (UTC), when the level became stable. */
  timestamp: number;
}

export interface DigitalInputEvents {
  edge: InputEdge;
}

/** A pin read by the agent (button, door contact). Edges are debounced above the backend, so every backend behaves alike. */
export interface DigitalInput extends EventSource<DigitalInputEvents> {
  readonly id: string;
  readonly edgeFilter: EdgeFilter | "none";
  read(): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// Serial

export interface SerialSettings {
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: "none" | "even" | "odd";
  stopBits: 1 | 2;
}

export const DEFAULT_SERIAL_SETTINGS: SerialSettings = { baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1 };

/** One decoded frame of the framed protocol (docs/serial-protocol.md). */
export interface Frame {
  type: number;
  seq: number;
  payload: Buffer;
}

/** Line-noise counters; they only grow, until the link is re-created. */
export interface SerialStats {
  framesIn: number;
  framesOut: number;
  /** Bytes dropped while hunting for a frame start (noise, garbage, unknown protocol version). */
  garbageBytes: number;
  /** Frames with a good header whose CRC did not match. */
  badCrc: number;
  /** Frames that began but never completed (cut by silence, unplug or close). */
  partialFrames: number;
  /** Headers announcing a payload above maxFrameBytes. */
  oversizeFrames: number;
  bytesIn: number;
  bytesOut: number;
  unplugs: number;
  reopens: number;
}

/** Request/response counters of a protocol client on a link. */
export interface RequestStats {
  requests: number;
  responses: number;
  timeouts: number;
  /** Requests refused at once because maxInFlight were already waiting. */
  busy: number;
  remoteErrors: number;
  /** Responses that matched no pending request (late after a timeout, or invented by the device). */
  unmatchedResponses: number;
}

export type SerialLinkState = "closed" | "opening" | "open" | "unplugged";

/** Events every serial device reports, whatever protocol runs on it. */
export interface SerialDeviceEvents {
  open: { linkId: string; path: string };
  /** The device went away (read/write error, EOF); channels served by it are now in error. */
  unplug: { linkId: string; path: string; error: DriverError };
  /** The device came back and was reopened after an unplug. */
  replug: { linkId: string; path: string; attempts: number };
  close: { linkId: string; path: string };
}

/** A serial device: opened with port settings, closed, and watched for unplug/replug. */
export interface SerialDevice<E extends SerialDeviceEvents = SerialDeviceEvents> extends EventSource<E> {
  readonly id: string;
  readonly path: string;
  readonly protocol: "framed" | "line";
  readonly state: SerialLinkState;
  readonly settings: SerialSettings;
  /** Opens with the given settings (or the configured ones); rejects with DriverError serial_open_failed. */
  open(settings?: Partial<SerialSettings>): Promise<void>;
  close(): Promise<void>;
}

export interface SerialLinkEvents extends SerialDeviceEvents {
  frame: Frame;
}

/** A serial device speaking the framed protocol (docs/serial-protocol.md). */
export interface SerialLink extends SerialDevice<SerialLinkEvents> {
  readonly protocol: "framed";
  writeFrame(frame: Frame): Promise<void>;
  stats(): SerialStats;
}

export interface LineLinkEvents extends SerialDeviceEvents {
  line: string;
}

/** Counters of a line-protocol link. */
export interface LineStats {
  bytesIn: number;
  bytesOut: number;
  lines: number;
  /** Lines longer than maxLineBytes, dropped whole. */
  overlongLines: number;
  droppedBytes: number;
  /** Tokens that were not `key=number`. */
  malformedTokens: number;
  unplugs: number;
  reopens: number;
}

/** A serial device that prints text lines (`temperature=21.5 humidity=40`), like many Arduino sketches. */
export interface LineLink extends SerialDevice<LineLinkEvents> {
  readonly protocol: "line";
  writeLine(text: string): Promise<void>;
  stats(): LineStats;
}

// ---------------------------------------------------------------------------------------------
// Sensor channels

export type Quality = "good" | "stale" | "error";

export interface Reading {
  channelId: string;
  /** null when quality is "error" and no value could be read. */
  value: number | null;
  unit: string;
  /** ms since the epoch, UTC: when the value was sampled (the device may report an age). */
  timestamp: number;
  quality: Quality;
  /** Why quality is not "good". */
  error?: DriverError;
}

/**
 * A source of readings. read() does not reject on device faults: it resolves with quality
 * "error" (or "stale") and the DriverError, so a sampler always has something to report.
 */
export interface SensorChannel {
  readonly id: string;
  /** What is measured: "temperature", "humidity", "contact", ... (free text from the config). */
  readonly kind: string;
  readonly unit: string;
  /** How often the sampler should call read(). */
  readonly intervalMs: number;
  read(): Promise<Reading>;
}
