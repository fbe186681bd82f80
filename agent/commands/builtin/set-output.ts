/** `set-output`: drives an output (relay, LED, actuator) to a level, optionally as a pulse. */
import type { HardwarePort } from "../ports.js";
import { type CommandDefinition, changedNote, resultForm } from "../registry.js";

/** Longest pulse this command accepts; the driver may enforce a shorter one (drivers' maxPulseMs). */
export const MAX_PULSE_MS = 3_600_000;

export function setOutputCommand(hardware: HardwarePort): CommandDefinition {
  return {
    node: "set-output",
    name: "Set an output",
    stages: [
      {
        instructions:
          "Pick an output and its level. With a pulse duration the output returns to the other level afterwards.",
        params: async () => [
          {
            name: "output",
            type: "choice",
            label: "Output",
            required: true,
            options: (await hardware.listChannels())
              .filter((c) => c.direction === "output")
              .map((c) => ({ value: c.id, label: `${c.id} (${c.kind})` })),
          },
          { name: "value", type: "boolean", label: "On (active)", required: true },
          {
            name: "pulseMs",
            type: "integer",
            label: "Pulse duration (ms), empty for a steady level",
            min: 1,
            max: MAX_PULSE_MS,
          },
        ],
      },
    ],
    async run({ values }) {
      const pulseMs = values.optionalNumber("pulseMs");
      const c = await hardware.setOutput(values.string("output"), values.boolean("value"), {
        ...(pulseMs !== undefined ? { pulseMs } : {}),
      });
      // "unknown" where the level before could not be read back: the note and the form say the same.
      const level = (v: boolean | undefined) => (v === undefined ? "unknown" : v ? "on" : "off");
      const notes =
        c.previous === c.value && c.pulseMs === undefined
          ? [{ type: "info" as const, text: `Unchanged: output ${c.outputId} was already ${level(c.value)}` }]
          : [changedNote(`output ${c.outputId}`, level(c.previous), level(c.value))];
      if (c.pulseMs !== undefined)
        notes.push({ type: "info", text: `Pulse started: back to ${level(c.restoresTo)} after ${c.pulseMs} ms` });
      return {
        notes,
        form: resultForm(`Output ${c.outputId}`, [
          ["output", "Output", c.outputId],
          ["previous", "Before", level(c.previous)],
          ["value", "Now", level(c.value)],
          ...(c.pulseMs !== undefined ? [["pulseMs", "Pulse (ms)", c.pulseMs] as [string, string, unknown]] : []),
        ]),
      };
    },
  };
}
