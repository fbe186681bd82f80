/** `restart-drivers`: stops and restarts every hardware driver; asks for confirmation first. */
import type { DriversPort } from "../ports.js";
import type { CommandDefinition } from "../registry.js";

export function restartDriversCommand(drivers: DriversPort): CommandDefinition {
  return {
    node: "restart-drivers",
    name: "Restart hardware drivers",
    timeoutMs: 30_000,
    stages: [
      {
        instructions: "Outputs may briefly return to their initial level while drivers restart.",
        params: [{ name: "confirm", type: "boolean", label: "Yes, restart the drivers", required: true }],
      },
    ],
    async run({ values }) {
      if (!values.boolean("confirm")) return { notes: [{ type: "info", text: "Not confirmed: nothing restarted" }] };
      const { restarted } = await drivers.restart();
      return {
        notes: [{ type: "info", text: `Restarted ${restarted.length} drivers: ${restarted.join(", ") || "none"}` }],
      };
    },
  };
}
