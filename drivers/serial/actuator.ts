/**
 * A DigitalOutput that is an actuator on the MCU (a relay, a fan): set() sends SET, read() sends
 * GET so the value read back is the device's, not a cached copy. On/off maps to 1/0.
 */
import { realTimers, type Timers } from "../../kernel/timers.js";
import { Pulser } from "../pulse.js";
import type { DigitalOutput, PulseStarted } from "../types.js";
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
  private readonly pulser: Pulser;

  constructor(private readonly options: SerialActuatorOptions) {
    this.id = options.id;
    this.pulser = new Pulser(
      { id: options.id, device: options.client.device, drive: (v) => this.drive(v) },
      options.maxPulseMs ?? 60_000,
      options.timers ?? realTimers,
    );
  }

  async set(value: boolean): Promise<void> {
    this.pulser.cancel();
    await this.drive(value);
  }

  pulse(durationMs: number, value = true): Promise<PulseStarted> {
    return this.pulser.start(durationMs, value);
  }

  private async drive(value: boolean): Promise<void> {
    await this.options.client.setActuator(this.options.actuator, value ? 1 : 0, this.id);
  }

  async read(): Promise<boolean> {
    return (await this.options.client.getActuator(this.options.actuator, this.id)) !== 0;
  }

  /** Cancels a pulse in progress (its `restored` resolves); the actuator keeps its current level. */
  stop(): void {
    this.pulser.cancel();
  }
}
