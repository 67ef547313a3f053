// standins.test.mjs - self-tests of the provider stand-ins, driven with
// plain fetch and net clients the way the hub's libcurl drives them: the
// OAuth2 JWT-bearer exchange (valid and forged assertions), FCM sends and
// their failure modes, Twilio's auth and magic numbers, an SMTP session
// with dot-stuffing and refused recipients, and run.mjs as a process.
//
//   node --test tests/standins/standins.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  FCM_SCOPE, makeAssertion, makeServiceAccount, registerAccount, startFcm,
} from './fcm.mjs';
import { smsSegments, startTwilio } from './twilio.mjs';
import { remoteControl, remoteMessages, remoteReset } from './common.mjs';
import {
  resetSmtp, setSmtpMode, smtpMessages, startSmtp,
} from './smtp.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));

async function postForm(url, fields, headers = {}, signal) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    signal,
  });
  return { status: r.status, headers: r.headers, body: await r.json() };
}

async function postJson(url, body, headers = {}, signal) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  return { status: r.status, headers: r.headers, body: await r.json() };
}

const basic = (sid, token) => ({ Authorization: `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}` });

/** A JWT signed by whoever holds `privateKey`, with exactly these parts. */
function jwt(header, claims, privateKey) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

describe('FCM stand-in', () => {
  let fcm;
  let account;
  const logs = [];

  before(async () => {
    fcm = await startFcm({ log: (line) => logs.push(line) });
    account = makeServiceAccount({ tokenUri: fcm.tokenUri });
  });
  after(() => fcm.close());

  const exchange = (assertion, grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer') =>
    postForm(fcm.tokenUri, { grant_type: grantType, assertion });
  const sendUrl = (project = 'armonia-demo') => `${fcm.url}/v1/projects/${project}/messages:send`;
  const send = (accessToken, message, extra = {}) =>
    postJson(sendUrl(extra.project), { message }, accessToken ? { Authorization: `Bearer ${accessToken}` } : {}, extra.signal);
  async function accessToken() {
    const r = await exchange(makeAssertion(account));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.access_token;
  }
  const push = { token: 'dev-res101-ab12', notification: { title: 'Alerta de pánico', body: 'Torre 3, apto 302' } };

  test('service account looks like a Google key file', () => {
    assert.equal(account.type, 'service_account');
    assert.equal(account.project_id, 'armonia-demo');
    assert.equal(account.client_email, 'hub@armonia-demo.iam.gserviceaccount.com');
    assert.equal(account.token_uri, `${fcm.url}/token`);
    assert.match(account.private_key, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
    assert.match(account.private_key_id, /^[0-9a-f]{40}$/);
    assert.match(account.client_id, /^\d{21}$/);
  });

  test('a valid RS256 assertion gets a ya29 bearer token for 3599 s', async () => {
    const r = await exchange(makeAssertion(account));
    assert.equal(r.status, 200);
    assert.match(r.body.access_token, /^ya29\.[\w-]+$/);
    assert.equal(r.body.expires_in, 3599);
    assert.equal(r.body.token_type, 'Bearer');
    const last = fcm.tokenRequests.at(-1);
    assert.equal(last.iss, account.client_email);
    assert.equal(last.status, 200);
  });

  test('a forged assertion (right iss and kid, another key) is invalid_grant', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const forged = jwt(
      { alg: 'RS256', typ: 'JWT', kid: account.private_key_id },
      { iss: account.client_email, scope: FCM_SCOPE, aud: fcm.tokenUri, iat: now, exp: now + 3600 },
      privateKey,
    );
    const r = await exchange(forged);
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
  });

  test('a tampered claim set breaks the signature', async () => {
    const [h, , s] = makeAssertion(account).split('.');
    const now = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(JSON.stringify({
      iss: account.client_email, scope: FCM_SCOPE, aud: fcm.tokenUri, iat: now, exp: now + 60,
    })).toString('base64url');
    const r = await exchange(`${h}.${claims}.${s}`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_grant');
  });

  test('wrong aud, long-lived, expired, wrong scope, unknown iss, alg none, bad grant_type are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      [{ aud: 'https://oauth2.googleapis.com/token' }, 'invalid_grant', /audience/],
      [{ iat: now, exp: now + 3601 }, 'invalid_grant', /short-lived/],
      [{ iat: now - 4000, exp: now - 400 }, 'invalid_grant', /short-lived/],
      [{ scope: 'https://www.googleapis.com/auth/cloud-platform' }, 'invalid_scope', /firebase\.messaging/],
      [{ iss: 'someone@else.iam.gserviceaccount.com' }, 'invalid_grant', /account not found/],
    ];
    for (const [claims, error, description] of cases) {
      const r = await exchange(makeAssertion(account, claims));
      assert.equal(r.status, 400, JSON.stringify(claims));
      assert.equal(r.body.error, error, JSON.stringify(claims));
      assert.match(r.body.error_description, description);
    }
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${makeAssertion(account).split('.')[1]}.`;
    assert.equal((await exchange(none)).body.error, 'invalid_grant');
    const r = await exchange(makeAssertion(account), 'client_credentials');
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'unsupported_grant_type');
  });

  test('an account from another process is trusted once registered over HTTP', async () => {
    // Built by hand, not by makeServiceAccount, so this process does not know the key.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = {
      ...account,
      private_key_id: 'a'.repeat(40),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: 'other@armonia-demo.iam.gserviceaccount.com',
    };
    assert.equal((await exchange(makeAssertion(other))).status, 400);
    await registerAccount(fcm.url, other);
    assert.equal((await exchange(makeAssertion(other))).status, 200);
  });

  test('send without a bearer token, or with one it never issued → 401 UNAUTHENTICATED', async () => {
    let r = await send(null, push);
    assert.equal(r.status, 401);
    assert.equal(r.body.error.status, 'UNAUTHENTICATED');
    assert.match(r.body.error.message, /missing required authentication credential/);
    assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    r = await send('ya29.made-up', push);
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 401);
  });

  test('send with a valid token → 200 with the message name, and the send is recorded and logged', async () => {
    const tok = await accessToken();
    const before = fcm.messages.length;
    const r = await send(tok, {
      ...push,
      data: { kind: 'panic', event_id: '42' },
      android: { priority: 'HIGH' },
      apns: { headers: { 'apns-priority': '10' } },
    });
    assert.equal(r.status, 200);
    assert.match(r.body.name, /^projects\/armonia-demo\/messages\/.+/);
    const rec = fcm.messages[before];
    assert.equal(rec.token, push.token);
    assert.deepEqual(rec.notification, push.notification);
    assert.deepEqual(rec.data, { kind: 'panic', event_id: '42' });
    assert.equal(rec.androidPriority, 'HIGH');
    assert.equal(rec.apnsPriority, '10');
    assert.equal(rec.status, 200);
    assert.ok(logs.includes('[fcm] push to …ab12 "Alerta de pánico" → 200'), logs.join('\n'));
  });

  test('an expired access token is refused; a fresh one works', async () => {
    const tok = await accessToken();
    fcm.expireTokens();
    assert.equal((await send(tok, push)).status, 401);
    assert.equal((await send(await accessToken(), push)).status, 200);
  });

  test('a token of one project cannot send for another → 403 PERMISSION_DENIED', async () => {
    const r = await send(await accessToken(), push, { project: 'someone-else' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.status, 'PERMISSION_DENIED');
  });

  test('malformed bodies → 400 INVALID_ARGUMENT naming the field', async () => {
    const tok = await accessToken();
    let r = await send(tok, { ...push, data: { kind: 'panic', event_id: 42 } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
    assert.equal(r.body.error.details[0]['@type'], 'type.googleapis.com/google.rpc.BadRequest');
    assert.equal(r.body.error.details[0].fieldViolations[0].field, 'message.data[1].value');
    r = await send(tok, { ...push, priority: 'high' });
    assert.match(r.body.error.message, /Unknown name "priority" at 'message'/);
    r = await send(tok, { notification: push.notification });
    assert.equal(r.body.error.message, 'Recipient of the message is not set.');
    r = await send(tok, { ...push, android: { priority: 'urgent' } });
    assert.equal(r.body.error.details[0].fieldViolations[0].field, 'message.android.priority');
    r = await send(tok, { ...push, data: { blob: 'x'.repeat(5000) } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.details[0].errorCode, 'INVALID_ARGUMENT');
    r = await postJson(sendUrl(), '{"message": {', { Authorization: `Bearer ${tok}` });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
  });

  test('collapse keys (android tag, apns-collapse-id, web push Topic) are recorded and held to the platforms\' limits', async () => {
    const tok = await accessToken();
    const before = fcm.messages.length;
    const key = 'sreVd-wHQtPDB3NDjkdZkg';
    let r = await send(tok, {
      ...push,
      android: { priority: 'HIGH', notification: { tag: key } },
      apns: { headers: { 'apns-priority': '10', 'apns-collapse-id': key } },
      webpush: { headers: { Topic: key } },
    });
    assert.equal(r.status, 200);
    const rec = fcm.messages[before];
    assert.equal(rec.androidTag, key);
    assert.equal(rec.apnsCollapseId, key);
    assert.equal(rec.webpushTopic, key);
    r = await send(tok, { ...push, apns: { headers: { 'apns-collapse-id': 'x'.repeat(65) } } });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /apns-collapse-id/);
    r = await send(tok, { ...push, webpush: { headers: { Topic: 'x'.repeat(33) } } });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /Topic/);
    r = await send(tok, { ...push, webpush: { headers: { Topic: 'a+b/c=' } } });
    assert.equal(r.status, 400);
    r = await send(tok, { ...push, android: { notification: { tag: 7 } } });
    assert.equal(r.body.error.details[0].fieldViolations[0].field, 'message.android.notification.tag');
    r = await send(tok, { ...push, android: { notification: { label: 'x' } } });
    assert.match(r.body.error.message, /Unknown name "label" at 'message.android.notification'/);
  });

  test('token "unregistered…" → 404 UNREGISTERED; "mismatch…" → 403 SENDER_ID_MISMATCH', async () => {
    const tok = await accessToken();
    let r = await send(tok, { ...push, token: 'unregistered-dev-1' });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.status, 'NOT_FOUND');
    assert.deepEqual(r.body.error.details, [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }]);
    r = await send(tok, { ...push, token: 'mismatch-dev-1' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.details[0].errorCode, 'SENDER_ID_MISMATCH');
  });

  test('failure modes answer as FCM does, with Retry-After where FCM sends it', async () => {
    const tok = await accessToken();
    const cases = [
      ['fail500', 500, 'INTERNAL', 'INTERNAL', null],
      ['fail503', 503, 'UNAVAILABLE', 'UNAVAILABLE', '1'],
      ['quota429', 429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', '2'],
      ['auth_error', 401, 'UNAUTHENTICATED', 'THIRD_PARTY_AUTH_ERROR', null],
    ];
    for (const [mode, status, rpcStatus, errorCode, retryAfter] of cases) {
      fcm.setMode(mode);
      const r = await send(tok, push);
      assert.equal(r.status, status, mode);
      assert.equal(r.body.error.status, rpcStatus, mode);
      assert.equal(r.body.error.details[0].errorCode, errorCode, mode);
      assert.equal(r.headers.get('retry-after'), retryAfter, mode);
      assert.equal(fcm.messages.at(-1).status, status);
    }
    fcm.setMode('ok');
    assert.equal((await send(tok, push)).status, 200);
  });

  test('mode switched over HTTP: sequence [500, 500, 200] then ok; /_messages and /_reset', async () => {
    const tok = await accessToken();
    const ctl = await postJson(`${fcm.url}/_control`, { mode: 'sequence', sequence: [500, 500, 200] });
    assert.equal(ctl.status, 200);
    assert.deepEqual(ctl.body, { mode: 'sequence', sequence: ['fail500', 'fail500', 'ok'] });
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await send(tok, push)).status);
    assert.deepEqual(statuses, [500, 500, 200, 200]);
    const bad = await postJson(`${fcm.url}/_control`, { mode: 'explode' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /unknown mode "explode"/);

    const listed = await (await fetch(`${fcm.url}/_messages`)).json();
    assert.deepEqual(listed.slice(-4).map((m) => m.status), [500, 500, 200, 200]);
    await fetch(`${fcm.url}/_reset`, { method: 'POST' });
    assert.equal(fcm.messages.length, 0);
    assert.deepEqual(await (await fetch(`${fcm.url}/_messages`)).json(), []);
  });

  test('hang: the request is received and never answered; the client gives up on its own timeout', async () => {
    const tok = await accessToken();
    fcm.setMode('hang');
    const started = Date.now();
    await assert.rejects(send(tok, push, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });
    assert.ok(Date.now() - started < 2000);
    assert.equal(fcm.messages.at(-1).status, 'hang');
    fcm.setMode('ok');
    assert.equal((await send(tok, push)).status, 200);
  });
});

describe('Twilio stand-in', () => {
  let tw;
  const logs = [];
  before(async () => {
    tw = await startTwilio({ log: (line) => logs.push(line) });
  });
  after(() => tw.close());

  const create = (fields, headers = basic(tw.accountSid, tw.authToken), signal) =>
    postForm(`${tw.url}/2010-04-01/Accounts/${tw.accountSid}/Messages.json`, fields, headers, signal);
  const sms = { To: '+573001234567', From: '+15005550006', Body: 'ALERTA DE PANICO: torre 3 apto 302' };

  test('credentials look like Twilio\'s', () => {
    assert.match(tw.accountSid, /^AC[0-9a-f]{32}$/);
    assert.match(tw.authToken, /^[0-9a-f]{32}$/);
  });

  test('no or wrong Basic credentials → 401 code 20003', async () => {
    for (const headers of [{}, basic(tw.accountSid, 'wrong')]) {
      const r = await create(sms, headers);
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, {
        code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401,
      });
    }
  });

  test('a valid create → 201 queued Message resource, recorded and logged', async () => {
    const r = await create(sms);
    assert.equal(r.status, 201);
    assert.match(r.body.sid, /^SM[0-9a-f]{32}$/);
    assert.equal(r.body.status, 'queued');
    assert.equal(r.body.account_sid, tw.accountSid);
    assert.equal(r.body.to, sms.To);
    assert.equal(r.body.from, sms.From);
    assert.equal(r.body.body, sms.Body);
    assert.equal(r.body.num_segments, '1');
    assert.equal(r.body.direction, 'outbound-api');
    assert.match(r.body.date_created, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.equal(r.body.uri, `/2010-04-01/Accounts/${tw.accountSid}/Messages/${r.body.sid}.json`);
    const rec = tw.messages.at(-1);
    assert.equal(rec.status, 201);
    assert.equal(rec.sid, r.body.sid);
    assert.equal(logs.at(-1), '[twilio] sms to …4567 (1 segment): "ALERTA DE PANICO: torre …" → 201');
  });

  test('missing To, From or Body → 400 with Twilio\'s codes', async () => {
    const cases = [['To', 21604], ['From', 21603], ['Body', 21602]];
    for (const [field, code] of cases) {
      const fields = { ...sms };
      delete fields[field];
      const r = await create(fields);
      assert.equal(r.status, 400, field);
      assert.equal(r.body.code, code, field);
      assert.equal(r.body.more_info, `https://www.twilio.com/docs/errors/${code}`);
    }
  });

  test('magic and malformed numbers fail as Twilio documents', async () => {
    let r = await create({ ...sms, To: '+15005550001' });
    assert.deepEqual(r.body, {
      code: 21211,
      message: "The 'To' number +15005550001 is not a valid phone number.",
      more_info: 'https://www.twilio.com/docs/errors/21211',
      status: 400,
    });
    r = await create({ ...sms, To: '300 123 4567' });
    assert.equal(r.body.code, 21211);
    r = await create({ ...sms, To: '+15005550009' });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 21614);
    r = await create({ ...sms, From: 'not a number!' });
    assert.equal(r.body.code, 21212);
  });

  test('segments: GSM-7 160/153, UCS-2 70/67 once one character needs it', async () => {
    assert.deepEqual(smsSegments('a'.repeat(160)), { encoding: 'GSM-7', segments: 1 });
    assert.deepEqual(smsSegments('a'.repeat(161)), { encoding: 'GSM-7', segments: 2 });
    assert.deepEqual(smsSegments('a'.repeat(306)), { encoding: 'GSM-7', segments: 2 });
    assert.deepEqual(smsSegments('a'.repeat(307)), { encoding: 'GSM-7', segments: 3 });
    assert.deepEqual(smsSegments('€'.repeat(80)), { encoding: 'GSM-7', segments: 1 });
    assert.equal(smsSegments('¡Señor Pérez! ¿Viene?').encoding, 'GSM-7');
    assert.deepEqual(smsSegments(`Pánico ${'a'.repeat(63)}`), { encoding: 'UCS-2', segments: 1 });
    assert.deepEqual(smsSegments(`Pánico ${'a'.repeat(64)}`), { encoding: 'UCS-2', segments: 2 });
    const r = await create({ ...sms, Body: `Alerta de pánico en la torre 3, apartamento 302: ${'x'.repeat(30)}` });
    assert.equal(r.body.num_segments, '2');
    assert.match(logs.at(-1), /\(2 segments\)/);
  });

  test('failure modes: 500, 503 with Retry-After, 429 code 20429; sequence over HTTP; reset', async () => {
    tw.setMode('fail500');
    let r = await create(sms);
    assert.equal(r.status, 500);
    assert.equal(r.body.code, 20500);
    tw.setMode('fail503');
    r = await create(sms);
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    tw.setMode('rate429');
    r = await create(sms);
    assert.equal(r.status, 429);
    assert.equal(r.body.code, 20429);

    const ctl = await postJson(`${tw.url}/_control`, { mode: 'sequence', sequence: [503, 429, 201] });
    assert.equal(ctl.status, 200);
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await create(sms)).status);
    assert.deepEqual(statuses, [503, 429, 201, 201]);
    const listed = await (await fetch(`${tw.url}/_messages`)).json();
    assert.deepEqual(listed.slice(-4).map((m) => m.status), [503, 429, 201, 201]);
    await fetch(`${tw.url}/_reset`, { method: 'POST' });
    assert.equal(tw.messages.length, 0);
  });

  test('hang: never answered; the client times out', async () => {
    await postJson(`${tw.url}/_control`, { mode: 'hang' });
    await assert.rejects(create(sms, undefined, AbortSignal.timeout(300)), { name: 'TimeoutError' });
    assert.equal(tw.messages.at(-1).status, 'hang');
    tw.setMode('ok');
    assert.equal((await create(sms)).status, 201);
  });
});

/**
 * A bare SMTP client: cmd(line) sends one line and resolves with the next
 * reply {code, text, lines}; read() waits for a reply without sending.
 */
function smtpClient(port) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setEncoding('utf8');
  let buf = '';
  let lines = [];
  const replies = [];
  const waiting = [];
  socket.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      lines.push(line);
      if (line[3] === '-') continue;
      const reply = { code: Number(line.slice(0, 3)), text: line.slice(4), lines };
      lines = [];
      if (waiting.length) waiting.shift()(reply);
      else replies.push(reply);
    }
  });
  const closed = new Promise((resolve) => socket.on('close', resolve));
  const read = (timeout = 2000) => new Promise((resolve, reject) => {
    if (replies.length) return resolve(replies.shift());
    const timer = setTimeout(() => {
      waiting.splice(waiting.indexOf(done), 1);
      reject(new Error(`no SMTP reply within ${timeout} ms`));
    }, timeout);
    const done = (reply) => {
      clearTimeout(timer);
      resolve(reply);
    };
    waiting.push(done);
    return undefined;
  });
  return {
    read,
    write: (text) => socket.write(text),
    cmd: (line, timeout) => {
      socket.write(`${line}\r\n`);
      return read(timeout);
    },
    closed,
    destroy: () => socket.destroy(),
  };
}

describe('SMTP stand-in', () => {
  let smtp;
  const logs = [];
  const b64 = (s) => Buffer.from(s).toString('base64');
  before(async () => {
    smtp = await startSmtp({ user: 'hub', password: 's3cret', log: (line) => logs.push(line) });
  });
  after(() => smtp.close());

  /** A client past the greeting, EHLO and AUTH PLAIN. */
  async function session() {
    const c = smtpClient(smtp.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO hub.armonia.test')).code, 250);
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0hub\0s3cret')}`)).code, 235);
    return c;
  }

  test('a full session: EHLO, AUTH, MAIL, RCPT (one refused), DATA with dot-stuffing, QUIT', async () => {
    const c = smtpClient(smtp.port);
    const greeting = await c.read();
    assert.equal(greeting.code, 220);
    const ehlo = await c.cmd('EHLO hub.armonia.test');
    assert.equal(ehlo.code, 250);
    const ext = ehlo.lines.map((l) => l.slice(4));
    assert.ok(ext.includes('8BITMIME'));
    assert.ok(ext.some((e) => /^SIZE \d+$/.test(e)));
    assert.ok(ext.includes('AUTH PLAIN LOGIN'));
    assert.ok(!ext.some((e) => e.startsWith('STARTTLS')));

    assert.equal((await c.cmd('MAIL FROM:<hub@armonia.test>')).code, 530, 'MAIL before AUTH');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0hub\0wrong')}`)).code, 535);
    assert.equal((await c.cmd('AUTH PLAIN')).code, 334);
    assert.equal((await c.cmd(b64('\0hub\0s3cret'))).code, 235);

    assert.equal((await c.cmd('MAIL FROM:<hub@armonia.test> SIZE=400 BODY=8BITMIME')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<res101@demo.test>')).code, 250);
    const refused = await c.cmd('RCPT TO:<unknown-user@demo.test>');
    assert.equal(refused.code, 550);
    assert.match(refused.text, /^5\.1\.1 /);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write([
      'From: Armonia <hub@armonia.test>',
      'To: res101@demo.test',
      'Subject: =?UTF-8?B?QWxlcnRhIGRlIHDDoW5pY28=?=',
      ' =?UTF-8?Q?_=E2=80=94_torre_3?=',
      'Content-Type: text/plain; charset=UTF-8',
      '',
      'Línea uno',
      '..una línea que empieza con punto',
      '..',
      'fin',
      '.',
      '',
    ].join('\r\n'));
    const queued = await c.read();
    assert.equal(queued.code, 250);
    const queueId = queued.text.match(/queued as ([0-9A-F]+)$/)[1];

    const msg = smtp.messages.at(-1);
    assert.equal(msg.queueId, queueId);
    assert.equal(msg.from, 'hub@armonia.test');
    assert.deepEqual(msg.to, ['res101@demo.test']);
    assert.deepEqual(msg.rejected, ['unknown-user@demo.test']);
    assert.equal(msg.subject, 'Alerta de pánico — torre 3');
    assert.equal(msg.authUser, 'hub');
    assert.ok(msg.data.endsWith('Línea uno\r\n.una línea que empieza con punto\r\n.\r\nfin\r\n'), JSON.stringify(msg.data));
    assert.equal(logs.at(-1), '[smtp] mail to r…@demo.test "Alerta de pánico — torre 3" → 250');

    assert.equal((await c.cmd('NOOP')).code, 250);
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd('QUIT')).code, 221);
    await c.closed;
  });

  test('AUTH LOGIN, step by step', async () => {
    const c = smtpClient(smtp.port);
    await c.read();
    await c.cmd('EHLO hub.armonia.test');
    const user = await c.cmd('AUTH LOGIN');
    assert.equal(user.code, 334);
    assert.equal(Buffer.from(user.text, 'base64').toString(), 'Username:');
    assert.equal((await c.cmd(b64('hub'))).code, 334);
    assert.equal((await c.cmd(b64('s3cret'))).code, 235);
    await c.cmd('QUIT');
    await c.closed;
  });

  test('commands out of order get 503/554/500', async () => {
    const c = await session();
    assert.equal((await c.cmd('RCPT TO:<a@demo.test>')).code, 503);
    assert.equal((await c.cmd('DATA')).code, 503);
    assert.equal((await c.cmd('MAIL FROM:<hub@armonia.test>')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<hub@armonia.test>')).code, 503);
    assert.equal((await c.cmd('DATA')).code, 554);
    assert.equal((await c.cmd('FROBNICATE')).code, 500);
    await c.cmd('QUIT');
    await c.closed;
  });

  test('modes over the wire (XMODE): reject_rcpt → 550 5.1.1, tempfail → 451; XMESSAGES, XRESET', async () => {
    await setSmtpMode(smtp.url, 'reject_rcpt');
    let c = await session();
    await c.cmd('MAIL FROM:<hub@armonia.test>');
    const rejected = await c.cmd('RCPT TO:<res101@demo.test>');
    assert.equal(rejected.code, 550);
    assert.match(rejected.text, /^5\.1\.1 .*mailbox unavailable/);
    c.destroy();

    await setSmtpMode(smtp.url, 'tempfail');
    c = await session();
    await c.cmd('MAIL FROM:<hub@armonia.test>');
    assert.equal((await c.cmd('RCPT TO:<res101@demo.test>')).code, 451);
    c.destroy();

    await assert.rejects(setSmtpMode(smtp.url, 'explode'), /unknown mode/);
    const listed = await smtpMessages(smtp.url);
    assert.equal(listed.length, smtp.messages.length);
    await resetSmtp(smtp.url);
    assert.equal(smtp.messages.length, 0);
    c = await session();
    await c.cmd('MAIL FROM:<hub@armonia.test>');
    assert.equal((await c.cmd('RCPT TO:<res101@demo.test>')).code, 250, 'XRESET put the mode back to ok');
    c.destroy();
  });

  test('hang: the message is taken in but never confirmed', async () => {
    smtp.setMode('hang');
    const c = await session();
    await c.cmd('MAIL FROM:<hub@armonia.test>');
    await c.cmd('RCPT TO:<res101@demo.test>');
    await c.cmd('DATA');
    c.write('Subject: espera\r\n\r\nhola\r\n.\r\n');
    await assert.rejects(c.read(300), /no SMTP reply/);
    assert.equal(smtp.messages.at(-1).status, 'hang');
    c.destroy();
    smtp.setMode('ok');
  });
});

describe('run.mjs', () => {
  const children = new Set();
  let dir;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'standins-test-'));
  });
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  function run(args) {
    const child = spawn(process.execPath, [join(here, 'run.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    return { child, exited, next: () => lines.next(), stderr: () => stderr };
  }

  test('prints its JSON line, serves with the account it wrote, logs each send, exits 0 on SIGTERM', async () => {
    const accountFile = join(dir, 'sa.json');
    const p = run(['--account-file', accountFile, '--smtp-user', 'hub', '--smtp-password', 'pw']);
    const first = await p.next();
    assert.ok(!first.done, `run.mjs printed nothing: ${p.stderr()}`);
    const info = JSON.parse(first.value);
    assert.deepEqual(Object.keys(info).sort(), [
      'accountFile', 'fcmUrl', 'projectId', 'smtpPassword', 'smtpUrl', 'smtpUser',
      'tokenUri', 'twilioFrom', 'twilioSid', 'twilioToken', 'twilioUrl',
    ]);
    assert.equal(info.accountFile, accountFile);
    assert.match(info.fcmUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(info.smtpUrl, /^smtp:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(statSync(accountFile).mode & 0o777, 0o600);

    // This process never saw the key: it is trusted because run.mjs registered it.
    const account = JSON.parse(readFileSync(accountFile, 'utf8'));
    assert.equal(account.token_uri, info.tokenUri);
    const token = await postForm(info.tokenUri, {
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: makeAssertion(account),
    });
    assert.equal(token.status, 200);
    const sent = await postJson(`${info.fcmUrl}/v1/projects/${info.projectId}/messages:send`,
      { message: { token: 'dev-guard-9f3c', notification: { title: 'Visitante en portería' } } },
      { Authorization: `Bearer ${token.body.access_token}` });
    assert.equal(sent.status, 200);

    const seen = [];
    for (;;) {
      const { value, done } = await p.next();
      assert.ok(!done, `run.mjs ended early; it printed ${seen.join(' | ')}`);
      seen.push(value);
      if (value.startsWith('[fcm]')) break;
    }
    assert.equal(seen.at(-1), '[fcm] push to …9f3c "Visitante en portería" → 200');

    // Steering a stand-in this process did not start, as a hub test would.
    assert.deepEqual(await remoteControl(info.twilioUrl, { mode: 'rate429' }), { mode: 'rate429' });
    const sms = await postForm(`${info.twilioUrl}/2010-04-01/Accounts/${info.twilioSid}/Messages.json`,
      { To: '+573001234567', From: info.twilioFrom, Body: 'Pago confirmado' }, basic(info.twilioSid, info.twilioToken));
    assert.equal(sms.status, 429);
    assert.deepEqual((await remoteMessages(info.twilioUrl)).map((m) => m.errorCode), [20429]);
    await remoteReset(info.twilioUrl);
    assert.deepEqual(await remoteMessages(info.twilioUrl), []);
    assert.deepEqual(await smtpMessages(info.smtpUrl), []);

    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    assert.equal(code, 0, p.stderr());
  });

  test('a bad flag is refused with exit status 2 and a line naming it', async () => {
    const p = run(['--fcm-port', 'many']);
    const { code } = await p.exited;
    assert.equal(code, 2);
    assert.match(p.stderr(), /--fcm-port wants a port number/);
  });
});
