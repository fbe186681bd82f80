/**
 * A reproducible random source for tests that pick timings at random (kill points): the seed comes
 * from TEST_SEED when set, else from the clock, and is printed, so a failure can be replayed with
 * `TEST_SEED=<seed> node --test ...`.
 */
export interface SeededRandom {
  seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** A whole number in [0, n). */
  below(n: number): number;
}

export function seededRandom(label: string): SeededRandom {
  const fromEnv = Number(process.env.TEST_SEED);
  const seed = Number.isInteger(fromEnv) && process.env.TEST_SEED !== "" ? fromEnv >>> 0 : Date.now() >>> 0;
  console.log(`# ${label}: TEST_SEED=${seed}`);
  // mulberry32: small, fast, and good enough to spread kill points.
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { seed, next, below: (n) => Math.floor(next() * n) };
}
