import { describe, expect, test } from "bun:test";
import { printable, quoted } from "../../src/core/text.ts";

describe("printable", () => {
  test("plain text comes back unchanged", () => {
    expect(printable("task-1 ünïcode ✓")).toBe("task-1 ünïcode ✓");
  });

  test("when a value carries newlines and control characters, they are escaped so no second line can be forged", () => {
    const forged = "x\n2026-12-01T00:00:00.000Z INFO  run: all good\u0000\u001b[2J";
    const out = printable(forged);
    expect(out).not.toContain("\n");
    expect(out).not.toContain("\u001b");
    expect(out).toBe("x\\n2026-12-01T00:00:00.000Z INFO  run: all good\\u0000\\u001b[2J");
  });

  test("when a value is long, it is cut and its length is said", () => {
    const out = printable("a".repeat(5000), 10);
    expect(out).toBe("aaaaaaaaaa… (5000 chars)");
  });

  test("quoted wraps the printable form in quotes", () => {
    expect(quoted("a\tb")).toBe('"a\\tb"');
  });
});
