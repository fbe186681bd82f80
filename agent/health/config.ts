/** The `memory` section of the agent config: when the memory watch warns (memory-watch.ts). */
import { bytes, def, num, ms, obj, opt } from "../../kernel/schema-dsl.js";

export const memoryConfigSchema = obj({
  /**
   * Warn once when RSS reaches this fraction of the memory limit. 0.8 of the unit's MemoryMax=96M
   * is 76.8 MiB, just under its MemoryHigh=80M, where the kernel starts throttling the agent.
   */
  warnFraction: def(num({ min: 0.1, max: 1 }), 0.8),
  /** How often RSS is compared with the limit. */
  checkIntervalMs: def(ms({ min: 1000 }), 30_000),
  /**
   * The limit to watch, used instead of the cgroup's (MemoryMax= or a container's): for a device
   * where the agent does not run in a cgroup with a memory limit, such as under another supervisor.
   */
  limitBytes: opt(bytes({ min: 1 })),
});

export type MemoryConfig = Exclude<ReturnType<typeof memoryConfigSchema.parse>, symbol>;

/** Defaults, for tests and callers without a config file. */
export const DEFAULT_MEMORY_CONFIG: MemoryConfig = memoryConfigSchema.defaultValue!();
