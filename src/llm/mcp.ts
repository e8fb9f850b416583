/**
 * The MCP servers of the agents in this process, through the AI SDK's MCP client: stdio servers
 * are started (and HTTP ones connected) when the first agent starts, their tools listed once, and
 * everything stopped when the last agent stops; `close()` stops them whatever the count. A server
 * that fails to start fails the agents' start with its name and the reason.
 */
import type { Tool } from "ai";
import type { MCPClient } from "@ai-sdk/mcp";
import { ConfigError, ConvergeError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import type { McpServerConfig } from "./config.ts";
import { StdioTransport } from "./mcp-stdio.ts";

const log = logger("llm.mcp");
const START_TIMEOUT_MS = 30_000;

interface Connected {
  name: string;
  client: MCPClient;
  transport?: StdioTransport;
}

export class McpToolbox {
  #refs = 0;
  #started: Promise<Connected[]> | undefined;
  #tools = new Map<string, { server: string; tool: Tool }>();

  constructor(
    readonly servers: readonly McpServerConfig[],
    private readonly env: Record<string, string | undefined> = process.env,
  ) {}

  /** The servers' tools by name (empty until started). */
  get tools(): Map<string, { server: string; tool: Tool }> {
    return this.#tools;
  }

  /** The pids of the running stdio servers. */
  async pids(): Promise<number[]> {
    const started = await this.#started?.catch(() => []);
    return (started ?? []).map((c) => c.transport?.pid).filter((p): p is number => p !== undefined);
  }

  /** One more agent uses the servers; the first starts them. */
  async acquire(): Promise<void> {
    this.#refs++;
    this.#started ??= this.#start();
    try {
      await this.#started;
    } catch (err) {
      this.#refs--;
      throw err;
    }
  }

  /** One agent fewer; the last stops the servers. */
  async release(): Promise<void> {
    if (this.#refs === 0) return;
    if (--this.#refs === 0) await this.close();
  }

  /** Stops every server now (idempotent). */
  async close(): Promise<void> {
    const started = this.#started;
    this.#started = undefined;
    this.#refs = 0;
    this.#tools = new Map();
    if (!started) return;
    const list = await started.catch(() => [] as Connected[]);
    await Promise.all(list.map((c) => disconnect(c)));
  }

  async #start(): Promise<Connected[]> {
    const { createMCPClient, validateJSONRPCMessage } = await import("@ai-sdk/mcp");
    const results = await Promise.allSettled(
      this.servers.map(async (s): Promise<Connected> => {
        let transport: StdioTransport | undefined;
        try {
          let config: Parameters<typeof createMCPClient>[0]["transport"];
          if ("command" in s) {
            transport = new StdioTransport(
              { name: s.name, command: s.command, args: s.args, env: s.env, passEnv: s.pass_env, cwd: s.cwd },
              validateJSONRPCMessage,
              log.child({ server: s.name }),
              this.env,
            );
            config = transport;
          } else {
            const token = s.bearer_token_env ? this.env[s.bearer_token_env] : undefined;
            if (s.bearer_token_env && !token)
              throw new ConfigError(
                `environment variable ${s.bearer_token_env} is not set (llm.mcp_servers "${s.name}" bearer_token_env)`,
              );
            const headers = { ...s.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
            config = { type: "http", url: s.url, headers, redirect: "error" };
          }
          const client = await createMCPClient({
            transport: config,
            clientName: "converge",
            initializationOptions: { timeout: START_TIMEOUT_MS },
            onUncaughtError: (err) => log.warn("mcp client error", { server: s.name, err: printable(String(err)) }),
          });
          return { name: s.name, client, transport };
        } catch (err) {
          const code = await transport?.exitCode();
          await transport?.close().catch(() => {});
          if (err instanceof ConfigError) throw err;
          const why = (err as NodeJS.ErrnoException)?.code === "ENOENT" ? "command not found" : (err as Error)?.message;
          const exited = code !== undefined ? `it exited with code ${code} (${why})` : why;
          throw new ConvergeError(`MCP server "${s.name}" failed to start: ${printable(String(exited ?? err))}`);
        }
      }),
    );
    const connected = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    try {
      if (failed) throw failed.reason;
      const tools = new Map<string, { server: string; tool: Tool }>();
      for (const c of connected) {
        for (const [name, tool] of Object.entries(await c.client.tools())) {
          const other = tools.get(name);
          if (other)
            throw new ConfigError(
              `MCP servers "${other.server}" and "${c.name}" both offer a tool named "${printable(name)}"`,
            );
          tools.set(name, { server: c.name, tool: tool as Tool });
        }
      }
      this.#tools = tools;
      log.info("mcp servers started", { servers: connected.map((c) => c.name).join(","), tools: tools.size });
      return connected;
    } catch (err) {
      await Promise.all(connected.map((c) => disconnect(c)));
      this.#started = undefined;
      throw err;
    }
  }
}

async function disconnect(c: Connected): Promise<void> {
  await c.client.close().catch((err) => log.warn("closing an mcp client failed", { server: c.name, err }));
  await c.transport?.close().catch((err) => log.warn("stopping an mcp server failed", { server: c.name, err }));
}
