/** `iot-fleet list [SELECTOR] [--online] [--json]`: the device table, or the store's records as JSON. */
import { EXIT } from "../exit-codes.js";
import { describeSelector, formatTags, isEmptySelector } from "../selector.js";
import { listDevices } from "../usecases/list.js";
import { noPositionals } from "./args.js";
import type { Context } from "./context.js";
import { describeCredentialPath, formatTable } from "./format.js";
import { selectorFrom } from "./selector-options.js";

export async function listCommand(ctx: Context, p: string[]): Promise<number> {
  noPositionals(p, "list");
  const selector = selectorFrom(ctx.opts, "list", false);
  const devices = await listDevices({ online: ctx.opts.flag("online"), selector }, ctx.services());
  if (ctx.opts.flag("json")) {
    ctx.io.out(JSON.stringify(devices));
    return EXIT.ok;
  }
  const rows = [["DEVICE", "JID", "STATE", "CREDENTIAL", "TAGS", "LAST SEEN", "UPDATED"]];
  for (const d of devices)
    rows.push([
      d.id,
      d.jid,
      d.state,
      describeCredentialPath(d.credentialPath),
      formatTags(d.tags),
      d.lastSeen ?? "-",
      d.updatedAt,
    ]);
  for (const line of formatTable(rows)) ctx.io.out(line);
  if (devices.length === 0)
    ctx.io.out(
      isEmptySelector(selector)
        ? "(no devices yet: iot-fleet provision DEVICE-ID ...)"
        : `(no device matches ${describeSelector(selector)})`,
    );
  return EXIT.ok;
}
