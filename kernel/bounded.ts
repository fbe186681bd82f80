/**
 * Runs `fn` on every item with at most `limit` calls in flight, in order of the items: the bound a
 * caller needs on a session's pending requests, a server's load, or a disk. Resolves when all are
 * done; `fn` is expected to handle its own failures (a rejection ends its worker and rejects).
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}
