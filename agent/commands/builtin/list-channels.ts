/** `list-channels`: every channel and output, as a table (XEP-0004 reported + items). */
import type { HardwarePort } from "../ports.js";
import type { CommandDefinition } from "../registry.js";

export function listChannelsCommand(hardware: HardwarePort): CommandDefinition {
  return {
    node: "list-channels",
    name: "List channels",
    description: "Sensors, digital inputs and outputs with kind, unit and sampling interval",
    async run() {
      const channels = await hardware.listChannels();
      const cell = (name: string, value: string | number | undefined) => ({ var: name, values: [String(value ?? "")] });
      return {
        notes: [{ type: "info", text: `${channels.length} channels` }],
        form: {
          type: "result",
          title: "Channels",
          fields: [],
          reported: [
            { var: "id", label: "Channel", values: [] },
            { var: "direction", label: "Direction", values: [] },
            { var: "kind", label: "Kind", values: [] },
            { var: "unit", label: "Unit", values: [] },
            { var: "intervalMs", label: "Interval (ms)", values: [] },
          ],
          items: channels.map((c) => [
            cell("id", c.id),
            cell("direction", c.direction),
            cell("kind", c.kind),
            cell("unit", c.unit),
            cell("intervalMs", c.intervalMs),
          ]),
        },
      };
    },
  };
}
