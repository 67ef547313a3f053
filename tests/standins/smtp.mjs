// smtp.mjs - a minimal SMTP relay (RFC 5321) on 127.0.0.1 standing in for
// SES or SendGrid, so the hub's e-mail channel (libcurl to HUB_SMTP_URL,
// README "Configuration", docs/fallback.md) runs unchanged against it.
//
// It speaks enough of the protocol for a real client: greeting, EHLO/HELO,
// AUTH PLAIN and LOGIN (RFC 4954, with or without an initial response),
// MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT. There is no
// STARTTLS: the hub is pointed at smtp:// here, never smtps://; a client
// that asks for it anyway gets 502 (it is not in the EHLO reply).
//
// Besides the accepted messages it records every envelope and login
// command it was sent (`commands`: MAIL, RCPT, AUTH, STARTTLS, one entry
// per command line, rejected ones included), so a test can tell how many
// RCPT TO a client really sent and whether a login crossed in clear text.
//
// Failure modes steer RCPT and DATA replies. Because SMTP has no room for
// HTTP control endpoints, the same control travels as private-use commands
// (RFC 5321 §4.1.5 reserves verbs starting with X): XMODE <mode>, XRESET,
// XMESSAGES. setSmtpMode(), resetSmtp() and smtpMessages() send them for a
// test that did not start the relay itself.

import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';

const MODES = ['ok', 'reject_rcpt', 'tempfail', 'hang'];
/** Largest message accepted, advertised as SIZE. */
const DEFAULT_MAX_SIZE = 10 * 1024 * 1024;
/** A command line longer than this is refused (RFC 5321 asks for 512; clients' AUTH lines run longer). */
const MAX_COMMAND_LINE = 4096;
/** Recipients per transaction, the minimum RFC 5321 §4.5.3.1.8 requires servers to take. */
const MAX_RECIPIENTS = 100;

/**
 * Starts the relay. `user`/`password`, when given, are the only AUTH
 * credentials accepted and MAIL without AUTH is refused (530); without them
 * any AUTH succeeds and AUTH is optional. Returns
 *   { port, url, messages, setMode(mode), reset(), close() }
 * `messages` is a live array of accepted messages
 * { time, from, to[], rejected[], data, subject, authUser, size, queueId, status }.
 * `commands` is a live array of { time, verb, arg, tls } for each MAIL,
 * RCPT, AUTH and STARTTLS line; for AUTH, arg is the mechanism only (the
 * credentials are not kept) and tls is always false: this relay has none.
 */
export async function startSmtp({
  port = 0, log = console.log, user = null, password = null, hostname = 'smtp.standin.test', maxSize = DEFAULT_MAX_SIZE,
} = {}) {
  const messages = [];
  const commands = [];
  const sockets = new Set();
  let mode = 'ok';

  function setMode(m) {
    if (!MODES.includes(m)) throw new Error(`unknown mode ${JSON.stringify(m)}; expected one of ${MODES.join(', ')}`);
    mode = m;
  }

  function reset() {
    messages.length = 0;
    commands.length = 0;
    mode = 'ok';
  }

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a client vanishing mid-session is its business
    new Session(socket, { hostname, maxSize, user, password, log, messages, commands, getMode: () => mode, setMode, reset });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address().port;
  return {
    port: bound,
    url: `smtp://127.0.0.1:${bound}`,
    messages,
    commands,
    setMode,
    reset,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    }),
  };
}

/**
 * One SMTP conversation. Commands are cut at LF (a CR before it dropped),
 * message content strictly at CRLF; commands are answered in order, so a
 * pipelining client works too. Owned by its socket: it lives until the socket closes.
 */
class Session {
  constructor(socket, env) {
    this.socket = socket;
    this.env = env;
    this.pending = Buffer.alloc(0);
    this.greeted = false; // EHLO or HELO seen
    this.esmtp = false; // EHLO (not HELO): AUTH is only offered after it
    this.authUser = null;
    this.state = 'command'; // command | data | auth_plain | auth_login_user | auth_login_pass | hung
    this.loginUser = null;
    this.resetTransaction();
    socket.on('data', (chunk) => this.onData(chunk));
    this.reply(`220 ${env.hostname} ESMTP Armonía stand-in ready`);
  }

  resetTransaction() {
    this.from = null;
    this.to = [];
    this.rejected = [];
    this.dataLines = [];
    this.dataSize = 0;
  }

  reply(text) {
    if (!this.socket.destroyed) this.socket.write(`${text}\r\n`);
  }

  onData(chunk) {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      if (this.state === 'hung' || this.socket.destroyed) return;
      if (this.state === 'data') {
        // Only CRLF ends a line of content: a bare LF inside the message is
        // content, so "\n.\n" can never end DATA early (RFC 5321 §4.1.1.4).
        const crlf = this.pending.indexOf(CRLF);
        if (crlf < 0) break;
        const line = this.pending.subarray(0, crlf);
        this.pending = this.pending.subarray(crlf + 2);
        this.onDataLine(line);
        continue;
      }
      const nl = this.pending.indexOf(0x0a);
      if (nl < 0) break;
      let end = nl;
      if (end > 0 && this.pending[end - 1] === 0x0d) end -= 1;
      const line = this.pending.subarray(0, end);
      this.pending = this.pending.subarray(nl + 1);
      this.onLine(line.toString('utf8'));
    }
    // Bounds on what waits for its line end: a client that never sends one is cut off.
    if (this.state !== 'data' && this.pending.length > MAX_COMMAND_LINE) {
      this.reply('500 5.5.6 Line too long');
      this.socket.end();
    } else if (this.state === 'data' && this.pending.length > this.env.maxSize) {
      this.reply('552 5.3.4 Message size exceeds fixed limit');
      this.socket.end();
    }
  }

  onLine(line) {
    if (this.state.startsWith('auth_')) return this.onAuthLine(line);
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1).trim();
    if (['MAIL', 'RCPT', 'AUTH', 'STARTTLS'].includes(verb)) {
      const shown = verb === 'AUTH' ? arg.split(/\s+/)[0] : arg;
      this.env.commands.push({ time: new Date().toISOString(), verb, arg: shown, tls: false });
    }
    switch (verb) {
      case 'EHLO': return this.hello(arg, true);
      case 'HELO': return this.hello(arg, false);
      case 'AUTH': return this.auth(arg);
      case 'MAIL': return this.mail(arg);
      case 'RCPT': return this.rcpt(arg);
      case 'DATA': return this.data(arg);
      case 'RSET':
        this.resetTransaction();
        return this.reply('250 2.0.0 Ok');
      case 'NOOP': return this.reply('250 2.0.0 Ok');
      case 'STARTTLS': return this.reply('502 5.5.1 Error: STARTTLS not offered');
      case 'VRFY': return this.reply('252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery');
      case 'QUIT':
        this.reply('221 2.0.0 Bye');
        return this.socket.end();
      case 'XMODE': return this.control(() => this.env.setMode(arg), `mode ${arg}`);
      case 'XRESET': return this.control(() => this.env.reset(), 'reset');
      case 'XMESSAGES': return this.reply(`250 ${JSON.stringify(this.env.messages)}`);
      case 'XCOMMANDS': return this.reply(`250 ${JSON.stringify(this.env.commands)}`);
      default: return this.reply('500 5.5.2 Error: command not recognized');
    }
  }

  control(action, what) {
    try {
      action();
      this.reply(`250 2.0.0 ${what}`);
    } catch (err) {
      this.reply(`501 5.5.4 ${err.message}`);
    }
  }

  hello(arg, esmtp) {
    if (!arg) return this.reply(`501 5.5.4 Syntax: ${esmtp ? 'EHLO' : 'HELO'} hostname`);
    this.resetTransaction();
    this.greeted = true;
    this.esmtp = esmtp;
    if (!esmtp) return this.reply(`250 ${this.env.hostname}`);
    return this.reply([
      `250-${this.env.hostname} Hello ${arg}`,
      `250-SIZE ${this.env.maxSize}`,
      '250-8BITMIME',
      '250-ENHANCEDSTATUSCODES',
      '250 AUTH PLAIN LOGIN',
    ].join('\r\n'));
  }

  auth(arg) {
    if (!this.esmtp) return this.reply('503 5.5.1 Error: send EHLO first');
    if (this.authUser !== null) return this.reply('503 5.5.1 Error: already authenticated');
    if (this.from !== null) return this.reply('503 5.5.1 Error: MAIL transaction in progress');
    const [mech, initial] = arg.split(/\s+/);
    switch ((mech || '').toUpperCase()) {
      case 'PLAIN':
        if (initial) return this.checkPlain(initial);
        this.state = 'auth_plain';
        return this.reply('334 ');
      case 'LOGIN':
        if (initial) return this.loginUsername(initial);
        this.state = 'auth_login_user';
        return this.reply(`334 ${Buffer.from('Username:').toString('base64')}`);
      default:
        return this.reply('504 5.5.4 Unrecognized authentication type');
    }
  }

  onAuthLine(line) {
    if (line === '*') {
      this.state = 'command';
      return this.reply('501 5.7.0 Authentication aborted');
    }
    if (this.state === 'auth_plain') return this.checkPlain(line);
    if (this.state === 'auth_login_user') return this.loginUsername(line);
    const pass = decodeBase64(line);
    if (pass === null) return this.badBase64();
    return this.finishAuth(this.loginUser, pass);
  }

  /** AUTH PLAIN's one message: authzid NUL authcid NUL passwd (RFC 4616). */
  checkPlain(b64) {
    const text = decodeBase64(b64);
    if (text === null) return this.badBase64();
    const parts = text.split('\0');
    if (parts.length !== 3) {
      this.state = 'command';
      return this.reply('501 5.5.2 Error: malformed PLAIN response');
    }
    return this.finishAuth(parts[1], parts[2]);
  }

  loginUsername(b64) {
    const name = decodeBase64(b64);
    if (name === null) return this.badBase64();
    this.loginUser = name;
    this.state = 'auth_login_pass';
    return this.reply(`334 ${Buffer.from('Password:').toString('base64')}`);
  }

  badBase64() {
    this.state = 'command';
    return this.reply('501 5.5.2 Error: cannot decode response');
  }

  finishAuth(name, pass) {
    this.state = 'command';
    const { user, password } = this.env;
    const ok = user === null ? true : name === user && pass === password;
    if (!ok) {
      this.env.log(`[smtp] auth as ${name} → 535`);
      return this.reply('535 5.7.8 Error: authentication failed');
    }
    this.authUser = name;
    return this.reply('235 2.7.0 Authentication successful');
  }

  mail(arg) {
    if (!this.greeted) return this.reply('503 5.5.1 Error: send HELO/EHLO first');
    if (this.env.user !== null && this.authUser === null) return this.reply('530 5.7.0 Authentication required');
    if (this.from !== null) return this.reply('503 5.5.1 Error: nested MAIL command');
    const m = arg.match(/^FROM:\s*<([^>]*)>(.*)$/i);
    if (!m) return this.reply('501 5.5.4 Syntax: MAIL FROM:<address>');
    for (const param of m[2].trim().split(/\s+/).filter(Boolean)) {
      const [key, value] = param.split('=');
      if (key.toUpperCase() === 'SIZE' && Number(value) > this.env.maxSize) {
        return this.reply('552 5.3.4 Message size exceeds fixed limit');
      }
    }
    this.from = m[1];
    return this.reply('250 2.1.0 Ok');
  }

  rcpt(arg) {
    if (this.from === null) return this.reply('503 5.5.1 Error: need MAIL command');
    const m = arg.match(/^TO:\s*<([^>]+)>/i);
    if (!m) return this.reply('501 5.5.4 Syntax: RCPT TO:<address>');
    const addr = m[1];
    if (this.to.length >= MAX_RECIPIENTS) return this.reply('452 4.5.3 Error: too many recipients');
    const mode = this.env.getMode();
    // A mailbox whose name starts with "unknown" never exists: a permanent
    // failure for one recipient, without switching the whole relay's mode.
    if (mode === 'reject_rcpt' || /^unknown/i.test(addr)) {
      this.rejected.push(addr);
      this.env.log(`[smtp] rcpt ${maskAddress(addr)} → 550`);
      return this.reply(`550 5.1.1 <${addr}>: Recipient address rejected: mailbox unavailable`);
    }
    if (mode === 'tempfail') {
      this.rejected.push(addr);
      this.env.log(`[smtp] rcpt ${maskAddress(addr)} → 451`);
      return this.reply(`451 4.3.0 <${addr}>: Temporary failure, try again later`);
    }
    this.to.push(addr);
    return this.reply('250 2.1.5 Ok');
  }

  data(arg) {
    if (this.from === null) return this.reply('503 5.5.1 Error: need MAIL command');
    if (this.to.length === 0) return this.reply('554 5.5.1 Error: no valid recipients');
    if (arg) return this.reply('501 5.5.4 Syntax: DATA');
    this.state = 'data';
    return this.reply('354 End data with <CR><LF>.<CR><LF>');
  }

  /** One line of the message; "." alone ends it, and a leading dot was doubled by the client (RFC 5321 §4.5.2). */
  onDataLine(line) {
    if (line.length === 1 && line[0] === 0x2e) return this.endData();
    const content = line[0] === 0x2e ? line.subarray(1) : line;
    this.dataSize += content.length + 2;
    // Past the limit only the size is counted, so a huge message cannot exhaust memory.
    if (this.dataSize <= this.env.maxSize) this.dataLines.push(content, CRLF);
    return undefined;
  }

  endData() {
    this.state = 'command';
    if (this.dataSize > this.env.maxSize) {
      this.resetTransaction();
      return this.reply('552 5.3.4 Message size exceeds fixed limit');
    }
    const data = Buffer.concat(this.dataLines).toString('utf8');
    const record = {
      time: new Date().toISOString(),
      from: this.from,
      to: [...this.to],
      rejected: [...this.rejected],
      data,
      subject: subjectOf(data),
      authUser: this.authUser,
      size: this.dataSize,
      queueId: null,
      status: null,
    };
    this.env.messages.push(record);
    this.resetTransaction();
    const who = record.to.map(maskAddress).join(', ');
    if (this.env.getMode() === 'hang') {
      // The message arrived but is never confirmed: the client's timeout must fire.
      record.status = 'hang';
      this.state = 'hung';
      this.env.log(`[smtp] mail to ${who} "${record.subject ?? ''}" → (hang: no answer)`);
      return undefined;
    }
    record.queueId = randomBytes(5).toString('hex').toUpperCase();
    record.status = 250;
    this.env.log(`[smtp] mail to ${who} "${record.subject ?? ''}" → 250`);
    return this.reply(`250 2.0.0 Ok: queued as ${record.queueId}`);
  }
}

const CRLF = Buffer.from('\r\n');

function decodeBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64').toString('utf8');
}

/** "r…@demo.test": enough to tell recipients apart in a log without printing the address. */
export function maskAddress(addr) {
  const at = addr.lastIndexOf('@');
  if (at < 1) return '…';
  return `${addr[0]}…${addr.slice(at)}`;
}

/**
 * The Subject header of a message, unfolded and with RFC 2047 encoded
 * words decoded (the hub's Spanish subjects arrive as =?UTF-8?B?…?=), or
 * null when there is none.
 */
export function subjectOf(data) {
  const end = data.search(/\r?\n\r?\n/);
  const header = (end < 0 ? data : data.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const m = header.match(/^subject:[ \t]*(.*)$/im);
  return m ? decodeEncodedWords(m[1].trim()) : null;
}

function decodeEncodedWords(text) {
  // Whitespace between two adjacent encoded words is not part of the text (RFC 2047 §6.2).
  return text.replace(/(\?=)\s+(?==\?)/g, '$1').replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (whole, charset, enc, payload) => {
    const bytes = enc.toUpperCase() === 'B'
      ? Buffer.from(payload, 'base64')
      : Buffer.from(payload.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    try {
      return new TextDecoder(charset.split('*')[0]).decode(bytes);
    } catch {
      return whole; // a charset we cannot decode stays as it came
    }
  });
}

/**
 * Client side of the X-commands: connects to url (smtp://host:port), sends
 * `command`, and resolves with the reply's text after the code; rejects on
 * anything but 250.
 */
export function smtpControl(url, command, { timeout = 5000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const replies = [];
    let buf = '';
    const timer = setTimeout(() => socket.destroy(new Error(`${url}: no answer to ${command} in ${timeout} ms`)), timeout);
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line[3] === '-') continue; // a multi-line reply goes on
        replies.push(line);
        if (replies.length === 1) socket.write(`${command}\r\n`);
        else if (replies.length === 2) socket.write('QUIT\r\n');
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const answer = replies[1];
      if (!answer) return reject(new Error(`${url}: connection closed before ${command} was answered`));
      if (!answer.startsWith('250 ')) return reject(new Error(`${url}: ${command} → ${answer}`));
      return resolve(answer.slice(4));
    });
  });
}

/** Sets the mode of the relay at url (started by any process). */
export async function setSmtpMode(url, mode) {
  await smtpControl(url, `XMODE ${mode}`);
}

/** Clears the relay's records and puts it back in mode 'ok'. */
export async function resetSmtp(url) {
  await smtpControl(url, 'XRESET');
}

/** The messages the relay at url accepted. */
export async function smtpMessages(url) {
  return JSON.parse(await smtpControl(url, 'XMESSAGES'));
}

/** The MAIL, RCPT, AUTH and STARTTLS commands the relay at url was sent. */
export async function smtpCommands(url) {
  return JSON.parse(await smtpControl(url, 'XCOMMANDS'));
}
