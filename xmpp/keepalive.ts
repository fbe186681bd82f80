/**
 * Dead-link detection. TCP alone may take many minutes to notice a vanished peer (a blackholed
 * NAT, a pulled cable), so after `idleMs` without inbound traffic we probe (an SM <r/>, or an
 * XEP-0199 ping without SM), and any probe or ack request left unanswered for `timeoutMs`
 * declares the link dead. Whitespace keepalives (RFC 6120 §4.6.1) keep NAT bindings warm.
 *
 * One timer at a time, re-armed lazily: inbound data only updates a timestamp.
 */
import type { TimerHandle, Timers } from "../kernel/timers.js";

export interface KeepaliveOptions {
  idleMs: number;
  timeoutMs: number;
  whitespaceMs: number;
}

export interface KeepaliveHooks {
  probe(): void;
  dead(silentForMs: number): void;
  whitespace(): void;
}

export class Keepalive {
  private lastInbound = 0;
  private lastOutbound = 0;
  private answerDeadline: number | undefined;
  private timer: TimerHandle | undefined;
  private wsTimer: TimerHandle | undefined;
  private running = false;

  constructor(
    private readonly timers: Timers,
    private readonly options: KeepaliveOptions,
    private readonly hooks: KeepaliveHooks,
  ) {}

  start(): void {
    this.running = true;
    this.lastInbound = this.lastOutbound = this.timers.now();
    this.answerDeadline = undefined;
    this.arm(this.options.idleMs);
    if (this.options.whitespaceMs > 0) this.armWhitespace(this.options.whitespaceMs);
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.wsTimer?.cancel();
    this.timer = this.wsTimer = undefined;
  }

  /** Any inbound bytes prove the link alive. */
  activity(): void {
    this.lastInbound = this.timers.now();
    this.answerDeadline = undefined;
  }

  outbound(): void {
    this.lastOutbound = this.timers.now();
  }

  /** We sent something that must be answered (an <r/>, a ping): start the clock if not running. */
  expectAnswer(): void {
    if (!this.running || this.answerDeadline !== undefined) return;
    this.answerDeadline = this.timers.now() + this.options.timeoutMs;
    this.arm(this.options.timeoutMs);
  }

  private arm(ms: number): void {
    this.timer?.cancel();
    this.timer = this.timers.setTimeout(() => this.check(), Math.max(1, ms));
  }

  private check(): void {
    if (!this.running) return;
    const now = this.timers.now();
    if (this.answerDeadline !== undefined) {
      if (now >= this.answerDeadline) {
        this.running = false;
        this.hooks.dead(now - this.lastInbound);
        return;
      }
      this.arm(this.answerDeadline - now);
      return;
    }
    const idle = now - this.lastInbound;
    if (idle >= this.options.idleMs) {
      this.hooks.probe();
      this.expectAnswer();
      return;
    }
    this.arm(this.options.idleMs - idle);
  }

  private armWhitespace(ms: number): void {
    this.wsTimer = this.timers.setTimeout(
      () => {
        if (!this.running) return;
        const quiet = this.timers.now() - this.lastOutbound;
        if (quiet >= this.options.whitespaceMs) {
          this.hooks.whitespace();
          this.lastOutbound = this.timers.now();
          this.armWhitespace(this.options.whitespaceMs);
        } else this.armWhitespace(this.options.whitespaceMs - quiet);
      },
      Math.max(1, ms),
    );
  }
}
