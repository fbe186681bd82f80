/** Small figures helpers shared by the benchmark scripts. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const MiB = 1024 * 1024;

/** Wall-clock time in ms with sub-ms resolution, comparable across processes on one machine. */
export function absoluteNow(): number {
  return performance.timeOrigin + performance.now();
}
