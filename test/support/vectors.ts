/** The Python original's test vectors from ../shared/vectors (read-only, beside the repo). */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const VECTORS_PATH = join(import.meta.dir, "..", "..", "..", "shared", "vectors", "wire.json");

export interface WireVectors {
  identities: { seed_hex: string; public_key_hex: string; fingerprint: string }[];
  messages: {
    name: string;
    signer: number;
    message: { id: string; sender: string; recipient: string | null; topics: { namespace: string; attributes: Record<string, unknown>; version: string }[]; payload: Record<string, unknown>; task_id: string | null; timestamp: number };
    signed_bytes_hex: string;
    signature_hex: string;
    frame_hex: string;
  }[];
  topic_strings: { topic: { namespace: string; attributes: Record<string, unknown>; version: string }; string: string }[];
  encryption: { key_hex: string; payload: Record<string, unknown>; plaintext_json: string; encrypted_payload: { _encrypted: string } };
}

export const vectors: WireVectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8"));
