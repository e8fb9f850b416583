/**
 * A worker's answer when the task's `constraints.output_schema` holds a JSON Schema: the JSON is
 * found in the text (alone, in a markdown fence, or between prose), parsed, and validated. A
 * schema is compiled once and kept (a bounded cache: schemas come with tasks).
 *
 * Validation is Ajv's (draft-07 and 2019/2020 keywords, the reference implementation for
 * JavaScript); zod's JSON Schema import is experimental and misses keywords tasks may use.
 */
import Ajv, { type ValidateFunction } from "ajv";
import { printable } from "../core/text.ts";
import { LlmError } from "./errors.ts";

const ajv = new Ajv({ allErrors: false, strict: false, validateSchema: true, addUsedSchema: false });
const compiled = new Map<string, ValidateFunction>();
const CACHE_SIZE = 256;

/** The validator for a schema; an LlmError when the schema itself is not valid JSON Schema. */
export function validatorFor(schema: unknown): ValidateFunction {
  if (typeof schema !== "boolean" && (typeof schema !== "object" || schema === null || Array.isArray(schema)))
    throw new LlmError("constraints.output_schema must be a JSON Schema object");
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    try {
      v = ajv.compile(schema as object);
    } catch (err) {
      throw new LlmError(`constraints.output_schema is not a valid JSON Schema: ${printable((err as Error).message)}`);
    }
    if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, v);
  }
  return v;
}

/** The JSON value in a model's answer, or an LlmError saying why there is none. */
export function extractJson(text: string): unknown {
  const candidates: string[] = [text.trim()];
  const fence = /```[ \t]*(?:json|JSON)?[ \t]*\r?\n([\s\S]*?)```/.exec(text);
  if (fence) candidates.push(fence[1]!.trim());
  const start = text.search(/[[{]/);
  if (start >= 0) {
    const close = text[start] === "{" ? "}" : "]";
    const end = text.lastIndexOf(close);
    if (end > start) candidates.push(text.slice(start, end + 1));
  }
  let first: Error | undefined;
  for (const c of candidates) {
    try {
      return JSON.parse(c);
    } catch (err) {
      first ??= err as Error;
    }
  }
  throw new LlmError(
    `the model's answer is not JSON (constraints.output_schema asks for JSON): ` +
      `${printable(first?.message ?? "empty answer", 120)}; answer began ${JSON.stringify(printable(text, 80))}`,
  );
}

/** Parses and validates an answer against the schema; the parsed value, or an LlmError naming the first problem. */
export function parseOutput(text: string, schema: unknown): unknown {
  const validate = validatorFor(schema);
  const value = extractJson(text);
  if (!validate(value)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? `${e.instancePath} ` : "";
    throw new LlmError(
      `the model's answer does not match constraints.output_schema: ` +
        printable(`${where}${e?.message ?? "is invalid"}`, 200),
    );
  }
  return value;
}
