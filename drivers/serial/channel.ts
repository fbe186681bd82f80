/**
 * A SensorChannel served by an MCU over the framed protocol. Quality:
 * - error: the link is down, the request timed out, or the MCU reports the sensor faulty;
 * - stale: the MCU's sample is older than staleAfterMs, or (when stuckAfterMs is set) the value
 *   has not moved for that long, which is how a stuck sensor looks from outside;
 * - good otherwise. The timestamp is when the MCU sampled (now - age).
 */
import { realTimers, type Timers } from "../../kernel/timers.js";
import { DriverError, type Reading, type SensorChannel } from "../types.js";
import type { McuClient } from "./client.js";

export interface SerialSensorChannelOptions {
  id: string;
  kind: string;
  unit: string;
  intervalMs: number;
  /** Sensor name on the MCU. */
  sensor: string;
  client: McuClient;
  /** Default: 3 × intervalMs. */
  staleAfterMs?: number;
  /** Unset: no stuck-value detection (a real quantity may legitimately hold still). */
  stuckAfterMs?: number;
  timers?: Timers;
}

export class SerialSensorChannel implements SensorChannel {
  readonly id: string;
  readonly kind: string;
  readonly unit: string;
  readonly intervalMs: number;
  private readonly timers: Timers;
  private lastValue: number | undefined;
  private unchangedSince = 0;

  constructor(private readonly options: SerialSensorChannelOptions) {
    this.id = options.id;
    this.kind = options.kind;
    this.unit = options.unit;
    this.intervalMs = options.intervalMs;
    this.timers = options.timers ?? realTimers;
  }

  async read(): Promise<Reading> {
    const now = this.timers.now();
    let sample: { value: number; ageMs: number };
    try {
      sample = await this.options.client.readSensor(this.options.sensor, this.id);
    } catch (err) {
      const error =
        err instanceof DriverError
          ? err
          : new DriverError(
              "sensor_fault",
              String(err),
              { device: this.options.client.device, channel: this.id },
              { cause: err },
            );
      this.lastValue = undefined;
      return { channelId: this.id, value: null, unit: this.unit, timestamp: now, quality: "error", error };
    }
    const done = this.timers.now();
    const timestamp = done - sample.ageMs;
    if (sample.value !== this.lastValue) {
      this.lastValue = sample.value;
      this.unchangedSince = timestamp;
    }
    const staleAfter = this.options.staleAfterMs ?? 3 * this.intervalMs;
    const reading: Reading = { channelId: this.id, value: sample.value, unit: this.unit, timestamp, quality: "good" };
    if (sample.ageMs > staleAfter) {
      reading.quality = "stale";
      reading.error = this.staleError(`sample is ${sample.ageMs} ms old (limit ${staleAfter} ms)`, {
        ageMs: sample.ageMs,
      });
    } else if (this.options.stuckAfterMs !== undefined && done - this.unchangedSince >= this.options.stuckAfterMs) {
      reading.quality = "stale";
      reading.error = this.staleError(`value stuck at ${sample.value} for ${done - this.unchangedSince} ms`, {
        stuckMs: done - this.unchangedSince,
      });
    }
    return reading;
  }

  private staleError(message: string, context: Record<string, unknown>): DriverError {
    return new DriverError("sensor_stale", `${this.id}: ${message}`, {
      ...context,
      device: this.options.client.device,
      channel: this.id,
    });
  }
}
