import { describe, expect, test } from "bun:test";
import { encode } from "../../src/core/codec.ts";
import { DecodeError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { InvalidMessageError, Message, checkWireIds } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { fromHex, vectors } from "../support/vectors.ts";

const alice = Identity.generate();
const bob = Identity.generate();
const sample = () =>
  new Message({
    recipient: bob.id,
    topics: [topic("jobs", { kind: "x" })],
    payload: { a: 1, s: "x" },
    taskId: "t1",
  }).sign(alice);

describe("Message", () => {
  test("sign sets the sender to the fingerprint and verifies with the signer's key only", () => {
    const m = sample();
    expect(m.sender).toBe(alice.fingerprint);
    expect(m.signature.length).toBe(64);
    expect(m.verify(alice.publicKey)).toBe(true);
    expect(m.verify(alice)).toBe(true);
    expect(m.verify(bob.publicKey)).toBe(false);
  });

  test("messages are immutable", () => {
    const m = sample();
    expect(() => {
      (m as { id: string }).id = "x";
    }).toThrow();
    expect(() => {
      (m.payload as Record<string, unknown>).a = 2;
    }).toThrow();
  });

  test("changing any field after signing fails verification", () => {
    const m = sample();
    const tampered: Message[] = [
      m.with({ id: crypto.randomUUID(), signature: m.signature }),
      m.with({ recipient: null, signature: m.signature }),
      m.with({ topics: [], signature: m.signature }),
      m.with({ payload: { a: 2, s: "x" }, signature: m.signature }),
      m.with({ taskId: "t2", signature: m.signature }),
      m.with({ timestamp: m.timestamp + 1, signature: m.signature }),
      m.with({ sender: bob.fingerprint, signature: m.signature }),
    ];
    for (const t of tampered) expect(t.verify(alice.publicKey)).toBe(false);
    const flipped = new Uint8Array(m.signature);
    flipped[0]! ^= 1;
    expect(m.with({ signature: flipped }).verify(alice.publicKey)).toBe(false);
  });

  test("an unsigned message fails verification", () => {
    expect(new Message({ sender: alice.fingerprint }).verify(alice.publicKey)).toBe(false);
  });

  test("a verify-only identity refuses to sign with a clear error", () => {
    const verifyOnly = Identity.fromPublicKey(alice.publicKey);
    expect(verifyOnly.canSign).toBe(false);
    expect(() => new Message().sign(verifyOnly)).toThrow(/verify-only/);
  });

  test("encode then decode gives an equal message that still verifies", () => {
    const m = sample();
    const d = Message.decode(m.encode());
    expect(d.toJSON()).toEqual(m.toJSON());
    expect(d.verify(alice.publicKey)).toBe(true);
  });

  test("a payload whose key order JS cannot keep still verifies after decoding", () => {
    // Python may send {"b": 1, "1": 2}; a JS object would reorder "1" first.
    const payload = new Uint8Array([0x82, 0xa1, 0x62, 0x01, 0xa1, 0x31, 0x02]);
    const m = new Message({ payload: { b: 1, "1": 2 } }).sign(alice);
    const wire = m.encode();
    // Splice the Python-ordered payload in place of ours and re-sign as Python would.
    const python = Buffer.from(wire)
      .toString("hex")
      .replace("82a131" + "02a16201", "82a16201a13102");
    const d = Message.decode(new Uint8Array(Buffer.from(python, "hex")));
    const resigned = d.with({}).sign(alice);
    expect(Message.decode(resigned.encode()).verify(alice.publicKey)).toBe(true);
    expect(Buffer.from(resigned.payloadBytes()).toString("hex")).toBe(Buffer.from(payload).toString("hex"));
  });

  test("decoding garbage, truncated frames, wrong types and missing fields names the problem", () => {
    const good = sample().encode();
    expect(() => Message.decode(good.subarray(0, good.length - 5))).toThrow(DecodeError);
    expect(() => Message.decode(encode([1, 2]))).toThrow(/must be a map/);
    expect(() => Message.decode(encode({ id: 5 }))).toThrow(/message id must be a string/);
    expect(() => Message.decode(encode({ id: "x", sender: "y" }))).toThrow(/missing the "recipient" field/);
    const fields = { id: "x", sender: "y", recipient: null, topics: [], payload: {}, task_id: null, timestamp: 1 };
    expect(() => Message.decode(encode({ ...fields, payload: [1] }))).toThrow(/payload must be a map/);
    expect(() => Message.decode(encode({ ...fields, timestamp: "now" }))).toThrow(/timestamp must be an integer/);
    expect(() => Message.decode(encode({ ...fields, topics: [{ attributes: {} }] }))).toThrow(/namespace/);
    expect(() => Message.decode(encode({ ...fields, signature: "abc" }))).toThrow(/signature must be bin/);
    expect(Message.decode(encode(fields)).isSigned).toBe(false);
    for (let i = 0; i < 200; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(1 + (i % 40)));
      try {
        Message.decode(junk);
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError);
      }
    }
  });

  test("encodings are kept with the message, and every copy gets its own", () => {
    const m = sample();
    const wire = m.encode();
    expect(m.encode()).toBe(wire);
    expect(m.signedBytes()).toBe(m.signedBytes());
    const changed = m.with({ taskId: "t2" }).sign(alice);
    expect(Buffer.from(changed.encode()).equals(Buffer.from(wire))).toBe(false);
    expect(Message.decode(changed.encode()).taskId).toBe("t2");
    const big = new Message({ payload: { blob: new Uint8Array(100_000).fill(1) } }).sign(alice);
    expect(Buffer.from(big.encode()).equals(Buffer.from(big.encode()))).toBe(true);
    expect(Message.decode(big.encode()).verify(alice.publicKey)).toBe(true);
  });

  test("the framed encoding is the wire map behind its 4-byte big-endian length, kept, whichever is asked first", () => {
    const prefixed = (wire: Uint8Array) =>
      Buffer.concat([
        Buffer.from([wire.length >>> 24, (wire.length >>> 16) & 0xff, (wire.length >>> 8) & 0xff, wire.length & 0xff]),
        wire,
      ]);
    const framedFirst = sample();
    const framed = framedFirst.encodeFramed();
    expect(framedFirst.encodeFramed()).toBe(framed);
    expect(framedFirst.encode()).toBe(framedFirst.encode());
    expect(Buffer.from(framed).equals(prefixed(framedFirst.encode()))).toBe(true);
    const wireFirst = framedFirst.with({});
    const wire = wireFirst.encode();
    expect(Buffer.from(wireFirst.encodeFramed()).equals(prefixed(wire))).toBe(true);
    expect(Buffer.from(wire).equals(Buffer.from(framedFirst.with({}).encode()))).toBe(true);
    const big = new Message({ payload: { blob: new Uint8Array(100_000).fill(1) } }).sign(alice);
    expect(Buffer.from(big.encodeFramed()).equals(prefixed(big.encode()))).toBe(true);
    expect(Message.decode(big.encodeFramed().subarray(4)).verify(alice.publicKey)).toBe(true);
  });

  test("decoded messages are frozen like built ones, and share nothing that can change", () => {
    const t = topic("jobs", { nested: { x: 1 } as unknown as string, port: 1 });
    const wire = new Message({ topics: [t], payload: { a: { b: 1 } } }).sign(alice).encode();
    const [a, b] = [Message.decode(wire), Message.decode(wire)];
    for (const m of [a, b]) {
      expect(Object.isFrozen(m) && Object.isFrozen(m.payload) && Object.isFrozen(m.topics)).toBe(true);
      expect(Object.isFrozen(m.topics[0]) && Object.isFrozen(m.topics[0]!.attributes)).toBe(true);
    }
    (a.topics[0]!.attributes.nested as { x: number }).x = 2;
    (a.payload.a as { b: number }).b = 2;
    expect(b.topics[0]!.attributes.nested).toEqual({ x: 1 });
    expect(b.payload.a).toEqual({ b: 1 });
    // Plain topics are shared between messages of one route: they are frozen all the way down.
    const route = new Message({ topics: [topic("transport.tcp", { host: "h", port: 1 })] }).encode();
    expect(Message.decode(route).topics).toBe(Message.decode(route).topics);
  });

  test("payload encryption round-trips and a wrong key is refused", () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const m = new Message({ payload: { secret: "s", n: 7, u: "日本" } }).encryptPayload(key);
    expect(Object.keys(m.payload)).toEqual(["_encrypted"]);
    expect(m.decryptPayload(key)).toEqual({ secret: "s", n: 7, u: "日本" });
    expect(() => m.decryptPayload(new Uint8Array(32))).toThrow(/cannot decrypt/);
  });
});

describe("the wire rules for ids", () => {
  const ok = () => new Message({ recipient: bob.fingerprint, taskId: "task-1", payload: { a: 1 } }).sign(alice);

  test("messages as our peers and the Python original send them pass", () => {
    expect(() => checkWireIds(ok())).not.toThrow();
    // The Python original's unsigned messages leave the sender empty.
    expect(() => checkWireIds(new Message({ payload: { a: 1 } }))).not.toThrow();
    for (const v of vectors.messages) expect(() => checkWireIds(Message.decode(fromHex(v.frame_hex), 4))).not.toThrow();
  });

  test("when an id, sender, recipient or task id breaks a rule, the message is refused saying which", () => {
    const cases: [Message, RegExp][] = [
      [ok().with({ id: "" }), /message id is empty/],
      [ok().with({ id: "a\nb" }), /message id "a\\nb" contains control characters/],
      [ok().with({ id: "x".repeat(300) }), /message id is 300 characters long \(at most 256\)/],
      [ok().with({ sender: "alice" }), /has sender "alice", which is not an agent id \(64 lowercase hex digits\)/],
      [ok().with({ sender: alice.fingerprint.toUpperCase() }), /not an agent id/],
      [new Message({ signature: new Uint8Array(64) }), /is signed but names no sender/],
      [ok().with({ recipient: "bob\u0007" }), /recipient "bob\\u0007" contains control characters/],
      [ok().with({ taskId: "t\u202e1" }), /task_id "t\\u202e1" contains control characters/],
    ];
    for (const [m, why] of cases) {
      expect(() => checkWireIds(m)).toThrow(InvalidMessageError);
      expect(() => checkWireIds(m)).toThrow(why);
    }
  });
});
