/**
 * End to end: `converge run` with TLS (tls_cert, tls_key, tls_ca relative to the config file,
 * tls_require_client_cert), `converge send --to tls://` with --tls-ca and a client certificate, and
 * what goes wrong: a plaintext sender, an untrusted or expired certificate, a missing key file.
 * Also `converge send` against a peer that accepts and then resets the connection.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, runCli, startCli, stopAll, type RunResult, type Running } from "../support/cli.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-e2e-tls-");
const FIXTURES = join(import.meta.dir, "..", "fixtures", "tls");
const db = join(tmp.path, "tls.sqlite3");
const pem = (name: string) => join(FIXTURES, name);

let open: { run: Running; port: number };
let mutual: { run: Running; port: number };

async function tlsRun(name: string, extra: string): Promise<{ run: Running; port: number }> {
  const port = freePort();
  const cfg = join(tmp.path, `${name}.yaml`);
  // Paths relative to the config file, like `agent`.
  writeFileSync(
    cfg,
    `transport: tcp\nport: ${port}\nstore_backend: sqlite\nstore_path: ${db}\n` +
      `tls_cert: certs/server.pem\ntls_key: certs/server.key\ntls_ca: certs/ca.pem\n${extra}`,
  );
  const run = startCli(["run", "-v", "-c", cfg]);
  await run.waitFor("running, press Ctrl+C to stop");
  return { run, port };
}

beforeAll(async () => {
  const certs = join(tmp.path, "certs");
  mkdirSync(certs);
  for (const f of ["server.pem", "server.key", "ca.pem", "expired-server.pem", "expired-server.key"])
    copyFileSync(pem(f), join(certs, f));
  [open, mutual] = await Promise.all([tlsRun("open", ""), tlsRun("mutual", "tls_require_client_cert: true\n")]);
}, 30_000);

afterAll(async () => {
  try {
    for (const r of [open?.run, mutual?.run]) if (r) expect(await r.stop()).toBe(0);
  } finally {
    await stopAll();
    tmp.cleanup();
  }
});

const send = (to: string, ...more: string[]) => runCli(["send", "--to", to, "--payload", '{"over":"tls"}', ...more]);

function failsWith(r: RunResult, code: number, why: RegExp): void {
  const lines = r.stderr.split("\n").filter(Boolean);
  expect({ code: r.code, stdout: r.stdout, lines }).toEqual({ code, stdout: "", lines: [expect.stringMatching(why)] });
}

describe.concurrent("converge run with TLS", () => {
  test("agents listen on tls:// and say so in discovery; converge send --to tls:// with the CA delivers", async () => {
    expect(open.run.stdout).toMatch(new RegExp(`^agent 1/1 [0-9a-f]{64} tls://127\\.0\\.0\\.1:${open.port}$`, "m"));
    const listed = await runCli(["agents", "list", "--json", "-c", join(tmp.path, "open.yaml")]);
    const endpoints = listed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).endpoint);
    expect(endpoints).toContain(`tls://127.0.0.1:${open.port}`);
    const r = await send(`tls://127.0.0.1:${open.port}`, "--tls-ca", pem("ca.pem"));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const id = r.stdout.split("\n")[0]!;
    await open.run.waitFor(` id=${id} `, 5000, "stderr");
  });

  test("a plaintext sender, or one that does not trust the listener's CA, fails in one line, and the listener stays up", async () => {
    failsWith(
      await send(`tcp://127.0.0.1:${open.port}`),
      1,
      /^converge: cannot send to tcp:\/\/127\.0\.0\.1:\d+: the peer reset the connection .*if it listens with TLS, use tls:\/\//,
    );
    failsWith(
      await send(`tls://127.0.0.1:${open.port}`),
      1,
      /^converge: cannot send to tls:.*TLS handshake failed: the peer's certificate is not signed by a trusted CA/,
    );
    await open.run.waitFor("TLS handshake failed: the peer is not speaking TLS (a plaintext client?)", 5000, "stderr");
    const after = await send(`tls://127.0.0.1:${open.port}`, "--tls-ca", pem("ca.pem"));
    expect(after.code).toBe(0);
  });

  test("with tls_require_client_cert, a sender without a certificate is refused and one with the CA's certificate delivers", async () => {
    const to = `tls://127.0.0.1:${mutual.port}`;
    failsWith(
      await send(to, "--tls-ca", pem("ca.pem")),
      1,
      /^converge: cannot send to tls:.*TLS handshake failed: the peer requires a client certificate/,
    );
    failsWith(
      await send(
        to,
        "--tls-ca",
        pem("ca.pem"),
        "--tls-cert",
        pem("untrusted-client.pem"),
        "--tls-key",
        pem("untrusted-client.key"),
      ),
      1,
      /^converge: cannot send to tls:.*reset the connection .*a listener that requires client certificates does this/,
    );
    const r = await send(
      to,
      "--tls-ca",
      pem("ca.pem"),
      "--tls-cert",
      pem("client.pem"),
      "--tls-key",
      pem("client.key"),
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    await mutual.run.waitFor(` id=${r.stdout.split("\n")[0]} `, 5000, "stderr");
  });

  test("an expired listener certificate is refused by the sender, saying so", async () => {
    const port = freePort();
    const cfg = join(tmp.path, "expired.yaml");
    writeFileSync(
      cfg,
      `transport: tcp\nport: ${port}\ntls_cert: certs/expired-server.pem\ntls_key: certs/expired-server.key\n`,
    );
    const run = startCli(["run", "-c", cfg]);
    await run.waitFor("running, press Ctrl+C to stop");
    try {
      failsWith(
        await send(`tls://127.0.0.1:${port}`, "--tls-ca", pem("ca.pem")),
        1,
        /TLS handshake failed: the peer's certificate has expired/,
      );
    } finally {
      expect(await run.stop()).toBe(0);
    }
  });

  test("a missing key file is one line and exit 2, before anything starts", async () => {
    const cfg = join(tmp.path, "missing.yaml");
    writeFileSync(cfg, `transport: tcp\nport: ${freePort()}\ntls_cert: certs/server.pem\ntls_key: certs/nope.key\n`);
    const r = await runCli(["run", "-c", cfg]);
    failsWith(r, 2, /^converge: tls_key file .*certs\/nope\.key does not exist$/);
  });

  test("send's TLS flags need tls://, and a certificate needs its key", async () => {
    failsWith(await send("tcp://127.0.0.1:1", "--tls-ca", pem("ca.pem")), 2, /need --to tls:\/\/HOST:PORT/);
    failsWith(
      await send("tls://127.0.0.1:1", "--tls-cert", pem("client.pem")),
      2,
      /--tls-cert and --tls-key go together/,
    );
  });
});

describe("converge send confirms the peer read the message", () => {
  test("a peer that accepts the connection and then resets it is a failure, exit 1 with the reason", async () => {
    const resetting = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { data: (s) => s.terminate() },
    });
    try {
      failsWith(
        await send(`tcp://127.0.0.1:${resetting.port}`),
        1,
        /^converge: cannot send to tcp:\/\/127\.0\.0\.1:\d+: the peer reset the connection before confirming it read the message \(ECONNRESET/,
      );
    } finally {
      resetting.stop(true);
    }
  });

  test("a peer that reads and closes in order is a success", async () => {
    let got = 0;
    const reader = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => void (got += d.length) } });
    try {
      const r = await send(`tcp://127.0.0.1:${reader.port}`);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(got).toBeGreaterThan(100);
    } finally {
      reader.stop(true);
    }
  });
});
