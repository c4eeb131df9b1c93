// src/host/launch.ts: what bin/vault does before the CLI loads (and the CLI does the same way).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { daemonScript, isMountCommand, spawnNodeScript } from '../../src/host/launch.js';

describe('isMountCommand', () => {
  it('is true for a mount, after global options too, and false for help and for other commands', () => {
    expect(isMountCommand(['mount', 'a.vol', '/mnt/a'])).toBe(true);
    expect(isMountCommand(['--no-color', 'mount', 'a.vol'])).toBe(true);
    expect(isMountCommand(['mount', '--help'])).toBe(false);
    expect(isMountCommand(['mount', 'a.vol', '-h'])).toBe(false);
    expect(isMountCommand(['dismount', '/mnt/a'])).toBe(false);
    expect(isMountCommand(['create', '1G', 'mount'])).toBe(false);
    expect(isMountCommand(['--version'])).toBe(false);
    expect(isMountCommand([])).toBe(false);
  });
});

describe('daemonScript', () => {
  it('is fuse/daemon.js one level above this module', () => {
    expect(daemonScript()).toBe(resolve(import.meta.dirname, '../../src/fuse/daemon.js'));
  });
});

describe('spawnNodeScript', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-launch-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts node detached, in its own session, with /dev/null as stdio, a socket as fd 3, and no NODE_EXTRA_CA_CERTS', async () => {
    const script = join(dir, 'report.cjs');
    writeFileSync(
      script,
      `const fs = require('node:fs');
const stat = fs.readFileSync('/proc/self/stat', 'utf8');
const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
fs.writeSync(3, JSON.stringify({
  certs: process.env.NODE_EXTRA_CA_CERTS ?? null,
  marker: process.env.VAULT_LAUNCH_MARKER ?? null,
  session: Number(fields[3]),
  stdio: [0, 1, 2].map((fd) => fs.readlinkSync('/proc/self/fd/' + fd)),
  fd3Socket: fs.fstatSync(3).isSocket(),
}));
`,
    );
    const saved = { certs: process.env.NODE_EXTRA_CA_CERTS, marker: process.env.VAULT_LAUNCH_MARKER };
    process.env.NODE_EXTRA_CA_CERTS = join(dir, 'no-such-bundle.pem');
    process.env.VAULT_LAUNCH_MARKER = 'kept';
    let child: ReturnType<typeof spawnNodeScript>;
    try {
      child = spawnNodeScript(script);
    } finally {
      for (const [name, value] of [
        ['NODE_EXTRA_CA_CERTS', saved.certs],
        ['VAULT_LAUNCH_MARKER', saved.marker],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    const channel = child.stdio[3] as Socket;
    let text = '';
    channel.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    await new Promise<void>((done) => (channel.readableEnded ? done() : channel.on('end', () => done())));
    expect(code).toBe(0);
    const report = JSON.parse(text);
    expect(report).toEqual({
      certs: null,
      marker: 'kept',
      session: child.pid,
      stdio: ['/dev/null', '/dev/null', '/dev/null'],
      fd3Socket: true,
    });
  });

  it('reports a spawn failure as a missing pid, not as a thrown error', async () => {
    const saved = process.execPath;
    Object.defineProperty(process, 'execPath', { value: join(dir, 'no-such-node'), configurable: true });
    try {
      const child = spawnNodeScript(join(dir, 'none.js'));
      expect(child.pid).toBeUndefined();
      await new Promise((done) => setImmediate(done));
    } finally {
      Object.defineProperty(process, 'execPath', { value: saved, configurable: true });
    }
  });
});
