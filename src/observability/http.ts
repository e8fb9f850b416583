/**
 * Health and metrics over HTTP (Bun.serve): `/healthz` is 200 only while the store answers a real
 * write and read within a second (503 with the reason otherwise); `/readyz` is 200 once every
 * runtime has started; `/metrics` is Prometheus text.
 */
import { randomUUID } from "node:crypto";
import { TransportError } from "../core/errors.ts";
import type { Store } from "../store/store.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";

export interface HealthServerOptions {
  host: string;
  port: number;
  store?: Store;
  ready(): boolean;
  metrics(): string;
}

const PROBE_TIMEOUT_MS = 1000;

/** Writes and reads back a probe record; resolves to null when healthy, else the reason. */
export async function probeStore(store: Store, key: string): Promise<string | null> {
  const value = { ts: Date.now() };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>(
    (resolve) =>
      (timer = setTimeout(
        () => resolve(`store ${store.description} did not answer within ${PROBE_TIMEOUT_MS} ms`),
        PROBE_TIMEOUT_MS,
      )),
  );
  const probe = (async () => {
    await store.put(key, value);
    const back = await store.get<{ ts: number }>(key);
    return back?.ts === value.ts ? null : `store ${store.description} did not return what was written`;
  })().catch((err) => `store ${store.description} failed: ${(err as Error).message}`);
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function startHealthServer(options: HealthServerOptions): { url: string; stop(): Promise<void> } {
  const probeKey = `health:${randomUUID()}`;
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: options.host,
      port: options.port,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/healthz") {
          const why = options.store ? await probeStore(options.store, probeKey) : null;
          return why === null ? new Response("ok\n") : new Response(`unhealthy: ${why}\n`, { status: 503 });
        }
        if (path === "/readyz")
          return options.ready() ? new Response("ready\n") : new Response("starting\n", { status: 503 });
        if (path === "/metrics")
          return new Response(options.metrics(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
        return new Response("not found: try /healthz, /readyz or /metrics\n", { status: 404 });
      },
    });
  } catch (err) {
    const inUse = (err as { code?: string }).code === "EADDRINUSE" || /in use/i.test((err as Error).message);
    throw new TransportError(
      inUse
        ? `http_port ${options.port} on ${options.host} is already in use`
        : `cannot serve health on ${options.host}:${options.port}: ${(err as Error).message}`,
    );
  }
  return {
    url: `http://${options.host}:${server.port}`,
    async stop() {
      await server.stop(true);
      await options.store?.delete(probeKey).catch(() => {});
    },
  };
}
