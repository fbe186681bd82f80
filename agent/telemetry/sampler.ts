/**
 * Reads every channel at its interval (and on input edges) and turns each value into a Reading
 * with the next device sequence number. Hardware is reached only through the ChannelSource port
 * below; board-source.ts adapts the drivers' Board to it.
 *
 * A read that is still running when the next tick comes is not doubled up (the tick is skipped and
 * counted as an overrun); a read that takes longer than readTimeoutMs yields an "error" reading.
 * Intervals can change at runtime (the set-sampling command calls setInterval()).
 */
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { SamplerError } from "./errors.js";
import type { Reading, ReadingQuality, ReadingValue } from "./reading.js";
import type { SequenceSource } from "./sequence.js";

export interface ChannelInfo {
  id: string;
  /** What is measured ("temperature", "digital-in", ...): shown in the status item. */
  kind: string;
  unit?: string;
  /** Default sampling interval; 0 = only on edges. */
  intervalMs: number;
}

export interface ChannelSample {
  value: ReadingValue | null;
  quality: ReadingQuality;
  /** When the value was sampled; defaults to the time the read resolved. */
  timestamp?: number;
}

export interface ChannelEdge {
  channelId: string;
  value: ReadingValue;
  timestamp: number;
}

/** The narrow hardware port of telemetry. */
export interface ChannelSource {
  channels(): ChannelInfo[];
  /** Should resolve even on device faults (quality "error"); a rejection is turned into one. */
  read(channelId: string): Promise<ChannelSample>;
  /** Subscribes to input edges; returns the unsubscribe function. */
  onEdge?(listener: (edge: ChannelEdge) => void): () => void;
}

export interface SamplerOptions {
  source: ChannelSource;
  sequence: SequenceSource;
  /** Receives every reading (normally Batcher.add). */
  sink: (reading: Reading) => void;
  /** Per-channel interval overrides from config. */
  intervals?: Record<string, number>;
  minIntervalMs?: number;
  maxIntervalMs?: number;
  readTimeoutMs?: number;
  timers?: Timers;
  logger?: Logger;
}

export const SAMPLER_DEFAULTS = { minIntervalMs: 100, maxIntervalMs: 24 * 3600 * 1000, readTimeoutMs: 5000 };

export interface SamplerStats {
  readings: number;
  errors: number;
  overruns: number;
  edges: number;
}

interface ChannelState {
  info: ChannelInfo;
  intervalMs: number;
  timer: TimerHandle | undefined;
  busy: boolean;
}

export class Sampler {
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly min: number;
  private readonly max: number;
  private readonly readTimeoutMs: number;
  private readonly channels = new Map<string, ChannelState>();
  private offEdge: (() => void) | undefined;
  private running = false;
  private readonly counters: SamplerStats = { readings: 0, errors: 0, overruns: 0, edges: 0 };

  constructor(private readonly options: SamplerOptions) {
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "sampler" });
    this.min = options.minIntervalMs ?? SAMPLER_DEFAULTS.minIntervalMs;
    this.max = options.maxIntervalMs ?? SAMPLER_DEFAULTS.maxIntervalMs;
    this.readTimeoutMs = options.readTimeoutMs ?? SAMPLER_DEFAULTS.readTimeoutMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const info of this.options.source.channels()) {
      const override = this.options.intervals?.[info.id];
      const intervalMs = override ?? info.intervalMs;
      this.checkInterval(info.id, intervalMs);
      const st: ChannelState = { info, intervalMs, timer: undefined, busy: false };
      this.channels.set(info.id, st);
      this.schedule(st);
    }
    this.offEdge = this.options.source.onEdge?.((e) => this.onEdge(e));
  }

  stop(): void {
    this.running = false;
    for (const st of this.channels.values()) st.timer?.cancel();
    this.channels.clear();
    this.offEdge?.();
    this.offEdge = undefined;
  }

  /** Changes a channel's interval at once (0 = edges only). Throws SamplerError for unknown ids or out-of-range values. */
  setInterval(channelId: string, ms: number): void {
    const st = this.channels.get(channelId);
    if (!st)
      throw new SamplerError("sampler_unknown_channel", `no channel ${JSON.stringify(channelId)}`, {
        channel: channelId,
        known: [...this.channels.keys()],
      });
    this.checkInterval(channelId, ms);
    st.intervalMs = ms;
    st.timer?.cancel();
    st.timer = undefined;
    this.schedule(st);
  }

  /** Current channels with their effective intervals (for the status item and the status command). */
  describe(): ChannelInfo[] {
    return [...this.channels.values()].map((s) => ({ ...s.info, intervalMs: s.intervalMs }));
  }

  stats(): SamplerStats {
    return { ...this.counters };
  }

  /** Reads one channel now (also used by the tick). Resolves when the reading went to the sink. */
  async sample(channelId: string): Promise<void> {
    const st = this.channels.get(channelId);
    if (!st)
      throw new SamplerError("sampler_unknown_channel", `no channel ${JSON.stringify(channelId)}`, {
        channel: channelId,
      });
    if (st.busy) {
      this.counters.overruns++;
      return;
    }
    st.busy = true;
    let sample: ChannelSample;
    try {
      sample = await this.readWithTimeout(channelId);
    } catch (err) {
      this.logger.debug("channel read failed", { channel: channelId, error: describeError(err) });
      sample = { value: null, quality: "error" };
    } finally {
      st.busy = false;
    }
    if (!this.running) return;
    this.emitReading(st.info, sample.value, sample.quality, sample.timestamp ?? this.timers.now());
  }

  private checkInterval(channelId: string, ms: number): void {
    if (!Number.isInteger(ms) || (ms !== 0 && (ms < this.min || ms > this.max)))
      throw new SamplerError(
        "sampler_bad_interval",
        `interval for ${channelId} must be 0 (edges only) or ${this.min}..${this.max} ms, got ${ms}`,
        { channel: channelId, intervalMs: ms, min: this.min, max: this.max },
      );
  }

  private schedule(st: ChannelState): void {
    if (!this.running || st.intervalMs === 0) return;
    st.timer = this.timers.setInterval(() => {
      this.sample(st.info.id).catch((err) =>
        this.logger.error("sampling failed", { channel: st.info.id, error: describeError(err) }),
      );
    }, st.intervalMs);
  }

  private readWithTimeout(channelId: string): Promise<ChannelSample> {
    return new Promise((resolve, reject) => {
      const t = this.timers.setTimeout(
        () =>
          reject(
            new SamplerError("sampler_read_timeout", `read of ${channelId} took over ${this.readTimeoutMs} ms`, {
              channel: channelId,
            }),
          ),
        this.readTimeoutMs,
      );
      this.options.source.read(channelId).then(
        (s) => {
          t.cancel();
          resolve(s);
        },
        (err) => {
          t.cancel();
          reject(err);
        },
      );
    });
  }

  private onEdge(e: ChannelEdge): void {
    const st = this.channels.get(e.channelId);
    if (!st || !this.running) return;
    this.counters.edges++;
    this.emitReading(st.info, e.value, "good", e.timestamp);
  }

  private emitReading(info: ChannelInfo, value: ReadingValue | null, quality: ReadingQuality, timestamp: number): void {
    // A "good" reading without a value is a source bug; report it as an error reading, not a crash.
    const q: ReadingQuality = value === null && quality === "good" ? "error" : quality;
    const reading: Reading = {
      seq: this.options.sequence.next(),
      channelId: info.id,
      value: typeof value === "number" && !Number.isFinite(value) ? null : value,
      timestamp: Math.round(timestamp),
      quality: typeof value === "number" && !Number.isFinite(value) ? "error" : q,
    };
    if (info.unit) reading.unit = info.unit;
    if (reading.quality !== "good") this.counters.errors++;
    this.counters.readings++;
    this.options.sink(reading);
  }
}
