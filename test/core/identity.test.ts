import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IdentityError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { tempDir } from "../support/tmp.ts";

const dir = tempDir();
afterAll(dir.cleanup);

describe("Identity", () => {
  test("the fingerprint is the hex SHA-256 of the public key and is the id", () => {
    const id = Identity.generate();
    const digest = new Bun.CryptoHasher("sha256").update(id.publicKey).digest("hex");
    expect(id.fingerprint).toBe(digest);
    expect(id.id).toBe(digest);
  });

  test("sign and verify; another key does not verify", () => {
    const a = Identity.generate();
    const data = new TextEncoder().encode("hello");
    const sig = a.sign(data);
    expect(a.verify(data, sig)).toBe(true);
    expect(Identity.generate().verify(data, sig)).toBe(false);
    expect(a.verify(new TextEncoder().encode("hellp"), sig)).toBe(false);
  });

  test("save writes mode 0600 and load gives back the same identity", () => {
    const a = Identity.generate();
    const path = join(dir.path, "nested", "a.key");
    a.save(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const b = Identity.load(path);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.canSign).toBe(true);
    expect(readdirSync(join(dir.path, "nested"))).toEqual(["a.key"]);
  });

  test("loading a missing, world-readable, malformed or inconsistent file is a clear error", () => {
    expect(() => Identity.load(join(dir.path, "nope.key"))).toThrow(/does not exist/);
    const open = join(dir.path, "open.key");
    Identity.generate().save(open);
    chmodSync(open, 0o644);
    expect(() => Identity.load(open)).toThrow(/readable by others.*chmod 600/);
    const cases: [string, RegExp][] = [
      ["not json", /not valid JSON/],
      ['{"format":"other"}', /not a converge identity/],
      ['{"format":"converge-identity-v1","seed":"abcd"}', /malformed seed/],
      [
        `{"format":"converge-identity-v1","seed":"${"11".repeat(32)}","publicKey":"${"22".repeat(32)}"}`,
        /inconsistent/,
      ],
    ];
    for (const [body, re] of cases) {
      const p = join(dir.path, "bad.key");
      writeFileSync(p, body, { mode: 0o600 });
      chmodSync(p, 0o600);
      expect(() => Identity.load(p)).toThrow(re);
      expect(() => Identity.load(p)).toThrow(IdentityError);
    }
  });

  test("save where the directory cannot be made fails clearly and leaves no temp file", () => {
    const blocker = join(dir.path, "blocker");
    writeFileSync(blocker, "a file, not a directory");
    expect(() => Identity.generate().save(join(blocker, "y.key"))).toThrow(/cannot save identity to .*y\.key/);
    expect(readdirSync(dir.path).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("when an identity path is not a key file", () => {
  test("a directory is named as one, with no chmod advice", () => {
    expect(() => Identity.load(dir.path)).toThrow(IdentityError);
    expect(() => Identity.load(dir.path)).toThrow(/^identity file .* is a directory; give the key file itself/);
    expect(() => Identity.load(dir.path)).not.toThrow(/chmod/);
  });
});
