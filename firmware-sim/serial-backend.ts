/**
 * SimSerialBackend: an in-memory SerialBackend for unit tests and for running the agent with no
 * PTY at all. Each path is a simulated device (usually a SimulatedMcu); the backend keeps the
 * rules of a real port: a missing or unplugged path does not open, a path opens once (like
 * serialport's lock), writes to a closed port fail. Per instance, no global registry.
 * Hooks: unplug()/replug() a path, settings() last opened with, and the device-side handle.
 */
import type { SerialBackend, SerialPortHandle } from "../drivers/serial/backend.js";
import type { SerialSettings } from "../drivers/types.js";
import type { SimulatedMcu } from "./mcu.js";

type Listener<T> = (v: T) => void;

/** One end of an in-memory wire; bytes written on one end arrive (asynchronously) at the other. */
class WireEnd implements SerialPortHandle {
  peer: WireEnd | undefined;
  private dataListeners: Array<Listener<Buffer>> = [];
  private closedListeners: Array<(error?: Error) => void> = [];
  private ended = false;

  constructor(
    readonly path: string,
    private readonly baudRate: number,
  ) {}

  get isEnded(): boolean {
    return this.ended;
  }

  async write(data: Buffer): Promise<void> {
    if (this.ended) throw new Error("Port is not open");
    const peer = this.peer;
    const copy = Buffer.from(data);
    // Delivered on a microtask: never re-entrant, still deterministic under fake timers.
    queueMicrotask(() => peer?.deliver(copy));
  }

  async close(): Promise<void> {
    this.end(undefined);
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  onClosed(listener: (error?: Error) => void): void {
    this.closedListeners.push(listener);
  }

  async getBaudRate(): Promise<number> {
    if (this.ended) throw new Error("Port is not open");
    return this.baudRate;
  }

  deliver(chunk: Buffer): void {
    if (this.ended) return;
    for (const l of this.dataListeners) l(chunk);
  }

  end(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const ls = this.closedListeners;
    this.closedListeners = [];
    this.dataListeners = [];
    for (const l of ls) l(error);
  }
}

interface SimDevice {
  mcu: SimulatedMcu | undefined;
  present: boolean;
  agentEnd: WireEnd | undefined;
  deviceEnd: WireEnd | undefined;
  settings: SerialSettings | undefined;
  opens: number;
}

export class SimSerialBackend implements SerialBackend {
  readonly name = "sim";
  private readonly devices = new Map<string, SimDevice>();

  /** Adds a device at `path`, served by `mcu` (or by nobody: then bytes go nowhere). */
  addDevice(path: string, mcu?: SimulatedMcu): void {
    this.devices.set(path, {
      mcu,
      present: true,
      agentEnd: undefined,
      deviceEnd: undefined,
      settings: undefined,
      opens: 0,
    });
  }

  async open(path: string, settings: SerialSettings): Promise<SerialPortHandle> {
    const dev = this.devices.get(path);
    if (!dev?.present)
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    if (dev.agentEnd && !dev.agentEnd.isEnded)
      throw new Error(`Error Resource temporarily unavailable Cannot lock port ${path}`);
    const agentEnd = new WireEnd(path, settings.baudRate);
    const deviceEnd = new WireEnd(`${path}#device`, settings.baudRate);
    agentEnd.peer = deviceEnd;
    deviceEnd.peer = agentEnd;
    dev.agentEnd = agentEnd;
    dev.deviceEnd = deviceEnd;
    dev.settings = { ...settings };
    dev.opens++;
    dev.mcu?.attach(deviceEnd);
    return agentEnd;
  }

  /** The device disappears: the agent's port ends with an error, opens fail until replug(). */
  unplug(path: string): void {
    const dev = this.device(path);
    dev.present = false;
    dev.mcu?.detach();
    dev.deviceEnd?.end(undefined);
    dev.agentEnd?.end(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }));
  }

  replug(path: string): void {
    this.device(path).present = true;
  }

  /** Settings of the last open of `path`. */
  settings(path: string): SerialSettings | undefined {
    return this.device(path).settings;
  }

  opens(path: string): number {
    return this.device(path).opens;
  }

  /** The device side of the open port, to inject raw bytes (noise, half frames) in tests. */
  deviceSide(path: string): SerialPortHandle | undefined {
    const end = this.device(path).deviceEnd;
    return end && !end.isEnded ? end : undefined;
  }

  private device(path: string): SimDevice {
    const dev = this.devices.get(path);
    if (!dev) throw new RangeError(`no simulated serial device at ${path}`);
    return dev;
  }
}
