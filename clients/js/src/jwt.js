// jwt.js - reads the expiry of a JSON Web Token without verifying it.
//
// The client only needs to know when to ask for a fresh token; the hub does
// the verifying. Works in browsers and Node (atob and TextDecoder are global
// in both).

/**
 * The payload of a compact JWT as an object, or null when `token` is not
 * three dot-separated base64url parts whose middle one is a JSON object.
 */
export function jwtPayload(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    b64 += '='.repeat((4 - (b64.length % 4)) % 4);
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === 'object' && !Array.isArray(payload) ? payload : null;
  } catch {
    return null;
  }
}

/** The token's `exp` in milliseconds since the epoch, or null when it has none. */
export function jwtExpiryMs(token) {
  const exp = jwtPayload(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}
