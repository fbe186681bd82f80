/**
 * `iot-fleet update`: a signed release on every selected device, as a fleet job (jobs/), so waves
 * (`--batch`), the failure threshold (`--max-failures`), offline devices served on their return
 * (`--wait`) and resumption come from the job machinery. Per device: its `update` command with the
 * manifest and the URL; a refusal is the device's answer (its code and reason); once accepted, the
 * device downloads, restarts and proves the release, so the job asks it for the outcome
 * (`update` submitted empty) until it runs the release committed (completed: "updated to X"), or
 * reports having rolled back (an error with its reason), or the device's time is up.
 */
import { ProvisioningError } from "../errors.js";
import type { DeviceRun, JobSpec } from "../jobs/job.js";
import type { DevicePort, JobAction } from "../jobs/runner.js";

export const UPDATE_NODE = "update";

export interface UpdateOutcomeOptions {
  /** Between two status questions while the device downloads and restarts. */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** The manifest as the `update` form wants it: the file's lines. */
export function updateFields(
  manifestText: string,
  url: string,
  allowDowngrade: boolean,
): Record<string, string | string[]> {
  return { manifest: manifestText.split("\n"), url, "allow-downgrade": String(allowDowngrade) };
}

export function updateAction(spec: JobSpec, devices: DevicePort, o: UpdateOutcomeOptions = {}): JobAction {
  const version = spec.release?.version;
  if (!version) throw new ProvisioningError("usage", "an update job needs the release's version");
  const sleep = o.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const pollMs = o.pollMs ?? 2000;
  return {
    needsOnline: true,
    async run(d: DeviceRun, timeoutMs: number): Promise<string[]> {
      const deadline = now() + timeoutMs;
      try {
        await devices.execute(d.jid, UPDATE_NODE, spec.fields, timeoutMs);
      } catch (err) {
        // A resumed job, or a device updated by other means: already there is done.
        if (
          err instanceof ProvisioningError &&
          err.code === "adhoc_failed" &&
          /update_not_newer: version \S+ is already running/.test(err.message)
        )
          return [`already running ${version}`];
        throw err;
      }
      let last = "accepted; no answer since";
      while (now() < deadline) {
        await sleep(pollMs);
        let s: Record<string, string[]>;
        try {
          s = await devices.form(d.jid, UPDATE_NODE, {}, Math.max(1000, Math.min(10_000, deadline - now())));
        } catch {
          last = "restarting (no answer)";
          continue; // offline while it restarts, or busy
        }
        const running = s.running?.[0];
        const state = s.state?.[0];
        const outcome = s.outcome?.[0] ?? "";
        if (running === version && state === "committed") return [`updated to ${version}`];
        if (state === "rolled-back" && outcome.includes(`${version} failed`))
          throw new ProvisioningError("adhoc_failed", `${d.jid}: ${outcome}`, { to: d.jid, note: outcome });
        const failure = s.lastFailure?.[0] ?? "none";
        if (s.job?.[0] === "nothing" && state !== "trial" && running !== version && failure.includes(`update_`))
          // The install failed before the switch (a download or hash refusal): the device said why.
          throw new ProvisioningError("adhoc_failed", `${d.jid}: ${failure}`, { to: d.jid, note: failure });
        last = `${running ?? "?"} running, ${state ?? "?"}${s.job?.[0] && s.job[0] !== "nothing" ? `, ${s.job[0]}` : ""}`;
      }
      throw new ProvisioningError("xmpp_timeout", `${d.jid}: no outcome within ${timeoutMs} ms (${last})`, {
        to: d.jid,
        note: `no outcome in time: ${last}`,
      });
    },
  };
}
