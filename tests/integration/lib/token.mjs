// token.mjs - JSON Web Tokens as the Armonía backend issues them, and the
// broken ones the hub must refuse.
//
// mintToken() signs with HMAC (node:crypto) and encodes with base64url, so a
// test can vary exactly one thing at a time: the secret, the "alg" in the
// header, a missing claim, an expiry in the past.

import { createHmac, randomBytes } from 'node:crypto';

const HMAC_HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/** Seconds since the epoch, the unit of "exp" and "nbf". */
export function nowS() {
  return Math.floor(Date.now() / 1000);
}

/** A random secret, different for every hub a test starts. */
export function randomSecret() {
  return randomBytes(24).toString('base64url');
}

function b64url(value) {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.from(bytes).toString('base64url');
}

/**
 * Returns a signed JWT.
 *
 * claims: the payload. "exp" defaults to now + 3600; pass `exp: undefined`
 *   to leave it out (any claim whose value is undefined is left out).
 * alg: "HS256" (default), "HS384", "HS512" or "none" (empty signature).
 * header: extra or replacing header fields (e.g. {alg: 'RS256'} to lie about
 *   the algorithm while still signing with HS256 via `signAlg`).
 * signAlg: the HMAC actually used when it must differ from header.alg.
 */
export function mintToken(secret, claims, { alg = 'HS256', header = {}, signAlg } = {}) {
  const payload = { exp: nowS() + 3600, ...claims };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  const head = { alg, typ: 'JWT', ...header };
  const signingInput = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(payload))}`;
  const use = signAlg ?? alg;
  if (use === 'none') return `${signingInput}.`;
  const hash = HMAC_HASH[use];
  if (!hash) throw new Error(`mintToken: no HMAC for alg ${use}`);
  const sig = createHmac(hash, secret).update(signingInput).digest();
  return `${signingInput}.${b64url(sig)}`;
}
