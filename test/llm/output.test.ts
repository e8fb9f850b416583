import { describe, expect, test } from "bun:test";
import { LlmError } from "../../src/llm/errors.ts";
import { extractJson, parseOutput } from "../../src/llm/output.ts";

const SCHEMA = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };

describe("output_schema answers", () => {
  test("JSON is found alone, in a markdown fence, or between prose", () => {
    expect(extractJson(' {"n": 1} ')).toEqual({ n: 1 });
    expect(extractJson('Sure!\n```json\n{"n": 2}\n```\nBye')).toEqual({ n: 2 });
    expect(extractJson("```\n[1, 2]\n```")).toEqual([1, 2]);
    expect(extractJson('The result is {"n": 3}.')).toEqual({ n: 3 });
  });

  test("when there is no JSON, the error says so and shows how the answer began", () => {
    expect(() => extractJson("no\u001b[31m json here")).toThrow(LlmError);
    expect(() => extractJson("no json here")).toThrow(/answer began "no json here"/);
  });

  test("a value that does not match names the first problem; one that does is returned parsed", () => {
    expect(parseOutput('{"n": 7}', SCHEMA)).toEqual({ n: 7 });
    expect(() => parseOutput('{"n": 1.5}', SCHEMA)).toThrow(
      "the model's answer does not match constraints.output_schema: /n must be integer",
    );
    expect(() => parseOutput("{}", SCHEMA)).toThrow("must have required property 'n'");
  });

  test("an invalid schema is refused before any answer is read", () => {
    expect(() => parseOutput("{}", { type: "no-such-type" })).toThrow(/not a valid JSON Schema/);
    expect(() => parseOutput("{}", "a string")).toThrow("constraints.output_schema must be a JSON Schema object");
  });

  test("two schemas with the same $id are both usable", () => {
    expect(parseOutput("1", { $id: "x", type: "integer" })).toBe(1);
    expect(parseOutput('"a"', { $id: "x", type: "string" })).toBe("a");
  });
});
