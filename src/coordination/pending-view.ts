/**
 * What `TaskManager.pendingFor` reads: this process's view of the open tasks, so that finding
 * work does not read every open record on every decide pass. (It used to: with every agent
 * looking after every submit and every completion, a run of N tasks cost O(N²) record reads —
 * 6,000 tasks took 40 s on Redis.)
 *
 * A refresh reads the open index (ids only), drops the ids that left it (final tasks), and reads
 * the records of ids it has not seen yet and, every 250 ms, of those it last saw held (they may
 * have been released, or be back from a retry). The oldest 256 records last seen pending — the
 * window agents pick among — are read again (one batch, in the background of a look or with a
 * refresh) once their last read is 2 ms old, so that claims made in other processes show here
 * soon; a record further back is trusted until this process learns better (a claim here that
 * loses marks it held, so it is read again with those). Claims stay exact whatever the view
 * says — a stale entry costs one failed claim, never a double claim; and ids that just left the view (final) are remembered for a while, so that agents still
 * holding an older list do not try them.
 *
 * A caller that finds nothing to do in the view gets a refresh that began after it asked (so the
 * submit that woke it is seen); one that finds work takes it from the view as it stands. Callers
 * share refreshes, spaced by a few ms plus 1 ms per 50 open tasks (at most 250 ms), so that
 * listing ids stays a small share of the work however large the backlog. Transitions made
 * through this process's TaskManager update the view at once, and tasks being claimed here are
 * left out, so that agents of one process do not race each other for the same task.
 */
import { FINAL_STATES, type Task } from "../core/task.ts";
import type { Store } from "../store/store.ts";

const MIN_SPACING_MS = 2;
const MAX_SPACING_MS = 250;
const OPEN_PER_MS = 50;
/** How often records last seen held (assigned, running) are read again, to notice releases and retries. */
const HELD_REREAD_MS = 250;
const GONE_GENERATION_MS = 10_000;
/** How many of the oldest pending records (the ones agents are about to try) are kept freshly read. */
const WINDOW = 256;
/** How old a read of a record in that window may be before it is read again (to notice claims made elsewhere). */
const WINDOW_REREAD_MS = 2;
/** The most tasks TaskManager.pendingFor returns (the oldest). */
export const PENDING_LIMIT = 1000;
/** How recent the last refresh must be for `taken` to trust what the view says is held or gone. */
const TRUST_MS = 1000;

export class PendingView {
  readonly #records = new Map<string, Task>();
  /** When each record in #records was last read or written here. */
  readonly #readAt = new Map<string, number>();
  #windowInflight: Promise<void> | undefined;
  /** Ids by creation order; may hold ids no longer in #records (compacted now and then). */
  #order: string[] = [];
  readonly #inOrder = new Set<string>();
  #unsorted = false;
  readonly #claiming = new Set<string>();
  #inflight: { started: number; done: Promise<void> } | undefined;
  #lastStarted = -Infinity;
  #heldReadAt = -Infinity;
  /** When the last refresh that completed began. */
  #refreshedAt = -Infinity;
  /** Ids that left the view (final) in this generation and the one before; generations last GONE_GENERATION_MS. */
  #gone = new Map<string, number>();
  #wentEarlier = new Map<string, number>();
  #generationAt = performance.now();

  constructor(
    private readonly store: Store,
    private readonly index: string,
    /** The records of `ids`, in order (undefined: gone). */
    private readonly read: (ids: readonly string[]) => Promise<(Task | undefined)[]>,
  ) {}

  /**
   * Records a task as this process just saw it (undefined: it no longer exists). `current`: it is
   * the result of a write made here just now, newer than anything read before, whatever its
   * timestamp says (an operator's cancel and retry may share a millisecond).
   */
  saw(id: string, task: Task | undefined, current = false): void {
    const known = this.#records.get(id);
    if (!task || FINAL_STATES.has(task.state)) {
      if (known) this.#forget(id, task?.updatedAt ?? known.updatedAt);
      this.#records.delete(id);
      this.#readAt.delete(id);
      return;
    }
    // A slower read of an older version, of a task still open or one that has left since.
    if (!current && known && known.updatedAt > task.updatedAt) return;
    if (!current && !known && (this.#gone.get(id) ?? this.#wentEarlier.get(id) ?? -Infinity) >= task.updatedAt) return;
    this.#records.set(id, task);
    this.#readAt.set(id, performance.now());
    if (!known) {
      // Open again (an operator retry) after it left the view.
      this.#gone.delete(id);
      this.#wentEarlier.delete(id);
    }
    if (this.#inOrder.has(id)) return;
    const last = this.#records.get(this.#order[this.#order.length - 1]!);
    if (last && last.createdAt > task.createdAt) this.#unsorted = true;
    this.#order.push(id);
    this.#inOrder.add(id);
  }

  /** The record of an open task as this process last saw it (a hint for updates), if the view holds one. */
  known(id: string): Task | undefined {
    return this.#records.get(id);
  }

  /** Open tasks in the view. */
  get size(): number {
    return this.#records.size;
  }

  /**
   * A claim for it is under way here; or, while the view is being kept up (a refresh ended within
   * the last second), it was last seen held or it left the view lately (final). Agents still
   * holding an older list skip such tasks without asking the store.
   */
  taken(id: string): boolean {
    if (this.#claiming.has(id)) return true;
    if (performance.now() - this.#refreshedAt > TRUST_MS) return false;
    if (this.#gone.has(id) || this.#wentEarlier.has(id)) return true;
    const t = this.#records.get(id);
    return t !== undefined && t.state !== "pending";
  }

  /** A claim here lost: the task is someone else's now (read again with the held ones). */
  lost(id: string): void {
    const t = this.#records.get(id);
    if (t && t.state === "pending") this.#records.set(id, { ...t, state: "assigned" });
  }

  /** Marks a claim under way here (left out of `pending`) until `done` settles. */
  claiming<T>(id: string, done: Promise<T>): Promise<T> {
    this.#claiming.add(id);
    return done.finally(() => this.#claiming.delete(id));
  }

  /**
   * Pending tasks that `accept` takes, oldest first, at most `limit`. `fresh`: as of a refresh that
   * began after this call (so the submit that woke the caller is seen); otherwise as the view
   * stands, with a refresh started in the background when the last one is older than the spacing.
   */
  async pending(fresh = true, accept: (t: Task) => boolean = () => true, limit = Infinity): Promise<Task[]> {
    if (fresh) await this.#fresh(performance.now());
    else if (!this.#inflight && performance.now() - this.#lastStarted >= this.#spacing())
      void this.#fresh(performance.now()).catch(() => {});
    if (!fresh && !this.#windowInflight) this.#rereadWindow();
    if (this.#unsorted || this.#order.length > 2 * this.#records.size + 64) this.#reorder();
    const out: Task[] = [];
    for (const id of this.#order) {
      if (out.length >= limit) break;
      const t = this.#records.get(id);
      if (t && t.state === "pending" && !this.#claiming.has(id) && accept(t)) out.push(t);
    }
    return out;
  }

  async #fresh(since: number): Promise<void> {
    for (;;) {
      if (this.#lastStarted >= since && !this.#inflight) return;
      const running = this.#inflight;
      if (running) {
        if (running.started >= since) return running.done;
        await running.done.catch(() => {});
        continue;
      }
      const wait = this.#lastStarted + this.#spacing() - performance.now();
      if (wait > 0) {
        await Bun.sleep(wait);
        if (this.#inflight) continue; // someone else started one meanwhile
      }
      const started = performance.now();
      this.#lastStarted = started;
      const done = this.#refresh().finally(() => {
        if (this.#inflight?.done === done) this.#inflight = undefined;
      });
      this.#inflight = { started, done };
      return done;
    }
  }

  #forget(id: string, updatedAt: number): void {
    if (performance.now() - this.#generationAt > GONE_GENERATION_MS) {
      this.#wentEarlier = this.#gone;
      this.#gone = new Map();
      this.#generationAt = performance.now();
    }
    this.#gone.set(id, updatedAt);
  }

  #spacing(): number {
    return Math.min(MAX_SPACING_MS, MIN_SPACING_MS + this.#records.size / OPEN_PER_MS);
  }

  async #refresh(): Promise<void> {
    const began = performance.now();
    const ids = await this.store.indexMembers(this.index);
    const present = new Set(ids);
    for (const [id, t] of this.#records) {
      if (present.has(id)) continue;
      this.#records.delete(id);
      this.#readAt.delete(id);
      this.#forget(id, t.updatedAt);
    }
    const now = performance.now();
    const rereadHeld = now - this.#heldReadAt >= HELD_REREAD_MS;
    if (rereadHeld) this.#heldReadAt = now;
    const stale = ids.filter((id) => {
      const t = this.#records.get(id);
      return !t || (rereadHeld && t.state !== "pending");
    });
    for (const id of this.#staleWindow(now)) if (this.#records.get(id)?.state === "pending") stale.push(id);
    const records = stale.length > 0 ? await this.read(stale) : [];
    // Oldest first, so that new ids append in order and the view rarely needs a full sort.
    const seen = stale
      .map((id, i) => [id, records[i]] as const)
      .sort(([, a], [, b]) => (a?.createdAt ?? 0) - (b?.createdAt ?? 0));
    for (const [id, t] of seen) this.saw(id, t);
    this.#refreshedAt = began;
  }

  /** Ids among the oldest WINDOW pending records (not being claimed here) last read more than WINDOW_REREAD_MS ago. */
  #staleWindow(now: number): string[] {
    if (this.#unsorted || this.#order.length > 2 * this.#records.size + 64) this.#reorder();
    const out: string[] = [];
    let n = 0;
    for (const id of this.#order) {
      if (n >= WINDOW) break;
      const t = this.#records.get(id);
      if (t?.state !== "pending" || this.#claiming.has(id)) continue;
      n++;
      if (now - (this.#readAt.get(id) ?? -Infinity) >= WINDOW_REREAD_MS) out.push(id);
    }
    return out;
  }

  /** Reads again, in the background, the records of the window last read a while ago: claims made elsewhere show here soon. */
  #rereadWindow(): void {
    const ids = this.#staleWindow(performance.now());
    if (ids.length === 0) return;
    const done = this.read(ids)
      .then((records) => {
        for (const [i, id] of ids.entries()) this.saw(id, records[i]);
      })
      .catch(() => {})
      .finally(() => {
        if (this.#windowInflight === done) this.#windowInflight = undefined;
      });
    this.#windowInflight = done;
  }

  /** Drops ids of tasks no longer open, and sorts by age when something arrived out of order. */
  #reorder(): void {
    this.#order = this.#order.filter((id) => this.#records.has(id));
    if (this.#unsorted) {
      this.#order.sort((a, b) => {
        const x = this.#records.get(a)!;
        const y = this.#records.get(b)!;
        return x.createdAt - y.createdAt || (a < b ? -1 : a > b ? 1 : 0);
      });
    }
    this.#inOrder.clear();
    for (const id of this.#order) this.#inOrder.add(id);
    this.#unsorted = false;
  }
}
