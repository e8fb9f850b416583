/**
 * Loads the user's agent module (config key `agent`). Its default export is a plain object
 * `{ capabilities?, topics?, decide?, onTask?, onMessage?, onStart?, onStop? }`, an Agent subclass,
 * or a function that receives the converge API and returns either. A module on disk cannot
 * `import "converge"` from inside the compiled binary, hence the API argument.
 */
import { existsSync } from "node:fs";
import { extname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as api from "../index.ts";
import { Agent } from "../core/agent.ts";
import { ConfigError } from "../core/errors.ts";
import type { Identity } from "../core/identity.ts";
import { ModuleAgent, checkAgentSpec } from "../runtime/module-agent.ts";

export type AgentFactory = (identity: Identity) => Agent;

export async function loadAgentModule(
  path: string,
  baseDir: string,
  extra: { capabilities?: string[]; topics?: string[] } = {},
  /** The configured model (`llm` in the config), given to a factory as `converge.llm`. */
  llm?: unknown,
): Promise<{ file: string; make: AgentFactory }> {
  const file = isAbsolute(path) ? path : resolve(baseDir, path);
  const ext = extname(file);
  if (![".ts", ".js", ".mjs"].includes(ext))
    throw new ConfigError(`agent module ${file} must be a .ts, .js or .mjs file`);
  if (!existsSync(file)) throw new ConfigError(`agent module ${file} does not exist`);
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw new ConfigError(`agent module ${file} failed to load: ${(err as Error)?.message ?? String(err)}`);
  }
  let exported = mod.default;
  if (exported === undefined)
    throw new ConfigError(`agent module ${file} has no default export; export default { onTask(task) { ... } }`);
  if (typeof exported === "function" && !isAgentClass(exported)) {
    try {
      // The whole API, drivers included: a module run by the binary cannot import converge/sqlite either.
      const drivers = await Promise.all([import("../sqlite.ts"), import("../redis.ts"), import("../stores.ts")]);
      exported = await (exported as (converge: typeof api & { llm?: unknown }) => unknown)(
        Object.assign({}, api, ...drivers, { llm }),
      );
    } catch (err) {
      throw new ConfigError(
        `agent module ${file}: its default export function threw: ${(err as Error)?.message ?? String(err)}`,
      );
    }
  }
  if (isAgentClass(exported)) {
    const Cls = exported as new (options: { identity: Identity; capabilities?: string[] }) => Agent;
    return {
      file,
      make: (identity) => {
        const a = new Cls({ identity });
        a.capabilities = [...new Set([...a.capabilities, ...(extra.capabilities ?? [])])];
        a.topics = [...a.topics, ...(extra.topics ?? []).map((t) => api.topic(t))];
        return a;
      },
    };
  }
  const spec = checkAgentSpec(exported, file);
  return { file, make: (identity) => new ModuleAgent(spec, identity, extra) };
}

function isAgentClass(v: unknown): boolean {
  return typeof v === "function" && (v === Agent || v.prototype instanceof Agent);
}
