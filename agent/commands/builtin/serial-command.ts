/**
 * `serial-command`: sends one documented request (docs/serial-protocol.md) to the microcontroller and
 * shows its answer. Only the requests the McuPort documents can be picked: this is not a raw serial
 * console, so an operator cannot send arbitrary bytes to the device.
 */
import type { McuPort } from "../ports.js";
import { type CommandDefinition, resultForm } from "../registry.js";

export const SERIAL_TIMEOUT = { minMs: 50, maxMs: 30_000, defaultMs: 2_000 } as const;

export function serialCommand(mcu: McuPort): CommandDefinition {
  return {
    node: "serial-command",
    name: "Send a request to the microcontroller",
    // The request's own timeout (at most maxMs) must fire first, so the operator sees the device's
    // timeout rather than the generic handler timeout.
    timeoutMs: SERIAL_TIMEOUT.maxMs + 2_000,
    stages: [
      {
        instructions: mcu.requests
          .map((r) => `${r.name}${r.argument ? ` <${r.argument}>` : ""}: ${r.description}`)
          .join("\n"),
        params: [
          {
            name: "request",
            type: "choice",
            label: "Request",
            required: true,
            options: mcu.requests.map((r) => ({ value: r.name, label: `${r.name}: ${r.description}` })),
          },
          {
            name: "argument",
            type: "text",
            label: "Argument (sensor/actuator name, value)",
            // Names and numbers only: the argument is encoded into a frame, never passed to a shell.
            pattern: "[A-Za-z0-9_.:=, -]{0,64}",
          },
          {
            name: "timeoutMs",
            type: "integer",
            label: "Timeout (ms)",
            min: SERIAL_TIMEOUT.minMs,
            max: SERIAL_TIMEOUT.maxMs,
            default: SERIAL_TIMEOUT.defaultMs,
          },
        ],
      },
    ],
    async run({ values }) {
      const request = values.string("request");
      const info = mcu.requests.find((r) => r.name === request)!;
      const argument = values.optionalString("argument");
      if (info.argument && !argument)
        return {
          failed: true,
          notes: [{ type: "error", text: `mcu_bad_argument: ${request} needs an argument: ${info.argument}` }],
        };
      const started = Date.now();
      // A device that does not answer or refuses, or a bad argument, rejects with a DeviceFailure:
      // the engine answers completed with an error note whose code tells scripts which one.
      const answer = await mcu.request(request, argument, values.number("timeoutMs"));
      return {
        form: resultForm(`Answer to ${request}`, [
          ["request", "Request", argument ? `${request} ${argument}` : request],
          ["answer", "Answer", answer],
          ["elapsedMs", "Round trip (ms)", Date.now() - started],
        ]),
      };
    },
  };
}
