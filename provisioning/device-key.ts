/**
 * Device key pair, CSR, and "sealing" a short secret to a device's public key. Used on both sides:
 * the device makes a key + CSR before provisioning (`iot-agent enroll --make-csr`), the fleet admin
 * signs the CSR into a client certificate and seals the admin-path password to the CSR's key, so
 * the bundle never carries that password in clear.
 *
 * Sealing is RSA-OAEP with SHA-256 directly on the secret (no hybrid scheme needed: a 2048-bit key
 * takes up to 190 bytes, a generated password is 43).
 */
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
} from "node:crypto";
import forge from "node-forge";
import { parseCsr } from "./csr.js";
import { ProvisioningError } from "./errors.js";

export const DEVICE_KEY_BITS = 2048;
export const SEAL_ALG = "RSA-OAEP-256";

export interface DeviceKeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateDeviceKey(bits = DEVICE_KEY_BITS): DeviceKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** SHA-256 of the SubjectPublicKeyInfo DER, hex: names the key a secret was sealed to. */
export function publicKeyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex");
}

export function createCsr(privateKeyPem: string, jid: string): string {
  let key: forge.pki.rsa.PrivateKey;
  try {
    key = forge.pki.privateKeyFromPem(
      createPrivateKey(privateKeyPem).export({ type: "pkcs8", format: "pem" }).toString(),
    ) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    throw new ProvisioningError("key_invalid", "the device key is not an RSA private key", {}, { cause: err });
  }
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: "commonName", value: jid }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** The public key (SPKI PEM) and subject CN of a CSR, after checking its self-signature. */
export function readCsr(csrPem: string): { publicKeyPem: string; commonName: string | undefined } {
  const csr = parseCsr(csrPem);
  const cn = csr.subject.getField("CN") as { value?: string } | null;
  return { publicKeyPem: forge.pki.publicKeyToPem(csr.publicKey!), commonName: cn?.value };
}

export interface SealedSecret {
  alg: typeof SEAL_ALG;
  /** base64 */
  ciphertext: string;
  keyFingerprint: string;
}

export function sealToPublicKey(publicKeyPem: string, secret: string): SealedSecret {
  const ciphertext = publicEncrypt(
    { key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    Buffer.from(secret, "utf8"),
  );
  return {
    alg: SEAL_ALG,
    ciphertext: ciphertext.toString("base64"),
    keyFingerprint: publicKeyFingerprint(publicKeyPem),
  };
}

export function openSealed(privateKeyPem: string, sealed: SealedSecret): string {
  const pub = createPublicKey(createPrivateKey(privateKeyPem)).export({ type: "spki", format: "pem" }).toString();
  if (publicKeyFingerprint(pub) !== sealed.keyFingerprint)
    throw new ProvisioningError("bundle_key_mismatch", "the bundle's password was sealed to a different device key", {
      expected: sealed.keyFingerprint,
    });
  try {
    return privateDecrypt(
      { key: privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      Buffer.from(sealed.ciphertext, "base64"),
    ).toString("utf8");
  } catch (err) {
    throw new ProvisioningError(
      "decrypt_failed",
      "cannot decrypt the sealed password with the device key",
      {},
      {
        cause: err,
      },
    );
  }
}
