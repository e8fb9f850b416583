/**
 * The Redis store's native task queue (task-queue.ts): every operation is one Lua script, one
 * round trip (redis-scripts.ts holds them and the key layout). Ready tasks wait in a sorted set
 * per queue (routing key), scored by priority with submit order breaking ties, and a claim pops
 * the best head of the agent's visible queues in the same script that marks the record assigned:
 * nothing is read first, so no claim is lost to a stale candidate list. Report takes the agent's
 * next tasks in the same script. The queue registry (which routing keys exist) is cached here and
 * refreshed when a claim's reply says it has a new version.
 *
 * Stores written by converge 0.1 are adopted on open (`init`): their task records are rewritten in
 * the current layout and placed, once, by whichever process gets there first.
 */
import { randomUUID } from "node:crypto";
import { StoreError } from "../core/errors.ts";
import { FINAL_STATE_LIST, type FinalState, isFinalState, type Task, type TaskState } from "../core/task.ts";
import { logger } from "../observability/log.ts";
import { serialise } from "./json.ts";
import { type RedisConnection, type Script, script, sha1 } from "./redis-connection.ts";
import * as lua from "./redis-scripts.ts";
import {
  byFinish,
  type Claim,
  type ClaimNext,
  canonical,
  canSee,
  claimable,
  emptyCounts,
  type Expect,
  type FinishedEntry,
  isCanonical,
  passDamaged,
  type TaskQueue,
  type Transition,
  taskKey,
  taskOf,
  type Visibility,
} from "./task-queue.ts";

const log = logger("store.redis");
const S = {
  submit: script(lua.SUBMIT),
  claim: script(lua.CLAIM),
  claimNext: script(lua.CLAIM_NEXT),
  transition: script(lua.TRANSITION),
  adopt: script(lua.ADOPT),
  pending: script(lua.PENDING),
  range: script(lua.RANGE),
  remove: script(lua.REMOVE),
  finishedSince: script(lua.FINISHED_SINCE),
};
/** Tasks per SUBMIT script, so that one huge batch does not hold Redis for long. */
const SUBMIT_BATCH = 500;
/** Agent ids go into records unescaped by the scripts: nothing JSON would escape, no commas. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const SAFE_AGENT = /^[^",\\\u0000-\u001f]{1,256}$/;

type Route = { poolId: string | null; capabilities: string[] };

export class RedisTaskQueue implements TaskQueue {
  readonly #routes = new Map<string, Route>();
  #version: string | undefined;
  #loading: Promise<void> | undefined;

  constructor(
    private readonly conn: RedisConnection,
    private readonly ns: string,
  ) {}

  #run(s: Script, args: (string | number)[]): Promise<unknown> {
    return this.conn.eval(s, [], [this.ns, ...args]);
  }

  async get(id: string): Promise<Task | undefined> {
    const text = await this.conn.cmd((c) => c.get(`${this.ns}k:${taskKey(id)}`));
    return text === null ? undefined : taskOf(id, text);
  }

  async getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    const texts = await this.conn.mget(ids.map((id) => `${this.ns}k:${taskKey(id)}`));
    return texts.map((t, i) => (t === null ? undefined : taskOf(ids[i]!, t)));
  }

  async submit(tasks: readonly Task[], now: number): Promise<boolean[]> {
    const out: boolean[] = [];
    for (let i = 0; i < tasks.length; i += SUBMIT_BATCH) {
      const args: (string | number)[] = [];
      for (const t of tasks.slice(i, i + SUBMIT_BATCH)) {
        const rec = canonical(t); // SUBMIT does not parse pending records: each must be in the layout already
        // Registered queues are known here once a claim reply or a refresh said so: no HSETNX per task.
        const route = this.#routes.has(t.queue) ? "" : JSON.stringify([t.poolId, t.requiredCapabilities]);
        // An empty member: not a plain pending task (an import of held or finished records), placed by its record.
        const member = t.state === "pending" ? `${String(t.seq).padStart(16, "0")}:${t.id}` : "";
        args.push(t.id, serialise(taskKey(t.id), rec), t.queue, -t.priority, member, t.notBefore ?? "", now, route);
      }
      const reply = (await this.#run(S.submit, args)) as number[];
      out.push(...reply.map((r) => r === 1));
      for (const t of tasks.slice(i, i + SUBMIT_BATCH)) {
        if (!this.#routes.has(t.queue))
          this.#routes.set(t.queue, { poolId: t.poolId, capabilities: [...t.requiredCapabilities] });
      }
    }
    return out;
  }

  async claim(id: string, claim: Claim, token: string): Promise<{ task: Task | null; current: Task | undefined }> {
    checkAgent(claim.agentId);
    for (let attempt = 0; ; attempt++) {
      const [code, rec] = (await this.#run(S.claim, [
        id,
        claim.agentId,
        token,
        claim.now,
        ttlArg(claim.defaultTtlMs),
        ttlArg(claim.ttlMs),
      ])) as [number, string | null];
      if (code === -1 && attempt === 0) {
        await this.#adopt(id, rec!);
        continue;
      }
      const current = rec ? taskOf(id, rec) : undefined;
      return { task: code === 1 ? current! : null, current };
    }
  }

  async claimNext(claim: ClaimNext): Promise<Task[]> {
    if (claim.tokens.length === 0) return [];
    checkAgent(claim.agentId);
    await this.#loadRoutes();
    // With no queue it may see, ask whether new ones exist (claim replies say so otherwise).
    if (this.#visible(claim.visibility).length === 0) await this.#checkRoutes();
    const out: Task[] = [];
    for (let round = 0; round < 2 && out.length < claim.tokens.length; round++) {
      const queues = this.#visible(claim.visibility);
      if (queues.length === 0) break;
      const tokens = claim.tokens.slice(out.length);
      const reply = (await this.#run(S.claimNext, claimArgs(claim, tokens, queues))) as unknown[];
      const { claimed, newRoutes } = await this.#claimReply(reply);
      out.push(...claimed);
      // Only a new queue this agent may see is worth a second look.
      if (!newRoutes || this.#visible(claim.visibility).length === queues.length) break;
    }
    return out;
  }

  async transition(id: string, expect: Expect, next: Task, now: number, then?: ClaimNext): Promise<Transition> {
    if (then) checkAgent(then.agentId);
    // Sent as it is: the script answers -1 for a record not in the layout, and the retry below puts it there.
    let rec = next;
    const [kind, arg] =
      "lease" in expect
        ? ["lease", expect.lease]
        : "assignee" in expect
          ? ["assignee", expect.assignee]
          : ["record", sha1(JSON.stringify(expect.record))];
    if (kind === "assignee") checkAgent(arg);
    if (then) await this.#loadRoutes();
    for (let attempt = 0; ; attempt++) {
      const queues = then ? this.#visible(then.visibility) : [];
      const args: (string | number)[] = [id, kind, arg, serialise(taskKey(id), rec), now];
      if (then && queues.length > 0) args.push(1, ...claimArgs(then, then.tokens, queues));
      else args.push(0);
      const reply = (await this.#run(S.transition, args)) as unknown[];
      const code = reply[0] as number;
      if (code === 1) {
        if (reply.length === 1) return { ok: true, task: rec, next: [] };
        const { claimed } = await this.#claimReply(reply.slice(1));
        return { ok: true, task: rec, next: claimed };
      }
      const current = reply[1] ? taskOf(id, reply[1] as string) : undefined;
      if (code === -1 && attempt === 0) {
        if (!isCanonical(current!)) await this.#adopt(id, reply[1] as string);
        rec = canonical(rec);
        continue;
      }
      return { ok: false, current };
    }
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    await this.#loadRoutes();
    if (this.#visible(visibility).length === 0) await this.#checkRoutes();
    const queues = this.#visible(visibility);
    if (queues.length === 0 || limit <= 0) return [];
    const flat = (await this.#run(S.pending, [now, Math.min(limit, 100_000), ...queues])) as string[];
    return this.#pairs(flat).filter((t) => claimable(t, now));
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    const held = await this.#range("held", now, limit);
    return held.filter((t) => t.leaseExpiresAt !== null && t.leaseExpiresAt <= now);
  }

  async open(): Promise<Task[]> {
    await this.#refreshRoutes();
    const zrange = (key: string) => this.conn.cmd((c) => c.zrange(key, "0", "-1"));
    const queues = [...this.#routes.keys()];
    const [held, ready, delayed] = await Promise.all([
      zrange(`${this.ns}t:held`),
      Promise.all(queues.map((q) => zrange(`${this.ns}q:${q}:ready`))),
      Promise.all(queues.map((q) => zrange(`${this.ns}q:${q}:delayed`))),
    ]);
    // Ready members are "<seq>:<id>" (16 digits and a colon before the id).
    const ids = [...held, ...ready.flat().map((m) => m.slice(17)), ...delayed.flat()];
    const unique = [...new Set(ids)];
    const texts = await this.conn.mget(unique.map((id) => `${this.ns}k:${taskKey(id)}`));
    const flat = unique.flatMap((id, i) => (texts[i] === null ? [] : [id, texts[i]!]));
    return this.#pairs(flat).filter((t) => !isFinalState(t.state));
  }

  async finished(state: FinalState, before: number, limit: number): Promise<Task[]> {
    const max = Number.isFinite(before) ? `(${before}` : "+inf";
    return this.#range(`done:${state}`, max, limit);
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    const n = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : -1;
    const flat = (await this.#run(S.finishedSince, [Number.isFinite(since) ? since : "-inf", n])) as string[];
    const out: FinishedEntry[] = [];
    for (let i = 0; i < flat.length; i += 3)
      out.push({ state: flat[i] as FinalState, id: flat[i + 1]!, updatedAt: Number(flat[i + 2]) });
    // The first `limit` of each state hold the first `limit` of all.
    return out.sort(byFinish).slice(0, n < 0 ? undefined : n);
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += SUBMIT_BATCH)
      n += (await this.#run(S.remove, ids.slice(i, i + SUBMIT_BATCH))) as number;
    return n;
  }

  /** From the sizes of the sets (one pipelined round trip); only "running" is counted apart. */
  async counts(): Promise<Record<TaskState, number>> {
    await this.#refreshRoutes();
    const queues = [...this.#routes.keys()];
    const ns = this.ns;
    const replies = await this.conn.cmd((c) => {
      const p = c.pipeline();
      for (const q of queues) p.zcard(`${ns}q:${q}:ready`).zcard(`${ns}q:${q}:delayed`);
      p.zcard(`${ns}t:held`).hget(`${ns}t:counts`, "running");
      for (const s of FINAL_STATE_LIST) p.zcard(`${ns}t:done:${s}`);
      return p.exec();
    });
    const n = (i: number) => {
      const [err, v] = replies![i]!;
      if (err) throw this.conn.fail(err);
      return Number(v ?? 0);
    };
    const counts = emptyCounts();
    for (let i = 0; i < queues.length * 2; i++) counts.pending += n(i);
    const k = queues.length * 2;
    const held = n(k);
    counts.running = n(k + 1);
    counts.assigned = held - counts.running;
    counts.completed = n(k + 2);
    counts.failed = n(k + 3);
    counts.cancelled = n(k + 4);
    return counts;
  }

  /** Adopts, once, the records a store of an older layout holds (see the header). */
  async init(): Promise<void> {
    const marker = `${this.ns}t:layout`;
    if ((await this.conn.cmd((c) => c.get(marker))) === "2") return;
    if ((await this.conn.cmd((c) => c.exists(`${this.ns}t:counts`))) === 1) return; // written by this version
    const owner = randomUUID();
    const lock = `${this.ns}t:adopting`;
    if ((await this.conn.cmd((c) => c.set(lock, owner, "PX", 60_000, "NX"))) !== "OK") {
      for (let i = 0; i < 300 && (await this.conn.cmd((c) => c.exists(lock))) === 1; i++) await Bun.sleep(100);
      return;
    }
    try {
      let adopted = 0;
      let cursor = "0";
      const match = `${globEscape(`${this.ns}k:task:`)}*`;
      do {
        const [next, keys] = await this.conn.cmd((c) => c.scan(cursor, "MATCH", match, "COUNT", 1000));
        cursor = next;
        if (keys.length === 0) continue;
        const texts = await this.conn.mget(keys);
        for (const [i, text] of texts.entries()) {
          if (text === null) continue;
          const id = keys[i]!.slice(`${this.ns}k:task:`.length);
          if (await this.#adopt(id, text)) adopted++;
        }
      } while (cursor !== "0");
      await this.conn.cmd((c) => c.del(`${this.ns}i:tasks:open`));
      if (adopted > 0) {
        await this.conn.cmd((c) => c.set(marker, "2"));
        log.info("adopted tasks written by an older converge into the current layout", { count: adopted });
      }
    } finally {
      await this.conn.cmd((c) => c.del(lock)).catch(() => {});
    }
  }

  /** The tasks of a flat id, record, ... reply; a record that is damaged is passed by (passDamaged). */
  #pairs(flat: readonly string[]): Task[] {
    const out: Task[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      try {
        out.push(taskOf(flat[i]!, flat[i + 1]!));
      } catch (err) {
        if (!passDamaged(err, this.#where)) throw err;
      }
    }
    return out;
  }

  /**
   * Up to `limit` tasks of the set `set` scored up to `max`, lowest first, past damaged ones: a
   * caller that takes fewer than it asked for as the end (retention, the lease reaper) must not stop
   * at a record it cannot read, nor meet the same ones first on every pass.
   */
  async #range(set: string, max: number | string, limit: number): Promise<Task[]> {
    const out: Task[] = [];
    for (let skip = 0; out.length < limit; ) {
      const n = limit - out.length;
      const flat = (await this.#run(S.range, [set, max, Number.isFinite(n) ? Math.floor(n) : -1, skip])) as string[];
      skip += flat.length / 2;
      out.push(...this.#pairs(flat));
      if (flat.length / 2 < n) break;
    }
    return out;
  }

  get #where(): string {
    return `${this.conn.target.address} ${this.ns}`;
  }

  /** Rewrites one record in the current layout and places it (unless it changed meanwhile). */
  async #adopt(id: string, text: string): Promise<boolean> {
    let raw: Partial<Task> & { id: string };
    try {
      // A record of another layout still says its state; one that does not is damaged, never a new task.
      raw = taskOf(id, text);
    } catch (err) {
      if (passDamaged(err, this.#where)) return false; // left as it is: rewriting or deleting it is the repair
      throw err;
    }
    const t = canonical({ ...raw, id });
    const args = [
      id,
      sha1(text),
      serialise(taskKey(id), t),
      t.queue,
      t.seq,
      Date.now(),
      JSON.stringify([t.poolId, t.requiredCapabilities]),
    ];
    return ((await this.#run(S.adopt, args)) as number) === 1;
  }

  /** The tasks a claim reply holds; records found in another layout are adopted on the way. */
  async #claimReply(reply: unknown[]): Promise<{ claimed: Task[]; newRoutes: boolean }> {
    const version = String(reply[0]);
    const nRepair = Number(reply[1]);
    const repair = reply.slice(2, 2 + nRepair) as string[];
    const claimed: Task[] = [];
    for (const text of reply.slice(2 + nRepair) as string[]) {
      // The script reads only a record's hot prefix: a damaged rest shows here, after the claim.
      // Passed by, so that the call still hands out the others it claimed (its lease then runs out).
      try {
        claimed.push(JSON.parse(text) as Task);
      } catch {
        try {
          taskOf(idIn(text), text); // fails again, naming the record this time
        } catch (err) {
          if (!passDamaged(err, this.#where)) throw err;
        }
      }
    }
    for (const id of repair) {
      const text = await this.conn.cmd((c) => c.get(`${this.ns}k:${taskKey(id)}`));
      if (text) await this.#adopt(id, text);
    }
    const newRoutes = version !== this.#version;
    if (newRoutes) await this.#refreshRoutes();
    return { claimed, newRoutes };
  }

  async #loadRoutes(): Promise<void> {
    if (this.#version === undefined) await this.#refreshRoutes();
  }

  /** Reads the registry's version (one GET) and the registry when it changed. */
  async #checkRoutes(): Promise<void> {
    const version = (await this.conn.cmd((c) => c.get(`${this.ns}t:queues:v`))) ?? "0";
    if (version !== this.#version) await this.#refreshRoutes();
  }

  #refreshRoutes(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const [version, all] = await Promise.all([
          this.conn.cmd((c) => c.get(`${this.ns}t:queues:v`)),
          this.conn.cmd((c) => c.hgetall(`${this.ns}t:queues`)),
        ]);
        for (const [q, route] of Object.entries(all)) {
          if (this.#routes.has(q)) continue;
          const [poolId, capabilities] = JSON.parse(route) as [string | null, string[]];
          this.#routes.set(q, { poolId, capabilities });
        }
        this.#version = version ?? "0";
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  #visible(v: Visibility): string[] {
    const out: string[] = [];
    for (const [q, r] of this.#routes) if (canSee(v, r.poolId, r.capabilities)) out.push(q);
    return out;
  }
}

function claimArgs(c: Claim, tokens: readonly string[], queues: readonly string[]): (string | number)[] {
  return [
    c.agentId,
    c.now,
    ttlArg(c.defaultTtlMs),
    ttlArg(c.ttlMs),
    tokens.length,
    ...tokens,
    queues.length,
    ...queues,
  ];
}

function ttlArg(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "" : String(Math.round(ms));
}

function checkAgent(agentId: string): void {
  if (!SAFE_AGENT.test(agentId)) {
    throw new StoreError(
      `agent id ${JSON.stringify(agentId).slice(0, 80)} cannot claim on Redis: ` +
        "quotes, commas, backslashes and control characters are not allowed",
    );
  }
}

/** The id a claimed record carries right after its hot prefix ("?" when even that is damaged), to name it. */
function idIn(text: string): string {
  const m = /"claimTtlMs":[^,]*,"id":("(?:[^"\\]|\\.)*")/.exec(text);
  try {
    return m ? (JSON.parse(m[1]!) as string) : "?";
  } catch {
    return "?";
  }
}

/** Escapes Redis glob metacharacters so a prefix matches only itself. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
