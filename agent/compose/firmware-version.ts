/**
 * The microcontroller's firmware version, as telemetry's status item and the status command report
 * it. Asked at start and again at every login: the MCU may have been reflashed or replugged while
 * the device was offline.
 */
import { describeError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";

export interface VersionedBoard {
  client(linkId: string): { version(): Promise<string> };
}

export class FirmwareVersion {
  private value: string | undefined;

  constructor(
    private readonly board: VersionedBoard,
    /** Undefined when no framed serial link is configured: there is no MCU to ask. */
    private readonly mcuLink: string | undefined,
    private readonly log: Logger,
  ) {}

  /** The last version the MCU reported, if it ever answered. */
  get current(): string | undefined {
    return this.value;
  }

  /** Never rejects: an MCU that does not answer keeps the last known version. */
  async refresh(): Promise<void> {
    if (!this.mcuLink) return;
    try {
      this.value = await this.board.client(this.mcuLink).version();
    } catch (err) {
      this.log.debug("firmware version unavailable", { link: this.mcuLink, error: describeError(err) });
    }
  }
}
