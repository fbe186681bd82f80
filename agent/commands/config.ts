/** The `commands` section of the agent config: bounds of the ad-hoc command service and its audit log. */
import { bytes, def, int, ms, obj, str } from "../../kernel/schema-dsl.js";

export const commandsConfigSchema = obj({
  /** An unfinished multi-stage command session is dropped after this much silence from its requester. */
  sessionTimeoutMs: def(ms({ min: 1000 }), 300_000),
  /** Open command sessions per requester (full JID); more are refused with not-allowed. */
  maxSessionsPerRequester: def(int({ min: 1, max: 1000 }), 4),
  /** Open command sessions in total, whoever asks. */
  maxSessions: def(int({ min: 1, max: 100_000 }), 64),
  /** A handler still running after this long is answered with a timeout error (its outcome is unknown). */
  handlerTimeoutMs: def(ms({ min: 10 }), 10_000),
  /** Executions running at once; further requests are refused with resource-constraint (wait). */
  maxConcurrentExecutions: def(int({ min: 1, max: 10_000 }), 32),
  audit: obj({
    /** JSON-lines audit file. Relative paths are relative to device.dataDir. */
    path: def(str({ minLength: 1 }), "audit.jsonl"),
    /** The file is rotated (audit.jsonl -> audit.jsonl.1 -> ...) before it would exceed this size. */
    maxBytes: def(bytes({ min: 1024 }), 1024 * 1024),
    /** Rotated files kept besides the current one; older ones are deleted. */
    maxFiles: def(int({ min: 1, max: 100 }), 5),
    /** Records waiting to be written; beyond this they are counted as dropped and logged. */
    maxPending: def(int({ min: 1, max: 100_000 }), 1000),
    /**
     * Refused requests (outcome forbidden) go to their own file with its own rotation budget, so
     * a flood of them can never rotate an operator's record out of `path`; per sender, the first
     * perSenderPerMinute of each minute are written in full, the rest as one summary line.
     */
    refusals: obj({
      path: def(str({ minLength: 1 }), "audit-refused.jsonl"),
      maxBytes: def(bytes({ min: 1024 }), 512 * 1024),
      maxFiles: def(int({ min: 1, max: 100 }), 2),
      perSenderPerMinute: def(int({ min: 1, max: 10_000 }), 5),
    }),
  }),
});

export type CommandsConfig = ReturnType<typeof commandsConfigSchema.parse> extends infer T ? Exclude<T, symbol> : never;

/** Defaults, for tests and callers without a config file. */
export const DEFAULT_COMMANDS_CONFIG: CommandsConfig = commandsConfigSchema.defaultValue!();
