/**
 * Remembers SCRAM SaltedPassword values so a re-login (every reconnect of a flaky link) skips
 * PBKDF2: on a Pi-class CPU 10,000+ iterations per reconnect are noticeable, and a fleet
 * reconnecting after a server restart multiplies that.
 *
 * The key is (hash, password-derived key, salt, iterations). The password-derived key is an HMAC
 * of the password under a random per-instance secret, not a plain hash: a heap dump then yields
 * nothing a dictionary attack can use without also finding the secret. The stored values are
 * password-equivalent for this server, which is why the cache is small, bounded, zeroed on
 * eviction and clear(), and prints as a count only.
 */
import { createHmac, randomBytes } from "node:crypto";
import { inspect } from "node:util";

export const DEFAULT_CACHE_ENTRIES = 4;

export class SaltedPasswordCache {
  readonly maxEntries: number;
  readonly #secret = randomBytes(32);
  // Map keeps insertion order: the first key is the least recently used.
  readonly #entries = new Map<string, Buffer>();

  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? DEFAULT_CACHE_ENTRIES;
    if (!Number.isInteger(max) || max < 1 || max > 64)
      throw new RangeError(`SaltedPasswordCache maxEntries must be an integer 1..64, got ${max}`);
    this.maxEntries = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A copy of the cached SaltedPassword, or undefined. */
  get(hash: string, password: string, salt: Buffer, iterations: number): Buffer | undefined {
    const key = this.#key(hash, password, salt, iterations);
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return Buffer.from(value);
  }

  set(hash: string, password: string, salt: Buffer, iterations: number, saltedPassword: Buffer): void {
    const key = this.#key(hash, password, salt, iterations);
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#entries.delete(key);
      old.fill(0);
    }
    this.#entries.set(key, Buffer.from(saltedPassword));
    while (this.#entries.size > this.maxEntries) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Buffer];
      this.#entries.delete(oldestKey);
      oldest.fill(0);
    }
  }

  /** Forgets everything (e.g. after the password changed or an authentication failure). */
  clear(): void {
    for (const v of this.#entries.values()) v.fill(0);
    this.#entries.clear();
  }

  toJSON(): Record<string, unknown> {
    return { entries: this.#entries.size, maxEntries: this.maxEntries };
  }

  [inspect.custom](): string {
    return `SaltedPasswordCache { entries: ${this.#entries.size}, maxEntries: ${this.maxEntries} }`;
  }

  #key(hash: string, password: string, salt: Buffer, iterations: number): string {
    const pw = createHmac("sha256", this.#secret).update(password, "utf8").digest("base64");
    return `${hash}\0${pw}\0${salt.toString("base64")}\0${iterations}`;
  }
}
