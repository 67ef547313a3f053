// twilio.mjs - stand-in for Twilio's Messages API (REST 2010-04-01) on
// 127.0.0.1, so the hub's SMS channel (docs/fallback.md, HUB_TWILIO_BASE_URL)
// runs unchanged against it.
//
//   POST /2010-04-01/Accounts/{AccountSid}/Messages.json
//     HTTP Basic (Account SID : Auth Token), form fields To, From, Body
//     → 201 a Message resource, or 4xx/5xx {"code","message","more_info","status"}
//
// Twilio's test-credential magic numbers behave as documented (To
// +15005550001 invalid, +15005550009 not SMS-capable, …) so a test can
// provoke each permanent failure without a mode. num_segments is counted
// the way carriers bill: GSM-7 (160 per message, 153 per part) unless one
// character needs UCS-2 (70, 67).

import { randomBytes } from 'node:crypto';
import {
  ModeSwitch, clip, closeHttp, listenHttp, maskTail, readBody, sendJson, serveControl,
} from './common.mjs';

const API = '2010-04-01';
/** Twilio refuses bodies longer than this many characters. */
const MAX_BODY_CHARS = 1600;

const MODES = ['ok', 'fail500', 'fail503', 'rate429', 'hang'];
const STATUS_MODES = { 200: 'ok', 201: 'ok', 429: 'rate429', 500: 'fail500', 503: 'fail503' };

/** A Twilio REST error body; more_info is the page of the error's code. */
function twilioError(status, code, message) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

const MODE_ANSWERS = {
  fail500: [500, twilioError(500, 20500, 'An internal server error has occurred')],
  fail503: [503, twilioError(503, 20503, 'Service is unavailable. Please try again'), { 'Retry-After': '1' }],
  rate429: [429, twilioError(429, 20429, 'Too Many Requests')],
};

/**
 * Twilio's magic To numbers (test credentials): each always fails with its
 * error, whatever the account. Keyed by number → (to, from) → [code, message].
 */
const MAGIC_TO = {
  '+15005550001': (to) => [21211, `The 'To' number ${to} is not a valid phone number.`],
  '+15005550002': (to, from) => [21612, `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number: ${from} via SMS.`],
  '+15005550003': (to) => [21408, `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${to}.`],
  '+15005550004': () => [21610, 'Attempt to send to unsubscribed recipient'],
  '+15005550009': (to) => [21614, `'To' number ${to} is not a valid mobile number`],
};
const MAGIC_FROM = {
  '+15005550001': (from) => [21212, `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`],
  '+15005550007': (from) => [21606, `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`],
  '+15005550008': () => [21611, "This 'From' number has exceeded the maximum number of queued messages"],
};

const E164 = /^\+[1-9]\d{6,14}$/;
/** A sender that is not a phone number: a 5–6 digit short code or an alphanumeric sender ID. */
const OTHER_SENDER = /^(\d{5,6}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$/;

// GSM 03.38 default alphabet; the extension table's characters cost two septets (escape + code).
const GSM_BASIC = new Set('@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?'
  + '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà');
const GSM_EXTENSION = new Set('\f^{}\\[~]|€');

/**
 * How an SMS body is encoded and how many segments it is billed as:
 * { encoding: 'GSM-7' | 'UCS-2', segments }. A part of a concatenated
 * message loses room to the UDH (153 septets / 67 UCS-2 units), and an
 * escape pair or a surrogate pair is never split across parts.
 */
export function smsSegments(body) {
  const chars = [...String(body)];
  const gsm = chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENSION.has(c));
  const cost = gsm ? (c) => (GSM_EXTENSION.has(c) ? 2 : 1) : (c) => c.length; // septets, or UTF-16 units
  const [single, part] = gsm ? [160, 153] : [70, 67];
  const total = chars.reduce((n, c) => n + cost(c), 0);
  if (total <= single) return { encoding: gsm ? 'GSM-7' : 'UCS-2', segments: 1 };
  let segments = 1;
  let used = 0;
  for (const c of chars) {
    if (used + cost(c) > part) {
      segments += 1;
      used = 0;
    }
    used += cost(c);
  }
  return { encoding: gsm ? 'GSM-7' : 'UCS-2', segments };
}

/** RFC 2822 date in GMT as Twilio writes it: "Thu, 24 Aug 2023 05:01:45 +0000". */
function rfc2822(date) {
  return date.toUTCString().replace('GMT', '+0000');
}

/**
 * Starts the stand-in. Returns
 *   { url, port, accountSid, authToken, messages, setMode(mode, sequence?), reset(), close() }
 * `messages` is a live array of every create request with the answer it
 * got (reset() empties it in place); each is one log() line.
 */
export async function startTwilio({
  port = 0,
  accountSid = `AC${randomBytes(16).toString('hex')}`,
  authToken = randomBytes(16).toString('hex'),
  log = console.log,
} = {}) {
  const messages = [];
  const modes = new ModeSwitch(MODES, STATUS_MODES);
  const expectedAuth = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;

  function reset() {
    messages.length = 0;
    modes.set('ok');
  }

  async function handle(req, res) {
    const path = new URL(req.url, 'http://standin').pathname;
    if (await serveControl(req, res, path, { modes, messages, reset })) return;
    const m = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/);
    if (!m) return sendJson(res, 404, twilioError(404, 20404, `The requested resource ${path} was not found`));
    if (req.method !== 'POST') {
      return sendJson(res, 405, twilioError(405, 20004, `Method ${req.method} not allowed on this stand-in`));
    }
    return createMessage(req, res, decodeURIComponent(m[1]));
  }

  async function createMessage(req, res, pathSid) {
    const raw = (await readBody(req)).toString('utf8');
    const isForm = String(req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded');
    const form = new URLSearchParams(isForm ? raw : '');
    const to = form.get('To');
    const from = form.get('From');
    const body = form.get('Body');
    const serviceSid = form.get('MessagingServiceSid');
    const { encoding, segments } = smsSegments(body ?? '');
    const record = {
      time: new Date().toISOString(),
      to,
      from,
      body,
      encoding,
      numSegments: segments,
      sid: null,
      status: null,
      errorCode: null,
      answer: null,
    };
    messages.push(record);

    const answer = (status, payload, headers) => {
      record.status = status;
      record.errorCode = status >= 400 ? payload.code : null;
      record.answer = payload;
      const parts = `${segments} segment${segments === 1 ? '' : 's'}`;
      log(`[twilio] sms to ${maskTail(to)} (${parts}): "${clip(body, 24)}" → ${status}${record.errorCode ? ` ${record.errorCode}` : ''}`);
      sendJson(res, status, payload, headers);
    };
    const fail = (code, message) => answer(400, twilioError(400, code, message));

    // Twilio compares the credentials and the account named in the path; any mismatch is 20003.
    if (req.headers.authorization !== expectedAuth || pathSid !== accountSid) {
      return answer(401, twilioError(401, 20003, 'Authenticate'), { 'WWW-Authenticate': 'Basic realm="Twilio API"' });
    }

    // The request's own faults first, in the order Twilio reports them.
    if (!to) return fail(21604, "A 'To' phone number is required.");
    if (!from && !serviceSid) return fail(21603, "A 'From' phone number is required.");
    if (!body && !form.get('MediaUrl')) return fail(21602, 'Message body is required.');
    if ([...body ?? ''].length > MAX_BODY_CHARS) return fail(21617, 'The concatenated message body exceeds the 1600 character limit.');

    const mode = modes.next();
    if (mode === 'hang') {
      // Keep the request open and never answer: the hub's timeout must fire.
      record.status = 'hang';
      log(`[twilio] sms to ${maskTail(to)}: "${clip(body, 24)}" → (hang: no answer)`);
      return undefined;
    }
    if (MODE_ANSWERS[mode]) return answer(...MODE_ANSWERS[mode]);

    if (MAGIC_TO[to]) return fail(...MAGIC_TO[to](to, from));
    if (!E164.test(to)) return fail(21211, `The 'To' number ${to} is not a valid phone number.`);
    if (from) {
      if (MAGIC_FROM[from]) return fail(...MAGIC_FROM[from](from));
      if (!E164.test(from) && !OTHER_SENDER.test(from)) {
        return fail(21212, `The 'From' number ${from} is not a valid phone number, shortcode, or alphanumeric sender ID.`);
      }
      if (from === to) return fail(21266, `'To' and 'From' number cannot be the same: ${to}`);
    }

    const sid = `SM${randomBytes(16).toString('hex')}`;
    const now = rfc2822(new Date());
    record.sid = sid;
    return answer(201, {
      account_sid: accountSid,
      api_version: API,
      body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: from ?? null,
      messaging_service_sid: serviceSid ?? null,
      num_media: '0',
      // A Messaging Service picks the sender later, so Twilio reports 0 segments at first.
      num_segments: serviceSid && !from ? '0' : String(segments),
      price: null,
      price_unit: 'USD',
      sid,
      status: serviceSid && !from ? 'accepted' : 'queued',
      subresource_uris: { media: `/${API}/Accounts/${accountSid}/Messages/${sid}/Media.json` },
      to,
      uri: `/${API}/Accounts/${accountSid}/Messages/${sid}.json`,
    });
  }

  const { server, port: bound } = await listenHttp(handle, port);
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    accountSid,
    authToken,
    messages,
    setMode: (mode, sequence) => modes.set(mode, sequence),
    reset,
    close: () => closeHttp(server),
  };
}
