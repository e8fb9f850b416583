import { describe, expect, test } from "bun:test";
import { advertisedEndpoint } from "../../src/cli/fleet.ts";

describe("advertised endpoints", () => {
  test("an agent on a specific interface advertises its own address (null: the transport's)", () => {
    expect(advertisedEndpoint("127.0.0.1", 9000)).toBeNull();
  });

  test("an agent bound to every interface advertises a dialable host, never 0.0.0.0", () => {
    for (const host of ["0.0.0.0", "::"]) {
      const ep = advertisedEndpoint(host, 9000)!;
      expect(ep).toMatch(/^tcp:\/\/[^/]+:9000$/);
      expect(ep).not.toContain("0.0.0.0");
      expect(ep).not.toContain("tcp://:::");
    }
  });
});
