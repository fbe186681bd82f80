/** `iot-fleet ca init` and `ca show`: the fleet CA's key and certificate in HOME/ca. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CA_CERT_FILE, CA_KEY_FILE, initCa, loadCaCert } from "../ca.js";
import { ProvisioningError } from "../errors.js";
import { EXIT } from "../exit-codes.js";
import { noPositionals, parseDays } from "./args.js";
import type { Context } from "./context.js";

export function caInit(ctx: Context, p: string[]): number {
  noPositionals(p, "ca init");
  const { opts } = ctx;
  const days = parseDays(opts.string("valid-days"), 3650, 36500, "--valid-days", "ca init");
  const force = opts.flag("force");
  // Refuse before promising work: an existing CA is never overwritten without --force.
  if (!force && (existsSync(join(ctx.caDir, CA_KEY_FILE)) || existsSync(join(ctx.caDir, CA_CERT_FILE))))
    throw new ProvisioningError("ca_exists", `a fleet CA already exists in ${ctx.caDir}; refusing to overwrite it`, {
      dir: ctx.caDir,
    });
  const passphrase = ctx.passphrase();
  ctx.progress(`generating the RSA-3072 CA key in ${ctx.caDir} (a few seconds)...`);
  const org = opts.string("org");
  const info = initCa({
    dir: ctx.caDir,
    subject: { commonName: opts.string("cn") ?? "IoT fleet CA", ...(org ? { organization: org } : {}) },
    validDays: days,
    force,
    now: ctx.now(),
    ...(passphrase ? { passphrase } : {}),
    ...(ctx.deps.caKeyBits ? { keyBits: ctx.deps.caKeyBits } : {}),
  });
  ctx.print(
    { certFile: info.certFile, keyFile: info.keyFile, fingerprint: info.fingerprint, encrypted: !!passphrase },
    `fleet CA created\n  certificate  ${info.certFile}\n  key          ${info.keyFile} (0600${passphrase ? ", encrypted" : ", NOT encrypted: consider --passphrase-file"})\n  sha256       ${info.fingerprint}`,
  );
  return EXIT.ok;
}

export function caShow(ctx: Context, p: string[]): number {
  noPositionals(p, "ca show");
  const info = loadCaCert(join(ctx.caDir, CA_CERT_FILE));
  ctx.print(
    { subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter, fingerprint: info.fingerprint },
    `subject   ${info.subject}\nvalid     ${info.notBefore.toISOString()} .. ${info.notAfter.toISOString()}\nsha256    ${info.fingerprint}`,
  );
  return EXIT.ok;
}
