/** Named tools an agent may invoke through an InvokeTool decision. */
export type ToolFn = (args: Record<string, unknown>, signal?: AbortSignal) => unknown | Promise<unknown>;

export interface ToolEntry {
  name: string;
  description: string;
  fn: ToolFn;
}

export class ToolRegistry {
  readonly #tools = new Map<string, ToolEntry>();

  register(name: string, fn: ToolFn, description = ""): void {
    if (this.#tools.has(name)) throw new Error(`tool "${name}" is already registered`);
    this.#tools.set(name, { name, description, fn });
  }

  get(name: string): ToolEntry | undefined {
    return this.#tools.get(name);
  }

  list(): string[] {
    return [...this.#tools.keys()].sort();
  }
}
