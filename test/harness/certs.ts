/**
 * Fresh TLS material for test servers, made with the openssl CLI (~0.1 s with EC P-256 keys).
 *
 * The certificate is self-signed, so it is its own trust anchor: clients trust exactly `caFile`
 * (== certFile). subjectAltName covers the XMPP domain and its pubsub component.
 * `createCertificate` can be called twice to get a second, *unrelated* certificate for the same
 * names: a client trusting the decoy's caFile must refuse a server presenting the real one.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "./process.js";

export interface CertificateOptions {
  /** Directory to write into (a private temp dir). */
  dir: string;
  /** XMPP domain. Default "iot.test". */
  host?: string;
  /** Extra DNS names; default [`pubsub.<host>`]. */
  altNames?: string[];
  /** IP addresses the certificate is also valid for (subjectAltName IP:), e.g. an HTTP file share on 127.0.0.1. */
  ipAltNames?: string[];
  /** File name prefix, so several certificates can share a dir. Default "server". */
  name?: string;
  /** Validity in days. Default 30. */
  days?: number;
}

export interface Certificate {
  host: string;
  names: string[];
  certFile: string;
  keyFile: string;
  /** The trust anchor a client must load; the cert itself, since it is self-signed. */
  caFile: string;
  certPem: string;
  /** SHA-256 of the DER certificate, uppercase hex with colons (as `openssl x509 -fingerprint`). */
  fingerprintSha256: string;
  /** Same digest, lowercase hex without separators. */
  fingerprintSha256Hex: string;
}

export async function createCertificate(opts: CertificateOptions): Promise<Certificate> {
  const host = opts.host ?? "iot.test";
  const names = [host, ...(opts.altNames ?? [`pubsub.${host}`])];
  const base = opts.name ?? "server";
  const certFile = join(opts.dir, `${base}.crt`);
  const keyFile = join(opts.dir, `${base}.key`);
  await runCommand(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      String(opts.days ?? 30),
      "-subj",
      `/CN=${host}`,
      "-addext",
      `subjectAltName=${[...names.map((n) => `DNS:${n}`), ...(opts.ipAltNames ?? []).map((ip) => `IP:${ip}`)].join(",")}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,digitalSignature,keyCertSign",
      "-addext",
      "extendedKeyUsage=serverAuth,clientAuth",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { timeoutMs: 15000 },
  );
  const certPem = readFileSync(certFile, "utf8");
  const fingerprintSha256 = new X509Certificate(certPem).fingerprint256;
  return {
    host,
    names,
    certFile,
    keyFile,
    caFile: certFile,
    certPem,
    fingerprintSha256,
    fingerprintSha256Hex: fingerprintSha256.replaceAll(":", "").toLowerCase(),
  };
}
