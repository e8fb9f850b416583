/**
 * The leases one agent holds, by task id: those its worker runs and those its decisions claimed.
 * One registry, so that a decision can report, fail or delegate a task however it was claimed.
 */
import type { Lease } from "../coordination/task-manager.ts";

export class LeaseRegistry {
  readonly #byTask = new Map<string, Lease>();

  set(lease: Lease): void {
    this.#byTask.set(lease.taskId, lease);
  }

  get(taskId: string): Lease | undefined {
    return this.#byTask.get(taskId);
  }

  has(taskId: string): boolean {
    return this.#byTask.has(taskId);
  }

  delete(taskId: string): boolean {
    return this.#byTask.delete(taskId);
  }

  get size(): number {
    return this.#byTask.size;
  }
}
