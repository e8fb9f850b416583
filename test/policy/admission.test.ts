import { describe, expect, test } from "bun:test";
import type { AdmissionSpec } from "../../src/core/pool.ts";
import { admits, tokensEqual } from "../../src/policy/admission.ts";

describe("admits", () => {
  test("an open pool admits anyone", () => {
    expect(admits({ type: "open" }, "anyone")).toEqual({ ok: true });
  });

  test("an allowlist admits listed agents and refuses others with a reason", () => {
    const spec: AdmissionSpec = { type: "allowlist", allow: ["a1", "a2"] };
    expect(admits(spec, "a2")).toEqual({ ok: true });
    const r = admits(spec, "zz");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain("zz is not on the pool's allowlist");
  });

  test("an empty allowlist admits nobody", () => {
    expect(admits({ type: "allowlist", allow: [] }, "a").ok).toBe(false);
  });

  test("a token pool admits the right token only", () => {
    const spec: AdmissionSpec = { type: "token", token: "s3cret" };
    expect(admits(spec, "a", "s3cret")).toEqual({ ok: true });
    expect(admits(spec, "a", "s3cre")).toEqual({ ok: false, reason: "the token does not match the pool's token" });
    expect(admits(spec, "a", "s3cret ")).toMatchObject({ ok: false });
    expect(admits(spec, "a")).toEqual({ ok: false, reason: "the pool requires a token and none was given" });
    expect(admits(spec, "a", "")).toMatchObject({ ok: false });
  });

  test("a token pool with no token configured admits nobody, not even with an empty token", () => {
    expect(admits({ type: "token", token: "" }, "a", "")).toEqual({
      ok: false,
      reason: "the pool requires a token but has none configured",
    });
  });

  test("an unknown admission type refuses with a reason naming it", () => {
    const r = admits({ type: "invite" } as unknown as AdmissionSpec, "a");
    expect(r).toMatchObject({ ok: false });
    expect(!r.ok && r.reason).toContain('"invite"');
  });

  test("tokensEqual compares whole strings of any length", () => {
    expect(tokensEqual("abc", "abc")).toBe(true);
    expect(tokensEqual("abc", "abd")).toBe(false);
    expect(tokensEqual("abc", "abcd")).toBe(false);
    expect(tokensEqual("é", "é")).toBe(true);
  });
});
