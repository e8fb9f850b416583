/** The config keys of message checks, listener limits and TLS, and what converge run makes of them. */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/cli/config.ts";
import { listenerLimits, messageChecks, tlsOptions } from "../../src/cli/transport-config.ts";
import { ConfigError } from "../../src/core/errors.ts";
import { DEFAULT_LIMITS } from "../../src/transport/inbound.ts";
import { tempDir } from "../support/tmp.ts";

const dir = tempDir();
afterAll(dir.cleanup);
const FIXTURES = join(import.meta.dir, "..", "fixtures", "tls");
let n = 0;
const yaml = (body: string) => {
  const p = join(dir.path, `c${n++}.yaml`);
  writeFileSync(p, body);
  return p;
};

describe("message checks and listener limits", () => {
  test("the defaults are the safe ones the README states", () => {
    const { config } = loadConfig(undefined, {});
    expect(messageChecks(config)).toEqual({ mode: "known", replayWindowMs: 600_000, maxClockSkewMs: 300_000 });
    expect(listenerLimits(config)).toEqual(DEFAULT_LIMITS);
  });

  test("each key is read from the file or the environment, in its unit", () => {
    const { config } = loadConfig(
      yaml("verify_messages: strict\nreplay_window_sec: 0\nmax_buffered_mib: 1.5\nframe_deadline_sec: 0.5\n"),
      { CONVERGE_MAX_CONNECTIONS: "10", CONVERGE_IDLE_TIMEOUT_SEC: "2", CONVERGE_MAX_MESSAGE_ELEMENTS: "500" },
    );
    expect(messageChecks(config)).toEqual({ mode: "strict", replayWindowMs: 0, maxClockSkewMs: 300_000 });
    expect(listenerLimits(config)).toEqual({
      maxConnections: 10,
      maxBufferedBytes: 1.5 * 1024 * 1024,
      frameDeadlineMs: 500,
      idleTimeoutMs: 2000,
      maxMessageElements: 500,
    });
  });

  const refusals: [string, Record<string, string>, RegExp][] = [
    ["an unknown verify mode", { CONVERGE_VERIFY_MESSAGES: "maybe" }, /verify_messages must be known, strict or off/],
    ["a zero connection limit", { CONVERGE_MAX_CONNECTIONS: "0" }, /max_connections must be an integer of at least 1/],
    [
      "a negative replay window",
      { CONVERGE_REPLAY_WINDOW_SEC: "-1" },
      /replay_window_sec must be a number of at least 0/,
    ],
    ["a boolean that is not one", { CONVERGE_TLS_REQUIRE_CLIENT_CERT: "sure" }, /must be true or false/],
  ];
  for (const [what, env, why] of refusals) {
    test(`refuses ${what} with one clear error`, () => {
      expect(() => loadConfig(undefined, { CONVERGE_TRANSPORT: "tcp", ...env })).toThrow(ConfigError);
      expect(() => loadConfig(undefined, { CONVERGE_TRANSPORT: "tcp", ...env })).toThrow(why);
    });
  }
});

describe("TLS keys", () => {
  test("certificate paths are relative to the config file, like agent", () => {
    const { config } = loadConfig(
      yaml(
        `transport: tcp\ntls_cert: ${FIXTURES}/server.pem\ntls_key: ${FIXTURES}/server.key\ntls_ca: ${FIXTURES}/ca.pem\ntls_require_client_cert: true\n`,
      ),
      {},
    );
    const tls = tlsOptions(config)!;
    expect(tls.cert).toContain("-----BEGIN CERTIFICATE-----");
    expect(tls.key).toContain("PRIVATE KEY-----");
    expect(tls.ca).toContain("-----BEGIN CERTIFICATE-----");
    expect(tls.requireClientCert).toBe(true);
    const relative = {
      ...config,
      configDir: FIXTURES,
      tls_cert: "server.pem",
      tls_key: "server.key",
      tls_ca: undefined,
    };
    expect(tlsOptions(relative)!.cert).toBe(tls.cert);
  });

  test("a missing or non-PEM file, and keys that do not go together, are one clear error each", () => {
    const base = { CONVERGE_TRANSPORT: "tcp" };
    const missing = loadConfig(yaml(`transport: tcp\ntls_cert: ${FIXTURES}/server.pem\ntls_key: nope.key\n`), {});
    expect(() => tlsOptions(missing.config)).toThrow(/^tls_key file .*nope\.key does not exist$/);
    const notPem = loadConfig(yaml(`transport: tcp\ntls_cert: ${FIXTURES}/README.md\ntls_key: x\n`), {});
    expect(() => tlsOptions(notPem.config)).toThrow(/tls_cert file .*README\.md is not PEM/);
    expect(() => loadConfig(undefined, { ...base, CONVERGE_TLS_CERT: "a.pem" })).toThrow(
      /TLS needs both tls_cert and tls_key/,
    );
    expect(() =>
      loadConfig(undefined, {
        ...base,
        CONVERGE_TLS_CERT: "a",
        CONVERGE_TLS_KEY: "b",
        CONVERGE_TLS_REQUIRE_CLIENT_CERT: "1",
      }),
    ).toThrow(/tls_require_client_cert needs tls_ca/);
    expect(() => loadConfig(undefined, { CONVERGE_TLS_CERT: "a", CONVERGE_TLS_KEY: "b" })).toThrow(
      /need transport tcp/,
    );
  });

  test("a CA bundle alone verifies tls:// peers without making the listener TLS", () => {
    const { config } = loadConfig(undefined, { CONVERGE_TRANSPORT: "tcp", CONVERGE_TLS_CA: `${FIXTURES}/ca.pem` });
    expect(Object.keys(tlsOptions(config)!)).toEqual(["ca"]);
  });
});
