import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Board } from "../../drivers/board.js";
import type { DigitalInput, InputEdge, SensorChannel } from "../../drivers/types.js";
import { type BoardLike, boardChannelSource } from "./board-source.js";

// The drivers' Board must satisfy the adapter's port (checked by the compiler, not at run time).
const _boardFits = (b: Board): BoardLike => b;
void _boardFits;

describe("boardChannelSource", () => {
  it("exposes sensor channels and inputs, reads both, and forwards edges", async () => {
    const listeners: Array<(e: InputEdge) => void> = [];
    const channel: SensorChannel = {
      id: "temp0",
      kind: "temperature",
      unit: "°C",
      intervalMs: 1000,
      read: async () => ({ channelId: "temp0", value: 21.5, unit: "°C", timestamp: 5, quality: "good" }),
    };
    const input = { id: "door", edgeFilter: "both", read: async () => true, on: () => () => {} } as DigitalInput;
    const src = boardChannelSource(
      {
        channels: () => [channel],
        inputs: () => [input],
        on: (_e, l) => {
          listeners.push(l);
          return () => {};
        },
      },
      { inputIntervalMs: 0 },
    );
    assert.deepEqual(src.channels(), [
      { id: "temp0", kind: "temperature", unit: "°C", intervalMs: 1000 },
      { id: "door", kind: "digital-in", intervalMs: 0 },
    ]);
    assert.deepEqual(await src.read("temp0"), { value: 21.5, quality: "good", timestamp: 5 });
    assert.deepEqual(await src.read("door"), { value: true, quality: "good" });
    await assert.rejects(src.read("nope"), /no channel or input/);
    const got: unknown[] = [];
    src.onEdge!((e) => got.push(e));
    listeners[0]!({ inputId: "door", edge: "rising", value: true, timestamp: 9 });
    assert.deepEqual(got, [{ channelId: "door", value: true, timestamp: 9 }]);
  });
});
