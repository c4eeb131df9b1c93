// `vault doctor` (what scripts/setup.sh runs last), as a new user meets it: as root every check passes
// and a small vault makes the round trip, leaving nothing behind; as another user what that user lacks
// is named, with what brings it, and the exit code says so.
import { readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { lacks, mounts, sh, VAULT_BIN, vault } from './helpers.js';

const doctorDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('vault-doctor-'));

describe.skipIf(lacks('mount'))('vault doctor', () => {
  it('as root: every check passes, the round trip works, and nothing is left behind', {
    timeout: 180_000,
  }, async () => {
    const result = await vault(['doctor'], { timeoutMs: 170_000 });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^(ok {2}|warn) {2}\S/);
    for (const part of [
      'filesystem ext4',
      '/dev/fuse',
      'loop devices',
      'losetup',
      'XTS addon',
      'FUSE 3 addon',
    ]) {
      expect(result.stdout).toMatch(new RegExp(`^ok {4}${part.replace('/', '\\/')}: `, 'm'));
    }
    expect(result.stdout).toMatch(
      /^ok {4}Argon2id: default level 12 \(1024 MiB, 2 passes\) takes \d+ ms per unlock here$/m,
    );
    expect(result.stdout).toMatch(
      /^ok {4}round trip: create, mount, write, dismount, remount, compare: all fine$/m,
    );
    expect(lines.at(-1)).toBe(
      'vault doctor: ready: a vault was created, mounted, written, dismounted and remounted here',
    );
    expect(doctorDirs()).toEqual([]);
    expect(mounts().filter((entry) => entry.mountpoint.includes('vault-doctor-'))).toEqual([]);
    // No vault of its directory is still mounted (loop device, bridge and daemon go with it).
    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<{ file: string }>;
    expect(listed.filter((entry) => entry.file.includes('vault-doctor-'))).toEqual([]);
  });

  it('as another user: /dev/fuse is named with what makes it usable, and no round trip is tried', async () => {
    const fuseOpen = (statSync('/dev/fuse').mode & 0o006) === 0o006;
    const result = await sh('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--',
      process.execPath,
      VAULT_BIN,
      'doctor',
    ]);
    expect(result.stdout).not.toMatch(/round trip/);
    if (fuseOpen) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/run it as root \(sudo vault doctor\) for the round trip$/m);
    } else {
      expect(result.code).toBe(EXIT_CODES.NEEDS_SYSTEM);
      expect(result.stdout).toMatch(
        /^FAIL {2}\/dev\/fuse: mode 0600, not usable by you \(run as root; for vault mount --user, chmod 0666 \/dev\/fuse \(Debian default\)\)$/m,
      );
      expect(result.stderr).toMatch(/^vault: error: vault doctor: 1 problem: \/dev\/fuse$/m);
      expect(result.stderr).toMatch(/^vault: hint: install what each line names/m);
    }
  });
});
