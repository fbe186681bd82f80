/** `iot-fleet rotate DEVICE-ID [--admin-reset]`: options -> usecases/rotate.ts -> result line. */
import { resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { resetDevicePassword, rotatableDevice, rotateDevice } from "../usecases/rotate.js";
import { oneDevice, parseDuration, usageError } from "./args.js";
import { type Context, readSecretFile } from "./context.js";

export async function rotateCommand(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "rotate");
  // An unknown or revoked device is the answer, whatever else is wrong with the options.
  rotatableDevice(ctx.store.read(), id);
  if (!ctx.opts.flag("admin-reset")) {
    const r = await rotateDevice(id, ctx.services());
    ctx.print({ deviceId: id, rotated: true, note: r.note }, `${id}: ${r.note || "rotated"}`);
    return EXIT.ok;
  }
  const out = ctx.opts.string("out");
  if (!out) throw usageError("--admin-reset needs --out FILE for the new bundle", "rotate");
  const ca = ctx.loadCa();
  const server = ctx.bundleServer();
  const validForMs = parseDuration(ctx.opts.string("valid-for") ?? "7d");
  const csrFile = ctx.opts.string("csr");
  const bundleFile = resolve(out);
  const r = await resetDevicePassword(
    {
      id,
      server,
      csrPem: csrFile ? readSecretFile(csrFile, "CSR file") : undefined,
      adminJid: ctx.adminJid(),
      validForMs,
      bundleFile,
    },
    ca,
    ctx.services(),
  );
  ctx.print(
    { deviceId: id, reset: true, bundle: bundleFile, bundleId: r.bundleId },
    `password of ${r.jid} reset; re-enrol the device with ${out} (iot-agent enroll --force)`,
  );
  return EXIT.ok;
}
