import { describe, expect, test } from "bun:test";
import { pyJsonDumps, pyRepr } from "../../src/core/pystr.ts";
import { topic, topicToString } from "../../src/core/topic.ts";

describe("topic strings follow Python's str()", () => {
  test("attribute keys are sorted and values render as Python would", () => {
    expect(topicToString(topic("ns", { z: 1, a: "s", m: true, n: null, f: 0.5, g: 2.5e-7 }))).toBe(
      "ns[a=s,f=0.5,g=2.5e-07,m=True,n=None,z=1]v1.0",
    );
  });

  test("floats follow Python's repr, exponent form included", () => {
    expect(pyRepr(1e16 + 2)).toBe("1.0000000000000002e+16");
    expect(pyRepr(1e22)).toBe("1e+22");
    expect(pyRepr(0.0001)).toBe("0.0001");
    expect(pyRepr(0.00001)).toBe("1e-05");
    expect(pyRepr(["a", 1, { k: "it's" }])).toBe(`['a', 1, {'k': "it's"}]`);
  });

  test("json.dumps defaults: spaced separators and ASCII escapes", () => {
    expect(pyJsonDumps({ a: [1, 2.5], b: "é" })).toBe('{"a": [1, 2.5], "b": "\\u00e9"}');
  });
});
