/**
 * Where a message goes on a network transport: a `transport.tcp` (or `transport.websocket` /
 * `transport.ws`) topic with host and port attributes, as the Python original routes, or else the
 * endpoint its recipient registered, found through a resolver (backed by discovery).
 */
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Topic } from "../core/topic.ts";
import type { EndpointResolver } from "./transport.ts";

export interface Endpoint {
  scheme: string;
  host: string;
  port: number;
  /** e.g. "tcp://127.0.0.1:9000" */
  address: string;
}

/** "localhost" resolves to ::1 first on some hosts; we listen and dial on IPv4 loopback explicitly. */
export function normaliseHost(host: string): string {
  return host === "localhost" ? "127.0.0.1" : host;
}

export function formatAddress(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export function endpoint(scheme: string, host: string, port: number): Endpoint {
  const h = normaliseHost(host);
  return Object.freeze({ scheme, host: h, port, address: formatAddress(scheme, h, port) });
}

function validPort(port: unknown): number | null {
  const n = typeof port === "string" && /^\d+$/.test(port) ? Number(port) : port;
  return typeof n === "number" && Number.isInteger(n) && n > 0 && n < 65536 ? n : null;
}

/** Parses "scheme://host:port" (with an optional trailing slash); throws TransportError when malformed. */
export function parseEndpoint(text: string): Endpoint {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\[[^\]]+\]|[^:/[\]]+):(\d+)\/?$/i.exec(text);
  const port = m ? validPort(m[3]) : null;
  if (!m || port === null)
    throw new TransportError(`malformed endpoint "${text}" (expected scheme://host:port, e.g. tcp://127.0.0.1:9000)`);
  return endpoint(m[1]!.toLowerCase(), m[2]!.replace(/^\[|\]$/g, ""), port);
}

// Topics are frozen and usually shared by every message to one peer: parse each once.
const routeCache = new WeakMap<Topic, Endpoint | null>();

/** The first topic in `namespaces` with a host and a valid port, as an endpoint of `scheme`. */
export function topicRoute(message: Message, namespaces: readonly string[], scheme: string): Endpoint | null {
  for (const t of message.topics) {
    if (!namespaces.includes(t.namespace)) continue;
    let ep = routeCache.get(t);
    if (ep === undefined || (ep !== null && ep.scheme !== scheme)) {
      const host = t.attributes.host;
      const port = validPort(t.attributes.port);
      ep = typeof host === "string" && host !== "" && port !== null ? endpoint(scheme, host, port) : null;
      routeCache.set(t, ep);
    }
    if (ep) return ep;
  }
  return null;
}

/**
 * The destination of a message: its transport topic first, else its recipient's endpoint through
 * `resolve`. Throws TransportError saying why there is none: a message is never dropped silently.
 */
export async function routeOf(
  message: Message,
  options: { namespaces: readonly string[]; schemes: readonly string[]; resolve?: EndpointResolver | undefined },
): Promise<Endpoint> {
  const scheme = options.schemes[0]!;
  const byTopic = topicRoute(message, options.namespaces, scheme);
  if (byTopic) return byTopic;
  const topicHint = `${options.namespaces.join(" or ")} topic with host and port`;
  if (message.recipient === null) {
    throw new TransportError(`cannot route message ${message.id}: it has no recipient and no ${topicHint}`);
  }
  if (!options.resolve) {
    throw new TransportError(
      `cannot route message ${message.id} to ${message.recipient}: it has no ${topicHint}, ` +
        "and this transport has no endpoint resolver (discovery)",
    );
  }
  let found: string | null | undefined;
  try {
    found = await options.resolve(message.recipient);
  } catch (err) {
    throw new TransportError(`cannot resolve the endpoint of ${message.recipient}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!found)
    throw new TransportError(
      `cannot route message ${message.id}: recipient ${message.recipient} has no known endpoint ` +
        "(not registered in discovery, or not listening)",
    );
  const ep = parseEndpoint(found);
  if (!options.schemes.includes(ep.scheme)) {
    throw new TransportError(
      `cannot route message ${message.id}: recipient ${message.recipient} listens on ${found}, ` +
        `which this ${scheme}:// transport cannot reach`,
    );
  }
  return ep;
}
