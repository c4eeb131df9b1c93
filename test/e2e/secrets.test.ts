// Secrets stay secret (issue 7). A marker written inside a mounted vault (content and file name) appears
// nowhere in cleartext: not in the container, not in any file under /tmp, /run or /dev/shm (other than
// the mountpoint and the FUSE block file themselves, which are cleartext by design), not in the daemon's
// argv or environment. A unique password never reaches the argv or environment of any process while
// vault creates, mounts, dismounts and changes the password, nor any file.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_COST, lacks, leftovers, listedVault, sh, stateIdOf, useSuiteDir, vault } from './helpers.js';

const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

/** Processes whose argv or environment contain `needle` (excluding this test process). */
function processesExposing(needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    if (Number(name) === process.pid) continue;
    for (const part of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${name}/${part}`).includes(needle)) found.push(`pid ${name} ${part}`);
      } catch {}
    }
  }
  return found;
}

/** Samples every process's argv and environment every few ms until stop() is called. */
function watchProcesses(needle: string): { stop: () => Promise<{ samples: number; exposed: string[] }> } {
  let running = true;
  let samples = 0;
  const exposed = new Set<string>();
  const loop = (async () => {
    while (running) {
      for (const hit of processesExposing(needle)) exposed.add(hit);
      samples += 1;
      await new Promise((resolveTick) => setTimeout(resolveTick, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { samples, exposed: [...exposed] };
    },
  };
}

/**
 * Files under `roots` containing `needle`, staying on each root's own filesystem (-xdev): so no
 * mountpoint below, neither ours (the cleartext volume) nor the FUSE block file nor another test's.
 * Searched here, not by grep, so the needle never appears in a command line. Files over 256 MiB are
 * other tests' containers and images (ours is checked directly).
 */
async function filesContaining(needle: string, roots: string[]): Promise<string[]> {
  const found: string[] = [];
  const bytes = Buffer.from(needle, 'utf8');
  const chunk = Buffer.alloc(8 << 20);
  for (const root of roots) {
    const listed = await sh('find', [root, '-xdev', '-type', 'f', '-size', '-256M', '-print0'], 300_000);
    for (const path of listed.stdout.split('\0').filter(Boolean)) {
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch {
        continue; // gone meanwhile
      }
      try {
        for (let at = 0; ; at += chunk.length - bytes.length) {
          const read = readSync(fd, chunk, 0, chunk.length, at);
          if (chunk.subarray(0, read).includes(bytes)) {
            found.push(path);
            break;
          }
          if (read < chunk.length) break;
        }
      } catch {
        // unreadable special files
      } finally {
        closeSync(fd);
      }
    }
  }
  return found;
}

describe.skipIf(lacks('mount'))('secrets', () => {
  let dir = '';
  useSuiteDir('vault-secrets-', (made) => {
    dir = made;
  });

  it('no cleartext and no password outside the vault: files, argv, environment', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const marker = `MARKER-${randomBytes(12).toString('hex')}`;
    const file = join(dir, 'secret.vol');
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);

    const watch = watchProcesses(password);
    const created = await vault(['create', '32M', file, ...secretArgs], { stdin: `${password}\n` });
    expect(created.code, created.stderr).toBe(0);
    const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${password}\n` });
    expect(mounted.code, mounted.stderr).toBe(0);
    const entry = await listedVault(file);
    const pid = entry?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);

    // The marker as content (small and large files) and as a file name.
    writeFileSync(join(mountpoint, 'note.txt'), `${marker}\n`);
    writeFileSync(join(mountpoint, `${marker}.txt`), 'named after the marker');
    writeFileSync(join(mountpoint, 'big.bin'), Buffer.from(marker.repeat((4 << 20) / marker.length)));
    expect((await sh('sync', ['-f', join(mountpoint, 'note.txt')])).code).toBe(0);

    // While mounted: the daemon's argv and environment, every process, every file outside the vault.
    const daemonView = `${readFileSync(`/proc/${pid}/cmdline`, 'utf8')}\n${readFileSync(`/proc/${pid}/environ`, 'utf8')}`;
    expect(daemonView).not.toContain(marker);
    expect(daemonView).not.toContain(password);
    expect(processesExposing(marker)).toEqual([]);
    const roots = ['/tmp', '/run', '/dev/shm'];
    expect(await filesContaining(marker, roots)).toEqual([]);
    expect(await filesContaining(password, roots)).toEqual([]);

    const dismounted = await vault(['dismount', mountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    // Remount through another command line, then a passwd, under the same watch.
    const newPassword = `${password}-new`;
    const passwd = await vault(['passwd', file, ...secretArgs], { stdin: `${password}\n${newPassword}\n` });
    expect(passwd.code, passwd.stderr).toBe(0);
    const { samples, exposed } = await watch.stop();
    expect(samples).toBeGreaterThan(10);
    expect(exposed, 'processes that showed the password in argv or environment').toEqual([]);
    expect(processesExposing(newPassword)).toEqual([]);

    expect(leftovers(dir)).toEqual([]);
    const container = readFileSync(file);
    expect(container.includes(marker)).toBe(false);
    expect(container.includes(password)).toBe(false);
    expect(container.includes(newPassword)).toBe(false);
    expect(await filesContaining(marker, roots)).toEqual([]);
    expect(await filesContaining(password, roots)).toEqual([]);
  });

  it('the daemon ends on SIGTERM and SIGINT, dismounting everything (its keys go with it)', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const file = join(dir, 'term.vol');
    expect((await vault(['create', '16M', file, ...secretArgs], { stdin: `${password}\n` })).code).toBe(0);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const mountpoint = join(dir, `mnt-${signal}`);
      mkdirSync(mountpoint);
      const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${password}\n` });
      expect(mounted.code, mounted.stderr).toBe(0);
      const pid = (await listedVault(file))?.pid ?? 0;
      const exited = new Promise<void>((resolveExit) => {
        const waiter = spawn('tail', [`--pid=${pid}`, '-f', '/dev/null'], { stdio: 'ignore' });
        waiter.on('exit', () => resolveExit());
      });
      process.kill(pid, signal);
      await exited;
      expect(leftovers(dir)).toEqual([]);
      // The daemon logs the wipe as its last act. The log is appended per vault file (dev-inode), and an
      // inode can be reused by a later test run: count this daemon's own lines only.
      const log = readFileSync(`/run/vault/log/${stateIdOf(file)}.log`, 'utf8');
      const wipes = log
        .split('\n')
        .filter((line) => line.endsWith(`vault-daemon[${pid}]: stopped; keys wiped`));
      expect(wipes).toHaveLength(1);
    }
  });
});
