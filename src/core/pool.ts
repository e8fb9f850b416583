/** A pool as persisted under `pool:<id>`. Admission and governance are plain data. */
import type { Topic } from "./topic.ts";

export type AdmissionSpec =
  | { type: "open" }
  | { type: "allowlist"; allow: string[] }
  | { type: "token"; token: string };

export type GovernanceModel = "democratic" | "dictatorial" | "veto";
export interface GovernanceSpec {
  model: GovernanceModel;
  /** dictatorial: the deciding agent; veto: the agents who may veto. */
  leader?: string;
  vetoers?: string[];
}

export interface Pool {
  id: string;
  topics: Topic[];
  admission: AdmissionSpec;
  governance: GovernanceSpec;
  agents: string[];
  /** Agents with a trust score below this are refused; 0 admits everyone. */
  trustThreshold: number;
}

export interface PoolInit {
  id: string;
  topics?: Topic[];
  admission?: AdmissionSpec;
  governance?: GovernanceSpec;
  trustThreshold?: number;
}

export function newPool(init: PoolInit): Pool {
  return {
    id: init.id,
    topics: init.topics ?? [],
    admission: init.admission ?? { type: "open" },
    governance: init.governance ?? { model: "democratic" },
    agents: [],
    trustThreshold: init.trustThreshold ?? 0,
  };
}
