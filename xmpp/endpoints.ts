/**
 * Which server endpoint to try first, second, ...: RFC 2782's rule for SRV records, used alike for
 * the domain's SRV records and for a configured list (`xmpp.servers`). The lowest priority first;
 * within one priority, a weighted random order, so a fleet spreads over a cluster's nodes in
 * proportion to their weights and a device that cannot reach one node goes on to the next.
 *
 * Affinity: a device whose link broke holds a stream-management session on the node it was on,
 * and only that node can resume it for certain (across a cluster it depends on the server), so
 * the endpoint of the last session is tried first while a resumption is pending.
 */
import type { Endpoint } from "./transport.js";

export interface WeightedEndpoint extends Endpoint {
  /** Lower is tried first (SRV priority). */
  priority: number;
  /** Relative share within one priority (SRV weight); 0 = only when the others of its priority failed. */
  weight: number;
}

/**
 * RFC 2782 order: by priority, then, within a priority, picks one at a time with probability
 * weight / (sum of the weights left), weight-0 entries having a small chance of going first.
 */
export function orderEndpoints(list: readonly WeightedEndpoint[], random: () => number = Math.random): Endpoint[] {
  const byPriority = new Map<number, WeightedEndpoint[]>();
  for (const e of list) {
    const group = byPriority.get(e.priority) ?? [];
    group.push(e);
    byPriority.set(e.priority, group);
  }
  const out: Endpoint[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // RFC 2782: weight-0 entries first in the list, so they are picked only by a draw of 0.
    const left = [...byPriority.get(priority)!].sort((a, b) => a.weight - b.weight);
    while (left.length > 0) {
      const total = left.reduce((sum, e) => sum + e.weight, 0);
      const draw = random() * total;
      let running = 0;
      let pick = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]!.weight;
        if (running > draw || (total === 0 && i === 0)) {
          pick = i;
          break;
        }
      }
      const [chosen] = left.splice(pick, 1);
      out.push({ host: chosen!.host, port: chosen!.port });
    }
  }
  return out;
}

/** `list` with `first` moved to the front when it is in it (the same host and port). */
export function preferEndpoint(list: readonly Endpoint[], first: Endpoint | undefined): Endpoint[] {
  if (!first) return [...list];
  const i = list.findIndex((e) => e.host === first.host && e.port === first.port);
  if (i <= 0) return [...list];
  return [list[i]!, ...list.slice(0, i), ...list.slice(i + 1)];
}
