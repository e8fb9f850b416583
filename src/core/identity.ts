/**
 * An Ed25519 identity. Its id is the fingerprint: lowercase hex SHA-256 of the raw public key.
 * A verify-only identity (from a public key) refuses to sign.
 */
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import {
  bytesToHex,
  ed25519Sign,
  ed25519Verify,
  generateEd25519,
  hexToBytes,
  privateKeyFromSeed,
  publicKeyFromPrivate,
  publicKeyFromRaw,
  rawPublicKey,
  rawSeed,
  sha256Hex,
  type PrivateKey,
  type PublicKey,
} from "./crypto.ts";
import { IdentityError, SignatureError } from "./errors.ts";
import { printable } from "./text.ts";

const FILE_FORMAT = "converge-identity-v1";

export class Identity {
  readonly publicKey: Uint8Array;
  readonly fingerprint: string;
  readonly #publicKeyObject: PublicKey;
  readonly #privateKey: PrivateKey | undefined;

  private constructor(publicKey: PublicKey, privateKey: PrivateKey | undefined) {
    this.#publicKeyObject = publicKey;
    this.#privateKey = privateKey;
    this.publicKey = rawPublicKey(publicKey);
    this.fingerprint = sha256Hex(this.publicKey);
  }

  static generate(): Identity {
    const { privateKey, publicKey } = generateEd25519();
    return new Identity(publicKey, privateKey);
  }

  /** From a raw 32-byte private seed (RFC 8032). */
  static fromSeed(seed: Uint8Array): Identity {
    const privateKey = privateKeyFromSeed(seed);
    return new Identity(publicKeyFromPrivate(privateKey), privateKey);
  }

  /** A verify-only identity from a raw 32-byte public key. */
  static fromPublicKey(publicKey: Uint8Array): Identity {
    return new Identity(publicKeyFromRaw(publicKey), undefined);
  }

  /** The agent id. */
  get id(): string {
    return this.fingerprint;
  }

  get canSign(): boolean {
    return this.#privateKey !== undefined;
  }

  sign(data: Uint8Array): Uint8Array {
    if (!this.#privateKey) {
      throw new SignatureError(
        `identity ${this.fingerprint.slice(0, 12)} is verify-only (it has no private key) and cannot sign`,
      );
    }
    return ed25519Sign(this.#privateKey, data);
  }

  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return ed25519Verify(this.#publicKeyObject, data, signature);
  }

  /** The 32-byte private seed; throws for a verify-only identity. */
  seed(): Uint8Array {
    if (!this.#privateKey) throw new SignatureError("a verify-only identity has no private seed");
    return rawSeed(this.#privateKey);
  }

  /**
   * Writes the identity to `path` with mode 0600. The file is written beside the target and
   * renamed into place, so a crash never leaves a partial key file.
   */
  save(path: string): void {
    const body = `${JSON.stringify({
      format: FILE_FORMAT,
      algorithm: "ed25519",
      seed: bytesToHex(this.seed()),
      publicKey: bytesToHex(this.publicKey),
    })}\n`;
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      mkdirSync(dirname(path), { recursive: true });
      const fd = openSync(tmp, "wx", 0o600);
      try {
        writeSync(fd, body);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      chmodSync(tmp, 0o600); // the umask may have narrowed it further; never wider
      renameSync(tmp, path);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        /* it may never have been created */
      }
      throw new IdentityError(`cannot save identity to ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Loads an identity saved by `save`; refuses files that group or others can read. */
  static load(path: string): Identity {
    let mode: number;
    try {
      const st = statSync(path);
      if (st.isDirectory())
        throw new IdentityError(
          `identity file ${printable(path)} is a directory; give the key file itself ` +
            "(converge run keeps agent i's in <identity_dir>/agent-<i>.key)",
        );
      mode = st.mode;
    } catch (err) {
      if (err instanceof IdentityError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new IdentityError(
        code === "ENOENT"
          ? `identity file ${printable(path)} does not exist`
          : `cannot read identity file ${printable(path)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if ((mode & 0o077) !== 0) {
      throw new IdentityError(
        `identity file ${printable(path)} is readable by others (mode ${(mode & 0o777).toString(8)}); ` +
          `run: chmod 600 ${printable(path)}`,
      );
    }
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new IdentityError(`cannot read identity file ${path}: ${(err as Error).message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new IdentityError(`identity file ${path} is not valid JSON`);
    }
    const rec = data as { format?: unknown; seed?: unknown; publicKey?: unknown };
    if (typeof data !== "object" || data === null || rec.format !== FILE_FORMAT || typeof rec.seed !== "string") {
      throw new IdentityError(
        `identity file ${path} is not a converge identity (expected format ${FILE_FORMAT} with a seed)`,
      );
    }
    let identity: Identity;
    try {
      identity = Identity.fromSeed(hexToBytes(rec.seed));
    } catch {
      throw new IdentityError(`identity file ${path} has a malformed seed (expected 64 hex digits)`);
    }
    if (typeof rec.publicKey === "string" && rec.publicKey !== bytesToHex(identity.publicKey)) {
      throw new IdentityError(`identity file ${path} is inconsistent: its public key does not match its seed`);
    }
    return identity;
  }
}
