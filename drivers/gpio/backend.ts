/**
 * The GPIO backend interface, shaped like node-serialport's BindingInterface: a backend opens
 * lines and hands back a small handle with promise-based read/write/watch/close. Everything above
 * (debounce, pulse, activeLow, events) lives in drivers/gpio/pins.ts, so onoff, the simulator and
 * a future libgpiod/character-device backend only implement this file's two interfaces.
 */
export type Bit = 0 | 1;
export type GpioDirection = "in" | "out";

export interface GpioLineRequest {
  /** Line number relative to its chip (the "BCM 17" of a Raspberry Pi is line 17 of the header chip). */
  line: number;
  /** Chip label (e.g. "pinctrl-bcm2711", "pinctrl-rp1") or undefined for the backend's default chip. */
  chip?: string | undefined;
  direction: GpioDirection;
  /** Raw edges the backend should report through watch(); "none" for outputs. */
  edge?: "none" | "rising" | "falling" | "both";
  /** Initial level for an output, applied atomically with the direction where the backend can. */
  initial?: Bit;
  /** Who holds the line, for error messages and sysfs/libgpiod consumer labels. */
  consumer?: string;
}

export interface GpioLine {
  /** "gpio:<chip label>/<line>", used as DriverError.device. */
  readonly device: string;
  readonly direction: GpioDirection;
  /** Raw electrical level (no activeLow inversion). */
  read(): Promise<Bit>;
  /** Rejects with DriverError gpio_wrong_direction on an input. */
  write(value: Bit): Promise<void>;
  /** Raw, undebounced level changes. Returns the function that stops watching. */
  watch(listener: (value: Bit) => void): () => void;
  /** Releases (unexports) the line; later calls reject with gpio_unexported. Safe to call twice. */
  close(): Promise<void>;
}

export interface GpioBackend {
  /** "onoff", "sim", "libgpiod", ... */
  readonly name: string;
  /** False when this machine has no usable GPIO (e.g. onoff on a PC: no /sys/class/gpio). */
  readonly accessible: boolean;
  open(request: GpioLineRequest): Promise<GpioLine>;
}
