/**
 * TLS for the TCP and WebSocket transports, as the Python original's `ssl_context` offers: a
 * listener with a certificate and key, peers verified against a CA bundle (the system's when none
 * is given), and optionally client certificates (mutual TLS). The frames inside are the same bytes.
 * Handshake failures are turned into one line a user can act on.
 */
import type { TLSOptions } from "bun";

export interface TlsOptions {
  /** PEM certificate (chain) of this listener; also presented as the client certificate when dialling. */
  cert?: string;
  /** PEM private key of `cert`. */
  key?: string;
  /** PEM CA bundle that peers' certificates must chain to. Default: the system's CAs. */
  ca?: string;
  /** Listener: refuse peers that present no certificate signed by `ca` (mutual TLS). Default false. */
  requireClientCert?: boolean;
}

/** Bun.listen's tls options for a listener; throws TypeError when cert or key is missing. */
export function listenerTls(o: TlsOptions): TLSOptions {
  if (!o.cert || !o.key) throw new TypeError("a TLS listener needs both a certificate (cert) and its key (key)");
  if (o.requireClientCert && !o.ca)
    throw new TypeError("requiring client certificates needs the CA bundle (ca) that signs them");
  return {
    cert: o.cert,
    key: o.key,
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
  };
}

/** Bun.connect's tls options for dialling (an empty object would mean plain TCP to Bun: hence `true`). */
export function dialTls(o: TlsOptions | undefined): TLSOptions | true {
  const out: TLSOptions = {};
  if (o?.ca) out.ca = o.ca;
  if (o?.cert && o.key) {
    out.cert = o.cert;
    out.key = o.key;
  }
  return Object.keys(out).length > 0 ? out : true;
}

/** Why a handshake we started failed, for "cannot reach tls://…: <this>". */
export function dialHandshakeFailure(err: { code?: string; message?: string } | null | undefined): string {
  const code = err?.code ?? "";
  const text = err?.message ?? "";
  if (code === "CERT_HAS_EXPIRED") return "TLS handshake failed: the peer's certificate has expired";
  if (code === "CERT_NOT_YET_VALID") return "TLS handshake failed: the peer's certificate is not valid yet";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `TLS handshake failed: the peer's certificate is not for this host (${text})`;
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE/.test(code))
    return (
      `TLS handshake failed: the peer's certificate is not signed by a trusted CA ` +
      `(${code}; give its CA bundle: tls_ca, or --tls-ca)`
    );
  if (/CERTIFICATE_REQUIRED/.test(text))
    return (
      "TLS handshake failed: the peer requires a client certificate " +
      "(give one: tls_cert and tls_key, or --tls-cert and --tls-key)"
    );
  if (/BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN/.test(text))
    return "TLS handshake failed: the peer refused our client certificate";
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER/.test(text) || code === "ECONNRESET" || !code)
    return "TLS handshake failed: the peer does not speak TLS on this port (is it a plain tcp:// or ws:// listener?)";
  return `TLS handshake failed: ${code}${text ? ` (${text})` : ""}`;
}

/**
 * Why the handshake a peer started with our listener failed, or null when it succeeded. With
 * client certificates required, Bun reports a certificate it could not verify as a successful
 * handshake with an authorization error (and then closes): that is a failure too.
 */
export function listenHandshakeFailure(
  ok: boolean,
  authorizationError: { code?: string } | null | undefined,
  requireClientCert: boolean,
): string | null {
  if (ok && !(requireClientCert && authorizationError)) return null;
  if (ok)
    return (
      "TLS handshake failed: the peer's client certificate is not signed by our CA " +
      `(${authorizationError?.code ?? "not authorized"})`
    );
  return requireClientCert
    ? "TLS handshake failed: the peer is not speaking TLS, or presented no client certificate, " +
        "or refused our certificate"
    : "TLS handshake failed: the peer is not speaking TLS (a plaintext client?) or refused our certificate";
}
