/**
 * FROZEN REFERENCE, not used at run time: src/core/message.ts as of commit c801235, before the codec
 * was optimised. test/core/equivalence.test.ts checks the optimised code against it byte for byte
 * and value for value. Do not edit; delete it together with that test if it ever gets in the way.
 */
/**
 * A signed message, and its wire form (the msgpack map of the Python original).
 *
 * Signed bytes: msgpack map `id, sender, recipient, topics (topic strings), payload, task_id,
 * timestamp`. Wire map: the same keys with topics as maps, plus `signature` (bin).
 * A decoded message keeps the payload's original bytes, so a message from another implementation
 * verifies even where a JS object cannot reproduce its key order (e.g. integer-like keys).
 */
import { randomUUID } from "node:crypto";
import { aesGcmDecrypt, aesGcmEncrypt } from "../../../src/core/crypto.ts";
import { MsgpackReader, MsgpackWriter, describe, type Packable } from "./codec.ts";
import { DecodeError } from "../../../src/core/errors.ts";
import { Identity } from "../../../src/core/identity.ts";
import { pyJsonDumps } from "../../../src/core/pystr.ts";
import { topic, topicToString, type Topic } from "../../../src/core/topic.ts";

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
  #payloadBytes: Uint8Array | undefined;

  constructor(init: MessageInit = {}, payloadBytes?: Uint8Array) {
    this.id = init.id ?? randomUUID();
    this.sender = init.sender ?? "";
    this.recipient = init.recipient ?? null;
    this.topics = Object.freeze([...(init.topics ?? [])]);
    this.payload = Object.freeze({ ...(init.payload ?? {}) });
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
    return new Message(
      { ...this.fields(), signature: EMPTY, ...changes },
      keepsPayload ? this.#payloadBytes : undefined,
    );
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

  /** The payload as canonical msgpack (the original bytes for a decoded message). */
  payloadBytes(): Uint8Array {
    if (!this.#payloadBytes) {
      const w = new MsgpackWriter(64);
      w.value(this.payload as Packable);
      this.#payloadBytes = w.bytes();
    }
    return this.#payloadBytes;
  }

  /** The exact bytes that are signed. */
  signedBytes(): Uint8Array {
    const w = new MsgpackWriter(256);
    w.mapHeader(7);
    this.writeCommon(w, true);
    return w.bytes();
  }

  private writeCommon(w: MsgpackWriter, topicsAsStrings: boolean): void {
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
    w.raw(this.payloadBytes());
    w.str("task_id");
    this.taskId === null ? w.nil() : w.str(this.taskId);
    w.str("timestamp");
    w.int(this.timestamp);
  }

  /** A signed copy: `sender` becomes the identity's fingerprint. */
  sign(identity: Identity): Message {
    const unsigned =
      this.sender === identity.fingerprint && !this.isSigned ? this : this.with({ sender: identity.fingerprint });
    return new Message(
      { ...unsigned.fields(), signature: identity.sign(unsigned.signedBytes()) },
      unsigned.#payloadBytes,
    );
  }

  /** True when signed and the signature verifies against this public key (raw bytes or an Identity). */
  verify(key: Identity | Uint8Array): boolean {
    if (!this.isSigned) return false;
    const identity = key instanceof Uint8Array ? identityFromPublicKey(key) : key;
    return identity.verify(this.signedBytes(), this.signature);
  }

  /** The wire map (no length prefix). */
  encode(): Uint8Array {
    const w = new MsgpackWriter(320);
    w.mapHeader(8);
    this.writeCommon(w, false);
    w.str("signature");
    w.bin(this.signature);
    return w.bytes();
  }

  /** Reads one wire map; throws DecodeError naming the problem, never returns a partial message. */
  static decode(bytes: Uint8Array, start = 0, end = bytes.length): Message {
    const r = new MsgpackReader(bytes, start, end);
    const n = r.mapLength("a message");
    const init: MessageInit = {};
    let payloadBytes: Uint8Array | undefined;
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const key = r.string("a message field name");
      if (seen.has(key)) throw new DecodeError(`message field "${key}" appears twice`);
      seen.add(key);
      switch (key) {
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
          init.topics = topicsOf(r.value());
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
          init.payload = p as Payload;
          payloadBytes = bytes.slice(from, r.pos);
          break;
        }
        default:
          r.value(); // unknown fields from newer peers are ignored
      }
    }
    if (!r.done) throw new DecodeError(`${end - r.pos} trailing bytes after the message`);
    for (const required of ["id", "sender", "recipient", "topics", "payload", "task_id", "timestamp"]) {
      if (!seen.has(required)) throw new DecodeError(`message is missing the "${required}" field`);
    }
    return new Message(init, payloadBytes);
  }

  /** A copy whose payload is `{ _encrypted: base64(nonce ‖ ciphertext ‖ tag) }` (AES-256-GCM over the payload's JSON). */
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

function topicsOf(v: unknown): Topic[] {
  if (!Array.isArray(v)) throw new DecodeError(`message topics must be an array, found ${describe(v)}`);
  return v.map((t, i) => {
    if (typeof t !== "object" || t === null || Array.isArray(t) || t instanceof Uint8Array)
      throw new DecodeError(`message topic ${i} must be a map, found ${describe(t)}`);
    const m = t as Record<string, unknown>;
    if (typeof m.namespace !== "string") throw new DecodeError(`message topic ${i} has no string namespace`);
    const attrs = m.attributes ?? {};
    if (typeof attrs !== "object" || attrs === null || Array.isArray(attrs))
      throw new DecodeError(`message topic ${i} attributes must be a map`);
    const version = m.version ?? "1.0";
    if (typeof version !== "string") throw new DecodeError(`message topic ${i} version must be a string`);
    return topic(m.namespace, attrs as Record<string, unknown>, version);
  });
}
