/** A SensorChannel over a digital input (door contact, float switch): 1 or 0, quality good or error. */
import { realTimers, type Timers } from "../../kernel/timers.js";
import { type DigitalInput, DriverError, type Reading, type SensorChannel } from "../types.js";

export interface DigitalInputChannelOptions {
  id: string;
  kind: string;
  unit: string;
  intervalMs: number;
  input: DigitalInput & { readonly device?: string };
  timers?: Timers;
}

export class DigitalInputChannel implements SensorChannel {
  readonly id: string;
  readonly kind: string;
  readonly unit: string;
  readonly intervalMs: number;
  private readonly timers: Timers;

  constructor(private readonly options: DigitalInputChannelOptions) {
    this.id = options.id;
    this.kind = options.kind;
    this.unit = options.unit;
    this.intervalMs = options.intervalMs;
    this.timers = options.timers ?? realTimers;
  }

  async read(): Promise<Reading> {
    const timestamp = this.timers.now();
    try {
      const level = await this.options.input.read();
      return { channelId: this.id, value: level ? 1 : 0, unit: this.unit, timestamp, quality: "good" };
    } catch (err) {
      const error =
        err instanceof DriverError
          ? err
          : new DriverError(
              "gpio_io",
              String(err),
              { device: this.options.input.device ?? "gpio", channel: this.id },
              { cause: err },
            );
      return { channelId: this.id, value: null, unit: this.unit, timestamp, quality: "error", error };
    }
  }
}
