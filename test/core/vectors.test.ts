import { describe, expect, test } from "bun:test";
import { aesGcmEncrypt } from "../../src/core/crypto.ts";
import { pyJsonDumps } from "../../src/core/pystr.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic, topicToString } from "../../src/core/topic.ts";
import { expectVectorMessage, vectors } from "../support/vectors.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

describe("Python wire vectors", () => {
  for (const v of vectors.identities) {
    test(`identity from seed ${v.seed_hex.slice(0, 8)} has the Python public key and fingerprint`, () => {
      const id = Identity.fromSeed(bytes(v.seed_hex));
      expect(hex(id.publicKey)).toBe(v.public_key_hex);
      expect(id.fingerprint).toBe(v.fingerprint);
      expect(Identity.fromPublicKey(bytes(v.public_key_hex)).fingerprint).toBe(v.fingerprint);
    });
  }

  for (const v of vectors.topic_strings) {
    test(`topic string ${v.string}`, () => {
      expect(topicToString(topic(v.topic.namespace, v.topic.attributes, v.topic.version))).toBe(v.string);
    });
  }

  for (const v of vectors.messages) {
    const signer = Identity.fromSeed(bytes(vectors.identities[v.signer]!.seed_hex));
    const built = new Message({
      id: v.message.id,
      recipient: v.message.recipient,
      topics: v.message.topics.map((t) => topic(t.namespace, t.attributes, t.version)),
      payload: v.message.payload,
      taskId: v.message.task_id,
      timestamp: v.message.timestamp,
    }).sign(signer);

    test(`${v.name}: signed bytes, signature and frame are byte-identical`, () => {
      expect(built.sender).toBe(v.message.sender);
      expect(hex(built.signedBytes())).toBe(v.signed_bytes_hex);
      expect(hex(built.signature)).toBe(v.signature_hex);
      const frame = bytes(v.frame_hex);
      expect(new DataView(frame.buffer).getUint32(0)).toBe(frame.length - 4);
      expect(hex(built.encode())).toBe(v.frame_hex.slice(8));
    });

    test(`${v.name}: the Python frame decodes to an equal message that verifies`, () => {
      const decoded = Message.decode(bytes(v.frame_hex).subarray(4));
      expectVectorMessage(decoded, v, signer.publicKey);
      expect(hex(decoded.encode())).toBe(v.frame_hex.slice(8));
    });
  }

  test("our encryption of the payload equals Python's, given the same nonce", () => {
    const e = vectors.encryption;
    expect(pyJsonDumps(e.payload)).toBe(e.plaintext_json);
    const sealed = new Uint8Array(Buffer.from(e.encrypted_payload._encrypted, "base64"));
    const ours = aesGcmEncrypt(
      bytes(e.key_hex),
      new TextEncoder().encode(pyJsonDumps(e.payload)),
      sealed.subarray(0, 12),
    );
    expect(Buffer.from(ours).toString("base64")).toBe(e.encrypted_payload._encrypted);
  });

  test("the Python-encrypted payload decrypts to the original payload", () => {
    const e = vectors.encryption;
    const m = new Message({ payload: e.encrypted_payload });
    expect(m.decryptPayload(bytes(e.key_hex))).toEqual(e.payload);
  });
});
