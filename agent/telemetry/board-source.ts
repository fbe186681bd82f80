/**
 * Adapts the drivers' Board (drivers/board.ts) to telemetry's ChannelSource port: sensor channels
 * become channels as they are; digital inputs become boolean channels read every
 * `inputIntervalMs` (0 = edges only) and on every debounced edge.
 * Type-only imports: telemetry does not load driver code; the composition root passes the Board.
 */
import type { DigitalInput, InputEdge, SensorChannel, Unsubscribe } from "../../drivers/types.js";
import { SamplerError } from "./errors.js";
import type { ChannelEdge, ChannelInfo, ChannelSample, ChannelSource } from "./sampler.js";

/** The part of drivers' Board this adapter uses. */
export interface BoardLike {
  channels(): SensorChannel[];
  inputs(): DigitalInput[];
  on(event: "edge", listener: (e: InputEdge) => void): Unsubscribe;
}

export function boardChannelSource(board: BoardLike, opts: { inputIntervalMs?: number } = {}): ChannelSource {
  const inputInterval = opts.inputIntervalMs ?? 60_000;
  return {
    channels(): ChannelInfo[] {
      const out: ChannelInfo[] = board.channels().map((c) => ({
        id: c.id,
        kind: c.kind,
        ...(c.unit ? { unit: c.unit } : {}),
        intervalMs: c.intervalMs,
      }));
      for (const i of board.inputs()) out.push({ id: i.id, kind: "digital-in", intervalMs: inputInterval });
      return out;
    },
    async read(id: string): Promise<ChannelSample> {
      const ch = board.channels().find((c) => c.id === id);
      if (ch) {
        const r = await ch.read();
        return { value: r.value, quality: r.quality, timestamp: r.timestamp };
      }
      const input = board.inputs().find((i) => i.id === id);
      if (input) return { value: await input.read(), quality: "good" };
      throw new SamplerError("sampler_unknown_channel", `board has no channel or input ${id}`, { channel: id });
    },
    onEdge(listener: (e: ChannelEdge) => void): () => void {
      return board.on("edge", (e) => listener({ channelId: e.inputId, value: e.value, timestamp: e.timestamp }));
    },
  };
}
