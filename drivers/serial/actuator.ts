/**
 * A DigitalOutput that is an actuator on the MCU (a relay, a fan): set() sends SET, read() sends
 * GET so the value read back is the device's, not a cached copy. On/off maps to 1/0.
 */
import { realTimers, type TimerHandle, type Timers } from "../../agent/core/timers.js";
import { type DigitalOutput, DriverError } from "../types.js";
import type { McuClient } from "./client.js";

export interface SerialActuatorOptions {
  id: string;
  actuator: string;
  client: McuClient;
  maxPulseMs?: number;
  timers?: Timers;
}

export class SerialActuatorOutput implements DigitalOutput {
  readonly id: string;
  private readonly timers: Timers;
  private pulseTimer: TimerHandle | undefined;
  private pulseDone: (() => void) | undefined;

  constructor(private readonly options: SerialActuatorOptions) {
    this.id = options.id;
    this.timers = options.timers ?? realTimers;
  }

  async set(value: boolean): Promise<void> {
    this.endPulse();
    await this.options.client.setActuator(this.options.actuator, value ? 1 : 0, this.id);
  }

  async pulse(durationMs: number, value = true): Promise<void> {
    const max = this.options.maxPulseMs ?? 60_000;
    if (!Number.isFinite(durationMs) || durationMs < 0 || durationMs > max)
      throw new DriverError("driver_bad_argument", `pulse of ${durationMs} ms on ${this.id} is outside 0..${max} ms`, {
        device: this.options.client.device,
        channel: this.id,
      });
    this.endPulse();
    await this.options.client.setActuator(this.options.actuator, value ? 1 : 0, this.id);
    await new Promise<void>((resolve, reject) => {
      this.pulseDone = resolve;
      this.pulseTimer = this.timers.setTimeout(() => {
        this.pulseTimer = undefined;
        this.pulseDone = undefined;
        this.options.client.setActuator(this.options.actuator, value ? 0 : 1, this.id).then(() => resolve(), reject);
      }, durationMs);
    });
  }

  async read(): Promise<boolean> {
    return (await this.options.client.getActuator(this.options.actuator, this.id)) !== 0;
  }

  /** Cancels a pulse in progress (its promise resolves); the actuator keeps its current level. */
  stop(): void {
    this.endPulse();
  }

  private endPulse(): void {
    this.pulseTimer?.cancel();
    this.pulseTimer = undefined;
    const done = this.pulseDone;
    this.pulseDone = undefined;
    done?.();
  }
}
