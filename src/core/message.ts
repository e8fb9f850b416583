/**
 * A signed message, and its wire form (the msgpack map of the Python original).
 *
 * Signed bytes: msgpack map `id, sender, recipient, topics (topic strings), payload, task_id,
 * timestamp`. Wire map: the same keys with topics as maps, plus `signature` (bin).
 * A decoded message keeps the payload's original bytes, so a message from another implementation
 * verifies even where a JS object cannot reproduce its key order (e.g. integer-like keys).
 */
import { randomUUID } from "node:crypto";
import { aesGcmDecrypt, aesGcmEncrypt } from "./crypto.ts";
import { BytesCache } from "./bytes-cache.ts";
import { MsgpackReader, type MsgpackWriter, describe, encodeWith, valueEnd, type Packable } from "./codec.ts";
import { DecodeError } from "./errors.ts";
import { Identity } from "./identity.ts";
import { pyJsonDumps } from "./pystr.ts";
import { hasUnsafe, quoted } from "./text.ts";
import { topicToString, type Topic } from "./topic.ts";

export type Payload = Readonly<Record<string, unknown>>;

export interface MessageInit {
  id?: string;
  sender?: string;
  recipient?: string | null;
  topics?: readonly Topic[];
  payload?: Payload;
  taskId?: string | null;
  timestamp?: number;
  signature?: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * Signed and wire bytes up to this size are kept with the message (sending one message to several
 * peers, or verifying it twice, encodes it once). Bigger ones are rebuilt when asked rather than
 * held beside the payload bytes, which they contain.
 */
const MEMO_MAX = 64 * 1024;

/** Default decode budget of one message: array elements and map entries, payload and topics together. */
export const MAX_MESSAGE_ELEMENTS = 100_000;

/** Longest id, recipient or task id accepted from the wire (a uuid has 36 characters). */
export const MAX_WIRE_ID = 256;

/**
 * A complete, well-formed wire map whose fields break the rules for ids (wire-rules below): the
 * message is refused, but the stream is intact, so the connection it came on can stay open.
 */
export class InvalidMessageError extends DecodeError {}

/** The stream frame's length prefix: 4 bytes, big-endian (transport/framing.ts). */
const FRAME_HEADER = 4;

/**
 * Passed by decode, sign and with only: `topics` and `payload` in the init are already frozen
 * (decoded here, or another message's), so the new message keeps them instead of copying again.
 */
const OWNED: unique symbol = Symbol("owned");

export class Message {
  readonly id: string;
  readonly sender: string;
  readonly recipient: string | null;
  readonly topics: readonly Topic[];
  readonly payload: Payload;
  readonly taskId: string | null;
  /** Integer milliseconds since the epoch. */
  readonly timestamp: number;
  /** 64 bytes when signed, empty when not. */
  readonly signature: Uint8Array;
  // Encodings, computed on demand and kept: the message is immutable, so they never go stale.
  #payloadBytes: Uint8Array | undefined;
  #signedBytes: Uint8Array | undefined;
  /** The wire map behind its 4-byte big-endian length (the stream frame). */
  #framed: Uint8Array | undefined;
  #wire: Uint8Array | undefined;

  constructor(init: MessageInit = {}, payloadBytes?: Uint8Array, owned?: typeof OWNED) {
    this.id = init.id ?? randomUUID();
    this.sender = init.sender ?? "";
    this.recipient = init.recipient ?? null;
    if (owned === OWNED) {
      this.topics = init.topics!;
      this.payload = init.payload!;
    } else {
      this.topics = frozenTopics(init.topics);
      this.payload = Object.freeze({ ...(init.payload ?? {}) });
    }
    this.taskId = init.taskId ?? null;
    this.timestamp = init.timestamp ?? Date.now();
    if (!Number.isSafeInteger(this.timestamp))
      throw new TypeError(`timestamp must be integer milliseconds, got ${this.timestamp}`);
    this.signature = init.signature ?? EMPTY;
    this.#payloadBytes = payloadBytes;
    Object.freeze(this);
  }

  /** A copy with some fields replaced; the signature is dropped unless given. */
  with(changes: MessageInit): Message {
    const keepsPayload = !("payload" in changes);
    const init = { ...this.fields(), signature: EMPTY, ...changes };
    if (keepsPayload && !("topics" in changes)) return new Message(init, this.#payloadBytes, OWNED);
    return new Message(init, keepsPayload ? this.#payloadBytes : undefined);
  }

  private fields(): MessageInit {
    return {
      id: this.id,
      sender: this.sender,
      recipient: this.recipient,
      topics: this.topics,
      payload: this.payload,
      taskId: this.taskId,
      timestamp: this.timestamp,
      signature: this.signature,
    };
  }

  get isSigned(): boolean {
    return this.signature.length > 0;
  }

  /** The payload as canonical msgpack (the original bytes for a decoded message). Shared: do not modify. */
  payloadBytes(): Uint8Array {
    this.#payloadBytes ??= encodeWith((w) => w.value(this.payload as Packable));
    return this.#payloadBytes;
  }

  /** The exact bytes that are signed. Shared: do not modify. */
  signedBytes(): Uint8Array {
    if (this.#signedBytes) return this.#signedBytes;
    const payload = this.payloadBytes(); // before encodeWith: it uses the same scratch writer
    const bytes = encodeWith((w) => {
      w.mapHeader(7);
      this.writeCommon(w, payload, true);
    });
    if (bytes.length <= MEMO_MAX) this.#signedBytes = bytes;
    return bytes;
  }

  private writeCommon(w: MsgpackWriter, payload: Uint8Array, topicsAsStrings: boolean): void {
    w.str("id");
    w.str(this.id);
    w.str("sender");
    w.str(this.sender);
    w.str("recipient");
    this.recipient === null ? w.nil() : w.str(this.recipient);
    w.str("topics");
    w.arrayHeader(this.topics.length);
    for (const t of this.topics) {
      if (topicsAsStrings) {
        w.str(topicToString(t));
        continue;
      }
      w.mapHeader(3);
      w.str("namespace");
      w.str(t.namespace);
      w.str("attributes");
      w.value(t.attributes as Packable);
      w.str("version");
      w.str(t.version);
    }
    w.str("payload");
    w.raw(payload);
    w.str("task_id");
    this.taskId === null ? w.nil() : w.str(this.taskId);
    w.str("timestamp");
    w.int(this.timestamp);
  }

  /** A signed copy: `sender` becomes the identity's fingerprint. */
  sign(identity: Identity): Message {
    const fingerprint = identity.fingerprint;
    const unsigned =
      this.sender === fingerprint && !this.isSigned ? this : this.#copy({ sender: fingerprint, signature: EMPTY });
    return unsigned.#copy({ signature: identity.sign(unsigned.signedBytes()) });
  }

  /**
   * A copy with fields other than topics and payload replaced; shares this one's frozen topics,
   * payload and payload bytes.
   */
  #copy(changes: Omit<MessageInit, "topics" | "payload">): Message {
    return new Message({ ...this.fields(), ...changes }, this.#payloadBytes, OWNED);
  }

  /** True when signed and the signature verifies against this public key (raw bytes or an Identity). */
  verify(key: Identity | Uint8Array): boolean {
    if (!this.isSigned) return false;
    const identity = key instanceof Uint8Array ? identityFromPublicKey(key) : key;
    return identity.verify(this.signedBytes(), this.signature);
  }

  /** The wire map (no length prefix). Computed once per message (below MEMO_MAX); shared: do not modify. */
  encode(): Uint8Array {
    if (this.#wire) return this.#wire;
    // A framed encoding already made holds it. (Not the other way round: a subarray costs JSC an
    // ArrayBuffer object for the whole frame, as much as encoding again, so the send path never asks.)
    if (this.#framed) return (this.#wire = this.#framed.subarray(FRAME_HEADER));
    const payload = this.payloadBytes(); // before encodeWith: it uses the same scratch writer
    const wire = encodeWith((w) => this.writeWire(w, payload));
    if (wire.length <= MEMO_MAX) this.#wire = wire;
    return wire;
  }

  /**
   * The wire map preceded by its length as 4 big-endian bytes: the frame of the stream transports,
   * encoded in place so that framing a message copies nothing. Computed once per message (below
   * MEMO_MAX); shared: do not modify.
   */
  encodeFramed(): Uint8Array {
    if (this.#framed) return this.#framed;
    const payload = this.payloadBytes(); // before encodeWith: it uses the same scratch writer
    const framed = encodeWith((w) => {
      w.reserve(FRAME_HEADER);
      this.writeWire(w, payload);
    });
    const n = framed.length - FRAME_HEADER;
    framed[0] = n >>> 24;
    framed[1] = (n >>> 16) & 0xff;
    framed[2] = (n >>> 8) & 0xff;
    framed[3] = n & 0xff;
    if (n <= MEMO_MAX) this.#framed = framed;
    return framed;
  }

  private writeWire(w: MsgpackWriter, payload: Uint8Array): void {
    w.mapHeader(8);
    this.writeCommon(w, payload, false);
    w.str("signature");
    w.bin(this.signature);
  }

  /**
   * Reads one wire map; throws DecodeError naming the problem, never returns a partial message.
   * `maxElements` bounds the work (see MsgpackReader). The transports also hold what they decode
   * to the wire rules for ids (checkWireIds).
   */
  static decode(bytes: Uint8Array, start = 0, end = bytes.length, maxElements = MAX_MESSAGE_ELEMENTS): Message {
    const r = new MsgpackReader(bytes, start, end, maxElements);
    const n = r.mapLength("a message");
    const init: MessageInit = {};
    let payloadBytes: Uint8Array | undefined;
    let seen = 0; // the bits of the fields read so far
    let unknown: Set<string> | undefined;
    for (let i = 0; i < n; i++) {
      // Our peers and the Python original write the fields in WIRE_FIELDS order: try the
      // expected key's bytes first, and read the key as a string only when they differ.
      const expected = WIRE_FIELDS[i];
      const field =
        expected && r.takeIfEqual(expected.encoded) ? expected : fieldNamed(r.string("a message field name"));
      if (typeof field === "string") {
        unknown ??= new Set();
        if (unknown.has(field)) throw new DecodeError(`message field ${quoted(field, 100)} appears twice`);
        unknown.add(field);
        r.value(); // unknown fields from newer peers are ignored
        continue;
      }
      if (seen & field.bit) throw new DecodeError(`message field "${field.name}" appears twice`);
      seen |= field.bit;
      switch (field.name) {
        case "id":
          init.id = r.string("message id");
          break;
        case "sender":
          init.sender = r.string("message sender");
          break;
        case "recipient":
          init.recipient = nullableString(r.value(), "message recipient");
          break;
        case "task_id":
          init.taskId = nullableString(r.value(), "message task_id");
          break;
        case "timestamp":
          init.timestamp = timestampOf(r.value());
          break;
        case "topics":
          init.topics = readTopics(r);
          break;
        case "signature": {
          const sig = r.value();
          if (!(sig instanceof Uint8Array))
            throw new DecodeError(`message signature must be bin data, found ${describe(sig)}`);
          init.signature = sig;
          break;
        }
        case "payload": {
          const from = r.pos;
          const p = r.value();
          if (typeof p !== "object" || p === null || Array.isArray(p) || p instanceof Uint8Array)
            throw new DecodeError(`message payload must be a map, found ${describe(p)}`);
          init.payload = Object.freeze(p) as Payload;
          payloadBytes = bytes.slice(from, r.pos);
          break;
        }
      }
    }
    if (!r.done) throw new DecodeError(`${end - r.pos} trailing bytes after the message`);
    if ((seen & REQUIRED) !== REQUIRED) {
      const missing = WIRE_FIELDS.find((f) => f.required && !(seen & f.bit))!;
      throw new DecodeError(`message is missing the "${missing.name}" field`);
    }
    return new Message(init, payloadBytes, OWNED);
  }

  /**
   * A copy whose payload is `{ _encrypted: base64(nonce ‖ ciphertext ‖ tag) }` (AES-256-GCM over the
   * payload's JSON).
   */
  encryptPayload(key: Uint8Array): Message {
    const plaintext = new TextEncoder().encode(pyJsonDumps(this.payload));
    return this.with({ payload: { _encrypted: Buffer.from(aesGcmEncrypt(key, plaintext)).toString("base64") } });
  }

  /** The decrypted payload; throws when the payload is not encrypted or the key is wrong. */
  decryptPayload(key: Uint8Array): Payload {
    const sealed = this.payload._encrypted;
    if (typeof sealed !== "string") throw new DecodeError("payload is not encrypted (no _encrypted field)");
    let plain: Uint8Array;
    try {
      plain = aesGcmDecrypt(key, new Uint8Array(Buffer.from(sealed, "base64")));
    } catch (err) {
      throw new DecodeError(`cannot decrypt payload: wrong key or altered data (${(err as Error).message})`);
    }
    return JSON.parse(new TextDecoder().decode(plain)) as Payload;
  }

  /** A plain JSON-friendly view (signature as hex), for logs and replay files. */
  toJSON(): Record<string, unknown> {
    return { ...this.fields(), signature: Buffer.from(this.signature).toString("hex") };
  }
}

// Verify-only identities are cached per public key: building a KeyObject costs more than verifying.
const verifiers = new Map<string, Identity>();
function identityFromPublicKey(key: Uint8Array): Identity {
  const hex = Buffer.from(key).toString("hex");
  let id = verifiers.get(hex);
  if (!id) {
    id = Identity.fromPublicKey(key);
    if (verifiers.size > 10_000) verifiers.clear();
    verifiers.set(hex, id);
  }
  return id;
}

/**
 * The wire rules for ids. The Python original accepts any string; ours refuse what no honest peer
 * sends and what would reach logs and listings: an empty id, a sender that is not a fingerprint
 * (64 lowercase hex digits; an unsigned message may leave it empty, as the Python original's
 * unsigned messages do), and control characters or over-long values in id, recipient or task id.
 * Throws InvalidMessageError, saying which rule, when a message from the wire breaks one.
 */
export function checkWireIds(m: Message): void {
  const id = m.id;
  if (id === "") throw new InvalidMessageError("message id is empty");
  checkId(id, id, "");
  const sender = m.sender;
  if (!isAgentId(sender) && !(sender === "" && !m.isSigned)) {
    throw new InvalidMessageError(
      sender === ""
        ? `message ${quoted(id, 64)} is signed but names no sender`
        : `message ${quoted(id, 64)} has sender ${quoted(sender, 80)}, ` +
            "which is not an agent id (64 lowercase hex digits)",
    );
  }
  if (m.recipient !== null && !validSenders.has(m.recipient)) checkId(m.recipient, id, "recipient");
  if (m.taskId !== null) checkId(m.taskId, id, "task_id");
}

// Unanchored searches for one bad character: JSC runs these much faster than a loop over charCodeAt
// or an anchored pattern, and they run for every message that arrives.
const NOT_HEX = /[^0-9a-f]/;

/** Senders seen valid recently: a lookup costs less than scanning 64 characters again. Bounded. */
const validSenders = new Set<string>();

/** True when `s` is an agent id: 64 lowercase hex digits (a key's fingerprint). */
export function isAgentId(s: string): boolean {
  if (validSenders.has(s)) return true;
  if (s.length !== 64 || NOT_HEX.test(s)) return false;
  if (validSenders.size >= 4096) validSenders.clear();
  validSenders.add(s);
  return true;
}

/** `field` of message `id` ("" for the id itself); the name is built only for an error. */
function checkId(value: string, id: string, field: string): void {
  const what = () => (field ? `message ${quoted(id, 64)} ${field}` : "message id");
  if (value.length > MAX_WIRE_ID)
    throw new InvalidMessageError(`${what()} is ${value.length} characters long (at most ${MAX_WIRE_ID})`);
  if (hasUnsafe(value)) throw new InvalidMessageError(`${what()} ${quoted(value, 80)} contains control characters`);
}

function nullableString(v: unknown, what: string): string | null {
  if (v === null || typeof v === "string") return v;
  throw new DecodeError(`${what} must be a string or nil, found ${describe(v)}`);
}

function timestampOf(v: unknown): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  // Older peers may send float seconds or ms; keep integer ms.
  if (typeof v === "number" && Number.isFinite(v)) return Math.round(v);
  throw new DecodeError(`message timestamp must be an integer, found ${describe(v)}`);
}

/**
 * Freezing an array costs JSC more than the rest of building a message (and Object.isFrozen on
 * one is not cheap either): messages without topics share one frozen empty array, and copies
 * made by with, sign and decode pass OWNED rather than freezing again.
 */
const NO_TOPICS: readonly Topic[] = Object.freeze([]);
function frozenTopics(topics: readonly Topic[] | undefined): readonly Topic[] {
  return !topics || topics.length === 0 ? NO_TOPICS : Object.freeze([...topics]);
}

/**
 * The messages of one route carry the same topics, byte for byte: decode them once and share the
 * frozen result, unless an attribute holds an object (topic() freezes attributes only one level
 * deep, so such a value could be changed through one message and show in another).
 */
const topicsCache = new BytesCache<readonly Topic[]>(256);
function readTopics(r: MsgpackReader): readonly Topic[] {
  const from = r.pos;
  const to = valueEnd(r.buf, from, r.end);
  const hit = to > from ? topicsCache.get(r.buf, from, to) : undefined;
  if (hit) {
    r.pos = to;
    return hit;
  }
  const topics = topicsOf(r.value());
  if (topics.every((t) => Object.values(t.attributes).every((v) => v === null || typeof v !== "object")))
    topicsCache.set(r.buf, from, r.pos, topics);
  return topics;
}

/** Decoded topics, frozen as topic() would freeze them, without copying maps only this message holds. */
function topicsOf(v: unknown): readonly Topic[] {
  if (!Array.isArray(v)) throw new DecodeError(`message topics must be an array, found ${describe(v)}`);
  if (v.length === 0) return NO_TOPICS;
  for (let i = 0; i < v.length; i++) {
    const t = v[i];
    if (typeof t !== "object" || t === null || Array.isArray(t) || t instanceof Uint8Array)
      throw new DecodeError(`message topic ${i} must be a map, found ${describe(t)}`);
    const m = t as Record<string, unknown>;
    if (typeof m.namespace !== "string") throw new DecodeError(`message topic ${i} has no string namespace`);
    const attrs = m.attributes ?? {};
    if (typeof attrs !== "object" || attrs === null || Array.isArray(attrs))
      throw new DecodeError(`message topic ${i} attributes must be a map`);
    const version = m.version ?? "1.0";
    if (typeof version !== "string") throw new DecodeError(`message topic ${i} version must be a string`);
    // bin data passes the check above; topic() has always turned it into an index-keyed map.
    const attributes = Object.freeze(attrs instanceof Uint8Array ? { ...attrs } : attrs) as Topic["attributes"];
    v[i] = Object.freeze({ namespace: m.namespace, attributes, version });
  }
  return Object.freeze(v);
}

/** The wire map's fields in the order we write them, with each key's msgpack encoding. */
const WIRE_FIELDS = ["id", "sender", "recipient", "topics", "payload", "task_id", "timestamp", "signature"].map(
  (name, i) => ({
    name,
    bit: 1 << i,
    required: name !== "signature",
    encoded: encodeWith((w) => w.str(name)),
  }),
);
type WireField = (typeof WIRE_FIELDS)[number];
const REQUIRED = WIRE_FIELDS.reduce((bits, f) => (f.required ? bits | f.bit : bits), 0);
const BY_NAME = new Map(WIRE_FIELDS.map((f) => [f.name, f]));

/** The field of that name, or the name itself for a field we do not know. */
function fieldNamed(name: string): WireField | string {
  return BY_NAME.get(name) ?? name;
}
