/**
 * What the session benchmark's parent and its child processes say to each other: JSON lines,
 * parent -> child on stdin, child -> parent on stdout (the child's stderr is diagnostics only).
 * The first stdin line is the job; the password travels here rather than in argv or the environment.
 */

export type ClientName = "ours" | "xmppjs";

export interface ChildJob {
  cmd: "job";
  /** "logins": N full logins, one after another. "throughput": one session, warm-up, burst, resets. */
  kind: "logins" | "throughput";
  host: string;
  /** Prosody directly for logins; the link-breaking proxy for throughput (it is reset there). */
  port: number;
  domain: string;
  user: string;
  password: string;
  resource: string;
  caFile: string;
  /** Bare JID of an account with no connected resource: Prosody discards headlines sent to it. */
  sink: string;
  logins: number;
  warmupMessages: number;
  messages: number;
  resets: number;
  /** Quiet time after each resumption, to see a client drop a link it has just resumed. */
  settleMs: number;
  /** Ours only, from --ours-ack-delay: overrides streamManagement.ackDelayMs (default 2000). */
  ackDelayMs?: number;
}

/** Sent by the parent right after it reset the proxy; `at` is its absoluteNow() at the reset. */
export interface ResetDone {
  cmd: "reset-done";
  n: number;
  at: number;
}

export type ParentCommand = ChildJob | ResetDone;

export interface MemorySample {
  rss: number;
  heapUsed: number;
}

export type ChildEvent =
  | ({ event: "mem"; phase: "loaded" | "warm" | "after" } & MemorySample)
  | { event: "logins"; ms: number[] }
  | { event: "throughput"; messages: number; wallMs: number; cpuUserUs: number; cpuSystemUs: number }
  | { event: "ready-for-reset"; n: number }
  | {
      event: "resumed";
      n: number;
      /** From the parent's reset to the client being online again with the old session resumed. */
      resumeMs: number;
      /** From the client's reconnect attempt (after its own delay) to online: the negotiation alone. */
      reconnectMs: number;
      resumed: boolean;
    }
  | { event: "done"; linkDrops: number }
  | { event: "error"; message: string };
