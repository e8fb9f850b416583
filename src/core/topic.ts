/**
 * A topic is a namespace with attributes, e.g. `transport.tcp[host=127.0.0.1,port=9000]v1.0`.
 * The string form is part of the signed bytes, so it follows the Python original exactly.
 */
import { pyStr } from "./pystr.ts";

export type TopicAttributes = Readonly<Record<string, unknown>>;

export interface Topic {
  readonly namespace: string;
  readonly attributes: TopicAttributes;
  readonly version: string;
}

export function topic(namespace: string, attributes: TopicAttributes = {}, version = "1.0"): Topic {
  return Object.freeze({ namespace, attributes: Object.freeze({ ...attributes }), version });
}

/** `namespace[k1=v1,k2=v2]v<version>`, attribute keys sorted by code point as Python sorts str. */
export function topicToString(t: Topic): string {
  const keys = Object.keys(t.attributes).sort(compareCodePoints);
  const attrs = keys.map((k) => `${k}=${pyStr(t.attributes[k])}`).join(",");
  return `${t.namespace}[${attrs}]v${t.version}`;
}

export function topicsEqual(a: Topic, b: Topic): boolean {
  return topicToString(a) === topicToString(b);
}

export function compareCodePoints(a: string, b: string): number {
  // JS `<` compares UTF-16 units; Python compares code points. They differ only past U+FFFF.
  if (a === b) return 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}
