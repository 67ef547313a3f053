// console.js - the guard console (portería): panic alerts first, visitors
// and payments on the side. One ES module, no framework, no build: the hub
// serves this folder at /console/ and the client library at /js/.
//
// The token is pasted once and kept in sessionStorage (this tab only, never
// in the URL). The resume point (lastSeq) and what is on screen are saved
// there too, so a reload or a dropped connection neither loses nor repeats
// an alert: the client resumes from lastSeq and skips ids it has delivered,
// and the page skips ids it already shows.

import { createHubClient, jwtPayload, jwtExpiryMs } from '/js/index.js';

const KEY = {
  token: 'armonia.console.token',
  lastSeq: 'armonia.console.lastSeq',
  screen: 'armonia.console.screen',
};
const MAX_ALERTS = 50; // alerts kept on screen (claimed ones are dropped first)
const MAX_ACTIVITY = 40; // visitors/payments kept in the side list
const ALARM_EVERY_MS = 4000; // the alarm repeats while an alert is unattended

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'), connText: $('conn-text'), who: $('who'), signout: $('signout'), sound: $('sound'),
  signin: $('signin'), form: $('signin-form'), token: $('token'), signinError: $('signin-error'),
  app: $('app'), alerts: $('alerts'), noAlerts: $('no-alerts'), activity: $('activity'), noActivity: $('no-activity'),
  detail: $('status-detail'),
};

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
/** [{id, kind, ts, data}] newest first. */
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
  const open = list.filter((a) => !a.claimedBy).length;
  document.title = open ? `(${open}) ¡PÁNICO! · Portería` : 'Portería · Armonía';
}

function describeActivity(item) {
  const d = item.data ?? {};
  switch (item.kind) {
    case 'visitor':
      return `Visitante ${d.name ? `«${d.name}»` : ''} para la unidad ${d.unitId ?? '?'}`.replace(/\s+/g, ' ');
    case 'payment':
      return `Pago ${PAYMENT_STATUS[d.status] ?? String(d.status ?? '').toLowerCase()}: ${money(d.amount, d.currency)}`;
    case 'announcement':
      return `Comunicado${d.type === 'emergency' ? ' de emergencia' : ''}: ${d.title ?? ''}`;
    default:
      return `${item.kind}`;
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

let audio = null; // AudioContext, created on the first user gesture (browsers require one)
let alarmTimer = null;

function unlockAudio() {
  if (audio) return;
  const Ctx = window.AudioContext ?? window.webkitAudioContext;
  if (!Ctx) return;
  try {
    audio = new Ctx();
    audio.resume?.();
  } catch {
    audio = null;
  }
  ui.sound.hidden = true;
}

function beep() {
  if (!audio) return;
  const t0 = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'square';
    osc.frequency.value = i % 2 ? 660 : 880;
    gain.gain.setValueAtTime(0.0001, t0 + i * 0.3);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.3 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.3 + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(t0 + i * 0.3);
    osc.stop(t0 + i * 0.3 + 0.26);
  }
}

/** Sounds now and every ALARM_EVERY_MS while some alert is unattended. */
function alarm() {
  if (alarmTimer) return;
  const ring = () => {
    if (![...alerts.values()].some((a) => !a.claimedBy)) {
      alarmTimer = null;
      return;
    }
    beep();
    alarmTimer = setTimeout(ring, ALARM_EVERY_MS);
  };
  ring();
}

// ----- the hub ----------------------------------------------------------

function setConn(kind, text, detail = '') {
  ui.conn.className = `conn conn-${kind}`;
  ui.connText.textContent = text;
  ui.detail.textContent = detail;
}

function onState(s) {
  switch (s.state) {
    case 'open':
      setConn('on', 'Conectado', '');
      break;
    case 'connecting':
      if (s.attempt > 0) setConn('retry', 'Reconectando…', `Intento ${s.attempt}`);
      else setConn('retry', 'Conectando…');
      break;
    case 'reconnecting': {
      const secs = Math.ceil(s.delay / 1000);
      setConn('retry', 'Reconectando…', `Conexión perdida (${s.code ?? '—'}). Nuevo intento ${secs > 0 ? `en ${secs} s` : 'ya'}.`);
      break;
    }
    case 'closed':
      setConn('off', 'Desconectado', s.reason === 'no token' ? 'La sesión terminó.' : '');
      break;
    default:
      break;
  }
}

function onEvent(e) {
  switch (e.kind) {
    case 'panic':
      if (!alerts.has(e.id)) {
        alerts.set(e.id, { id: e.id, ts: e.ts ?? Date.now(), data: e.data ?? {}, claimedBy: null });
        trimAlerts();
        renderAlerts();
        alarm();
      }
      break;
    case 'panic_claimed': {
      const a = alerts.get(e.data?.eventId);
      if (a && !a.claimedBy) {
        a.claimedBy = e.data.guardName || e.data.guardId || 'otro guarda';
        a.sending = false;
        renderAlerts();
      }
      break;
    }
    case 'visitor':
    case 'payment':
    case 'announcement':
      if (!activity.some((x) => x.id === e.id)) {
        activity.unshift({ id: e.id, kind: e.kind, ts: e.ts ?? Date.now(), data: e.data ?? {} });
        activity = activity.slice(0, MAX_ACTIVITY);
        renderActivity();
      }
      break;
    default:
      break;
  }
  saveScreen();
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

function onError(err) {
  if (err.ackId && alerts.has(err.ackId)) {
    const a = alerts.get(err.ackId);
    a.sending = false;
    renderAlerts();
    ui.detail.textContent = `No se pudo atender la alerta: ${err.message}`;
    return;
  }
  if (err.code === 'unauthorized') ui.detail.textContent = `Acceso rechazado: ${err.message}`;
  else if (err.code === 'resume_gap') ui.detail.textContent = 'Se perdieron eventos antiguos mientras la consola estuvo desconectada.';
}

function hubUrl() {
  const u = new URL('/ws', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  return u.toString();
}

function start(token) {
  const claims = jwtPayload(token) ?? {};
  ui.who.textContent = `${claims.role === 'admin' ? 'Administración' : 'Guarda'} ${claims.sub ?? ''}`.trim();
  ui.who.hidden = false;
  ui.signout.hidden = false;
  ui.sound.hidden = Boolean(audio);
  ui.signin.hidden = true;
  ui.app.hidden = false;
  restoreScreen();
  renderAlerts();
  renderActivity();
  const saved = Number(store.get(KEY.lastSeq));
  hub = createHubClient(hubUrl(), {
    format: 'json',
    since: store.get(KEY.lastSeq) !== null && Number.isSafeInteger(saved) && saved >= 0 ? saved : undefined,
    getToken: ({ reason }) => {
      const t = store.get(KEY.token);
      // A rejected or expired token will not get better by retrying: ask the guard for a new one.
      if (reason === 'unauthorized') {
        const exp = jwtExpiryMs(t);
        signOut(exp !== null && exp <= Date.now() ? 'La sesión venció: pegue un token nuevo.' : 'El token fue rechazado: pegue uno válido.');
        return null;
      }
      return t;
    },
  });
  hub.on('state', onState);
  hub.on('event', onEvent);
  hub.on('error', onError);
  hub.on('welcome', () => saveScreen());
  window.armoniaConsole = { hub, alerts }; // for troubleshooting from the browser's devtools
}

function signOut(message = '') {
  const h = hub;
  hub = null;
  h?.close();
  store.set(KEY.token, null);
  store.set(KEY.lastSeq, null);
  store.set(KEY.screen, null);
  alerts.clear();
  activity = [];
  ui.app.hidden = true;
  ui.who.hidden = true;
  ui.signout.hidden = true;
  ui.signin.hidden = false;
  ui.signinError.textContent = message;
  ui.signinError.hidden = !message;
  setConn('off', 'Desconectado');
  ui.token.value = '';
  ui.token.focus();
}

ui.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  const claims = jwtPayload(token);
  if (!claims) {
    ui.signinError.textContent = 'Eso no parece un token: deben ser tres partes separadas por puntos.';
    ui.signinError.hidden = false;
    return;
  }
  const exp = jwtExpiryMs(token);
  if (exp !== null && exp <= Date.now()) {
    ui.signinError.textContent = 'Ese token ya venció.';
    ui.signinError.hidden = false;
    return;
  }
  ui.signinError.hidden = true;
  store.set(KEY.token, token);
  store.set(KEY.lastSeq, null);
  store.set(KEY.screen, null);
  unlockAudio(); // submitting is a user gesture
  start(token);
});

ui.signout.addEventListener('click', () => signOut());
ui.sound.addEventListener('click', () => {
  unlockAudio();
  beep();
});
for (const type of ['pointerdown', 'keydown']) document.addEventListener(type, unlockAudio, { once: true, capture: true });
setInterval(tickTimes, 1000);
window.addEventListener('pagehide', () => saveScreen());

const saved = store.get(KEY.token);
if (saved) start(saved);
else signOut();
