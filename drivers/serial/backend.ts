/**
 * The serial backend interface, shaped like node-serialport's BindingInterface: open a path with
 * settings, get a port handle with promise-based write/close and data/closed callbacks. The
 * serialport backend (serialport-backend.ts) and the simulator's in-memory backend
 * (firmware-sim/serial-backend.ts) implement it; the link above never knows which it has.
 */
import type { SerialSettings } from "../types.js";

export interface SerialPortHandle {
  readonly path: string;
  write(data: Buffer): Promise<void>;
  /** Closes the port; resolves when closed. Does not fire onClosed's error path. Safe to call twice. */
  close(): Promise<void>;
  onData(listener: (chunk: Buffer) => void): void;
  /** Called once when the port ends: `error` set when the device went away, undefined after close(). */
  onClosed(listener: (error?: Error) => void): void;
  /** The baud rate the OS reports for the open port (checks that settings were applied). */
  getBaudRate(): Promise<number>;
}

export interface SerialBackend {
  readonly name: string;
  open(path: string, settings: SerialSettings): Promise<SerialPortHandle>;
}
