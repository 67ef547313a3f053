// fcm.mjs - stand-in for Google's OAuth2 token endpoint and the FCM HTTP v1
// API, on 127.0.0.1, speaking their wire formats so the hub's push channel
// runs unchanged against it (README "Configuration", docs/fallback.md: the service account's
// token_uri and HUB_FCM_BASE_URL both point here).
//
//   POST /token                                  JWT-bearer grant (RFC 7523) → access token
//   POST /v1/projects/{project}/messages:send    one push → {"name": …} or a google.rpc.Status error
//
// Service accounts come from makeServiceAccount() (a fresh RSA key each); an
// assertion is accepted when it verifies against a key made in this process
// or registered over HTTP (POST /_accounts, see registerAccount()), because
// the hub under test runs in another process and reads the key from a file.
//
// Failure modes (setMode() or POST /_control) make sends fail the way FCM
// does; the token endpoint is not affected by them, so a test of retries
// is not also a test of token refresh.

import {
  createPublicKey, generateKeyPairSync, randomBytes, randomInt, sign, verify,
} from 'node:crypto';
import {
  ModeSwitch, clip, closeHttp, listenHttp, maskTail, readBody, sendJson, serveControl,
} from './common.mjs';

/** The OAuth2 scope FCM HTTP v1 requires. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google refuses assertions meant to live longer than an hour. */
const MAX_ASSERTION_SECONDS = 3600;
/** How far in the future an assertion's iat may be: the hub's clock may run a little ahead. */
const CLOCK_SKEW_SECONDS = 60;
/** Google's access tokens for service accounts last one hour minus a second. */
const DEFAULT_TOKEN_SECONDS = 3599;
/** FCM's cap on the payload of a message to a token. */
const MAX_PAYLOAD_BYTES = 4096;
/** APNs refuses an apns-collapse-id longer than this many bytes. */
const MAX_APNS_COLLAPSE_ID_BYTES = 64;
/** Web Push (RFC 8030 §5.4): a Topic is at most 32 characters of the URL-safe base64 alphabet. */
const WEBPUSH_TOPIC = /^[A-Za-z0-9_-]{1,32}$/;

const FCM_ERROR = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const BAD_REQUEST = 'type.googleapis.com/google.rpc.BadRequest';

const MODES = ['ok', 'fail500', 'fail503', 'quota429', 'hang', 'auth_error'];
const STATUS_MODES = { 200: 'ok', 401: 'auth_error', 429: 'quota429', 500: 'fail500', 503: 'fail503' };

/**
 * Public keys of the accounts makeServiceAccount() made in this process:
 * client_email → Map(private_key_id → KeyObject). Keyed by key id too
 * because two accounts of one project share their e-mail.
 */
const processKeys = new Map();

function addKey(registry, email, kid, publicKey) {
  if (!registry.has(email)) registry.set(email, new Map());
  registry.get(email).set(kid ?? '', publicKey);
}

/**
 * A service-account key file as Google's console issues it, with a fresh
 * RSA 2048 key whose public half this process's stand-ins trust. tokenUri
 * is where the hub will exchange assertions: the stand-in's `${url}/token`.
 */
export function makeServiceAccount({ tokenUri, projectId = 'armonia-demo' } = {}) {
  if (!tokenUri) throw new Error("makeServiceAccount needs tokenUri (the stand-in's /token URL)");
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = `hub@${projectId}.iam.gserviceaccount.com`;
  const kid = randomBytes(20).toString('hex');
  addKey(processKeys, email, kid, publicKey);
  return {
    type: 'service_account',
    project_id: projectId,
    private_key_id: kid,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: email,
    client_id: String(randomInt(1, 10)) + Array.from({ length: 20 }, () => randomInt(10)).join(''),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  };
}

/**
 * Tells the stand-in at url (started in any process) to trust `account`'s
 * key: POST /_accounts with the public half only.
 */
export async function registerAccount(url, account) {
  const r = await fetch(`${url}/_accounts`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_email: account.client_email,
      private_key_id: account.private_key_id,
      public_key_pem: createPublicKey(account.private_key).export({ type: 'spki', format: 'pem' }),
    }),
  });
  if (r.status !== 201) throw new Error(`registering ${account.client_email} at ${url}: ${r.status} ${await r.text()}`);
}

/**
 * The RS256 JWT a Google client library sends as the assertion for
 * `account`, for tests that play the hub's part. `claims` override or add
 * to the standard ones (iss, scope, aud, iat, exp).
 */
export function makeAssertion(account, claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: account.private_key_id };
  const payload = {
    iss: account.client_email, scope: FCM_SCOPE, aud: account.token_uri, iat: now, exp: now + 3600, ...claims,
  };
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), account.private_key).toString('base64url')}`;
}

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** A google.rpc.Status error body, as every Google API answers failures. */
function rpcError(code, status, message, details) {
  const error = { code, message, status };
  if (details) error.details = details;
  return { error };
}

function fcmError(code, status, message, errorCode) {
  return rpcError(code, status, message, [{ '@type': FCM_ERROR, errorCode }]);
}

/**
 * The canned failures of the modes, as FCM sends them. Retry-After comes
 * with the two failures FCM documents it for (UNAVAILABLE, QUOTA_EXCEEDED).
 */
const MODE_ANSWERS = {
  fail500: [500, fcmError(500, 'INTERNAL', 'Internal error encountered.', 'INTERNAL')],
  fail503: [503, fcmError(503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'), { 'Retry-After': '1' }],
  quota429: [429, fcmError(429, 'RESOURCE_EXHAUSTED',
    "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'.",
    'QUOTA_EXCEEDED'), { 'Retry-After': '2' }],
  auth_error: [401, fcmError(401, 'UNAUTHENTICATED', 'Auth error from APNS or Web Push Service', 'THIRD_PARTY_AUTH_ERROR')],
};

const MISSING_CREDENTIALS = 'Request is missing required authentication credential. Expected OAuth 2 access token, '
  + 'login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const INVALID_CREDENTIALS = 'Request had invalid authentication credentials. Expected OAuth 2 access token, '
  + 'login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

/** An OAuth2 error answer from the token endpoint (RFC 6749 §5.2). */
class GrantError extends Error {
  constructor(error, description) {
    super(description);
    this.error = error;
  }
}

/**
 * Starts the stand-in. Returns
 *   { url, port, tokenUri, messages, tokenRequests,
 *     setMode(mode, sequence?), reset(), expireTokens(), close() }
 * `messages` and `tokenRequests` are live arrays (reset() empties them in
 * place); every send and every token request is also one log() line.
 */
export async function startFcm({ port = 0, log = console.log, tokenLifetimeSec = DEFAULT_TOKEN_SECONDS } = {}) {
  const httpKeys = new Map(); // accounts registered over HTTP: same shape as processKeys
  const tokens = new Map(); // access token → { expiresAt (ms), email, projectId }
  const messages = [];
  const tokenRequests = [];
  const modes = new ModeSwitch(MODES, STATUS_MODES);
  let url = '';

  function reset() {
    messages.length = 0;
    tokenRequests.length = 0;
    modes.set('ok');
  }

  /** Makes every access token issued so far invalid, as if an hour had passed. */
  function expireTokens() {
    for (const t of tokens.values()) t.expiresAt = 0;
  }

  async function handle(req, res) {
    const path = new URL(req.url, 'http://standin').pathname;
    const control = {
      modes,
      messages,
      reset,
      extra: (body) => {
        if (body.expire_tokens) expireTokens();
        return body.expire_tokens ? { expired_tokens: true } : {};
      },
    };
    if (await serveControl(req, res, path, control)) return;
    if (path === '/_accounts' && req.method === 'POST') return registerKey(req, res);
    if (path === '/_token_requests' && req.method === 'GET') return sendJson(res, 200, tokenRequests);
    if (path === '/token') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'invalid_request', error_description: 'POST only' });
      return token(req, res);
    }
    const send = path.match(/^\/v1\/projects\/([^/]+)\/messages(?::|%3A)send$/i);
    if (send) {
      if (req.method !== 'POST') return sendJson(res, 405, rpcError(405, 'METHOD_NOT_ALLOWED', 'Only POST is allowed.'));
      return sendMessage(req, res, decodeURIComponent(send[1]));
    }
    return sendJson(res, 404, rpcError(404, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`));
  }

  /** POST /_accounts {client_email, public_key_pem, private_key_id?}: trust one more key. */
  async function registerKey(req, res) {
    let body;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'));
      if (typeof body.client_email !== 'string' || !body.client_email) throw new Error('client_email is required');
      addKey(httpKeys, body.client_email, body.private_key_id, createPublicKey(body.public_key_pem));
    } catch (err) {
      return sendJson(res, 400, { error: `/_accounts wants {client_email, public_key_pem}: ${err.message}` });
    }
    return sendJson(res, 201, { client_email: body.client_email });
  }

  async function token(req, res) {
    const record = { time: new Date().toISOString(), iss: null, scope: null, status: 0, error: null };
    tokenRequests.push(record);
    let status = 200;
    let answer;
    try {
      const form = await readForm(req);
      const claims = verifyGrant(form);
      record.iss = claims.iss;
      record.scope = claims.scope;
      const accessToken = `ya29.${randomBytes(60).toString('base64url')}`;
      tokens.set(accessToken, {
        expiresAt: Date.now() + tokenLifetimeSec * 1000,
        email: claims.iss,
        projectId: projectOf(claims.iss),
      });
      answer = { access_token: accessToken, expires_in: tokenLifetimeSec, token_type: 'Bearer' };
    } catch (err) {
      if (!(err instanceof GrantError)) throw err;
      status = 400;
      record.error = err.error;
      answer = { error: err.error, error_description: err.message };
    }
    record.status = status;
    log(`[oauth] token for ${record.iss ?? '(unverified)'} → ${status}${record.error ? ` ${record.error}` : ''}`);
    sendJson(res, status, answer, { 'Cache-Control': 'no-cache, no-store, max-age=0, must-revalidate', Pragma: 'no-cache' });
  }

  async function readForm(req) {
    const type = String(req.headers['content-type'] || '');
    const raw = (await readBody(req)).toString('utf8');
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      throw new GrantError('invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
    }
    return new URLSearchParams(raw);
  }

  /** Checks a JWT-bearer grant the way Google does; returns the assertion's claims or throws GrantError. */
  function verifyGrant(form) {
    const grantType = form.get('grant_type');
    if (grantType !== JWT_BEARER) {
      throw new GrantError('unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
    }
    const assertion = form.get('assertion');
    if (!assertion) throw new GrantError('invalid_request', 'Missing required parameter: assertion');
    const parts = assertion.split('.');
    if (parts.length !== 3) throw new GrantError('invalid_grant', 'Invalid JWT: not a compact JWS (three dot-separated parts).');
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      throw new GrantError('invalid_grant', 'Invalid JWT: header or claim set is not base64url-encoded JSON.');
    }
    if (header.alg !== 'RS256') throw new GrantError('invalid_grant', `Invalid JWT: alg must be RS256, not ${header.alg}.`);
    const keys = [...(processKeys.get(claims.iss)?.entries() ?? []), ...(httpKeys.get(claims.iss)?.entries() ?? [])];
    if (keys.length === 0) throw new GrantError('invalid_grant', 'Invalid grant: account not found');
    // The key the JWT names if we know it; otherwise any key of the account.
    const named = keys.filter(([kid]) => kid && kid === header.kid);
    const candidates = (named.length ? named : keys).map(([, key]) => key);
    const input = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    if (!candidates.some((key) => verify('sha256', input, key, signature))) {
      throw new GrantError('invalid_grant', 'Invalid JWT Signature.');
    }
    const tokenUri = `${url}/token`;
    if (claims.aud !== tokenUri) {
      throw new GrantError('invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${tokenUri}`);
    }
    if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(FCM_SCOPE)) {
      throw new GrantError('invalid_scope', `Invalid OAuth scope or ID token audience provided: the scope must include ${FCM_SCOPE}.`);
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp } = claims;
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= iat || exp - iat > MAX_ASSERTION_SECONDS
        || exp <= now || iat > now + CLOCK_SKEW_SECONDS) {
      throw new GrantError('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a '
        + 'reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    return claims;
  }

  async function sendMessage(req, res, projectId) {
    const raw = await readBody(req);
    const record = {
      time: new Date().toISOString(),
      projectId,
      token: null,
      notification: null,
      data: null,
      androidPriority: null,
      apnsPriority: null,
      // The collapse keys: a later notification with the same one replaces
      // the earlier on the device (Android tag, APNs collapse id, Web Push Topic).
      androidTag: null,
      apnsCollapseId: null,
      webpushTopic: null,
      validateOnly: false,
      status: null,
      errorCode: null,
      answer: null,
    };
    messages.push(record);

    let body = null;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // Reported below, after authentication, as FCM orders its checks.
    }
    const message = body?.message;
    if (message && typeof message === 'object') {
      record.token = typeof message.token === 'string' ? message.token : null;
      record.notification = message.notification ?? null;
      record.data = message.data ?? null;
      record.androidPriority = message.android?.priority ?? null;
      record.apnsPriority = message.apns?.headers?.['apns-priority'] ?? null;
      record.androidTag = message.android?.notification?.tag ?? null;
      record.apnsCollapseId = message.apns?.headers?.['apns-collapse-id'] ?? null;
      record.webpushTopic = message.webpush?.headers?.Topic ?? null;
      record.validateOnly = body.validate_only === true;
    }

    const answer = (status, payload, headers) => {
      record.status = status;
      record.errorCode = payload.error ? payload.error.details?.find((d) => d.errorCode)?.errorCode ?? payload.error.status : null;
      record.answer = payload;
      log(`[fcm] push to ${maskTail(record.token)} "${clip(titleOf(record))}" → ${status}${record.errorCode ? ` ${record.errorCode}` : ''}`);
      sendJson(res, status, payload, headers);
    };

    const auth = String(req.headers.authorization || '').match(/^Bearer\s+(\S+)$/i);
    const bearer = 'Bearer realm="https://accounts.google.com/"';
    if (!auth) {
      return answer(401, rpcError(401, 'UNAUTHENTICATED', MISSING_CREDENTIALS), { 'WWW-Authenticate': bearer });
    }
    const grant = tokens.get(auth[1]);
    if (!grant || grant.expiresAt <= Date.now()) {
      return answer(401, rpcError(401, 'UNAUTHENTICATED', INVALID_CREDENTIALS),
        { 'WWW-Authenticate': `${bearer}, error="invalid_token"` });
    }
    if (grant.projectId && grant.projectId !== projectId) {
      return answer(403, rpcError(403, 'PERMISSION_DENIED', `Permission 'cloudmessaging.messages.create' denied on resource `
        + `'//cloudresourcemanager.googleapis.com/projects/${projectId}' (or it may not exist).`));
    }
    if (body === null) {
      return answer(400, invalidArgument({ field: '', description: 'Invalid JSON payload received. Unexpected token.' }));
    }
    const violation = validateRequest(body);
    if (violation) return answer(400, invalidArgument(violation));

    const mode = modes.next();
    if (mode === 'hang') {
      // Keep the request open and never answer: the hub's timeout must fire.
      record.status = 'hang';
      log(`[fcm] push to ${maskTail(record.token)} "${clip(titleOf(record))}" → (hang: no answer)`);
      return undefined;
    }
    if (MODE_ANSWERS[mode]) return answer(...MODE_ANSWERS[mode]);
    if (record.token.startsWith('unregistered')) {
      return answer(404, fcmError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'));
    }
    if (record.token.startsWith('mismatch')) {
      return answer(403, fcmError(403, 'PERMISSION_DENIED', 'SenderId mismatch', 'SENDER_ID_MISMATCH'));
    }
    const id = record.validateOnly ? 'fake_message_id' : `0:${Date.now()}%${randomBytes(8).toString('hex')}`;
    return answer(200, { name: `projects/${projectId}/messages/${id}` });
  }

  const { server, port: bound } = await listenHttp(handle, port);
  url = `http://127.0.0.1:${bound}`;
  return {
    url,
    port: bound,
    tokenUri: `${url}/token`,
    messages,
    tokenRequests,
    setMode: (mode, sequence) => modes.set(mode, sequence),
    reset,
    expireTokens,
    close: () => closeHttp(server),
  };
}

/** What a log line calls a push: its notification title, else its data kind. */
function titleOf(record) {
  return record.notification?.title ?? record.data?.kind ?? '(data only)';
}

/** The project a service account belongs to, read from its e-mail (name@project.iam.gserviceaccount.com). */
function projectOf(email) {
  return String(email).match(/@([^.]+)\.iam\.gserviceaccount\.com$/)?.[1] ?? null;
}

/**
 * 400 INVALID_ARGUMENT. A violation of the JSON shape gets a BadRequest
 * detail naming the field (as FCM reports bad data values); one FCM itself
 * judges (bad token, payload too big) gets an FcmError detail.
 */
function invalidArgument({ field, description, fcm }) {
  const details = fcm
    ? [{ '@type': FCM_ERROR, errorCode: 'INVALID_ARGUMENT' }]
    : [{ '@type': BAD_REQUEST, fieldViolations: [{ field, description }] }];
  return rpcError(400, 'INVALID_ARGUMENT', description, details);
}

// The fields FCM's proto messages define; any other name is refused, as
// Google's JSON parser refuses unknown names.
const REQUEST_FIELDS = ['message', 'validate_only', 'validateOnly'];
const MESSAGE_FIELDS = ['name', 'data', 'notification', 'android', 'webpush', 'apns', 'fcm_options', 'token', 'topic', 'condition'];
const NOTIFICATION_FIELDS = ['title', 'body', 'image'];
const ANDROID_FIELDS = ['collapse_key', 'priority', 'ttl', 'restricted_package_name', 'data', 'notification', 'fcm_options', 'direct_boot_ok'];
const APNS_FIELDS = ['headers', 'payload', 'fcm_options', 'live_activity_token'];
const ANDROID_NOTIFICATION_FIELDS = ['title', 'body', 'icon', 'color', 'sound', 'tag', 'click_action',
  'body_loc_key', 'body_loc_args', 'title_loc_key', 'title_loc_args', 'channel_id', 'ticker', 'sticky',
  'event_time', 'local_only', 'notification_priority', 'default_sound', 'default_vibrate_timings',
  'default_light_settings', 'vibrate_timings', 'visibility', 'notification_count', 'light_settings', 'image',
  'bypass_proxy_notification', 'proxy'];
const WEBPUSH_FIELDS = ['headers', 'data', 'notification', 'fcm_options'];

/** The first thing wrong with a messages:send body, or null. */
function validateRequest(body) {
  if (!isObject(body)) return { field: '', description: 'Invalid JSON payload received. Expected an object.' };
  const unknown = (obj, allowed, where) => {
    const name = Object.keys(obj).find((k) => !allowed.includes(k));
    if (name === undefined) return null;
    const at = where ? ` at '${where}'` : '';
    return { field: where, description: `Invalid JSON payload received. Unknown name "${name}"${at}: Cannot find field.` };
  };
  const notString = (field, value) => ({ field, description: `Invalid value at '${field}' (TYPE_STRING), ${JSON.stringify(value)}` });

  let v = unknown(body, REQUEST_FIELDS, '');
  if (v) return v;
  const m = body.message;
  if (!isObject(m)) return { field: 'message', description: "Invalid value at 'message': a Message object is required." };
  if ((v = unknown(m, MESSAGE_FIELDS, 'message'))) return v;

  if (m.topic !== undefined || m.condition !== undefined) {
    return { field: 'message', description: 'This stand-in delivers to registration tokens only (message.token).' };
  }
  if (m.token === undefined) return { field: 'message', description: 'Recipient of the message is not set.' };
  if (typeof m.token !== 'string') return notString('message.token', m.token);
  if (!/^[A-Za-z0-9_:.\-]{1,4096}$/.test(m.token)) {
    return { description: 'The registration token is not a valid FCM registration token', fcm: true };
  }

  if (m.notification !== undefined) {
    if (!isObject(m.notification)) return { field: 'message.notification', description: "Invalid value at 'message.notification': an object is required." };
    if ((v = unknown(m.notification, NOTIFICATION_FIELDS, 'message.notification'))) return v;
    for (const k of NOTIFICATION_FIELDS) {
      if (m.notification[k] !== undefined && typeof m.notification[k] !== 'string') return notString(`message.notification.${k}`, m.notification[k]);
    }
  }
  if (m.data !== undefined) {
    if ((v = validateStringMap(m.data, 'message.data'))) return v;
    const reserved = Object.keys(m.data).find((k) => k === 'from' || k === 'message_type' || /^(google|gcm)(\.|$)/.test(k));
    if (reserved !== undefined) return { description: `Invalid data payload key: ${reserved}`, fcm: true };
  }
  if (m.android !== undefined) {
    const a = m.android;
    if (!isObject(a)) return { field: 'message.android', description: "Invalid value at 'message.android': an object is required." };
    if ((v = unknown(a, ANDROID_FIELDS, 'message.android'))) return v;
    if (a.priority !== undefined && !/^(normal|high)$/i.test(String(a.priority))) {
      return {
        field: 'message.android.priority',
        description: `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), ${JSON.stringify(a.priority)}`,
      };
    }
    if (a.ttl !== undefined && !/^\d+(\.\d{1,9})?s$/.test(String(a.ttl))) {
      return { field: 'message.android.ttl', description: `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(a.ttl)}` };
    }
    if (a.data !== undefined && (v = validateStringMap(a.data, 'message.android.data'))) return v;
    if (a.notification !== undefined) {
      const n = a.notification;
      if (!isObject(n)) return { field: 'message.android.notification', description: "Invalid value at 'message.android.notification': an object is required." };
      if ((v = unknown(n, ANDROID_NOTIFICATION_FIELDS, 'message.android.notification'))) return v;
      if (n.tag !== undefined && typeof n.tag !== 'string') return notString('message.android.notification.tag', n.tag);
    }
  }
  if (m.apns !== undefined) {
    const a = m.apns;
    if (!isObject(a)) return { field: 'message.apns', description: "Invalid value at 'message.apns': an object is required." };
    if ((v = unknown(a, APNS_FIELDS, 'message.apns'))) return v;
    if (a.headers !== undefined) {
      if ((v = validateStringMap(a.headers, 'message.apns.headers'))) return v;
      const p = a.headers['apns-priority'];
      if (p !== undefined && !['5', '10', '1'].includes(p)) {
        return { field: 'message.apns.headers', description: `Invalid apns-priority header ${JSON.stringify(p)}: APNs accepts 10, 5 or 1.` };
      }
      const cid = a.headers['apns-collapse-id'];
      if (cid !== undefined && (cid === '' || Buffer.byteLength(cid) > MAX_APNS_COLLAPSE_ID_BYTES)) {
        return { field: 'message.apns.headers', description: `Invalid apns-collapse-id header ${JSON.stringify(cid)}: APNs wants 1 to ${MAX_APNS_COLLAPSE_ID_BYTES} bytes.` };
      }
    }
    if (a.payload !== undefined && !isObject(a.payload)) {
      return { field: 'message.apns.payload', description: "Invalid value at 'message.apns.payload': an object is required." };
    }
  }
  for (const k of ['webpush', 'fcm_options']) {
    if (m[k] !== undefined && !isObject(m[k])) return { field: `message.${k}`, description: `Invalid value at 'message.${k}': an object is required.` };
  }
  if (m.webpush !== undefined) {
    if ((v = unknown(m.webpush, WEBPUSH_FIELDS, 'message.webpush'))) return v;
    if (m.webpush.headers !== undefined) {
      if ((v = validateStringMap(m.webpush.headers, 'message.webpush.headers'))) return v;
      const topic = m.webpush.headers.Topic;
      if (topic !== undefined && !WEBPUSH_TOPIC.test(topic)) {
        return { field: 'message.webpush.headers', description: `Invalid Topic header ${JSON.stringify(topic)}: Web Push wants at most 32 characters of the URL-safe base64 alphabet.` };
      }
    }
  }

  // FCM counts the keys and values of data plus the notification text.
  let size = 0;
  for (const [k, val] of Object.entries(m.data ?? {})) size += Buffer.byteLength(k) + Buffer.byteLength(val);
  for (const val of Object.values(m.notification ?? {})) size += Buffer.byteLength(val);
  if (size > MAX_PAYLOAD_BYTES) return { description: `Message is too big: ${size} bytes of payload, the limit is ${MAX_PAYLOAD_BYTES}.`, fcm: true };
  return null;
}

/** A map<string,string> field: FCM reports the index of the first non-string value. */
function validateStringMap(map, field) {
  if (!isObject(map)) return { field, description: `Invalid value at '${field}': a map of strings is required.` };
  const entries = Object.entries(map);
  const i = entries.findIndex(([, val]) => typeof val !== 'string');
  if (i < 0) return null;
  const at = `${field}[${i}].value`;
  return { field: at, description: `Invalid value at '${at}' (TYPE_STRING), ${JSON.stringify(entries[i][1])}` };
}

function isObject(x) {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}
