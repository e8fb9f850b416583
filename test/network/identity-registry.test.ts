import { describe, expect, test } from "bun:test";
import { IdentityError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";

describe("IdentityRegistry", () => {
  test("registers an identity under its fingerprint, keeping only the public part", () => {
    const alice = Identity.generate();
    const r = new IdentityRegistry();
    r.register(alice);
    expect(r.has(alice.fingerprint)).toBe(true);
    expect(r.get(alice.fingerprint)!.canSign).toBe(false);
    expect(r.publicKey(alice.fingerprint)).toEqual(alice.publicKey);
  });

  test("registers an id with its raw public key, and the key verifies that agent's messages", () => {
    const alice = Identity.generate();
    const r = new IdentityRegistry();
    r.register(alice.fingerprint, alice.publicKey);
    const m = new Message({ payload: { x: 1 } }).sign(alice);
    expect(m.verify(r.get(m.sender)!)).toBe(true);
    expect(m.verify(r.get(m.sender)!.publicKey)).toBe(true);
  });

  test("refuses a key whose fingerprint is not the id it is registered under", () => {
    const alice = Identity.generate();
    const mallory = Identity.generate();
    const r = new IdentityRegistry();
    expect(() => r.register(alice.fingerprint, mallory.publicKey)).toThrow(IdentityError);
    expect(() => r.register(alice.fingerprint, mallory.publicKey)).toThrow(/belongs to another agent/);
    expect(r.has(alice.fingerprint)).toBe(false);
  });

  test("refuses a key that is not 32 raw bytes", () => {
    const r = new IdentityRegistry();
    expect(() => r.register("abc", new Uint8Array(31))).toThrow(/32 raw bytes/);
  });

  test("remove forgets an agent and says whether it was known", () => {
    const alice = Identity.generate();
    const r = new IdentityRegistry();
    r.register(alice);
    expect(r.ids()).toEqual([alice.fingerprint]);
    expect(r.remove(alice.fingerprint)).toBe(true);
    expect(r.remove(alice.fingerprint)).toBe(false);
    expect(r.get(alice.fingerprint)).toBeUndefined();
    expect(r.size).toBe(0);
  });
});
