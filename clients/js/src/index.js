// index.js - the public entry point of @armonia/hub-client.
//
// Browsers import it unbundled (the hub serves this folder at /js/, so the
// guard console does `import { createHubClient } from '/js/index.js'`); Node
// 20+ imports it as the package's main export. Nothing here touches the
// network until createHubClient() is called.

export { createHubClient, HubClient, HubError, CLIENT_DEFAULTS, CLOSE } from './client.js';
export { backoffDelay, backoffCeiling, BACKOFF_DEFAULTS } from './backoff.js';
export { jwtPayload, jwtExpiryMs } from './jwt.js';
export { SUBPROTOCOLS } from './codec.js';
export { RecentIds } from './dedupe.js';
