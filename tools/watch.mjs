// Connects to the hub like an app would and prints every frame it receives.
//   node --experimental-websocket tools/watch.mjs ws://127.0.0.1:3001/ws TOKEN [LABEL] [ROOM...]
// Uses Node's built-in WebSocket (no dependencies); authenticates with the
// first frame and subscribes to the extra ROOMs.
const [url, token, label = 'watch', ...rooms] = process.argv.slice(2);
if (!url || !token) {
    console.error('usage: watch.mjs WS_URL TOKEN [LABEL] [ROOM...]');
    process.exit(2);
}
const ws = new WebSocket(url, ['armonia.v1.json']);
const say = (s) => console.log(`[${label}] ${s}`);
ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    say(JSON.stringify(f));
    if (f.type === 'welcome') for (const room of rooms) ws.send(JSON.stringify({ type: 'subscribe', room }));
};
ws.onclose = (e) => {
    say(`closed ${e.code} ${e.reason}`);
    process.exit(e.code === 1000 ? 0 : 1);
};
ws.onerror = () => say('connection error');
