/**
 * The one pulse rule of the HAL, used by every output kind (GPIO pins, MCU actuators, MQTT
 * switches): a pulse is a whole number of milliseconds in 1..maxPulseMs (board.maxPulseMs, so a
 * typo cannot hold a relay on for a day); it drives the active level through the output's own
 * set path, and reports that start to the caller (refused or failed starts reject, so a command
 * never claims a pulse that did not happen); after the duration it restores the other level,
 * unless a set(), a newer pulse or a stop came first (they own the level then).
 */
import type { TimerHandle, Timers } from "../kernel/timers.js";
import { DriverError, type PulseStarted } from "./types.js";

export interface PulseTarget {
  /** Output id, for errors. */
  readonly id: string;
  /** Device name, for errors ("gpio:pinctrl-bcm2711/17", "serial:mcu0", "mqtt:zigbee2mqtt/lamp/set"). */
  readonly device: string;
  /** Applies a level the way set() does (waits for the device's confirmation where it has one). */
  drive(value: boolean): Promise<void>;
}

export class Pulser {
  private timer: TimerHandle | undefined;
  private finish: (() => void) | undefined;
  /** Bumped by every cancel: a pulse whose start is overtaken by a set() must not restore later. */
  private generation = 0;

  constructor(
    private readonly target: PulseTarget,
    private readonly maxPulseMs: number,
    private readonly timers: Timers,
  ) {}

  /** Validates, drives `value`, resolves once it is applied; `restored` settles when the pulse ends. */
  async start(durationMs: number, value: boolean): Promise<PulseStarted> {
    if (!Number.isInteger(durationMs) || durationMs < 1 || durationMs > this.maxPulseMs)
      throw new DriverError(
        "pulse_out_of_range",
        `a pulse on ${this.target.id} must last 1..${this.maxPulseMs} ms (board.maxPulseMs); ${durationMs} ms was asked`,
        { device: this.target.device, channel: this.target.id, durationMs, maxPulseMs: this.maxPulseMs },
      );
    this.cancel();
    const mine = this.generation;
    await this.target.drive(value);
    if (mine !== this.generation) return { restored: Promise.resolve() };
    const restored = new Promise<void>((resolve, reject) => {
      this.finish = resolve;
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.finish = undefined;
        this.target.drive(!value).then(resolve, reject);
      }, durationMs);
    });
    return { restored };
  }

  /** Ends a pulse in progress without restoring (a set() or stop owns the level now); its `restored` resolves. */
  cancel(): void {
    this.generation++;
    this.timer?.cancel();
    this.timer = undefined;
    const finish = this.finish;
    this.finish = undefined;
    finish?.();
  }
}
