/**
 * The agent's memory against the limit it runs under (the unit's MemoryMax=96M, found in the
 * cgroup files by cgroup-memory.ts, or memory.limitBytes), and the figures `status` and the status
 * item report.
 *
 * Past the limit the kernel's OOM killer ends the agent without a word in its own log, so the watch
 * logs one warning ("memory high") when RSS reaches memory.warnFraction of the limit, sampled every
 * memory.checkIntervalMs. It warns again only after RSS has fallen below (warnFraction - 0.05) of the
 * limit ("memory no longer high", info): RSS hovering at the line would otherwise fill the journal
 * with one warning per check. With no limit found there is nothing to compare against: no timer runs.
 */
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import type { MemoryStatus } from "../commands/ports.js";
import { cgroupMemoryLimit, type MemoryLimit } from "./cgroup-memory.js";
import type { MemoryConfig } from "./config.js";

/** How far (as a fraction of the limit) RSS must fall under the warning line before the next warning. */
export const REARM_MARGIN = 0.05;

export interface MemoryWatchOptions {
  config: MemoryConfig;
  timers?: Timers;
  logger?: Logger;
  /** process.memoryUsage by default. */
  memoryUsage?: () => NodeJS.MemoryUsage;
  /** Where the limit comes from when memory.limitBytes is not set: the cgroup files by default. */
  findLimit?: () => Promise<MemoryLimit | undefined>;
  /** A full garbage collection: globalThis.gc by default, which exists only under --expose-gc. */
  gc?: () => void;
}

/** process.memoryUsage() in the units `status` reports (bytes), without the limit. */
export function memoryFigures(u: NodeJS.MemoryUsage): MemoryStatus {
  return {
    rssBytes: u.rss,
    heapUsedBytes: u.heapUsed,
    heapTotalBytes: u.heapTotal,
    externalBytes: u.external,
    arrayBuffersBytes: u.arrayBuffers,
  };
}

/** Bytes as MiB rounded to one decimal, for log fields. */
function mib(bytes: number): number {
  return Math.round((bytes / 1_048_576) * 10) / 10;
}

export class MemoryWatch {
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly memoryUsage: () => NodeJS.MemoryUsage;
  private limit: { bytes: number; from: string } | undefined;
  private timer: TimerHandle | undefined;
  /** Warned, and not yet back under the re-arm line. */
  private high = false;

  constructor(private readonly options: MemoryWatchOptions) {
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "memory" });
    this.memoryUsage = options.memoryUsage ?? (() => process.memoryUsage());
  }

  /** The limit being watched; undefined before start() and when none was found. */
  get limitBytes(): number | undefined {
    return this.limit?.bytes;
  }

  async start(): Promise<void> {
    if (this.timer) return;
    const { warnFraction, checkIntervalMs } = this.options.config;
    this.limit = await this.findLimit();
    if (!this.limit) {
      this.logger.info("memory limit: none found, not watching", { rssMiB: mib(this.memoryUsage().rss) });
      return;
    }
    this.logger.info("memory limit", {
      limitMiB: mib(this.limit.bytes),
      from: this.limit.from,
      warnAtMiB: mib(this.limit.bytes * warnFraction),
      rssMiB: mib(this.memoryUsage().rss),
    });
    this.high = false;
    this.timer = this.timers.setInterval(() => this.check(), checkIntervalMs);
    // At once too: an agent already over the line after its start should not wait a whole interval.
    this.check();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** The figures as they are now, without a GC: what the status item carries. */
  usage(): MemoryStatus {
    return memoryFigures(this.memoryUsage());
  }

  /** The figures as they are now and the limit (and, under --expose-gc, the live heap): what `status` shows. */
  snapshot(): MemoryStatus {
    const out = this.usage();
    if (this.limit) out.limitBytes = this.limit.bytes;
    const gc = this.options.gc ?? (typeof globalThis.gc === "function" ? globalThis.gc : undefined);
    if (gc) {
      // Heap used counts garbage not collected yet, so it swings by megabytes with when the GC last
      // ran; benchmarks compare the live heap, which only a full collection just before reading gives.
      // A full GC stops the agent for a moment, hence only when Node was started to allow it.
      gc();
      out.heapLiveBytes = this.memoryUsage().heapUsed;
    }
    return out;
  }

  /** memory.limitBytes when set, else the smallest cgroup limit; a failure to read it is logged, not fatal. */
  private async findLimit(): Promise<{ bytes: number; from: string } | undefined> {
    const configured = this.options.config.limitBytes;
    if (configured !== undefined) return { bytes: configured, from: "memory.limitBytes" };
    try {
      const found = await (this.options.findLimit ?? (() => cgroupMemoryLimit()))();
      return found && { bytes: found.bytes, from: found.file };
    } catch (err) {
      // Watching memory is a diagnostic: the agent still runs without it.
      this.logger.warn("memory limit unreadable, not watching", { error: describeError(err) });
      return undefined;
    }
  }

  private check(): void {
    const limit = this.limit;
    if (!limit) return;
    let u: NodeJS.MemoryUsage;
    try {
      u = this.memoryUsage();
    } catch (err) {
      // Once, not at every check: whatever broke reading it will not mend itself.
      this.logger.warn("memory usage unreadable, not watching", { error: describeError(err) });
      this.stop();
      return;
    }
    const { warnFraction } = this.options.config;
    const fraction = u.rss / limit.bytes;
    const figures = { rssMiB: mib(u.rss), limitMiB: mib(limit.bytes), fraction: Math.round(fraction * 100) / 100 };
    if (!this.high && fraction >= warnFraction) {
      this.high = true;
      this.logger.warn("memory high", {
        ...figures,
        warnFraction,
        heapUsedMiB: mib(u.heapUsed),
        heapTotalMiB: mib(u.heapTotal),
        externalMiB: mib(u.external),
        arrayBuffersMiB: mib(u.arrayBuffers),
      });
    } else if (this.high && fraction < warnFraction - REARM_MARGIN) {
      this.high = false;
      this.logger.info("memory no longer high", {
        ...figures,
        rearmFraction: Number((warnFraction - REARM_MARGIN).toFixed(4)),
      });
    }
  }
}
