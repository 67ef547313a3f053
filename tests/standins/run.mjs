#!/usr/bin/env node
// run.mjs - runs the FCM (with its OAuth2 token endpoint), Twilio and SMTP
// stand-ins in one process, for the demo script or a test that starts them
// apart from itself.
//
//   node tests/standins/run.mjs [--fcm-port N] [--twilio-port N] [--smtp-port N]
//        [--account-file PATH] [--project ID] [--twilio-sid AC…] [--twilio-token T]
//        [--smtp-user U --smtp-password P]
//
// It makes a service account whose token_uri is the stand-in's own /token,
// writes it to --account-file (mode 0600; a temporary file, removed at
// exit, when the flag is absent) and registers its key. Then it prints ONE
// JSON line on stdout:
//
//   {"fcmUrl":…,"tokenUri":…,"projectId":…,"twilioUrl":…,"twilioSid":…,"twilioToken":…,
//    "twilioFrom":…,"smtpUrl":…,"smtpUser":…,"smtpPassword":…,"accountFile":…}
//
// and after it one line per request the stand-ins receive ("[fcm] push to
// …", "[twilio] sms to …", "[smtp] mail to …", "[oauth] token for …"),
// until SIGTERM or SIGINT, when it closes everything and exits 0. A port
// of 0 (the default) lets the kernel choose. Exit status 2: bad flags;
// 1: a stand-in could not start (e.g. its port is taken).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeServiceAccount, registerAccount, startFcm } from './fcm.mjs';
import { startSmtp } from './smtp.mjs';
import { startTwilio } from './twilio.mjs';

/** Twilio's magic sender that passes every check; a sensible TWILIO_PHONE_NUMBER for the demo. */
const MAGIC_FROM = '+15005550006';

function usage(message) {
  process.stderr.write(`run.mjs: ${message}\n`);
  process.exit(2);
}

function parseFlags() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'fcm-port': { type: 'string', default: '0' },
        'twilio-port': { type: 'string', default: '0' },
        'smtp-port': { type: 'string', default: '0' },
        'account-file': { type: 'string' },
        project: { type: 'string', default: 'armonia-demo' },
        'twilio-sid': { type: 'string' },
        'twilio-token': { type: 'string' },
        'smtp-user': { type: 'string' },
        'smtp-password': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage(err.message);
  }
  for (const flag of ['fcm-port', 'twilio-port', 'smtp-port']) {
    const n = Number(values[flag]);
    if (!/^\d+$/.test(values[flag]) || n > 65535) usage(`--${flag} wants a port number 0-65535, not "${values[flag]}"`);
    values[flag] = n;
  }
  if (values['twilio-sid'] !== undefined && !/^AC[0-9a-f]{32}$/.test(values['twilio-sid'])) {
    usage(`--twilio-sid wants "AC" and 32 hex digits, not "${values['twilio-sid']}"`);
  }
  if ((values['smtp-user'] === undefined) !== (values['smtp-password'] === undefined)) {
    usage('--smtp-user and --smtp-password go together');
  }
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(values.project)) {
    usage(`--project wants a Google project id (6-30 of a-z, 0-9, -), not "${values.project}"`);
  }
  return values;
}

/** Starts one stand-in; a failure names the flag whose port could not be used. */
async function start(flag, starter) {
  try {
    return await starter();
  } catch (err) {
    process.stderr.write(`run.mjs: cannot start the stand-in for --${flag}: ${err.message}\n`);
    process.exit(1);
  }
}

const flags = parseFlags();
// Nobody reading stdout any more (the demo's reader exited) must not kill the stand-ins.
process.stdout.on('error', () => {});
const log = (line) => process.stdout.write(`${line}\n`);

const fcm = await start('fcm-port', () => startFcm({ port: flags['fcm-port'], log }));
const twilio = await start('twilio-port', () => startTwilio({
  port: flags['twilio-port'], accountSid: flags['twilio-sid'], authToken: flags['twilio-token'], log,
}));
const smtp = await start('smtp-port', () => startSmtp({
  port: flags['smtp-port'], user: flags['smtp-user'] ?? null, password: flags['smtp-password'] ?? null, log,
}));

let tempDir = null;
let accountFile = flags['account-file'];
if (!accountFile) {
  tempDir = mkdtempSync(join(tmpdir(), 'armonia-standins-'));
  accountFile = join(tempDir, 'service-account.json');
}
const account = makeServiceAccount({ tokenUri: fcm.tokenUri, projectId: flags.project });
writeFileSync(accountFile, `${JSON.stringify(account, null, 2)}\n`, { mode: 0o600 });
// Also over HTTP, so the key is known by the same path a stand-in in
// another process would learn it.
await registerAccount(fcm.url, account);

log(JSON.stringify({
  fcmUrl: fcm.url,
  tokenUri: fcm.tokenUri,
  projectId: flags.project,
  twilioUrl: twilio.url,
  twilioSid: twilio.accountSid,
  twilioToken: twilio.authToken,
  twilioFrom: MAGIC_FROM,
  smtpUrl: smtp.url,
  smtpUser: flags['smtp-user'] ?? null,
  smtpPassword: flags['smtp-password'] ?? null,
  accountFile,
}));

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await Promise.all([fcm.close(), twilio.close(), smtp.close()]);
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
