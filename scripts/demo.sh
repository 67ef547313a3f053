#!/usr/bin/env bash
# Sets up and runs Armonía Hub with a demo on a fresh machine:
# installs what is missing, builds, starts a private PostgreSQL under .data/pg,
# creates demo tenant "demo" (a guard, two residents, an admin), prints tokens
# and the one-liners to fire events, then runs the hub on port 3001 with a
# guard console watcher attached, and fires one panic so you see it arrive.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
port=${PORT:-3001}
secret=${JWT_SECRET_KEY:-demo-secret-change-me}

bash scripts/deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/demo -j "$(nproc)" --target armonia-hub >/dev/null
scripts/pg.sh start "$root/.data/pg"
db=$(scripts/pg.sh url "$root/.data/pg")
# The hub connects as the restricted role (schema/080_roles.sql), not as the
# superuser the setup below and the one-liners use.
hub_db=$(scripts/pg.sh hub-url "$root/.data/pg")

psql "$db" -v ON_ERROR_STOP=1 -q <<'SQL'
SELECT hub.create_demo_tenant('demo');
SELECT hub.create_demo_tenant('otro_conjunto');
INSERT INTO demo."User"(id, name, role, "unitId", "deviceToken", "phoneNumber", email) VALUES
  ('guard-1', 'Carlos Rojas (portería)', 'GUARD', NULL, 'fcm-token-guard-1', '+573001112233', 'porteria@demo.co'),
  ('res-101', 'Ana Gómez', 'RESIDENT', '101', 'fcm-token-res-101', '+573004445566', 'ana@demo.co'),
  ('res-202', 'Luis Martínez', 'RESIDENT', '202', NULL, '+573007778899', 'luis@demo.co'),
  ('admin-1', 'Administración', 'ADMIN', NULL, NULL, NULL, 'admin@demo.co')
ON CONFLICT (id) DO NOTHING;
SQL

mint() { node tools/mint-token.mjs "$secret" "$1"; }
guard=$(mint '{"sub":"guard-1","tenant":"demo","role":"guard"}')
res101=$(mint '{"sub":"res-101","tenant":"demo","role":"resident","units":["101"]}')
res202=$(mint '{"sub":"res-202","tenant":"demo","role":"resident","units":["202"]}')
admin=$(mint '{"sub":"admin-1","tenant":"demo","role":"admin"}')

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/pg.sh stop "$root/.data/pg" || true
}
trap cleanup EXIT INT TERM

# Local stand-ins for FCM (with its OAuth2 token endpoint), Twilio and an
# SMTP relay: real HTTP/SMTP servers on loopback that print what they receive.
mkdir -p .data
node tests/standins/run.mjs --account-file "$root/.data/service-account.json" >.data/standins.out 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    [ -s .data/standins.out ] && head -1 .data/standins.out | grep -q '^{' && break
    sleep 0.1
done
standins=$(head -1 .data/standins.out)
field() { node -e "process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))" "$standins" "$1"; }
tail -n +2 -f .data/standins.out &
pids+=($!)

DATABASE_URL=$hub_db JWT_SECRET_KEY=$secret PORT=$port HUB_BIND=${HUB_BIND:-127.0.0.1} \
    FIREBASE_SERVICE_ACCOUNT_FILE="$root/.data/service-account.json" HUB_FCM_BASE_URL="$(field fcmUrl)" \
    TWILIO_ACCOUNT_SID="$(field twilioSid)" TWILIO_AUTH_TOKEN="$(field twilioToken)" \
    TWILIO_PHONE_NUMBER="$(field twilioFrom)" HUB_TWILIO_BASE_URL="$(field twilioUrl)" \
    HUB_SMTP_URL="$(field smtpUrl)" HUB_SMTP_FROM=notificaciones@armonia.demo \
    HUB_CONSOLE_DIR="$root/clients/js" \
    build/demo/armonia-hub &
pids+=($!)
hub_pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

cat <<TXT

== Armonía Hub demo is running on ws://127.0.0.1:$port/ws (database: $db, the hub as $hub_db)

Tokens (HS256, secret "$secret", valid 24 h):
  guard   guard-1  $guard
  resident res-101 (unit 101) $res101
  resident res-202 (unit 202) $res202
  admin   admin-1  $admin

Guard console (Spanish): open http://127.0.0.1:$port/console/ in a browser and paste the
guard token above; press Atender on a panic to claim it for every other console.

Watch as someone else (in another terminal):
  node --experimental-websocket tools/watch.mjs ws://127.0.0.1:$port/ws <TOKEN> label

Fire events (in another terminal):
  psql '$db' -c "INSERT INTO demo.\"PanicAlert\"(\"userId\",\"unitId\",message) VALUES ('res-101','101','Ayuda en la torre 1')"
  psql '$db' -c "INSERT INTO demo.\"Visitor\"(\"unitId\",name) VALUES ('101','Mensajero Rappi')"
  psql '$db' -c "INSERT INTO demo.\"Announcement\"(title,body,type) VALUES ('Corte de agua','Hoy de 2 a 4 pm','emergency')"
  curl http://127.0.0.1:$port/healthz ; curl http://127.0.0.1:$port/metrics

Residents are not connected, so visitors and announcements also reach them through the
local FCM, Twilio and SMTP stand-ins ([fcm], [twilio], [smtp] lines below) once the
kind's timeout passes (visitor 30 s; an emergency announcement at once).

A guard console (watcher "guard") is attached below; a first panic fires in a moment.
TXT

node --experimental-websocket tools/watch.mjs "ws://127.0.0.1:$port/ws" "$guard" guard 2>/dev/null &
pids+=($!)
sleep 1
psql "$db" -q -c "INSERT INTO demo.\"PanicAlert\"(\"userId\",\"unitId\",message) VALUES ('res-101','101','Demo: botón de pánico')"
wait "$hub_pid"
