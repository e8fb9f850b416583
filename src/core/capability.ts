/** A named capability an agent offers; agents advertise capability names, tasks require them. */
export interface Capability {
  name: string;
  version?: string;
  description?: string;
}

export function capability(name: string, version = "1.0", description = ""): Capability {
  return { name, version, description };
}

/** True when `have` includes every name in `required`. */
export function hasAllCapabilities(have: Iterable<string>, required: readonly string[]): boolean {
  if (required.length === 0) return true;
  const set = have instanceof Set ? (have as Set<string>) : new Set(have);
  return required.every((r) => set.has(r));
}
