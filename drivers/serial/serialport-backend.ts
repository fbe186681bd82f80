/**
 * Serial through node-serialport 13 (prebuilt bindings for linux x64/arm/arm64 ship in the
 * package, so nothing compiles on the device). Deliberately never calls SerialPort.list(): it
 * spawns udevadm, and where udevadm is missing (containers, CI) the spawn error escapes from a
 * child-process callback and kills the process.
 */
import { SerialPort } from "serialport";
import type { SerialSettings } from "../types.js";
import type { SerialBackend, SerialPortHandle } from "./backend.js";

/** serialport's read pool per port (its default is 64 KiB). */
export const SERIAL_READ_BUFFER_BYTES = 4096;

export class SerialportBackend implements SerialBackend {
  readonly name = "serialport";

  async open(path: string, settings: SerialSettings): Promise<SerialPortHandle> {
    const port = new SerialPort({
      path,
      baudRate: settings.baudRate,
      dataBits: settings.dataBits,
      parity: settings.parity,
      stopBits: settings.stopBits,
      autoOpen: false,
      // An exclusive lock: two agents (or the agent and a terminal) on one MCU would corrupt both.
      lock: true,
      // serialport's read pool and stream buffer are 64 KiB by default, one pool per port and a new
      // one each time it fills. A frame is at most 1 KiB (link.ts maxFrameBytes) and a 115200-baud line
      // carries 11.5 KB/s, read as it arrives: 4 KiB holds a third of a second of a busy line.
      highWaterMark: SERIAL_READ_BUFFER_BYTES,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new SerialportHandle(path, port);
  }
}

class SerialportHandle implements SerialPortHandle {
  private closedListeners: Array<(error?: Error) => void> = [];
  private ended = false;
  private closing = false;

  constructor(
    readonly path: string,
    private readonly port: SerialPort,
  ) {
    // Without an 'error' listener a write EIO after an unplug would be an uncaught exception.
    port.on("error", (err) => this.end(err));
    port.on("close", (err?: Error) => this.end(err ?? (this.closing ? undefined : new Error("port closed"))));
  }

  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ended) {
        reject(new Error("port is closed"));
        return;
      }
      this.port.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): Promise<void> {
    if (this.ended || !this.port.isOpen) {
      this.end(undefined);
      return Promise.resolve();
    }
    this.closing = true;
    return new Promise((resolve) => {
      this.port.close(() => {
        this.end(undefined);
        resolve();
      });
    });
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.port.on("data", listener);
  }

  onClosed(listener: (error?: Error) => void): void {
    this.closedListeners.push(listener);
  }

  async getBaudRate(): Promise<number> {
    const binding = this.port.port;
    if (!binding) throw new Error("port is closed");
    return (await binding.getBaudRate()).baudRate;
  }

  private end(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const listeners = this.closedListeners;
    this.closedListeners = [];
    for (const l of listeners) l(this.closing ? undefined : error);
    if (this.port.isOpen && !this.closing) this.port.close(() => {});
  }
}
