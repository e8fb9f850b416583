import { describe, expect, test } from "bun:test";
import type { ArgsDef } from "citty";
import { parseConfig, readArgs, repeatable } from "../../src/cli/args.ts";
import { ConfigError } from "../../src/core/errors.ts";

const ARGS = {
  config: { type: "string", alias: "c" },
  verbose: { type: "boolean", alias: "v" },
  json: { type: "boolean" },
  format: { type: "enum", options: ["text", "json"], default: "text" },
  set: repeatable({ type: "string", alias: ["s", "override"] }),
  to: { type: "string" },
  id: { type: "positional", required: false },
} satisfies ArgsDef;

const read = (...argv: string[]) => readArgs(argv, ARGS, "converge x");
const refused = (argv: string[], message: RegExp, args: ArgsDef = ARGS) => {
  expect(() => readArgs(argv, args, "converge x")).toThrow(ConfigError);
  expect(() => readArgs(argv, args, "converge x")).toThrow(message);
};

describe("when a command's citty definitions become the strict parser", () => {
  test("each option keeps its name, a one-letter alias becomes its short form, a repeatable one a list", () => {
    const { options, longAliases } = parseConfig(ARGS);
    expect(options).toEqual({
      config: { type: "string", short: "c" },
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      format: { type: "string" },
      set: { type: "string", short: "s", multiple: true },
      override: { type: "string", multiple: true },
      to: { type: "string" },
    });
    expect([...longAliases]).toEqual([["override", "set"]]);
  });

  test("values, clusters, inline values, negations and positionals are read as typed", () => {
    expect(read("-vc", "f.yaml", "--json", "task-1")).toMatchObject({
      config: "f.yaml",
      verbose: true,
      json: true,
      id: "task-1",
      format: "text",
    });
    expect(read("--config=-odd", "--no-json").config).toBe("-odd");
    expect(read("--no-json").json).toBe(false);
    expect(read("-cfile").config).toBe("file");
    expect(read("--", "--json")).toMatchObject({ id: "--json", json: undefined });
  });

  test("a repeatable option collects every value, under its name and its aliases alike", () => {
    expect(read("--set", "a=1", "-s", "b=2", "--override", "c=3").set).toEqual(["a=1", "b=2", "c=3"]);
    expect(read().set).toBeUndefined();
  });

  test("an unknown option is refused, named as typed, even inside a cluster", () => {
    refused(["--bogus"], /^unknown option --bogus for converge x; see converge x --help$/);
    refused(["-x"], /^unknown option -x for converge x/);
    refused(["-vx"], /^unknown option -x for converge x/);
  });

  test("an option without its value, or a flag given one, is refused", () => {
    refused(["-c"], /^option -c of converge x needs a value/);
    refused(["--to", "--json"], /^option --to of converge x needs a value \(.*write --to=VALUE\)/);
    refused(["-c", "-1"], /^option -c of converge x needs a value \(.*write --config=VALUE\)/);
    refused(["--json=yes"], /^option --json of converge x takes no value/);
  });

  test("an argument the command does not take is refused, with a hint for a config file", () => {
    refused(["a", "b"], /^unexpected argument "b" for converge x; see converge x --help$/);
    refused(
      ["a", "c.yaml"],
      /unexpected argument "c\.yaml" for converge x; for a config file use converge x -c c\.yaml/,
    );
    refused(["x"], /unexpected argument "x"/, { json: { type: "boolean" } });
  });

  test("required options and arguments, and enum values, are checked", () => {
    refused([], /^converge x needs --to; see converge x --help$/, { to: { type: "string", required: true } });
    refused([], /^converge x needs its ID argument/, { id: { type: "positional", required: true } });
    refused(["--format", "xml"], /^--format must be one of text, json; got "xml"$/);
  });

  test("control characters in an argument are escaped in the error, never printed raw", () => {
    refused(["a", "b\u001b[2J\nforged"], /unexpected argument "b\\u001b\[2J\\nforged"/);
  });
});
