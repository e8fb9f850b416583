/**
 * Who is who: agent id → public key, for verifying what arrives. An id is the fingerprint of its
 * key, so a key is accepted only under its own fingerprint (a peer cannot claim another's id).
 */
import { IdentityError } from "../core/errors.ts";
import { Identity } from "../core/identity.ts";
import type { KeyLookup } from "../transport/transport.ts";

export class IdentityRegistry implements KeyLookup {
  // Verify-only identities: building one per message would cost more than verifying.
  readonly #byId = new Map<string, Identity>();

  /** Registers an identity (its public part), or an id with its raw 32-byte public key. */
  register(identity: Identity): void;
  register(id: string, publicKey: Uint8Array): void;
  register(idOrIdentity: Identity | string, publicKey?: Uint8Array): void {
    if (idOrIdentity instanceof Identity) {
      this.#byId.set(
        idOrIdentity.fingerprint,
        idOrIdentity.canSign ? Identity.fromPublicKey(idOrIdentity.publicKey) : idOrIdentity,
      );
      return;
    }
    const id = idOrIdentity;
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
      throw new IdentityError(`cannot register ${id}: a public key must be 32 raw bytes`);
    }
    let identity: Identity;
    try {
      identity = Identity.fromPublicKey(publicKey);
    } catch (err) {
      throw new IdentityError(`cannot register ${id}: not a valid Ed25519 public key (${(err as Error).message})`, {
        cause: err,
      });
    }
    if (identity.fingerprint !== id) {
      throw new IdentityError(
        `refused to register ${id}: its public key's fingerprint is ${identity.fingerprint}, ` +
          "so it belongs to another agent",
      );
    }
    this.#byId.set(id, identity);
  }

  /** The sender's verify-only identity (what Message.verify takes), or undefined. */
  get(id: string): Identity | undefined {
    return this.#byId.get(id);
  }

  publicKey(id: string): Uint8Array | undefined {
    return this.#byId.get(id)?.publicKey;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** True when the id was registered. */
  remove(id: string): boolean {
    return this.#byId.delete(id);
  }

  ids(): string[] {
    return [...this.#byId.keys()];
  }

  get size(): number {
    return this.#byId.size;
  }
}
