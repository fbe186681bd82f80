/** `set-sampling`: changes a channel's sampling interval; the telemetry room persists it. */
import type { SamplingPort } from "../ports.js";
import { type CommandDefinition, changedNote } from "../registry.js";

export function setSamplingCommand(sampling: SamplingPort): CommandDefinition {
  return {
    node: "set-sampling",
    name: "Set a sampling interval",
    stages: [
      {
        params: async () => [
          {
            name: "channel",
            type: "choice",
            label: "Channel",
            required: true,
            options: (await sampling.channels()).map((id) => ({ value: id })),
          },
          {
            name: "intervalMs",
            type: "integer",
            label: "Interval (ms)",
            required: true,
            min: sampling.minIntervalMs,
            max: sampling.maxIntervalMs,
          },
        ],
      },
    ],
    async run({ values }) {
      const channel = values.string("channel");
      const { before, after } = await sampling.update(channel, { intervalMs: values.number("intervalMs") });
      return {
        notes: [
          before.intervalMs === after.intervalMs
            ? { type: "info", text: `Unchanged: ${channel} already samples every ${after.intervalMs} ms` }
            : changedNote(`sampling interval of ${channel} (ms)`, before.intervalMs, after.intervalMs),
        ],
      };
    },
  };
}
