/**
 * The MCP stdio transport (newline-delimited JSON-RPC over a child's stdin and stdout) on
 * Bun.spawn. The AI SDK ships one, but it neither bounds a line nor waits for the child to go: this
 * one cuts off a server whose line passes 4 MiB, writes the server's stderr into our log one escaped
 * line at a time, and stops the child the way the MCP spec says (close its stdin, wait, SIGTERM,
 * wait, SIGKILL) and resolves only once it has exited, so no server outlives its agents.
 */
import type { Subprocess } from "bun";
import type { JSONRPCMessage, MCPTransport } from "@ai-sdk/mcp";
import { printable } from "../core/text.ts";
import type { Logger } from "../observability/log.ts";

const MAX_LINE = 4 * 1024 * 1024;
const EXIT_WAIT_MS = 2000;
/** What a server inherits from converge's environment (besides what the config sets or passes). */
const INHERITED = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "TMPDIR"];

export interface StdioServer {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  passEnv: string[];
  cwd?: string;
}

export class StdioTransport implements MCPTransport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  #proc: Subprocess<"pipe", "pipe", "pipe"> | undefined;
  #spawned: Subprocess<"pipe", "pipe", "pipe"> | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    readonly server: StdioServer,
    private readonly validate: (message: unknown) => JSONRPCMessage,
    private readonly log: Logger,
    private readonly env: Record<string, string | undefined> = process.env,
  ) {}

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** The child's exit code if it has exited (or does within `ms`), else undefined. */
  async exitCode(ms = 200): Promise<number | undefined> {
    const proc = this.#spawned;
    if (!proc) return undefined;
    const code = await Promise.race([proc.exited, Bun.sleep(ms).then(() => undefined)]);
    return code ?? undefined;
  }

  async start(): Promise<void> {
    const env: Record<string, string> = {};
    for (const k of [...INHERITED, ...this.server.passEnv]) if (this.env[k] !== undefined) env[k] = this.env[k]!;
    Object.assign(env, this.server.env);
    const proc = Bun.spawn([this.server.command, ...this.server.args], {
      cwd: this.server.cwd,
      env,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.#proc = this.#spawned = proc;
    void this.#read(proc.stdout, (line) => this.#receive(line), "stdout");
    void this.#read(
      proc.stderr,
      (line) => this.log.info("mcp server stderr", { line: printable(line, 500) }),
      "stderr",
    );
    void proc.exited.then((code) => {
      if (!this.#closing) this.log.warn("mcp server exited", { code });
      this.#proc = undefined;
      this.onclose?.();
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const proc = this.#proc;
    if (!proc || this.#closing) throw new Error(`mcp server ${this.server.name} is not running`);
    proc.stdin.write(`${JSON.stringify(message)}\n`);
    await proc.stdin.flush();
  }

  /** Closes stdin, waits, then SIGTERM, waits, then SIGKILL; resolves once the child has exited. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const proc = this.#proc;
      if (!proc) return;
      try {
        await proc.stdin.end();
      } catch {}
      for (const signal of [undefined, "SIGTERM", "SIGKILL"] as const) {
        if (signal) proc.kill(signal);
        const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(EXIT_WAIT_MS).then(() => false)]);
        if (exited) return;
      }
      await proc.exited;
    })();
    return this.#closing;
  }

  #receive(line: string): void {
    if (line.trim() === "") return;
    let message: JSONRPCMessage;
    try {
      message = this.validate(JSON.parse(line));
    } catch {
      this.onerror?.(
        new Error(`mcp server ${this.server.name} sent a line that is not JSON-RPC: ${printable(line, 120)}`),
      );
      return;
    }
    this.onmessage?.(message);
  }

  async #read(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void, what: string): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of stream) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl = buffer.indexOf("\n");
        while (nl >= 0) {
          onLine(buffer.slice(0, nl).replace(/\r$/, ""));
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf("\n");
        }
        if (buffer.length > MAX_LINE) {
          this.onerror?.(new Error(`mcp server ${this.server.name} wrote a line over 4 MiB on ${what}; stopping it`));
          void this.close();
          return;
        }
      }
      if (buffer) onLine(buffer);
    } catch (err) {
      if (!this.#closing) this.onerror?.(err as Error);
    }
  }
}
