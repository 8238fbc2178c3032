/**
 * The relay config: defaults, .yaml/.yml/.json files, and messages that name the bad field.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RelayConfigError } from '../../lib/index.js';
import { loadRelayConfig, parseRelayConfig } from '../../lib/relay/config.js';
import { tempDir } from '../helpers/server.js';

const camera = (extra: Record<string, unknown> = {}) => ({ name: 'lobby', url: 'rtsp://user:pass@10.0.0.5:554/stream1', streamName: 'lobby-cam', ...extra });
const message = (input: unknown): string => {
  try {
    parseRelayConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(RelayConfigError);
    expect((err as RelayConfigError).code).toBe('INVALID_CONFIG');
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('relay config', () => {
  it('fills in the defaults', () => {
    const c = parseRelayConfig({ endpoint: 'http://127.0.0.1:4567', region: 'us-east-1', credentials: { profile: 'default' }, cameras: [camera()] });
    expect(c.credentials).toEqual({ profile: 'default' });
    expect(c.backoff).toEqual({ initialSeconds: 1, maxSeconds: 30, multiplier: 2, jitter: 0.2 });
    expect(c.cameras[0]).toEqual({ ...camera(), transport: 'tcp', audio: false, codec: 'auto', latencyMs: 200, noDataTimeoutSeconds: 10, sink: {} });
  });

  it('names the bad field', () => {
    expect(message({ cameras: [camera(), camera({ name: 'b', streamName: 'b', url: 'http://x/y' })] })).toBe(
      'config: cameras[1].url: expected an rtsp:// or rtsps:// URL',
    );
    expect(message({ cameras: [{ name: 'a', url: 'rtsp://h/s' }] })).toBe('config: cameras[0].streamName: is required');
    expect(message({})).toBe('config: cameras: is required');
    expect(message({ cameras: [camera({ transport: 'quic' })] })).toBe('config: cameras[0].transport: expected tcp, udp or auto');
    expect(message({ cameras: [camera({ colour: 'red' })] })).toBe('config: unknown field cameras[0].colour');
    expect(message({ cameras: [], extra: 1 })).toBe('config: unknown field extra');
    expect(message({ cameras: [{ name: 'a', rtspUrl: 'rtsp://h/x', streamName: 's' }] })).toBe('config: unknown field cameras[0].rtspUrl (the field is called url)');
    expect(message({ cameras: [{ name: 'a', url: 'rtsp://h/x', stream: 's' }] })).toBe('config: unknown field cameras[0].stream (the field is called streamName)');
    expect(message({ cameras: [{ name: 'a', url: 'rtsp://h/x', stream_name: 's' }] })).toBe('config: unknown field cameras[0].stream_name (the field is called streamName)');
    expect(message({ cameras: [camera(), camera({ streamName: 'other' })] })).toBe('config: cameras[1].name: duplicate name "lobby" (also cameras[0])');
    expect(message({ cameras: [camera({ sink: { 'stream-name': 'x' } })] })).toMatch(/^config: cameras\[0\]\.sink\.stream-name: is set by the relay/);
    expect(message({ credentials: { accessKeyId: 'AKID' }, cameras: [] })).toMatch(/^config: credentials: expected \{ profile \} or/);
    expect(message({ endpoint: 'localhost:4567', cameras: [] })).toBe('config: endpoint: expected an http:// or https:// URL');
  });

  it('loads YAML and JSON files; a bad file names the file and the field', async () => {
    const dir = tempDir('openkvs-relay-config-');
    const yamlFile = path.join(dir, 'cameras.yaml');
    writeFileSync(
      yamlFile,
      ['region: us-east-1', 'cameras:', '  - name: lobby', '    url: rtsp://10.0.0.5/stream1', '    streamName: lobby-cam', '    sink: { fragment-duration: 2000 }', ''].join('\n'),
    );
    expect((await loadRelayConfig(yamlFile)).cameras[0]!.sink).toEqual({ 'fragment-duration': 2000 });
    const jsonFile = path.join(dir, 'cameras.json');
    writeFileSync(jsonFile, JSON.stringify({ cameras: [camera({ url: 'ftp://x' })] }));
    await expect(loadRelayConfig(jsonFile)).rejects.toThrow(`${jsonFile}: cameras[0].url: expected an rtsp:// or rtsps:// URL`);
    writeFileSync(yamlFile, 'cameras: [\n');
    await expect(loadRelayConfig(yamlFile)).rejects.toMatchObject({ code: 'CONFIG_UNREADABLE' });
    await expect(loadRelayConfig(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'CONFIG_UNREADABLE' });
  });
});
