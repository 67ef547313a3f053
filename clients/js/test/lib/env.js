// env.js - defaults for the variables the shared integration harness reads.
// Imported before the harness (its modules read HUB_BIN when they load), so
// `npm test` works from a plain checkout with the dev build.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const repoDir = process.env.HUB_SOURCE_DIR ?? resolve(here, '..', '..', '..', '..');
/** clients/js: what HUB_CONSOLE_DIR names. */
export const clientDir = resolve(here, '..', '..');

process.env.HUB_SOURCE_DIR ??= repoDir;
process.env.HUB_BIN ??= join(repoDir, 'build', 'dev', 'armonia-hub');
