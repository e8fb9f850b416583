import { describe, expect, test } from "bun:test";
import { APICallError } from "ai";
import { classify, headerDuration, retryAfterMs } from "../../src/llm/errors.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");

describe("retryAfterMs", () => {
  test("reads retry-after in seconds or as an HTTP date, and retry-after-ms", () => {
    expect(retryAfterMs({ "retry-after": "2" }, NOW)).toBe(2000);
    expect(retryAfterMs({ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }, NOW)).toBe(30_000);
    expect(retryAfterMs({ "retry-after-ms": "250" }, NOW)).toBe(250);
  });

  test("reads OpenAI's and Anthropic's reset headers, and the longest hint wins", () => {
    expect(retryAfterMs({ "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s" }, NOW)).toBe(360_000);
    expect(retryAfterMs({ "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:05Z" }, NOW)).toBe(5000);
    expect(retryAfterMs({ "retry-after": "1", "retry-after-ms": "1500" }, NOW)).toBe(1500);
  });

  test("when there is no usable hint it gives none, and a huge one is cut to an hour", () => {
    expect(retryAfterMs({}, NOW)).toBeUndefined();
    expect(retryAfterMs({ "retry-after": "soon" }, NOW)).toBeUndefined();
    expect(retryAfterMs({ "retry-after": "999999999" }, NOW)).toBe(3_600_000);
  });

  test("parses Go-style durations", () => {
    expect(headerDuration("20ms")).toBe(20);
    expect(headerDuration("1h2m3.5s")).toBe(3_723_500);
    expect(headerDuration("0.5")).toBe(500);
    expect(headerDuration("5 minutes")).toBeUndefined();
  });
});

const apiError = (statusCode: number | undefined, body = "", headers: Record<string, string> = {}) =>
  new APICallError({
    message: "boom",
    url: "http://127.0.0.1:9/v1/chat/completions",
    requestBodyValues: {},
    statusCode,
    responseHeaders: headers,
    responseBody: body,
    isRetryable: statusCode === undefined || statusCode === 429 || statusCode >= 500,
  });

describe("classify", () => {
  test("429 and 529 are rate limits with the wait the provider asked for; 503 only with a hint", () => {
    expect(classify(apiError(429, "", { "retry-after": "3" }))).toMatchObject({ kind: "rate-limited", waitMs: 3000 });
    expect(classify(apiError(529))).toMatchObject({ kind: "rate-limited", waitMs: undefined });
    expect(classify(apiError(503, "", { "retry-after": "1" }))).toMatchObject({ kind: "rate-limited" });
    expect(classify(apiError(503))).toMatchObject({ kind: "transient", status: 503 });
  });

  test("a connection failure is transient and names the URL; a 401 is final with the provider's message", () => {
    expect(classify(apiError(undefined))).toMatchObject({
      kind: "transient",
      message: "boom (http://127.0.0.1:9/v1/chat/completions)",
    });
    const body = JSON.stringify({ error: { message: "Incorrect API key provided\nsecond line", type: "invalid" } });
    expect(classify(apiError(401, body))).toEqual({
      kind: "final",
      status: 401,
      message: "HTTP 401: Incorrect API key provided\\nsecond line",
    });
  });
});
