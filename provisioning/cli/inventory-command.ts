/**
 * `iot-fleet inventory [SELECTOR] [filters] [--sort KEY] [--json]`: usecases/inventory.ts -> one
 * row per device in human units (ages in s/min/h/d), or the rows as JSON.
 */
import type { StatusItem } from "../inventory/status-item.js";
import { EXIT } from "../exit-codes.js";
import { formatTags } from "../selector.js";
import { type InventoryRow, inventory } from "../usecases/inventory.js";
import { usageError } from "./args.js";
import type { Context } from "./context.js";
import { formatTable, truncate } from "./format.js";
import { intOption } from "./job-run.js";
import { selectorFrom } from "./selector-options.js";

const SORTS = ["id", "last-seen", "credential-age", "spool", "agent"] as const;

/** 42 s, 5 min, 3 h, 12 d. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86_400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** Numeric dotted versions (0.10.2 > 0.9.9); a part that is not a number compares as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "0";
    const y = pb[i] ?? "0";
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isInteger(nx) && Number.isInteger(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return Math.sign(c);
  }
  return 0;
}

export async function inventoryCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, "inventory");
  const { opts } = ctx;
  const selector = selectorFrom(opts, "inventory", false);
  if (opts.flag("online") && opts.flag("offline")) throw usageError("--online or --offline, not both", "inventory");
  const spoolOverRaw = opts.string("spool-over");
  const spoolOver = spoolOverRaw === undefined ? undefined : Number(spoolOverRaw);
  if (spoolOver !== undefined && !(Number.isInteger(spoolOver) && spoolOver >= 0))
    throw usageError("--spool-over must be a whole number of readings", "inventory");
  const agentBelow = opts.string("agent-below");
  const sort = (opts.string("sort") ?? "id") as (typeof SORTS)[number];
  if (!SORTS.includes(sort)) throw usageError(`--sort: one of ${SORTS.join(", ")}`, "inventory");
  const concurrency = intOption(ctx, "concurrency", 16, 256, "inventory");

  const all = await inventory(
    {
      selector,
      ...(opts.string("pubsub") ? { pubsubService: opts.string("pubsub")! } : {}),
      nodePrefix: opts.string("node-prefix") ?? "devices/",
      concurrency,
      timeoutMs: 10_000,
    },
    ctx.services(),
  );
  const now = ctx.now().getTime();
  const rows = all.filter(
    (r) =>
      (!opts.flag("online") || r.online) &&
      (!opts.flag("offline") || !r.online) &&
      (spoolOver === undefined || (r.status?.spooledReadings ?? -1) > spoolOver) &&
      (agentBelow === undefined || (r.status !== undefined && compareVersions(r.status.agentVersion, agentBelow) < 0)),
  );
  const key = (r: InventoryRow): number | string => {
    switch (sort) {
      case "last-seen":
        return -(r.lastSeen ? Date.parse(r.lastSeen) : 0);
      case "credential-age":
        return -r.credentialAgeMs;
      case "spool":
        return -(r.status?.spooledReadings ?? -1);
      default:
        return r.id;
    }
  };
  rows.sort((a, b) =>
    sort === "agent"
      ? compareVersions(a.status?.agentVersion ?? "0", b.status?.agentVersion ?? "0") || a.id.localeCompare(b.id)
      : typeof key(a) === "number"
        ? (key(a) as number) - (key(b) as number) || a.id.localeCompare(b.id)
        : String(key(a)).localeCompare(String(key(b))),
  );
  if (opts.flag("json")) {
    ctx.io.out(JSON.stringify(rows));
    return EXIT.ok;
  }
  const table = [
    [
      "DEVICE",
      "ONLINE",
      "LAST SEEN",
      "AGENT",
      "FIRMWARE",
      "CHANNELS",
      "TELEMETRY",
      "SPOOL",
      "STATUS FROM",
      "CREDENTIAL",
      "STATE",
      "TAGS",
    ],
  ];
  for (const r of rows) {
    const s = r.status;
    table.push([
      r.id,
      r.online ? "yes" : "no",
      r.online ? "now" : r.lastSeen ? `${formatAge(now - Date.parse(r.lastSeen))} ago` : "never",
      s ? `${s.agentVersion}${updateNote(s.update)}` : "-",
      s?.firmwareVersion ?? "-",
      s ? String(s.channels.length) : "-",
      truncate((s ? s.telemetry : r.statusProblem) ?? "-", 40),
      s?.spooledReadings !== undefined ? String(s.spooledReadings) : "-",
      s ? `${formatAge(now - s.publishedAt)} ago` : "-",
      formatAge(r.credentialAgeMs),
      r.state,
      formatTags(r.tags),
    ]);
  }
  for (const line of formatTable(table)) ctx.io.out(line);
  const online = rows.filter((r) => r.online).length;
  ctx.io.out(
    `${rows.length} device(s)${rows.length !== all.length ? ` of ${all.length} selected` : ""}: ${online} online, ${rows.length - online} offline`,
  );
  return EXIT.ok;
}

/** " (on trial)", " (0.3.0 rolled back)": what the AGENT column adds after an over-the-air update. */
function updateNote(u: StatusItem["update"]): string {
  if (!u) return "";
  if (u.state === "trial") return " (on trial)";
  if (u.state === "rolled-back") return ` (${u.failed ?? "update"} rolled back)`;
  return "";
}
