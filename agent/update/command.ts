/**
 * `update`: the operator's (or `iot-fleet update`'s) way to a new release. Submitted with a signed
 * manifest and the archive's URL (the server's HTTP file share, XEP-0363), it checks the release,
 * answers at once whether it was accepted, and installs in the background; the device then
 * restarts into it. Submitted empty, it reports: the running version, the last update's outcome
 * (trial, committed, or rolled back and why) and a download under way. The installer is loaded on
 * the first submission that carries a release (it verifies signatures with node-forge).
 */
import { AGENT_VERSION } from "../version.js";
import type { CommandDefinition } from "../commands/registry.js";
import { resultForm } from "../commands/registry.js";
import { UpdateError } from "./errors.js";
import { readUpdateState } from "./state.js";
import type { Updater } from "./updater.js";

export const UPDATE_NODE = "update";
/** Longest manifest accepted in the form (a signed manifest is about 3-4 KB). */
const MAX_MANIFEST_CHARS = 32 * 1024;

export function updateCommand(o: { dir: string; updater: () => Promise<Updater> }): CommandDefinition {
  let loaded: Updater | undefined;
  const updater = async () => {
    loaded ??= await o.updater();
    return loaded;
  };
  return {
    node: UPDATE_NODE,
    name: "Update the agent",
    description: "Install a signed release (manifest + URL), or leave both empty to see the last update's outcome.",
    stages: [
      {
        instructions:
          "Paste the signed release manifest and the archive's URL to install it; leave both empty to see the update status.",
        params: [
          { name: "manifest", type: "multiline", label: "Signed release manifest (JSON)" },
          { name: "url", type: "text", label: "Archive URL (https://...)", pattern: "^https?://\\S+$" },
          { name: "allow-downgrade", type: "boolean", label: "Allow an older version", default: false },
        ],
      },
    ],
    async run({ values }) {
      const manifestText = values.optionalString("manifest")?.trim() ?? "";
      const url = values.optionalString("url")?.trim() ?? "";
      if (manifestText === "" && url === "") return { form: statusForm(o.dir, loaded) };
      if (manifestText === "" || url === "")
        return {
          failed: true,
          notes: [{ type: "error", text: "update_usage: both the manifest and the URL are needed" }],
        };
      if (manifestText.length > MAX_MANIFEST_CHARS)
        return {
          failed: true,
          notes: [{ type: "error", text: `update_usage: the manifest is over ${MAX_MANIFEST_CHARS} characters` }],
        };
      let doc: unknown;
      try {
        doc = JSON.parse(manifestText);
      } catch (err) {
        return {
          failed: true,
          notes: [{ type: "error", text: `update_untrusted: the manifest is not JSON (${(err as Error).message})` }],
        };
      }
      try {
        const m = (await updater()).accept(doc, url, { allowDowngrade: values.boolean("allow-downgrade") });
        return {
          notes: [
            {
              type: "info",
              text: `Accepted ${m.version} (running ${AGENT_VERSION}): downloading ${m.archive.size} bytes; the agent restarts into it when installed. Run update again for the outcome.`,
            },
          ],
          form: resultForm("Update accepted", [
            ["version", "Version", m.version],
            ["running", "Running", AGENT_VERSION],
            ["size", "Archive bytes", m.archive.size],
          ]),
        };
      } catch (err) {
        if (err instanceof UpdateError)
          return { failed: true, notes: [{ type: "error", text: `${err.code}: ${err.message}` }] };
        throw err;
      }
    },
  };
}

function statusForm(dir: string, updater: Updater | undefined) {
  const state = readUpdateState(dir);
  const s = updater?.status();
  const outcome =
    state === undefined
      ? "no update yet"
      : state.phase === "trial"
        ? `${state.to} on trial (start ${state.starts} of ${state.maxStarts}), from ${state.from}`
        : state.phase === "committed"
          ? `${state.version} committed at ${state.at} (from ${state.from})`
          : `rolled back to ${state.version} at ${state.at}: ${state.failed} failed: ${state.reason}`;
  const form = resultForm("Update status", [
    ["running", "Running version", AGENT_VERSION],
    ["state", "Update state", state?.phase ?? "none"],
    ["outcome", "Last update", outcome],
    ["job", "Under way", s?.job ? `${s.job.version}: ${s.job.step} since ${s.job.since}` : "nothing"],
    [
      "lastFailure",
      "Last refusal or failure",
      s?.lastFailure ? `${s.lastFailure.code}: ${s.lastFailure.message} (${s.lastFailure.at})` : "none",
    ],
  ]);
  form.fields.push({ var: "json", type: "hidden", values: [JSON.stringify({ running: AGENT_VERSION, state, ...s })] });
  return form;
}
