/**
 * Discovery: agents announce who they are, what they can do and where they listen, in the shared
 * store under `discovery:agent:<id>`, so that agents in other processes can find, reach and verify
 * them. The record is the AgentDescriptor of DESIGN.md, plain JSON:
 * `{ id, topics, capabilities, publicKey (base64), endpoint, startedAt }`.
 */
import { IdentityError, StoreError } from "../core/errors.ts";
import { Identity } from "../core/identity.ts";
import { topic, topicToString, type Topic } from "../core/topic.ts";
import { logger } from "../observability/log.ts";
import type { Store } from "../store/store.ts";
import type { EndpointResolver } from "../transport/transport.ts";
import { DiscoveryKeys, NegativeCache, type DiscoveryKeysOptions } from "./discovery-keys.ts";
import { IdentityRegistry } from "./identity-registry.ts";

export const DISCOVERY_PREFIX = "discovery:agent:";
const log = logger("network.discovery");

export interface TopicRecord {
  namespace: string;
  attributes: Record<string, unknown>;
  version: string;
}

export interface AgentDescriptor {
  id: string;
  topics: TopicRecord[];
  capabilities: string[];
  /** The raw 32-byte Ed25519 public key, base64. */
  publicKey: string;
  /** Where the agent listens, e.g. "tcp://127.0.0.1:9000"; null when it cannot be dialed. */
  endpoint: string | null;
  /** Epoch ms. */
  startedAt: number;
}

export interface DiscoveryQuery {
  /**
   * Matches agents having any of these: a namespace ("jobs") matches every topic in it; a full
   * topic string ("jobs[kind=resize]v1.0") or a Topic matches that topic exactly. Empty or absent: no filter.
   */
  topics?: readonly (string | Topic)[];
  /** Matches agents having all of these. Empty or absent: no filter. */
  capabilities?: readonly string[];
}

/** What an agent is, for discovery: its id, key, capabilities and topics. */
export interface DescribableAgent {
  readonly id: string;
  readonly identity: { readonly publicKey: Uint8Array };
  readonly capabilities: readonly string[];
  readonly topics: readonly Topic[];
}

/** The descriptor an agent registers, listening at `endpoint` (null when it cannot be dialed). */
export function descriptorFor(
  agent: DescribableAgent,
  endpoint: string | null = null,
  startedAt = Date.now(),
): AgentDescriptor {
  return {
    id: agent.id,
    topics: agent.topics.map(topicRecord),
    capabilities: [...agent.capabilities],
    publicKey: Buffer.from(agent.identity.publicKey).toString("base64"),
    endpoint,
    startedAt,
  };
}

function topicRecord(t: Topic): TopicRecord {
  return { namespace: t.namespace, attributes: { ...t.attributes }, version: t.version };
}

/** The descriptor's public key as raw bytes; throws IdentityError when it is not the id's key. */
export function descriptorKey(d: AgentDescriptor): Uint8Array {
  const key = new Uint8Array(Buffer.from(d.publicKey, "base64"));
  if (key.length !== 32)
    throw new IdentityError(`agent ${d.id}'s descriptor has a public key of ${key.length} bytes (expected 32)`);
  const fingerprint = Identity.fromPublicKey(key).fingerprint;
  if (fingerprint !== d.id)
    throw new IdentityError(`agent ${d.id}'s descriptor carries the public key of ${fingerprint}`);
  return key;
}

function isDescriptor(v: unknown): v is AgentDescriptor {
  if (typeof v !== "object" || v === null) return false;
  const d = v as Record<string, unknown>;
  return (
    typeof d.id === "string" &&
    typeof d.publicKey === "string" &&
    (d.endpoint === null || typeof d.endpoint === "string") &&
    typeof d.startedAt === "number" &&
    Array.isArray(d.capabilities) &&
    d.capabilities.every((c) => typeof c === "string") &&
    Array.isArray(d.topics) &&
    d.topics.every((t) => typeof t === "object" && t !== null && typeof (t as TopicRecord).namespace === "string")
  );
}

export class DiscoveryService {
  /** Ids found absent recently, shared by the key lookups of this service (see discovery-keys.ts). */
  readonly #absent = new NegativeCache(1000, 10_000);

  constructor(readonly store: Store) {}

  /** Registers (or replaces) an agent's descriptor; refuses one whose key is not its id's. */
  async register(descriptor: AgentDescriptor): Promise<void> {
    descriptorKey(descriptor);
    this.#absent.delete(descriptor.id);
    const d: AgentDescriptor = {
      id: descriptor.id,
      topics: descriptor.topics.map((t) => ({
        namespace: t.namespace,
        attributes: { ...(t.attributes ?? {}) },
        version: t.version ?? "1.0",
      })),
      capabilities: [...descriptor.capabilities],
      publicKey: descriptor.publicKey,
      endpoint: descriptor.endpoint ?? null,
      startedAt: descriptor.startedAt,
    };
    await this.store.put(DISCOVERY_PREFIX + d.id, d);
  }

  /** True when the agent was registered. */
  async unregister(id: string): Promise<boolean> {
    return this.store.delete(DISCOVERY_PREFIX + id);
  }

  async get(id: string): Promise<AgentDescriptor | undefined> {
    const v = await this.store.get(DISCOVERY_PREFIX + id);
    if (v === undefined) return undefined;
    if (!isDescriptor(v))
      throw new StoreError(`record ${DISCOVERY_PREFIX}${id} in ${this.store.description} is not an agent descriptor`);
    return v;
  }

  /** Every registered agent, by id; malformed records are skipped with a warning. */
  async list(): Promise<AgentDescriptor[]> {
    const keys = await this.store.list(DISCOVERY_PREFIX);
    const values = await Promise.all(keys.map((k) => this.store.get(k)));
    const out: AgentDescriptor[] = [];
    values.forEach((v, i) => {
      if (isDescriptor(v)) out.push(v);
      else if (v !== undefined)
        log.warn("skipped a malformed discovery record", { key: keys[i], store: this.store.description });
    });
    return out;
  }

  /** Agents with any of the topics and all of the capabilities asked for. */
  async query(q: DiscoveryQuery = {}): Promise<AgentDescriptor[]> {
    return (await this.list()).filter((d) => matches(d, q));
  }

  /** Registers every discovered agent's key; returns how many. Inconsistent descriptors are skipped with a warning. */
  async fillRegistry(registry: IdentityRegistry): Promise<number> {
    let n = 0;
    for (const d of await this.list()) {
      try {
        registry.register(d.id, descriptorKey(d));
        n++;
      } catch (err) {
        log.warn(`did not trust a discovery record: ${(err as Error).message}`);
      }
    }
    return n;
  }

  /**
   * Senders' keys for verifying what arrives (the runtime's message gate, receiveVerified): the
   * registry first, then discovery for senders not in it, whose keys are added to the registry, so
   * discovery is read once per new sender. Ids found absent are remembered briefly and reads are
   * rate-limited (discovery-keys.ts), so made-up sender ids cannot hammer the store.
   */
  keys(registry = new IdentityRegistry(), options: DiscoveryKeysOptions = {}): DiscoveryKeys {
    return new DiscoveryKeys((id) => this.#keyOf(id), this.#absent, options, registry);
  }

  /** The registered key of `id`; throws IdentityError when its record carries another agent's key. */
  async #keyOf(id: string): Promise<Identity | undefined> {
    const d = await this.get(id);
    if (!d) return undefined;
    if (d.id !== id) throw new IdentityError(`record ${DISCOVERY_PREFIX}${id} describes another agent (${d.id})`);
    return Identity.fromPublicKey(descriptorKey(d));
  }
}

export function matches(d: AgentDescriptor, q: DiscoveryQuery): boolean {
  if (q.capabilities && !q.capabilities.every((c) => d.capabilities.includes(c))) return false;
  if (!q.topics || q.topics.length === 0) return true;
  const strings = d.topics.map((t) => topicToString(topic(t.namespace, t.attributes, t.version)));
  return q.topics.some((want) => {
    if (typeof want !== "string") return strings.includes(topicToString(want));
    return want.includes("[") ? strings.includes(want) : d.topics.some((t) => t.namespace === want);
  });
}

/**
 * An EndpointResolver for TcpTransport / WebSocketTransport backed by discovery. Endpoints are
 * cached for `ttlMs` (default 1000; 0 disables) so that sending does not read the store per message.
 */
export function endpointResolver(discovery: DiscoveryService, options: { ttlMs?: number } = {}): EndpointResolver {
  const ttl = options.ttlMs ?? 1000;
  const cache = new Map<string, { endpoint: string; until: number }>();
  return async (id) => {
    const hit = cache.get(id);
    if (hit && hit.until > Date.now()) return hit.endpoint;
    const endpoint = (await discovery.get(id))?.endpoint ?? null;
    if (endpoint && ttl > 0) cache.set(id, { endpoint, until: Date.now() + ttl });
    else cache.delete(id);
    return endpoint;
  };
}
