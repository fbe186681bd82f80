/** `iot-fleet revoke DEVICE-ID` and `iot-fleet revocations --out FILE`. */
import { resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { publishRevocations } from "../usecases/revocations.js";
import { revokeDevice } from "../usecases/revoke.js";
import { noPositionals, oneDevice, usageError } from "./args.js";
import type { Context } from "./context.js";

export async function revokeCommand(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "revoke");
  const localOnly = ctx.opts.flag("local-only");
  const r = await revokeDevice(
    { id, disable: ctx.opts.flag("disable"), localOnly },
    ctx.services(),
    ctx.revocationOutput(ctx.opts.string("export")),
  );
  if (localOnly)
    ctx.print(
      { deviceId: id, revoked: true, account: r.account },
      `${id} revoked locally (account not deleted: --local-only)`,
    );
  else ctx.print({ deviceId: id, revoked: true, account: r.account }, `${id} revoked: account ${r.jid} ${r.account}`);
  return EXIT.ok;
}

export function revocationsCommand(ctx: Context, p: string[]): number {
  noPositionals(p, "revocations");
  const out = ctx.opts.string("out");
  if (!out) throw usageError("--out FILE is required", "revocations");
  const home = publishRevocations(ctx.store, ctx.now(), ctx.revocationOutput(out));
  ctx.print({ file: resolve(out), home }, `revocation list written to ${resolve(out)}`);
  return EXIT.ok;
}
