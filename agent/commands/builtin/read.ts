/** `read`: reads one channel now (not the last sampled value). */
import type { HardwarePort } from "../ports.js";
import { type CommandDefinition, resultForm } from "../registry.js";

export function readCommand(hardware: HardwarePort): CommandDefinition {
  return {
    node: "read",
    name: "Read a channel now",
    stages: [
      {
        instructions: "Pick the channel to read.",
        params: async () => [
          {
            name: "channel",
            type: "choice",
            label: "Channel",
            required: true,
            options: (await hardware.listChannels()).map((c) => ({ value: c.id, label: `${c.id} (${c.kind})` })),
          },
        ],
      },
    ],
    async run({ values }) {
      const r = await hardware.read(values.string("channel"));
      const notes =
        r.quality === "good"
          ? []
          : [
              {
                type: r.quality === "error" ? ("error" as const) : ("warn" as const),
                text: `${r.channelId}: ${r.quality}${r.error ? `: ${r.error}` : ""}`,
              },
            ];
      return {
        notes,
        failed: r.quality === "error",
        form: resultForm(`Reading of ${r.channelId}`, [
          ["channel", "Channel", r.channelId],
          ["value", "Value", r.value === null ? "" : String(r.value)],
          ["unit", "Unit", r.unit ?? ""],
          ["timestamp", "Time (UTC)", new Date(r.timestamp).toISOString()],
          ["quality", "Quality", r.quality],
        ]),
      };
    },
  };
}
