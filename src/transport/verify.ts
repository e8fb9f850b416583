/** Checks a received message against its sender's registered key. */
import type { Message } from "../core/message.ts";
import type { KeyLookup } from "./transport.ts";

/** Null when the message is signed by its sender's registered key; otherwise why it is not. */
export async function unverifiedReason(message: Message, keys: KeyLookup): Promise<string | null> {
  if (!message.isSigned) return "it is unsigned";
  if (message.sender === "") return "it names no sender";
  const key = await keys.get(message.sender);
  if (key === undefined) return `its sender ${message.sender.slice(0, 12)} is not registered`;
  if (!message.verify(key))
    return `its signature does not verify against the registered key of ${message.sender.slice(0, 12)}`;
  return null;
}
