/**
 * The tools a model may call, as an AI SDK ToolSet: the agent's ToolRegistry tools and the tools
 * of its MCP servers, filtered by the allowlist. Every call has a timeout and stops when the task's
 * signal fires; a tool's error (or timeout) becomes the tool's result for the model, as an error.
 */
import { dynamicTool, jsonSchema, type Tool, type ToolSet } from "ai";
import type { JSONSchema7 } from "@ai-sdk/provider";
import { ConfigError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import type { ToolRegistry } from "../core/tools.ts";
import type { Logger } from "../observability/log.ts";
import type { LlmStats } from "./metrics.ts";
import { validatorFor } from "./output.ts";

export interface ToolSources {
  registry?: ToolRegistry;
  /** JSON Schemas of registry tools' arguments (a tool without one takes any object). */
  schemas?: Record<string, JSONSchema7>;
  /** MCP tools by name, with the server each came from. */
  mcp?: Map<string, { server: string; tool: Tool }>;
  /** Names the model may call; all when omitted. */
  allowlist?: readonly string[];
  timeoutMs: number;
  stats: LlmStats;
  log: Logger;
}

/** A registry tool's result larger than this (as JSON) is cut before it reaches the model. */
const MAX_RESULT_CHARS = 100_000;

export function buildToolSet(src: ToolSources): ToolSet {
  const allowed = (name: string) => !src.allowlist || src.allowlist.includes(name);
  const tools: ToolSet = {};
  for (const name of src.registry?.list() ?? []) {
    if (!allowed(name)) continue;
    const entry = src.registry!.get(name)!;
    const schema = src.schemas?.[name];
    const validate = schema ? validatorFor(schema) : undefined;
    tools[name] = dynamicTool({
      description: entry.description || `the ${name} tool`,
      inputSchema: jsonSchema(schema ?? { type: "object", additionalProperties: true }, {
        validate: (value) =>
          !validate || validate(value)
            ? { success: true, value }
            : { success: false, error: new Error(`arguments do not match: ${validate.errors?.[0]?.message}`) },
      }),
      execute: (input, { abortSignal }) =>
        bounded(name, src, abortSignal, async (signal) =>
          jsonResult(await entry.fn((input ?? {}) as Record<string, unknown>, signal)),
        ),
    });
  }
  for (const [name, { server, tool }] of src.mcp ?? []) {
    if (!allowed(name)) continue;
    if (tools[name])
      throw new ConfigError(
        `the tool "${printable(name)}" is both a registry tool and a tool of MCP server "${server}"`,
      );
    const execute = tool.execute!;
    tools[name] = {
      ...tool,
      execute: (input, options) =>
        bounded(name, src, options.abortSignal, async (signal) => {
          const out = (await execute(input, { ...options, abortSignal: signal })) as McpResult;
          // An MCP error result goes back to the model as the tool's error, as any other tool's would.
          if (out?.isError) throw new Error(mcpText(out) || `the tool ${name} failed`);
          return out;
        }),
    } as Tool;
  }
  for (const name of src.allowlist ?? [])
    if (!tools[name])
      src.log.warn("llm.tools names a tool that no registry or MCP server provides", { tool: printable(name) });
  return tools;
}

/** Runs one tool call with the timeout, stopping (even a tool that ignores its signal) when the caller aborts. */
async function bounded<T>(
  name: string,
  src: ToolSources,
  caller: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<T> | T,
): Promise<T> {
  const timeout = AbortSignal.timeout(src.timeoutMs);
  const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const out = await Promise.race([Promise.resolve().then(() => run(signal)), aborted]);
    src.stats.tool(name, true);
    return out;
  } catch (err) {
    src.stats.tool(name, false);
    if (caller?.aborted) throw caller.reason ?? err;
    if (timeout.aborted) throw new Error(`tool "${name}" did not finish within ${src.timeoutMs / 1000} s`);
    src.log.debug("tool call failed; the model gets the error", {
      tool: name,
      err: printable(String((err as Error)?.message ?? err)),
    });
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort!);
  }
}

/** A tool's return value as JSON the model can read (undefined → null), cut when very large. */
function jsonResult(v: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(v ?? null);
  } catch (err) {
    throw new Error(`the tool returned a value that is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) return null;
  if (text.length <= MAX_RESULT_CHARS) return JSON.parse(text);
  return { truncated: true, length: text.length, start: text.slice(0, MAX_RESULT_CHARS) };
}

type McpResult = { isError?: boolean; content?: { type: string; text?: string }[] } | undefined;

function mcpText(r: McpResult): string {
  return (r?.content ?? [])
    .map((c) => (c.type === "text" ? (c.text ?? "") : `[${c.type}]`))
    .join("\n")
    .slice(0, 10_000);
}
