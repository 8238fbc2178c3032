/** Where the kvssink GStreamer plugin built by `npm run build` lives. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenKvsError } from './errors.js';

/** The package root: this file is lib/plugin-path.ts, compiled to dist/lib/plugin-path.js. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
}

/** The folder holding libgstkvssink.so, for GST_PLUGIN_PATH. */
export function pluginPath(): string {
  const dir = path.join(packageRoot(), 'build', 'release', 'gst-plugin');
  if (!existsSync(path.join(dir, 'libgstkvssink.so'))) {
    throw new OpenKvsError(
      'PLUGIN_NOT_BUILT',
      `kvssink is not built: ${path.join(dir, 'libgstkvssink.so')} is missing. Run "npm run build" (needs scripts/bootstrap.sh first).`,
    );
  }
  return dir;
}
