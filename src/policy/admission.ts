/**
 * Pool admission: may this agent join a pool with this admission spec?
 * Tokens are compared in constant time (both sides hashed to equal-length digests first, so not
 * even the token's length leaks through timing).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { AdmissionSpec } from "../core/pool.ts";

export type AdmissionResult = { ok: true } | { ok: false; reason: string };

export function admits(spec: AdmissionSpec, agentId: string, token?: string): AdmissionResult {
  switch (spec.type) {
    case "open":
      return { ok: true };
    case "allowlist":
      return Array.isArray(spec.allow) && spec.allow.includes(agentId)
        ? { ok: true }
        : { ok: false, reason: `agent ${agentId} is not on the pool's allowlist` };
    case "token":
      if (typeof spec.token !== "string" || spec.token === "")
        return { ok: false, reason: "the pool requires a token but has none configured" };
      if (token === undefined || token === "")
        return { ok: false, reason: "the pool requires a token and none was given" };
      return tokensEqual(spec.token, token)
        ? { ok: true }
        : { ok: false, reason: "the token does not match the pool's token" };
    default:
      return {
        ok: false,
        reason: `unknown admission type "${String((spec as { type?: unknown }).type)}" (use open, allowlist or token)`,
      };
  }
}

/** Constant-time string equality. */
export function tokensEqual(expected: string, given: string): boolean {
  const a = createHash("sha256").update(expected, "utf8").digest();
  const b = createHash("sha256").update(given, "utf8").digest();
  return timingSafeEqual(a, b);
}
