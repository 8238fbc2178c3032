/**
 * Loads the N-API addon (prebuilt in prebuilds/, or built from source into build/Release) with
 * node-gyp-build, and says exactly what to do when it cannot be loaded.
 */
import { createRequire } from 'node:module';
import { OpenKvsError } from './errors.js';
import { packageRoot } from './package-root.js';

/** A bus message as the addon hands it over (plain values only). */
export interface NativeMessage {
  type: string;
  source: string;
  name?: string;
  fields: Record<string, string | number | boolean>;
  error?: {
    domain: string;
    code: number;
    message: string;
    debug: string;
    details: Record<string, string | number | boolean>;
  };
  oldState?: string;
  newState?: string;
  pendingState?: string;
  fromPipeline?: boolean;
}

export interface NativePipelineHandle {
  setState(state: 'NULL' | 'READY' | 'PAUSED' | 'PLAYING', requestId: string): void;
  sendEos(): void;
  setProperty(element: string, property: string, value: string | number | boolean | null): void;
  getProperty(element: string, property: string): string | number | boolean | null;
  elementsOfFactory(factory: string): string[];
  close(requestId: string): void;
  stats(): { messagesDelivered: number; messagesDropped: number };
}

export interface NativeBinding {
  NativePipeline: new (description: string, onMessage: (m: NativeMessage) => void) => NativePipelineHandle;
  elementExists(factory: string): boolean;
  gstreamerVersion: string;
}

export class NativeLoadError extends OpenKvsError<'NATIVE_ADDON_UNAVAILABLE'> {
  constructor(message: string, cause: unknown) {
    super('NATIVE_ADDON_UNAVAILABLE', message, { cause });
  }
}

let binding: NativeBinding | undefined;

export function loadNative(): NativeBinding {
  if (binding) return binding;
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
  const root = packageRoot();
  try {
    binding = nodeGypBuild(root);
    return binding;
  } catch (err) {
    const text = String((err as Error).message ?? err);
    const missingLib = /lib(gst|curl|crypto|glib)[^\s:]*\.so[^\s:]*/.exec(text)?.[0];
    const lines = [
      `openkvs: the native addon cannot be loaded on ${process.platform}-${process.arch} (Node ${process.versions.node}).`,
      missingLib
        ? `A system library is missing: ${missingLib}. Install GStreamer and libcurl: bash ${root}/scripts/bootstrap.sh ` +
          '(Debian/Ubuntu: apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad libcurl4).'
        : `No prebuilt binary for this platform and no build in ${root}/build/Release.`,
      `To build it from source: bash ${root}/scripts/bootstrap.sh && npm run build:addon (in ${root}).`,
      `Cause: ${text.split('\n')[0]}`,
    ];
    throw new NativeLoadError(lines.join('\n'), err);
  }
}
