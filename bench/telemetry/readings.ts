/**
 * The readings every client publishes: the same values, units and timestamps for the same seq, so
 * the payloads are the same size for every client. Plain data, no agent imports, so the
 * @xmpp/client bundle carries none of our code besides this.
 */

export interface BenchReading {
  seq: number;
  channelId: string;
  value: number;
  unit: string;
  timestamp: number;
}

/** A fixed epoch keeps every ISO timestamp the same length (and the payloads comparable). */
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

export function benchReading(seq: number): BenchReading {
  // Tenths from an integer: String() gives "21.7", never "21.700000000000003".
  return { seq, channelId: "temp0", value: (215 + (seq % 10)) / 10, unit: "°C", timestamp: T0 + seq * 100 };
}

export function benchReadings(firstSeq: number, count: number): BenchReading[] {
  const out: BenchReading[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = benchReading(firstSeq + i);
  return out;
}
