/** Where the kvssink GStreamer plugin built by `npm run build` lives. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { OpenKvsError } from './errors.js';
import { packageRoot } from './package-root.js';

/** The folder holding libgstkvssink.so, for GST_PLUGIN_PATH. */
export function pluginPath(): string {
  const dir = path.join(packageRoot(), 'cmake-build', 'release', 'gst-plugin');
  if (!existsSync(path.join(dir, 'libgstkvssink.so'))) {
    throw new OpenKvsError(
      'PLUGIN_NOT_BUILT',
      `kvssink is not built: ${path.join(dir, 'libgstkvssink.so')} is missing. Run "npm run build" (needs scripts/bootstrap.sh first).`,
    );
  }
  return dir;
}
