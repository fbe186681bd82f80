/**
 * PtySimulator: a SimulatedMcu on the device end of a socat PTY pair, opened with the real
 * serialport backend; the agent opens `agentPath`. unplug()/replug() pull and reinsert the
 * "cable" (socat stops and restarts with the same link names).
 */
import type { SerialBackend, SerialPortHandle } from "../drivers/serial/backend.js";
import { SerialportBackend } from "../drivers/serial/serialport-backend.js";
import { DEFAULT_SERIAL_SETTINGS, type SerialSettings } from "../drivers/types.js";
import type { SimulatedMcu } from "./mcu.js";
import { SocatPty } from "./pty.js";

/** What a scenario needs to pull the cable. */
export interface LinkControl {
  unplug(): Promise<void>;
  replug(): Promise<void>;
}

export interface PtySimulatorOptions {
  mcu: SimulatedMcu;
  dir: string;
  settings?: Partial<SerialSettings>;
  /** Default: the serialport backend (a real PTY end). */
  backend?: SerialBackend;
  socat?: string;
}

export class PtySimulator implements LinkControl {
  readonly pty: SocatPty;
  private port: SerialPortHandle | undefined;
  private readonly backend: SerialBackend;

  constructor(private readonly options: PtySimulatorOptions) {
    this.pty = new SocatPty({ dir: options.dir, ...(options.socat ? { socat: options.socat } : {}) });
    this.backend = options.backend ?? new SerialportBackend();
  }

  /** The path to point the agent (or a terminal) at. */
  get agentPath(): string {
    return this.pty.agentPath;
  }

  get plugged(): boolean {
    return this.port !== undefined;
  }

  async start(): Promise<void> {
    await this.replug();
  }

  async stop(): Promise<void> {
    await this.unplug();
  }

  async unplug(): Promise<void> {
    this.options.mcu.detach();
    const port = this.port;
    this.port = undefined;
    await port?.close();
    await this.pty.stop();
  }

  async replug(): Promise<void> {
    if (this.port) return;
    await this.pty.start();
    try {
      this.port = await this.backend.open(this.pty.devicePath, {
        ...DEFAULT_SERIAL_SETTINGS,
        ...this.options.settings,
      });
    } catch (err) {
      await this.pty.stop();
      throw err;
    }
    this.options.mcu.attach(this.port);
  }
}
