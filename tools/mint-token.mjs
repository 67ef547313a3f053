// Mints an HS256 token the way the Armonía backend does, for the demo and for
// trying the hub by hand:
//   node tools/mint-token.mjs SECRET '{"sub":"guard-1","tenant":"demo","role":"guard"}' [ttl_s]
// iat and exp are set from now and ttl_s (keep ttl_s within HUB_JWT_MAX_TTL_S when
// the hub sets it); add "aud" / "iss" to the claims for a hub that sets
// HUB_JWT_AUDIENCE / HUB_JWT_ISSUER.
import { createHmac } from 'node:crypto';

const [secret, claimsJson, ttl = '86400'] = process.argv.slice(2);
if (!secret || !claimsJson) {
    console.error('usage: mint-token.mjs SECRET CLAIMS_JSON [TTL_SECONDS]');
    process.exit(2);
}
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const claims = { iat: now, exp: now + Number(ttl), ...JSON.parse(claimsJson) };
const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
const sig = createHmac('sha256', secret).update(head).digest('base64url');
console.log(`${head}.${sig}`);
