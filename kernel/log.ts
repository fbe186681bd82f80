/**
 * Structured logging: one JSON object per line on stderr (journald keeps it, `jq` reads it).
 * Child loggers bind fields (component, device). Values under secret-looking keys are redacted
 * before they are serialised, so a password passed by mistake never reaches the journal.
 */
import { describeError } from "./errors.js";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEY = /pass(word)?|secret|token|salted|private.?key|authorization|^key$|credential/i;
const REDACTED = "[redacted]";

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to process.stderr. Tests pass a collector. */
  write?: (line: string) => void;
  now?: () => number;
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return describeError(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && v !== undefined && v !== null && typeof v !== "boolean" ? REDACTED : redact(v, depth + 1);
  }
  return out;
}

export function createLogger(options: LoggerOptions = {}, bound: LogFields = {}): Logger {
  const threshold = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? Date.now;

  const emit = (level: Exclude<LogLevel, "silent">, msg: string, fields?: LogFields): void => {
    if (LEVELS[level] < threshold) return;
    const record = redact({ t: new Date(now()).toISOString(), level, msg, ...bound, ...fields });
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch (err) {
      // A cyclic or BigInt field must not take the agent down; log that the record was unprintable.
      line = JSON.stringify({ t: new Date(now()).toISOString(), level, msg, logError: describeError(err) });
    }
    write(`${line}\n`);
  };

  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
    isLevelEnabled: (level) => LEVELS[level] >= threshold,
  };
}

/** A logger that drops everything: the default for library code whose caller passed none. */
export const silentLogger: Logger = createLogger({ level: "silent" });
