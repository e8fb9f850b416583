/**
 * Thin wrappers over node:crypto for the primitives converge uses: Ed25519 from raw 32-byte keys,
 * SHA-256, and AES-256-GCM. Raw keys are wrapped in fixed DER prefixes because node:crypto only
 * imports Ed25519 keys as PKCS#8 / SPKI.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
} from "node:crypto";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export type PrivateKey = KeyObject;
export type PublicKey = KeyObject;

export function privateKeyFromSeed(seed: Uint8Array): PrivateKey {
  if (seed.length !== 32) throw new RangeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
}

export function publicKeyFromRaw(raw: Uint8Array): PublicKey {
  if (raw.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
}

export function publicKeyFromPrivate(key: PrivateKey): PublicKey {
  return createPublicKey(key);
}

export function rawPublicKey(key: PublicKey): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(der.length - 32));
}

export function rawSeed(key: PrivateKey): Uint8Array {
  const der = key.export({ format: "der", type: "pkcs8" });
  return new Uint8Array(der.subarray(der.length - 32));
}

export function generateEd25519(): { privateKey: PrivateKey; publicKey: PublicKey } {
  return generateKeyPairSync("ed25519");
}

export function ed25519Sign(key: PrivateKey, data: Uint8Array): Uint8Array {
  return new Uint8Array(edSign(null, data, key));
}

export function ed25519Verify(key: PublicKey, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  return edVerify(null, data, key, signature);
}

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM; returns nonce ‖ ciphertext ‖ tag. */
export function aesGcmEncrypt(
  key: Uint8Array,
  plaintext: Uint8Array,
  nonce: Uint8Array = randomBytes(NONCE_BYTES),
): Uint8Array {
  checkAesKey(key);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]));
}

/** Inverse of aesGcmEncrypt; throws when the data was altered or the key is wrong. */
export function aesGcmDecrypt(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  checkAesKey(key);
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new RangeError("encrypted data is too short");
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAuthTag(tag);
  return new Uint8Array(
    Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]),
  );
}

function checkAesKey(key: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`an AES-256 key is 32 bytes, got ${key.length}`);
}

export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError("not a hex string");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
