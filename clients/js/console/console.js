// console.js - the guard console (portería): panic alerts first,
// announcements and who attended each panic on the side. One ES module, no
// framework, no build: the hub serves this folder at /console/ and the
// client library at /js/.
//
// The token comes from the backend's tokenUrl (fetched with the browser's
// cookies, at start and whenever the client needs a new one) or, as a
// fallback, is pasted; it is kept in sessionStorage (this tab only, never in
// the URL). The resume point (lastSeq) and what is on screen are saved there
// too, so a reload, a dropped connection or a renewed session neither loses
// nor repeats an alert: the client resumes from lastSeq and skips ids it has
// delivered, and the page skips ids it already shows.
//
// Whenever alerts cannot arrive (no connection for OFFLINE_GRACE_MS, session
// over) or cannot sound (autoplay blocked), a full-width banner says so in
// plain words, with what to do, and a warning tone repeats while it sounds.
//
// Configuration (see clients/js/README.md, "Token URL for the console"):
// tokenUrl from a <meta name="armonia-token-url" content="…">,
// window.armoniaConsoleConfig = {tokenUrl} set before this module runs, or
// the page's ?tokenUrl= parameter (in that order).

import { createHubClient, jwtPayload, jwtExpiryMs } from '/js/index.js';

const KEY = {
  token: 'armonia.console.token',
  lastSeq: 'armonia.console.lastSeq',
  screen: 'armonia.console.screen',
};
const MAX_ALERTS = 50; // alerts kept on screen (claimed ones are dropped first)
const MAX_ACTIVITY = 40; // announcements/attentions kept in the side list
const ALARM_EVERY_MS = 4000; // the alarm repeats while an alert is unattended
const OFFLINE_GRACE_MS = 3000; // a connection not (yet) open this long turns the console alarming
const WARN_EVERY_MS = 8000; // the warning tone repeats while alerts cannot arrive
const TOKEN_FETCH_TIMEOUT_MS = 10_000; // one request to tokenUrl
const RENEW_RETRY_MS = 30_000; // session over and a tokenUrl: try it again this often on its own
const TOKEN_MIN_LIFE_MS = 5000; // a token with less life left than this is not used
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's largest delay

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'), connText: $('conn-text'), who: $('who'), signout: $('signout'), notify: $('notify'),
  signin: $('signin'), form: $('signin-form'), token: $('token'), signinError: $('signin-error'), signinRenew: $('signin-renew'),
  alarm: $('alarm'), alarmOffline: $('alarm-offline'), alarmOfflineDetail: $('alarm-offline-detail'),
  alarmExpired: $('alarm-expired'), alarmExpiredWhy: $('alarm-expired-why'), alarmExpiredAction: $('alarm-expired-action'),
  renew: $('renew'), paste: $('paste'), pasteForm: $('paste-form'), pasteToken: $('paste-token'), pasteError: $('paste-error'), alarmSound: $('alarm-sound'),
  app: $('app'), alerts: $('alerts'), noAlerts: $('no-alerts'), activity: $('activity'), noActivity: $('no-activity'),
  detail: $('status-detail'),
};

/**
 * The page's configuration: {tokenUrl} (an absolute http(s) URL or null)
 * and error (a sentence when the given tokenUrl is unusable).
 */
function readConfig() {
  // What the page's owner set wins over a link's query string.
  const given = document.querySelector('meta[name="armonia-token-url"]')?.content
    || window.armoniaConsoleConfig?.tokenUrl
    || new URLSearchParams(location.search).get('tokenUrl')
    || null;
  if (!given) return { tokenUrl: null, error: '' };
  try {
    const u = new URL(given, location.href);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http');
    return { tokenUrl: u.toString(), error: '' };
  } catch {
    return { tokenUrl: null, error: 'La dirección de sesión (tokenUrl) configurada no es válida: avise a la administración. Mientras tanto, pegue un token.' };
  }
}
const cfg = readConfig();

const store = {
  get(k) {
    try {
      return sessionStorage.getItem(k);
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      if (v === null || v === undefined) sessionStorage.removeItem(k);
      else sessionStorage.setItem(k, v);
    } catch {
      // Storage full or disabled: the console still works, without resume across reloads.
    }
  },
};

// ----- what is on screen ------------------------------------------------

/** eventId → {id, ts, data, claimedBy, sending}; newest first on screen. */
const alerts = new Map();
/** [{id, kind, ts, data}] newest first: what this connection really gets besides panics. */
let activity = [];
let hub = null;

function saveScreen() {
  store.set(KEY.screen, JSON.stringify({ alerts: [...alerts.values()].map(({ sending, ...a }) => a), activity }));
  if (hub?.lastSeq !== undefined) store.set(KEY.lastSeq, String(hub.lastSeq));
}

function restoreScreen() {
  try {
    const s = JSON.parse(store.get(KEY.screen) ?? 'null');
    for (const a of s?.alerts ?? []) alerts.set(a.id, a);
    activity = Array.isArray(s?.activity) ? s.activity : [];
  } catch {
    // A damaged saved screen is not worth stopping for.
  }
}

const money = (amount, currency) => {
  const n = Number(amount);
  if (!Number.isFinite(n)) return `${amount ?? ''} ${currency ?? ''}`.trim();
  try {
    return new Intl.NumberFormat('es-CO', { style: 'currency', currency: currency || 'COP', maximumFractionDigits: 0 }).format(n);
  } catch {
    return `${n} ${currency ?? ''}`.trim();
  }
};

const PAYMENT_STATUS = { PENDING: 'pendiente', COMPLETED: 'confirmado', FAILED: 'fallido', CANCELLED: 'cancelado', REFUNDED: 'reembolsado' };

/** "hace 12 s", "hace 3 min", "hace 2 h" from a ms timestamp. */
function ago(ts) {
  const s = Math.max(0, Math.floor((Date.now() - ts) / 1000));
  if (s < 60) return `hace ${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `hace ${m} min`;
  return `hace ${Math.floor(m / 60)} h`;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function renderAlert(a) {
  const d = a.data ?? {};
  const unit = d.unitId ? `Unidad ${d.unitId}` : 'Unidad sin dato';
  const who = d.userName || d.userId || 'residente sin nombre';
  const card = el('article', { class: `alert${a.claimedBy ? ' claimed' : ''}`, 'data-event-id': String(a.id), 'aria-label': `Pánico en ${unit}` },
    el('h3', { text: `¡PÁNICO! ${unit}` }),
    el('p', { class: 'meta', text: `${who} · ` }, el('span', { class: 'since', 'data-ts': String(a.ts), text: ago(a.ts) })),
    d.message ? el('p', { class: 'message', text: `«${d.message}»` }) : null);
  if (a.claimedBy) {
    card.append(el('p', { class: 'claimed-by', text: `Atendida por ${a.claimedBy}` }));
  } else {
    const btn = el('button', { type: 'button', class: 'btn btn-attend', 'aria-label': `Atender pánico de ${unit}` });
    btn.textContent = a.sending ? 'Enviando…' : 'Atender';
    btn.disabled = Boolean(a.sending);
    btn.addEventListener('click', () => attend(a.id));
    card.append(el('div', { class: 'actions' }, btn));
  }
  return card;
}

function renderAlerts() {
  // Keep keyboard focus on the same alert's button across re-renders.
  const focusedId = document.activeElement?.closest?.('.alert')?.dataset.eventId;
  const list = [...alerts.values()].sort((x, y) => (x.claimedBy ? 1 : 0) - (y.claimedBy ? 1 : 0) || y.ts - x.ts);
  ui.alerts.replaceChildren(...list.map(renderAlert));
  ui.noAlerts.hidden = list.length > 0;
  if (focusedId) ui.alerts.querySelector(`.alert[data-event-id="${CSS.escape(focusedId)}"] button`)?.focus();
}

function describeActivity(item) {
  const d = item.data ?? {};
  switch (item.kind) {
    case 'panic_claimed':
      return `${d.guardName || d.guardId || 'Otro guarda'} atendió el pánico de la unidad ${d.unitId ?? '?'}`;
    case 'visitor':
      return `Visitante ${d.name ? `«${d.name}»` : ''} para la unidad ${d.unitId ?? '?'}`.replace(/\s+/g, ' ');
    case 'payment':
      return `Pago ${PAYMENT_STATUS[d.status] ?? String(d.status ?? '').toLowerCase()}: ${money(d.amount, d.currency)}`;
    case 'announcement':
      return `Comunicado${d.type === 'emergency' ? ' de emergencia' : ''}: ${d.title ?? ''}`;
    default:
      return `Aviso «${item.kind}»`;
  }
}

function renderActivity() {
  ui.activity.replaceChildren(...activity.map((item) => el('li', { class: item.kind, 'data-event-id': String(item.id) },
    el('span', { text: describeActivity(item) }),
    el('span', { class: 'when', 'data-ts': String(item.ts), text: ago(item.ts) }))));
  ui.noActivity.hidden = activity.length > 0;
}

function tickTimes() {
  for (const s of document.querySelectorAll('[data-ts]')) s.textContent = ago(Number(s.dataset.ts));
}

// ----- sound ------------------------------------------------------------
// Tones are short WAV clips played by <audio> elements: play() rejects with
// NotAllowedError while the browser's autoplay policy blocks sound, which
// tells us reliably that the alarm would be mute (an AudioContext may report
// 'running' and still be silent).

/**
 * An object URL of an 8-bit mono WAV made of [hz, ms] square-wave parts
 * (hz 0: silence).
 */
function wavUrl(parts, rate = 16000) {
  const n = parts.reduce((sum, [, ms]) => sum + Math.round((rate * ms) / 1000), 0);
  const v = new DataView(new ArrayBuffer(44 + n));
  const str = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
  str(0, 'RIFF');
  v.setUint32(4, 36 + n, true);
  str(8, 'WAVE');
  str(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); // PCM
  v.setUint16(22, 1, true); // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate, true);
  v.setUint16(32, 1, true);
  v.setUint16(34, 8, true);
  str(36, 'data');
  v.setUint32(40, n, true);
  let o = 44;
  for (const [hz, ms] of parts) {
    const len = Math.round((rate * ms) / 1000);
    for (let i = 0; i < len; i++) v.setUint8(o++, hz > 0 ? (Math.floor((2 * hz * i) / rate) % 2 ? 80 : 176) : 128);
  }
  return URL.createObjectURL(new Blob([v.buffer], { type: 'audio/wav' }));
}

const TONES = {
  probe: [[0, 60]], // silence: only asks the browser whether sound may play
  panic: [[880, 250], [0, 50], [660, 250], [0, 50], [880, 250], [0, 50], [660, 250]],
  warning: [[440, 450], [0, 150], [330, 700]],
};
const players = {}; // tone name → HTMLAudioElement, created on first use
/** 'unknown' until the first try, then 'ok', 'blocked' (autoplay policy) or 'none' (no audio in this browser). */
let sound = 'unknown';
const played = { panic: 0, warning: 0 }; // tones that really started, for the status
let alarmTimer = null;
let warnTimer = null;

/** Plays a tone; resolves true when it started. Records whether sound is blocked. */
async function play(name) {
  if (typeof Audio === 'undefined') {
    sound = 'none';
    return false;
  }
  let a = players[name];
  if (!a) {
    a = new Audio(wavUrl(TONES[name]));
    players[name] = a;
  }
  try {
    a.currentTime = 0;
    await a.play();
  } catch (err) {
    if (err?.name === 'NotAllowedError') {
      sound = 'blocked';
      render();
    }
    return false;
  }
  if (name in played) played[name]++;
  if (sound !== 'ok') {
    sound = 'ok';
    render();
  }
  return true;
}

/** A user gesture lets sound play: try again while it is blocked or untested. */
function onGesture() {
  if (sound !== 'ok') play('probe');
}

/** Sounds now and every ALARM_EVERY_MS while some alert is unattended. */
function alarm() {
  if (alarmTimer) return;
  const ring = () => {
    if (![...alerts.values()].some((a) => !a.claimedBy)) {
      alarmTimer = null;
      return;
    }
    play('panic');
    alarmTimer = setTimeout(ring, ALARM_EVERY_MS);
  };
  ring();
}

/** Starts or stops the warning tone that repeats while alerts cannot arrive. */
function warning(on) {
  if (!on) {
    clearTimeout(warnTimer);
    warnTimer = null;
    return;
  }
  if (warnTimer) return;
  const ring = () => {
    play('warning');
    warnTimer = setTimeout(ring, WARN_EVERY_MS);
  };
  ring();
}

// ----- system notifications and the screen ----------------------------

/** Shows a system notification while the tab is hidden, where allowed. */
function notify(title, body, tag) {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted' || !document.hidden) return;
  try {
    new Notification(title, { body, tag, requireInteraction: true });
  } catch {
    // Some browsers allow notifications only from a service worker: the banner and the tone remain.
  }
}

function showNotifyButton() {
  ui.notify.hidden = typeof Notification === 'undefined' || Notification.permission !== 'default' || session === 'none';
}

/** Asks for notification permission; only call from a user gesture. */
function askNotifications() {
  if (typeof Notification === 'undefined' || Notification.permission !== 'default') return;
  Promise.resolve(Notification.requestPermission()).catch(() => {}).finally(showNotifyButton);
}

let wakeLock = null; // WakeLockSentinel while the screen is kept on
/** Keeps the screen on while the console is visible, where the browser allows it. */
async function keepAwake() {
  if (!navigator.wakeLock || wakeLock || document.visibilityState !== 'visible' || session === 'none') return;
  try {
    wakeLock = await navigator.wakeLock.request('screen');
    wakeLock.addEventListener('release', () => {
      wakeLock = null;
    });
  } catch {
    wakeLock = null; // refused (battery saver, policy): the console works without it
  }
}

// ----- what the guard must know: render -------------------------------

/** 'none' (sign-in form), 'active' (a client is running or starting) or 'expired' (no usable token). */
let session = 'none';
let expiredWhy = ''; // why the session is over, in words
let link = 'closed'; // the client's state
let linkDownSince = Date.now(); // when the connection was last not open
let linkDetail = ''; // the next retry, in words
let linkCode = null; // the last close code, for troubleshooting only
let wasAlarming = { offline: false, expired: false };

/**
 * Brings the whole page in line with session, link and sound: the banner,
 * the connection pill, the empty-list text, the title and the warning tone.
 * Cheap; called on every change and once a second (the grace period).
 */
function render() {
  const active = session === 'active';
  const expired = session === 'expired';
  const down = active && link !== 'open';
  const offline = down && Date.now() - linkDownSince >= OFFLINE_GRACE_MS;
  const blocked = session !== 'none' && sound === 'blocked';

  ui.alarmOffline.hidden = !offline;
  ui.alarmOfflineDetail.textContent = linkDetail;
  ui.alarmExpired.hidden = !expired;
  ui.alarmExpiredWhy.textContent = expiredWhy;
  ui.renew.hidden = !cfg.tokenUrl;
  ui.alarmExpiredAction.textContent = cfg.tokenUrl
    ? 'Toque «Renovar sesión». Si no funciona, pida a la administración un token nuevo y péguelo abajo.'
    : 'Pida a la administración un token nuevo y péguelo abajo.';
  if (expired && !wasAlarming.expired) ui.paste.open = !cfg.tokenUrl; // pasting is the way when there is no tokenUrl
  ui.alarmSound.hidden = !blocked;
  ui.alarm.hidden = !(offline || expired || blocked);
  document.body.classList.toggle('alarming', offline || expired);
  document.body.classList.toggle('panicking', [...alerts.values()].some((a) => !a.claimedBy));

  if (expired) setConn('off', 'Sesión terminada');
  else if (!active) setConn('off', 'Desconectado');
  else if (link === 'open') setConn('on', 'Conectado');
  else if (link === 'closed') setConn('off', 'Desconectado');
  else setConn('retry', link === 'reconnecting' || linkCode !== null ? 'Reconectando…' : 'Conectando…');
  ui.detail.textContent = down && !offline ? linkDetail : ''; // once offline, the banner says it

  // Never reassure ("Sin alertas") while alerts cannot arrive.
  if (active && link === 'open') ui.noAlerts.textContent = 'Sin alertas. Las alertas de pánico aparecen aquí al instante.';
  else if (down && !offline) ui.noAlerts.textContent = 'Conectando con la central…';
  else ui.noAlerts.textContent = 'Las alertas de pánico NO pueden llegar ahora: vea el aviso de arriba.';
  ui.noAlerts.classList.toggle('empty-warn', offline || expired);

  const open = [...alerts.values()].filter((a) => !a.claimedBy).length;
  if (open) document.title = `(${open}) ¡PÁNICO! · Portería`;
  else if (expired) document.title = '⚠ SESIÓN TERMINADA · Portería';
  else if (offline) document.title = '⚠ SIN CONEXIÓN · Portería';
  else document.title = 'Portería · Armonía';

  warning(offline || expired);
  if (offline && !wasAlarming.offline) notify('Sin conexión con la central', 'Las alertas de pánico NO están llegando. Revise internet.', 'armonia-offline');
  if (expired && !wasAlarming.expired) notify('La sesión de la consola terminó', 'Las alertas de pánico NO están llegando. Renueve la sesión.', 'armonia-expired');
  wasAlarming = { offline, expired };
  showNotifyButton();
}

function setConn(kind, text) {
  ui.conn.className = `conn conn-${kind}`;
  ui.connText.textContent = text;
  if (linkCode !== null) ui.conn.dataset.closeCode = String(linkCode);
  else delete ui.conn.dataset.closeCode;
}

// ----- the hub ----------------------------------------------------------

function onState(s) {
  if (s.state === 'open') {
    link = 'open';
    linkDetail = '';
    linkCode = null;
  } else {
    if (link === 'open') linkDownSince = Date.now();
    link = s.state;
    if (s.code !== undefined) linkCode = s.code;
    if (s.state === 'reconnecting') {
      const secs = Math.ceil(s.delay / 1000);
      linkDetail = `Se perdió la conexión con la central. Nuevo intento ${secs > 0 ? `en ${secs} s` : 'ahora'}.`;
    } else if (s.state === 'connecting') {
      linkDetail = s.attempt > 0 ? `Intentando conectar con la central (intento ${s.attempt + 1}).` : 'Conectando con la central…';
    } else {
      linkDetail = 'La consola dejó de intentar conectarse.';
    }
  }
  render();
}

function onEvent(e) {
  switch (e.kind) {
    case 'panic':
      if (!alerts.has(e.id)) {
        alerts.set(e.id, { id: e.id, ts: e.ts ?? Date.now(), data: e.data ?? {}, claimedBy: null });
        trimAlerts();
        renderAlerts();
        alarm();
        const d = e.data ?? {};
        notify(`¡PÁNICO! ${d.unitId ? `Unidad ${d.unitId}` : ''}`.trim(), `${d.userName || 'Un residente'}${d.message ? `: «${d.message}»` : ''}`, `armonia-panic-${e.id}`);
      }
      break;
    case 'panic_claimed': {
      const a = alerts.get(e.data?.eventId);
      if (a && !a.claimedBy) {
        a.claimedBy = e.data.guardName || e.data.guardId || 'otro guarda';
        a.sending = false;
        renderAlerts();
      }
      addActivity(e);
      break;
    }
    default:
      // Whatever else this connection gets (announcements to all, the guard's own user room).
      addActivity(e);
      break;
  }
  render();
  saveScreen();
}

function addActivity(e) {
  if (activity.some((x) => x.id === e.id)) return;
  activity.unshift({ id: e.id, kind: e.kind, ts: e.ts ?? Date.now(), data: e.data ?? {} });
  activity = activity.slice(0, MAX_ACTIVITY);
  renderActivity();
}

function trimAlerts() {
  if (alerts.size <= MAX_ALERTS) return;
  const byAge = [...alerts.values()].sort((x, y) => (y.claimedBy ? 1 : 0) - (x.claimedBy ? 1 : 0) || x.ts - y.ts);
  for (const a of byAge.slice(0, alerts.size - MAX_ALERTS)) alerts.delete(a.id);
}

function attend(id) {
  const a = alerts.get(id);
  if (!a || a.claimedBy || !hub) return;
  a.sending = true;
  renderAlerts();
  // The hub claims the alert on the first ack and tells every console (panic_claimed).
  hub.ack(id);
}

let refusal = null; // {token, message}: the token the hub last refused, and its words

function onError(err) {
  if (err.ackId && alerts.has(err.ackId)) {
    const a = alerts.get(err.ackId);
    a.sending = false;
    renderAlerts();
    ui.detail.textContent = `No se pudo atender la alerta: ${err.message}`;
    return;
  }
  if (err.code === 'unauthorized') refusal = { token: store.get(KEY.token), message: err.message };
  else if (err.code === 'resume_gap') ui.detail.textContent = 'Se perdieron eventos antiguos mientras la consola estuvo desconectada.';
}

function hubUrl() {
  const u = new URL('/ws', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  return u.toString();
}

// ----- tokens -----------------------------------------------------------

/** True when t looks like a JWT with at least TOKEN_MIN_LIFE_MS of life left. */
function usable(t) {
  if (!t || !jwtPayload(t)) return false;
  const exp = jwtExpiryMs(t);
  return exp === null || exp > Date.now() + TOKEN_MIN_LIFE_MS;
}

const clock = (ms) => new Date(ms).toLocaleTimeString('es-CO', { hour: '2-digit', minute: '2-digit' });

/**
 * Fetches a token from cfg.tokenUrl with the browser's credentials (the
 * backend's session cookie). The answer is the token as text or JSON
 * {token}. Resolves with a usable token; rejects with an Error whose
 * message says in Spanish what went wrong (never the token).
 */
async function fetchToken() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TOKEN_FETCH_TIMEOUT_MS);
  let body;
  try {
    let res;
    try {
      res = await fetch(cfg.tokenUrl, { credentials: 'include', cache: 'no-store', headers: { Accept: 'application/json, text/plain' }, signal: ctl.signal });
    } catch {
      throw new Error('No se pudo contactar a la administración para renovar la sesión (revise internet).');
    }
    if (res.status === 401 || res.status === 403) throw new Error(`La administración no renovó la sesión (respuesta ${res.status}): puede que haya que volver a ingresar allá.`);
    if (!res.ok) throw new Error(`La administración respondió con un error (${res.status}) al renovar la sesión.`);
    body = (await res.text()).trim();
  } finally {
    clearTimeout(timer);
  }
  let token = body;
  if (body.startsWith('{')) {
    try {
      token = JSON.parse(body).token;
    } catch {
      token = null;
    }
  }
  if (typeof token !== 'string' || !jwtPayload(token)) throw new Error('La administración respondió sin un token válido.');
  if (!usable(token)) throw new Error('La administración entregó un token ya vencido.');
  if (refusal && token === refusal.token) throw new Error(`La administración entregó el mismo token que la central rechazó («${refusal.message}»).`);
  return token;
}

/**
 * The client's getToken: the saved token while usable; tokenUrl when a new
 * one is needed. When none can be had the session is over (the banner says
 * why) and null stops the client.
 */
async function getToken({ reason }) {
  const current = store.get(KEY.token);
  if (reason === 'connect' && usable(current)) return current;
  if (reason === 'refresh') {
    if (!cfg.tokenUrl) return current;
    try {
      const t = await fetchToken();
      store.set(KEY.token, t);
      return t;
    } catch {
      return current; // asked again soon; at exp the expiry check decides
    }
  }
  if (cfg.tokenUrl) {
    try {
      const t = await fetchToken();
      store.set(KEY.token, t);
      return t;
    } catch (err) {
      expire(err.message);
      return null;
    }
  }
  if (refusal) expire(`La central rechazó el token («${refusal.message}»).`);
  else {
    const exp = jwtExpiryMs(current);
    expire(exp !== null ? `El token venció a las ${clock(exp)}.` : 'El token no sirve para conectarse.');
  }
  return null;
}

let expiryTimer = null;

/** Checks the token in use at its exp: renews it, or ends the session. */
function planExpiry() {
  clearTimeout(expiryTimer);
  const exp = jwtExpiryMs(store.get(KEY.token));
  if (exp === null || session !== 'active') return;
  expiryTimer = setTimeout(async () => {
    if (session !== 'active') return;
    if (usable(store.get(KEY.token))) {
      planExpiry();
      return;
    }
    await renewOrExpire(`El token venció a las ${clock(exp)}.`);
  }, Math.min(MAX_TIMER_MS, Math.max(0, exp - TOKEN_MIN_LIFE_MS - Date.now())));
}

let renewTimer = null;
let renewing = false;

/** Gets a token from tokenUrl and reconnects with it; ends the session with why when it cannot. */
async function renewOrExpire(why) {
  if (renewing) return;
  if (cfg.tokenUrl) {
    renewing = true;
    ui.renew.disabled = true;
    ui.renew.textContent = 'Renovando…';
    try {
      const t = await fetchToken();
      store.set(KEY.token, t);
      connect(t);
      return;
    } catch (err) {
      why = err.message;
    } finally {
      renewing = false;
      ui.renew.disabled = false;
      ui.renew.textContent = 'Renovar sesión';
    }
  }
  expire(why);
}

/**
 * Ends the session without forgetting the screen or the resume point: the
 * banner says why, and a renewed token resumes where this one stopped.
 */
function expire(why) {
  saveScreen();
  const h = hub;
  hub = null;
  h?.close();
  clearTimeout(expiryTimer);
  session = 'expired';
  expiredWhy = why;
  clearTimeout(renewTimer);
  if (cfg.tokenUrl) renewTimer = setTimeout(() => renewOrExpire(expiredWhy), RENEW_RETRY_MS);
  render();
}

/** A pasted token: null when it can be used, else what is wrong with it. */
function pastedProblem(token) {
  if (!jwtPayload(token)) return 'Eso no parece un token: deben ser tres partes separadas por puntos.';
  if (!usable(token)) return 'Ese token ya venció.';
  return null;
}

// ----- the session ------------------------------------------------------

/** Shows the console (not the sign-in form), with the saved screen. */
function showApp() {
  ui.signin.hidden = true;
  ui.app.hidden = false;
  ui.signout.hidden = false;
  restoreScreen();
  renderAlerts();
  renderActivity();
}

/** Starts a client with token, resuming after the saved lastSeq; replaces any running one. */
function connect(token) {
  const old = hub;
  hub = null;
  old?.close();
  clearTimeout(renewTimer);
  refusal = null;
  const claims = jwtPayload(token) ?? {};
  ui.who.textContent = `${claims.role === 'admin' ? 'Administración' : 'Guarda'} ${claims.sub ?? ''}${claims.tenant ? ` · ${claims.tenant}` : ''}`.trim(); // which complex it listens to
  ui.who.title = ui.who.textContent;
  ui.who.hidden = false;
  session = 'active';
  link = 'connecting';
  linkDownSince = Date.now();
  linkCode = null;
  linkDetail = 'Conectando con la central…';
  const saved = Number(store.get(KEY.lastSeq));
  const h = createHubClient(hubUrl(), {
    format: 'json',
    since: store.get(KEY.lastSeq) !== null && Number.isSafeInteger(saved) && saved >= 0 ? saved : undefined,
    getToken: (req) => (hub === h ? getToken(req) : null),
  });
  hub = h;
  const mine = (fn) => (...args) => {
    if (hub === h) fn(...args);
  };
  h.on('state', mine(onState));
  h.on('event', mine(onEvent));
  h.on('error', mine(onError));
  h.on('welcome', mine(() => {
    saveScreen();
    planExpiry();
  }));
  keepAwake();
  render();
}

function signOut(message = '') {
  const h = hub;
  hub = null;
  h?.close();
  clearTimeout(expiryTimer);
  clearTimeout(renewTimer);
  session = 'none';
  store.set(KEY.token, null);
  store.set(KEY.lastSeq, null);
  store.set(KEY.screen, null);
  alerts.clear();
  activity = [];
  renderAlerts();
  renderActivity();
  ui.app.hidden = true;
  ui.who.hidden = true;
  ui.signout.hidden = true;
  ui.signin.hidden = false;
  ui.signinRenew.hidden = !cfg.tokenUrl;
  ui.signinError.textContent = message;
  ui.signinError.hidden = !message;
  ui.token.value = '';
  wakeLock?.release().catch(() => {});
  render();
  ui.token.focus();
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  const problem = pastedProblem(token);
  ui.signinError.textContent = problem ?? '';
  ui.signinError.hidden = !problem;
  if (problem) return;
  store.set(KEY.token, token);
  store.set(KEY.lastSeq, null);
  store.set(KEY.screen, null);
  askNotifications(); // submitting is a user gesture
  showApp();
  connect(token);
});

ui.signinRenew.addEventListener('click', async () => {
  askNotifications();
  try {
    const t = await fetchToken();
    store.set(KEY.token, t);
    showApp();
    connect(t);
  } catch (err) {
    ui.signinError.textContent = err.message;
    ui.signinError.hidden = false;
  }
});

ui.pasteForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.pasteToken.value.trim();
  const problem = pastedProblem(token);
  ui.pasteError.textContent = problem ?? '';
  ui.pasteError.hidden = !problem;
  if (problem) return;
  ui.pasteToken.value = '';
  store.set(KEY.token, token);
  connect(token);
});

ui.renew.addEventListener('click', () => renewOrExpire(expiredWhy));
ui.alarmSound.addEventListener('click', () => play('probe'));
ui.notify.addEventListener('click', askNotifications);
ui.signout.addEventListener('click', () => signOut());
for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, onGesture, { capture: true });
document.addEventListener('visibilitychange', keepAwake);
setInterval(() => {
  tickTimes();
  render();
}, 1000);
window.addEventListener('pagehide', () => saveScreen());

// For troubleshooting from the browser's devtools (and the browser test).
window.armoniaConsole = {
  get hub() {
    return hub;
  },
  alerts,
  status: () => ({ session, link, sound, played: { ...played }, wakeLock: Boolean(wakeLock), tokenUrl: Boolean(cfg.tokenUrl), alarming: !ui.alarm.hidden }),
};

play('probe'); // finds out now, not at the first panic, whether the browser lets the alarm sound
const savedToken = store.get(KEY.token);
if (cfg.error) signOut(cfg.error);
else if (usable(savedToken)) {
  showApp();
  connect(savedToken);
} else if (cfg.tokenUrl) {
  showApp();
  session = 'active';
  link = 'connecting';
  linkDownSince = Date.now();
  linkDetail = 'Pidiendo la sesión a la administración…';
  render();
  renewOrExpire('');
} else if (savedToken) {
  showApp();
  expire(`El token guardado venció a las ${clock(jwtExpiryMs(savedToken) ?? Date.now())}.`);
} else signOut();
