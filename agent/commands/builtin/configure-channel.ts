/**
 * `configure-channel`: the multi-stage command. Stage 1 picks the channel; stage 2 shows that
 * channel's current settings as defaults and takes the new ones. Exercises next / prev / cancel.
 */
import type { SamplingPort } from "../ports.js";
import { type CommandDefinition, changedNote, type Note } from "../registry.js";

export function configureChannelCommand(sampling: SamplingPort): CommandDefinition {
  return {
    node: "configure-channel",
    name: "Configure a channel",
    stages: [
      {
        title: "Configure a channel (1/2)",
        instructions: "Pick the channel to configure.",
        params: async () => [
          {
            name: "channel",
            type: "choice",
            label: "Channel",
            required: true,
            options: (await sampling.channels()).map((id) => ({ value: id })),
          },
        ],
      },
      {
        title: "Configure a channel (2/2)",
        instructions: "Change the settings; the current ones are filled in.",
        params: async ({ values }) => {
          const current = await sampling.get(values.string("channel"));
          return [
            {
              name: "intervalMs",
              type: "integer",
              label: `Sampling interval of ${values.string("channel")} (ms)`,
              required: true,
              min: sampling.minIntervalMs,
              max: sampling.maxIntervalMs,
              default: current.intervalMs,
            },
            { name: "enabled", type: "boolean", label: "Publish readings", default: current.enabled },
          ];
        },
      },
    ],
    async run({ values }) {
      const channel = values.string("channel");
      const { before, after } = await sampling.update(channel, {
        intervalMs: values.number("intervalMs"),
        enabled: values.boolean("enabled"),
      });
      const notes: Note[] = [];
      if (before.intervalMs !== after.intervalMs)
        notes.push(changedNote(`sampling interval of ${channel} (ms)`, before.intervalMs, after.intervalMs));
      if (before.enabled !== after.enabled)
        notes.push(changedNote(`publishing of ${channel}`, before.enabled, after.enabled));
      if (notes.length === 0) notes.push({ type: "info", text: `Unchanged: ${channel} already had these settings` });
      return { notes };
    },
  };
}
