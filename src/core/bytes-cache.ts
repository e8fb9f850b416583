/**
 * A small cache from byte strings to the values decoded from them, for decoded things that repeat
 * from message to message (map keys, the topics of one route). A hit costs a hash and a compare
 * over the bytes, far less than decoding again. One slot per hash: a collision just replaces.
 * Only cache values that can be shared safely (strings, deeply frozen objects).
 */
export class BytesCache<T> {
  readonly #slots: ({ bytes: Uint8Array; value: T } | undefined)[];
  readonly #mask: number;

  /** `size` slots, a power of two. */
  constructor(size: number) {
    this.#slots = new Array(size);
    this.#mask = size - 1;
  }

  /** The value cached for exactly `buf[start, end)`, if any. */
  get(buf: Uint8Array, start: number, end: number): T | undefined {
    const hit = this.#slots[hash(buf, start, end) & this.#mask];
    if (!hit || hit.bytes.length !== end - start) return undefined;
    const bytes = hit.bytes;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== buf[start + i]) return undefined;
    return hit.value;
  }

  set(buf: Uint8Array, start: number, end: number, value: T): void {
    this.#slots[hash(buf, start, end) & this.#mask] = { bytes: buf.slice(start, end), value };
  }
}

function hash(buf: Uint8Array, start: number, end: number): number {
  let h = end - start;
  for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
  return h;
}
