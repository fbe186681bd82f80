/**
 * Per-channel sampling settings that operators change at runtime (the set-sampling and
 * configure-channel commands) and that must survive a restart: kept in one small JSON file,
 * written atomically, applied to the sampler at start and on every change.
 *
 * "enabled: false" stops periodic sampling (interval 0): a digital input still reports its edges.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "../../kernel/log.js";
import { SamplerError } from "./errors.js";
import { writeFileAtomic } from "../../kernel/fsutil.js";

export interface ChannelSettings {
  intervalMs: number;
  enabled: boolean;
}

/** What the settings need from the sampler (TelemetryService fits). */
export interface IntervalTarget {
  setInterval(channelId: string, ms: number): void;
}

/** The settings file's format (docs/update.md, "Data formats"). */
export const SAMPLING_SETTINGS_FORMAT = 1;

interface StoredFile {
  version: typeof SAMPLING_SETTINGS_FORMAT;
  channels: Record<string, ChannelSettings>;
}

export class SamplingSettings {
  private readonly current = new Map<string, ChannelSettings>();

  constructor(
    private readonly opts: {
      path: string;
      /** Configured defaults per channel (from the board config). */
      defaults: Record<string, number>;
      target: IntervalTarget;
      minIntervalMs: number;
      maxIntervalMs: number;
      logger: Logger;
    },
  ) {}

  get minIntervalMs(): number {
    return this.opts.minIntervalMs;
  }
  get maxIntervalMs(): number {
    return this.opts.maxIntervalMs;
  }

  /** Loads the saved overrides and applies them. A corrupt file is reported and ignored (defaults win). */
  load(): void {
    for (const [id, intervalMs] of Object.entries(this.opts.defaults))
      this.current.set(id, { intervalMs, enabled: true });
    let saved: StoredFile | undefined;
    try {
      saved = JSON.parse(readFileSync(this.opts.path, "utf8")) as StoredFile;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") {
        this.opts.logger.error("sampling settings unreadable; using configured intervals", {
          path: this.opts.path,
          error: err,
        });
      }
    }
    for (const [id, s] of Object.entries(saved?.channels ?? {})) {
      if (!this.current.has(id) || !valid(s, this.opts)) continue;
      this.current.set(id, { intervalMs: s.intervalMs, enabled: s.enabled });
      this.apply(id);
    }
  }

  async channels(): Promise<string[]> {
    return [...this.current.keys()];
  }

  async get(channelId: string): Promise<ChannelSettings> {
    return { ...this.require(channelId) };
  }

  async update(
    channelId: string,
    patch: Partial<ChannelSettings>,
  ): Promise<{ before: ChannelSettings; after: ChannelSettings }> {
    const before = { ...this.require(channelId) };
    const after = { ...before, ...patch };
    if (!valid(after, this.opts)) {
      throw new SamplerError(
        "sampler_bad_interval",
        `interval must be ${this.opts.minIntervalMs}..${this.opts.maxIntervalMs} ms`,
        { channel: channelId, intervalMs: after.intervalMs },
      );
    }
    this.current.set(channelId, after);
    this.apply(channelId);
    this.save();
    return { before, after };
  }

  private require(channelId: string): ChannelSettings {
    const s = this.current.get(channelId);
    if (!s) {
      throw new SamplerError("sampler_unknown_channel", `no channel ${JSON.stringify(channelId)}`, {
        channel: channelId,
      });
    }
    return s;
  }

  private apply(channelId: string): void {
    const s = this.current.get(channelId)!;
    this.opts.target.setInterval(channelId, s.enabled ? s.intervalMs : 0);
  }

  private save(): void {
    const file: StoredFile = { version: SAMPLING_SETTINGS_FORMAT, channels: Object.fromEntries(this.current) };
    writeFileAtomic(this.opts.path, `${JSON.stringify(file, null, 2)}\n`);
  }
}

function valid(s: ChannelSettings, o: { minIntervalMs: number; maxIntervalMs: number }): boolean {
  return (
    typeof s.enabled === "boolean" &&
    Number.isInteger(s.intervalMs) &&
    s.intervalMs >= o.minIntervalMs &&
    s.intervalMs <= o.maxIntervalMs
  );
}
