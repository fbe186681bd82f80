/** `iot-fleet tag SELECTOR [KEY=VALUE ...] [--untag KEY ...]`: options -> usecases/tag.ts -> one line per device. */
import { EXIT } from "../exit-codes.js";
import { formatTags, isTagKey, parseTags } from "../selector.js";
import { tagDevices } from "../usecases/tag.js";
import { usageError } from "./args.js";
import type { Context } from "./context.js";
import { formatTable } from "./format.js";
import { selectorFrom } from "./selector-options.js";

export async function tagCommand(ctx: Context, p: string[]): Promise<number> {
  const selector = selectorFrom(ctx.opts, "tag", true);
  const set = parseTags(p);
  const remove = ctx.opts.list("untag");
  for (const k of remove) if (!isTagKey(k)) throw usageError(`--untag ${JSON.stringify(k)} is not a tag key`, "tag");
  for (const k of remove) if (k in set) throw usageError(`tag ${k} is both set and removed`, "tag");
  if (Object.keys(set).length === 0 && remove.length === 0)
    throw usageError("nothing to change: give KEY=VALUE pairs and/or --untag KEY", "tag");
  const r = await tagDevices(selector, { set, remove }, ctx.services());
  const changed = r.devices.filter((d) => d.changed).length;
  if (ctx.opts.flag("json")) {
    ctx.io.out(JSON.stringify(r));
    return EXIT.ok;
  }
  const rows = [["DEVICE", "TAGS", ""]];
  for (const d of r.devices) rows.push([d.id, formatTags(d.tags), d.changed ? "changed" : "unchanged"]);
  if (r.devices.length > 0) for (const line of formatTable(rows)) ctx.io.out(line);
  ctx.io.out(`${r.devices.length} device(s) selected, ${changed} changed`);
  return EXIT.ok;
}
