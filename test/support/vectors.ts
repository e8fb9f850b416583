/**
 * The Python original's test vectors (test/fixtures/vectors: see its README for where they come
 * from), and the checks tests make against them.
 */
import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Message } from "../../src/core/message.ts";

export const VECTORS_PATH = join(import.meta.dir, "..", "fixtures", "vectors", "wire.json");

export interface WireVectors {
  identities: { seed_hex: string; public_key_hex: string; fingerprint: string }[];
  messages: {
    name: string;
    signer: number;
    message: {
      id: string;
      sender: string;
      recipient: string | null;
      topics: { namespace: string; attributes: Record<string, unknown>; version: string }[];
      payload: Record<string, unknown>;
      task_id: string | null;
      timestamp: number;
    };
    signed_bytes_hex: string;
    signature_hex: string;
    frame_hex: string;
  }[];
  topic_strings: {
    topic: { namespace: string; attributes: Record<string, unknown>; version: string };
    string: string;
  }[];
  encryption: {
    key_hex: string;
    payload: Record<string, unknown>;
    plaintext_json: string;
    encrypted_payload: { _encrypted: string };
  };
}

export const vectors: WireVectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8"));

export type WireVector = WireVectors["messages"][number];

export const fromHex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** `m` carries vector `v`'s message field by field and verifies under its signer's key (`publicKey`, by default the vector's). */
export function expectVectorMessage(
  m: Message,
  v: WireVector,
  publicKey: Uint8Array = fromHex(vectors.identities[v.signer]!.public_key_hex),
): void {
  expect(m.id).toBe(v.message.id);
  expect(m.sender).toBe(v.message.sender);
  expect(m.recipient).toBe(v.message.recipient);
  expect(m.taskId).toBe(v.message.task_id);
  expect(m.timestamp).toBe(v.message.timestamp);
  expect(m.payload).toEqual(v.message.payload);
  expect(m.topics.map((t) => ({ ...t }))).toEqual(v.message.topics.map((t) => ({ ...t })));
  expect(m.verify(publicKey)).toBe(true);
}
