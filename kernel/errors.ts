/**
 * Errors are values with context. Every error the agent raises is an AgentError carrying a stable
 * machine-readable `code`, a human message, and a `context` object (what, where). Callers branch on
 * `code`, logs print `context`, and nothing needs to parse messages.
 */
export type ErrorContext = Record<string, unknown>;

export class AgentError extends Error {
  readonly code: string;
  readonly context: ErrorContext;

  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(Object.keys(this.context).length > 0 ? { context: this.context } : {}),
      ...(this.cause === undefined ? {} : { cause: describeError(this.cause) }),
    };
  }
}

/** Configuration file or environment is invalid. `context.path` names the key, `context.line` the line. */
export class ConfigError extends AgentError {}

/** Turns anything thrown into a plain object fit for a structured log line. */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof AgentError) return err.toJSON();
  if (err instanceof Error) {
    const out: Record<string, unknown> = { name: err.name, message: err.message };
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined) out.code = code;
    if (err.cause !== undefined) out.cause = describeError(err.cause);
    return out;
  }
  return { message: String(err) };
}

export function isAgentError(err: unknown, code?: string): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}
