/**
 * `iot-fleet watch SELECTOR [--json] [--seconds N]`: usecases/watch.ts -> on a terminal a table of
 * the latest reading per device and channel, redrawn every second; elsewhere one line per reading;
 * with --json one JSON object per line (for piping). Ends on Ctrl-C or after --seconds.
 */
import { EXIT } from "../exit-codes.js";
import type { WatchedReading } from "../inventory/readings.js";
import { watchTelemetry } from "../usecases/watch.js";
import { usageError } from "./args.js";
import type { Context } from "./context.js";
import { formatTable } from "./format.js";
import { formatAge } from "./inventory-command.js";
import { selectorFrom } from "./selector-options.js";

export async function watchCommand(ctx: Context, p: string[]): Promise<number> {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, "watch");
  const selector = selectorFrom(ctx.opts, "watch", true);
  const secondsRaw = ctx.opts.string("seconds");
  const seconds = secondsRaw === undefined ? undefined : Number(secondsRaw);
  if (seconds !== undefined && !(Number.isInteger(seconds) && seconds > 0 && seconds <= 366 * 86_400))
    throw usageError("--seconds must be a whole number of seconds", "watch");
  const json = ctx.opts.flag("json");
  const live = !json && ctx.io.ttyErr !== undefined;
  const latest = new Map<string, WatchedReading>();
  const show = (r: WatchedReading) => {
    if (json) ctx.io.out(JSON.stringify({ ...r, sampledAt: new Date(r.sampledAt).toISOString() }));
    else if (live) latest.set(`${r.device}\u0000${r.channel}`, r);
    else
      ctx.io.out(
        `${r.device} ${r.channel} ${r.value ?? "(no value)"}${r.unit ? ` ${r.unit}` : ""} ${r.quality}${r.historical ? " historical" : ""} sampled ${new Date(r.sampledAt).toISOString()}`,
      );
  };
  const redraw = () => {
    const now = ctx.now().getTime();
    const rows = [["DEVICE", "CHANNEL", "VALUE", "UNIT", "AGE", "QUALITY"]];
    for (const r of [...latest.values()].sort(
      (a, b) => a.device.localeCompare(b.device) || a.channel.localeCompare(b.channel),
    ))
      rows.push([r.device, r.channel, r.value ?? "-", r.unit ?? "", formatAge(now - r.sampledAt), r.quality]);
    ctx.io.ttyErr?.(`\x1b[H\x1b[2J${formatTable(rows).join("\n")}\n(${latest.size} channel(s); Ctrl-C ends)\n`);
  };
  let stop: () => void = () => undefined;
  const until = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const off = ctx.io.onInterrupt?.(() => stop());
  const timer = seconds !== undefined ? setTimeout(() => stop(), seconds * 1000) : undefined;
  const ticker = live ? setInterval(redraw, 1000) : undefined;
  try {
    const summary = await watchTelemetry(
      {
        selector,
        ...(ctx.opts.string("pubsub") ? { pubsubService: ctx.opts.string("pubsub")! } : {}),
        nodePrefix: ctx.opts.string("node-prefix") ?? "devices/",
        concurrency: 16,
        timeoutMs: 10_000,
      },
      ctx.services(),
      show,
      until,
    );
    ctx.progress(
      `watched ${summary.subscribed} of ${summary.devices} device(s): ${summary.readings} reading(s)${summary.refused.length ? `; ${summary.refused.length} node(s) refused` : ""}`,
    );
    return summary.refused.length > 0 && summary.subscribed === 0 ? EXIT.server : EXIT.ok;
  } finally {
    off?.();
    if (timer) clearTimeout(timer);
    if (ticker) clearInterval(ticker);
  }
}
