/**
 * SimulatedMcu: the firmware of a small sensor board, speaking the framed protocol of
 * docs/serial-protocol.md on whatever port it is attached to (one end of a real PTY in the
 * integration tests and the CLI, an in-memory port in unit tests). It samples sensors on a
 * random walk, applies actuator commands, reports its version, and can be told to misbehave:
 * disconnected or stuck sensors, stale samples, slow or missing answers, corrupt frames, noise.
 */
import { realTimers, type TimerHandle, type Timers } from "../kernel/timers.js";
import type { SerialPortHandle } from "../drivers/serial/backend.js";
import {
  decodeSet,
  encodeError,
  encodeFrame,
  encodeList,
  encodeMilli,
  encodeSensorValue,
  MSG,
  REMOTE_ERROR,
  RESPONSE_BIT,
} from "../drivers/serial/codec.js";
import { FrameParser } from "../drivers/serial/parsers/frame.js";
import type { Frame } from "../drivers/types.js";
import { randomBytes } from "./random.js";

export interface SimSensorSpec {
  unit?: string;
  start: number;
  /** Largest change per sampling period (uniform in ±walk). 0 keeps the value still. */
  walk?: number;
  min?: number;
  max?: number;
  /** How often the firmware samples the sensor, ms. */
  periodMs?: number;
}

export interface SimMcuOptions {
  /**
   * framed (default): answers requests of docs/serial-protocol.md. line: prints
   * `name=value ...` every lineIntervalMs, like an Arduino sketch, and ignores input.
   */
  protocol?: "framed" | "line";
  lineIntervalMs?: number;
  firmware?: string;
  sensors?: Record<string, SimSensorSpec>;
  actuators?: Record<string, number>;
  timers?: Timers;
  random?: () => number;
  /** Largest payload accepted, like a firmware's receive buffer. */
  maxPayload?: number;
  /** Answers held back at once when responses are slowed down; beyond it requests are dropped. */
  maxDelayedResponses?: number;
}

interface SensorState {
  spec: Required<Omit<SimSensorSpec, "unit">> & { unit: string };
  value: number;
  sampledAt: number;
  disconnected: boolean;
  stuck: boolean;
  /** The firmware stopped refreshing this sample (its age keeps growing). */
  frozen: boolean;
}

export interface SimMcuCounters {
  requests: number;
  responses: number;
  dropped: number;
  garbageBytesSent: number;
  corruptFramesSent: number;
}

export const DEFAULT_FIRMWARE = "iot-sim-mcu 1.0.0";

export class SimulatedMcu {
  readonly firmware: string;
  readonly counters: SimMcuCounters = {
    requests: 0,
    responses: 0,
    dropped: 0,
    garbageBytesSent: 0,
    corruptFramesSent: 0,
  };
  private readonly sensors = new Map<string, SensorState>();
  private readonly actuators = new Map<string, number>();
  private readonly timers: Timers;
  private readonly random: () => number;
  private port: SerialPortHandle | undefined;
  private parser: FrameParser | undefined;
  private readonly delayed = new Set<TimerHandle>();
  private responseDelayMs = 0;
  private muted = false;
  private corruptNext = 0;
  private lineTimer: TimerHandle | undefined;
  private firstRequestListeners: (() => void)[] = [];

  constructor(private readonly options: SimMcuOptions = {}) {
    this.firmware = options.firmware ?? DEFAULT_FIRMWARE;
    this.timers = options.timers ?? realTimers;
    this.random = options.random ?? Math.random;
    const sensors = options.sensors ?? {
      temperature: { unit: "°C", start: 21.5, walk: 0.05, min: -20, max: 60 },
      humidity: { unit: "%", start: 45, walk: 0.2, min: 0, max: 100 },
    };
    for (const [name, spec] of Object.entries(sensors)) {
      this.sensors.set(name, {
        spec: {
          unit: spec.unit ?? "",
          start: spec.start,
          walk: spec.walk ?? 0,
          min: spec.min ?? Number.NEGATIVE_INFINITY,
          max: spec.max ?? Number.POSITIVE_INFINITY,
          periodMs: spec.periodMs ?? 1000,
        },
        value: spec.start,
        sampledAt: this.timers.now(),
        disconnected: false,
        stuck: false,
        frozen: false,
      });
    }
    for (const [name, v] of Object.entries(options.actuators ?? { fan: 0, heater: 0 })) this.actuators.set(name, v);
  }

  /** Calls `listener` at the first request this board receives (at once if it has had one). */
  onFirstRequest(listener: () => void): void {
    if (this.counters.requests > 0) listener();
    else this.firstRequestListeners.push(listener);
  }

  get attached(): boolean {
    return this.port !== undefined;
  }

  /** Starts serving a port: parses requests from it and writes answers to it. */
  attach(port: SerialPortHandle): void {
    this.detach();
    this.port = port;
    const parser = new FrameParser({ maxLength: this.options.maxPayload ?? 1024, timers: this.timers });
    this.parser = parser;
    parser.on("data", (frame: Frame) => this.onRequest(frame));
    port.onData((chunk) => {
      if (this.parser === parser) parser.write(chunk);
    });
    if (this.options.protocol === "line")
      this.lineTimer = this.timers.setInterval(() => this.printLine(), this.options.lineIntervalMs ?? 1000);
  }

  /** Stops serving (an unplug, or shutdown); answers not yet sent are dropped. */
  detach(): void {
    this.lineTimer?.cancel();
    this.lineTimer = undefined;
    for (const t of this.delayed) t.cancel();
    this.delayed.clear();
    this.parser?.destroy();
    this.parser = undefined;
    this.port = undefined;
  }

  // ---- state and faults (used by scenarios and tests) -------------------------------------

  sensorNames(): string[] {
    return [...this.sensors.keys()];
  }

  actuator(name: string): number | undefined {
    return this.actuators.get(name);
  }

  /** The current value, sampled as a READ would. */
  sensorValue(name: string): number {
    return this.sample(this.sensorState(name)).value;
  }

  setSensor(name: string, value: number): void {
    const s = this.sensorState(name);
    s.value = value;
    s.sampledAt = this.timers.now();
  }

  setSensorFault(name: string, fault: "disconnected" | "stuck" | "frozen", on: boolean): void {
    const s = this.sensorState(name);
    if (fault === "disconnected") s.disconnected = on;
    else if (fault === "stuck") s.stuck = on;
    else {
      // Unfreezing resamples now, like a firmware whose sampling task restarted.
      if (!on) s.sampledAt = this.timers.now();
      s.frozen = on;
    }
  }

  setResponseDelay(ms: number): void {
    this.responseDelayMs = Math.max(0, ms);
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
  }

  /** The next `n` answers go out with a wrong CRC. */
  corruptNextFrames(n: number): void {
    this.corruptNext = Math.max(0, n);
  }

  /** Writes `n` random bytes onto the line (noise, a boot banner, a baud mismatch). */
  async sendGarbage(n: number): Promise<void> {
    if (!this.port) return;
    this.counters.garbageBytesSent += n;
    await this.port.write(randomBytes(n, this.random)).catch(() => {});
  }

  requestCounters() {
    return { ...this.counters, parser: this.parser ? { ...this.parser.counters } : undefined };
  }

  // ---- protocol ---------------------------------------------------------------------------

  private sensorState(name: string): SensorState {
    const s = this.sensors.get(name);
    if (!s) throw new RangeError(`no simulated sensor named ${JSON.stringify(name)}`);
    return s;
  }

  private sample(s: SensorState): { value: number; ageMs: number } {
    const now = this.timers.now();
    if (!s.frozen && !s.stuck) {
      const periods = Math.floor((now - s.sampledAt) / s.spec.periodMs);
      // Catch up lazily, at most 1000 steps, so an idle sim costs nothing.
      for (let i = 0; i < Math.min(periods, 1000); i++) {
        s.value = Math.min(s.spec.max, Math.max(s.spec.min, s.value + (this.random() * 2 - 1) * s.spec.walk));
      }
      if (periods > 0) s.sampledAt += periods * s.spec.periodMs;
    }
    if (s.stuck) s.sampledAt = now;
    return { value: Math.round(s.value * 1000) / 1000, ageMs: now - s.sampledAt };
  }

  /** Line mode: one line with every sensor; a disconnected one prints "nan" (as a failed DHT read does), a frozen one is left out. */
  printLine(): void {
    const port = this.port;
    if (!port || this.muted) return;
    const parts: string[] = [];
    for (const [name, s] of this.sensors) {
      if (s.frozen) continue;
      parts.push(`${name}=${s.disconnected ? "nan" : this.sample(s).value}`);
    }
    const bytes = Buffer.from(`${parts.join(" ")}\r\n`, "utf8");
    if (this.corruptNext > 0 && bytes.length > 2) {
      this.corruptNext--;
      this.counters.corruptFramesSent++;
      bytes[Math.floor(this.random() * (bytes.length - 2))] = 0x3f;
    }
    this.counters.responses++;
    port.write(bytes).catch(() => {});
  }

  private onRequest(frame: Frame): void {
    if (this.options.protocol === "line") return;
    this.counters.requests++;
    if (this.firstRequestListeners.length > 0) {
      const listeners = this.firstRequestListeners;
      this.firstRequestListeners = [];
      for (const l of listeners) l();
    }
    if (this.muted) {
      this.counters.dropped++;
      return;
    }
    const answer = this.answer(frame);
    if (this.responseDelayMs <= 0) {
      this.send(answer);
      return;
    }
    if (this.delayed.size >= (this.options.maxDelayedResponses ?? 64)) {
      this.counters.dropped++;
      return;
    }
    const timer = this.timers.setTimeout(() => {
      this.delayed.delete(timer);
      this.send(answer);
    }, this.responseDelayMs);
    this.delayed.add(timer);
  }

  private answer(req: Frame): Frame {
    const reply = (payload: Buffer): Frame => ({ type: req.type | RESPONSE_BIT, seq: req.seq, payload });
    const fail = (code: number, message: string): Frame => ({
      type: MSG.ERROR,
      seq: req.seq,
      payload: encodeError({ code, message }),
    });
    switch (req.type) {
      case MSG.PING:
        return reply(req.payload);
      case MSG.VERSION:
        return reply(Buffer.from(this.firmware, "utf8"));
      case MSG.LIST:
        return reply(encodeList({ sensors: [...this.sensors.keys()], actuators: [...this.actuators.keys()] }));
      case MSG.READ: {
        const name = req.payload.toString("utf8");
        const s = this.sensors.get(name);
        if (!s) return fail(REMOTE_ERROR.UNKNOWN_SENSOR, `no sensor ${name}`);
        if (s.disconnected) return fail(REMOTE_ERROR.SENSOR_FAULT, `sensor ${name} does not answer`);
        return reply(encodeSensorValue(this.sample(s)));
      }
      case MSG.SET: {
        let cmd: { name: string; value: number };
        try {
          cmd = decodeSet(req.payload);
        } catch {
          return fail(REMOTE_ERROR.BAD_PAYLOAD, "malformed SET");
        }
        if (!this.actuators.has(cmd.name)) return fail(REMOTE_ERROR.UNKNOWN_ACTUATOR, `no actuator ${cmd.name}`);
        this.actuators.set(cmd.name, cmd.value);
        return reply(encodeMilli(cmd.value));
      }
      case MSG.GET: {
        const name = req.payload.toString("utf8");
        const v = this.actuators.get(name);
        if (v === undefined) return fail(REMOTE_ERROR.UNKNOWN_ACTUATOR, `no actuator ${name}`);
        return reply(encodeMilli(v));
      }
      default:
        return fail(REMOTE_ERROR.UNKNOWN_TYPE, `unknown request type 0x${req.type.toString(16)}`);
    }
  }

  private send(frame: Frame): void {
    const port = this.port;
    if (!port) return;
    const bytes = encodeFrame(frame);
    if (this.corruptNext > 0) {
      this.corruptNext--;
      this.counters.corruptFramesSent++;
      bytes[bytes.length - 1]! ^= 0xff;
    }
    this.counters.responses++;
    // A write error here means the line went away; the unplug path reports it, not the MCU.
    port.write(bytes).catch(() => {});
  }
}
