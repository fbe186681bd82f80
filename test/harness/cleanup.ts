/**
 * Process-wide teardown registry for real test peers.
 *
 * Every peer the harness starts (prosody, socat, slixmpp, ejabberd, proxies, temp dirs) registers a
 * teardown here. Teardowns run:
 *  - when the owner calls its own stop() (the registration is then removed),
 *  - on SIGINT/SIGTERM (async teardowns, bounded, then exit with 128+signal),
 *  - on process exit (synchronous last resort: SIGKILL to every tracked process group, rmSync dirs).
 *
 * Why so many layers: a leaked prosody or beam.smp keeps a port and a CPU busy for the next suite on a
 * 2-core machine, and a node:test child killed mid-test never reaches its after() hooks.
 * Children are also spawned under `setpriv --pdeathsig SIGKILL` (see process.ts), which covers the
 * one case no handler can: this process being SIGKILLed.
 */
import { rmSync } from "node:fs";

export interface Teardown {
  readonly name: string;
  /** Graceful stop; may be async. Called at most once. */
  readonly stop: () => Promise<void> | void;
  /** Synchronous last resort for process 'exit' (no event loop left): kill -9 a group, rm a dir. */
  readonly stopSync?: () => void;
}

const registry = new Map<number, Teardown>();
let nextId = 1;
let installed = false;
let exiting = false;

/** Registers a teardown; returns a function that unregisters it (call it from your own stop()). */
export function registerTeardown(teardown: Teardown): () => void {
  installHandlers();
  const id = nextId++;
  registry.set(id, teardown);
  return () => {
    registry.delete(id);
  };
}

/** Number of live registrations (useful to assert that a suite stopped everything it started). */
export function pendingTeardowns(): string[] {
  return [...registry.values()].map((t) => t.name);
}

/**
 * Runs every registered teardown, newest first (a proxy goes before the server behind it), each
 * bounded by `perTeardownMs`. Errors are collected and rethrown together, never swallowed.
 */
export async function runAllTeardowns(perTeardownMs = 5000): Promise<void> {
  const entries = [...registry.entries()].reverse();
  const errors: unknown[] = [];
  for (const [id, t] of entries) {
    registry.delete(id);
    try {
      await withTimeout(Promise.resolve().then(t.stop), perTeardownMs, `teardown "${t.name}"`);
    } catch (err) {
      errors.push(err);
      try {
        t.stopSync?.();
      } catch (syncErr) {
        errors.push(syncErr);
      }
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `${errors.length} harness teardown(s) failed`);
}

function runAllSync(): void {
  for (const [id, t] of [...registry.entries()].reverse()) {
    registry.delete(id);
    try {
      t.stopSync?.();
    } catch (err) {
      // Last resort during exit: nothing can be awaited or thrown any more, so say it on stderr.
      process.stderr.write(`[harness] sync teardown "${t.name}" failed: ${String(err)}\n`);
    }
  }
}

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on("exit", runAllSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (exiting) return;
      exiting = true;
      const code = 128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1);
      runAllTeardowns(2000)
        .catch((err) => process.stderr.write(`[harness] teardown on ${signal}: ${String(err)}\n`))
        .finally(() => process.exit(code));
    });
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Removes a directory tree; used by sync teardowns. */
export function removeDirSync(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
