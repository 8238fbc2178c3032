/**
 * TLS for the server: a certificate and key given as files (`--tls-cert`/`--tls-key`), or
 * `--tls auto`: a self-signed certificate made once with `openssl` into `<data-dir>/tls/` and
 * reused on later starts. Its subject alternative names are localhost, 127.0.0.1, ::1, the host's
 * name and the listening host, so clients that verify hosts (kvssink, the AWS SDK) accept it once
 * they trust the certificate itself (`ca-cert` / `AWS_CA_BUNDLE` pointing at `cert.pem`).
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isIP } from 'node:net';

export interface TlsFiles {
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** Where the certificate is, to hand to clients as their CA (for `auto`, the generated file). */
  certFile: string;
}

const run = promisify(execFile);

/** Reads the given files, with a clear error naming the one that cannot be read. */
export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  return { cert: read(files.cert, 'certificate'), key: read(files.key, 'key'), certFile: path.resolve(files.cert) };
}

/** The self-signed certificate of a data dir, made on first use (valid 10 years, EC P-256). */
export async function autoTls(dataDir: string, host: string): Promise<TlsMaterial> {
  const dir = path.join(dataDir, 'tls');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (!existsSync(cert) || !existsSync(key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = new Set(['localhost', hostname(), host].filter((n) => n && n !== '0.0.0.0' && n !== '::' && isIP(n) === 0));
    const ips = new Set(['127.0.0.1', '::1', ...(isIP(host) && host !== '0.0.0.0' && host !== '::' ? [host] : [])]);
    const san = [...[...names].map((n) => `DNS:${n}`), ...[...ips].map((ip) => `IP:${ip}`)].join(',');
    const tmpCert = `${cert}.${process.pid}.tmp`;
    const tmpKey = `${key}.${process.pid}.tmp`;
    try {
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-days', '3650', '-subj', '/CN=openkvs', '-addext', `subjectAltName=${san}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', tmpKey, '-out', tmpCert,
      ]);
    } catch (err) {
      rmSync(tmpCert, { force: true });
      rmSync(tmpKey, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const why = e.code === 'ENOENT' ? 'openssl is not installed' : (e.stderr || e.message).trim();
      throw new Error(`--tls auto could not make a certificate: ${why}`);
    }
    chmodSync(tmpKey, 0o600);
    renameSync(tmpKey, key);
    renameSync(tmpCert, cert);
  }
  return loadTls({ cert, key });
}
