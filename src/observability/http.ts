/**
 * Health and metrics over HTTP (Bun.serve): `/healthz` is 200 while `health()` finds nothing wrong
 * (503 with its reason otherwise); `/readyz` is 200 while `ready()` says so (once every runtime has
 * started, until a drain begins); `/metrics` is Prometheus text. What "healthy" means is the
 * caller's: the CLI passes its store's health() (store/front.ts), so this layer imports none.
 */
import { TransportError } from "../core/errors.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.ts";

export interface HealthServerOptions {
  host: string;
  /** 0 picks a free port; the returned `url` and `port` say which. */
  port: number;
  /** Resolves to null when healthy, else the reason (shown in the 503 body). Default: always healthy. */
  health?: () => Promise<string | null>;
  /** Why the process is not ready ("starting", "draining"), or null when it is. */
  ready(): string | null;
  /** Prometheus text (may wait for the store, e.g. for task counts). */
  metrics(): string | Promise<string>;
}

export interface HealthServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export function startHealthServer(options: HealthServerOptions): HealthServer {
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: options.host,
      port: options.port,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/healthz") {
          const why = options.health ? await options.health() : null;
          return why === null ? new Response("ok\n") : new Response(`unhealthy: ${why}\n`, { status: 503 });
        }
        if (path === "/readyz") {
          const why = options.ready();
          return why === null ? new Response("ready\n") : new Response(`${why}\n`, { status: 503 });
        }
        if (path === "/metrics")
          return new Response(await options.metrics(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
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
  const port = server.port ?? options.port;
  return {
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
    port,
    async stop() {
      await server.stop(true);
    },
  };
}
