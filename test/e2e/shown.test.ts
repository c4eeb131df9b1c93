// What `vault list` and `vault info` show about a mounted vault (issue 18 point 8): the filesystem type
// and size in list, the mounted state and filesystem in info; and a wrong password at `vault mount` on a
// terminal asks again, and the second, right one mounts (the retry leaves nothing of the failed try).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { canMount, FAST_COST, isMounted, useSuiteDir, VAULT_BIN, vault, waitFor } from './helpers.js';

const COST = ['--cost', FAST_COST];
const PASSWORD = 'shown password';

/** bin/vault on a pseudo-terminal (util-linux script): answers each prompt in turn, returns the screen. */
async function onTerminal(
  args: readonly string[],
  answers: ReadonlyArray<[prompt: string, keys: string]>,
): Promise<{ code: number; screen: string }> {
  const quoted = ['exec', process.execPath, VAULT_BIN, ...args].map(
    (word) => `'${word.replaceAll("'", "'\\''")}'`,
  );
  const child = spawn('/usr/bin/script', ['-qec', quoted.join(' '), '/dev/null'], {
    env: { ...process.env, SHELL: '/bin/sh', TERM: 'dumb' },
  });
  let screen = '';
  child.stdout.on('data', (chunk: Buffer) => {
    screen += chunk.toString('utf8');
  });
  const closed = new Promise<number>((resolveExit) => child.on('close', (code) => resolveExit(code ?? -1)));
  try {
    let from = 0;
    for (const [prompt, keys] of answers) {
      await waitFor(() => screen.indexOf(prompt, from) >= 0, `"${prompt}" on the terminal:\n${screen}`);
      from = screen.indexOf(prompt, from) + prompt.length;
      child.stdin.write(keys);
    }
    const code = await closed;
    return { code, screen };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe.skipIf(!canMount)('list and info on a mounted vault', () => {
  let dir = '';
  useSuiteDir('vault-shown-', (made) => {
    dir = made;
  });

  it('info shows the filesystem and "mounted: no"; list shows type and size; info then shows where it is mounted', async () => {
    const file = join(dir, 'shown.vol');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const created = await vault(['create', '16M', file, '--password-stdin', ...COST], {
      stdin: `${PASSWORD}\n`,
    });
    expect(created.code, created.stderr).toBe(EXIT_CODES.OK);

    const before = await vault(['info', file, '--password-stdin', ...COST], { stdin: `${PASSWORD}\n` });
    expect(before.stdout).toMatch(/^filesystem: +ext4$/m);
    expect(before.stdout).toMatch(/^mounted: +no$/m);

    const mounted = await vault(['mount', file, mnt, '--password-stdin', ...COST], {
      stdin: `${PASSWORD}\n`,
    });
    expect(mounted.code, mounted.stderr).toBe(EXIT_CODES.OK);
    try {
      const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<{
        file: string;
        fsType: string;
        size: number;
      }>;
      const mine = listed.find((entry) => entry.file === file);
      expect(mine?.fsType).toBe('ext4');
      expect(mine?.size).toBe(16 * 2 ** 20 - 262144);
      const table = (await vault(['list'])).stdout;
      expect(table).toMatch(/TYPE +SIZE/);
      const row = table.split('\n').find((line) => line.startsWith(file)) ?? '';
      expect(row).toMatch(/ ext4 +15\.8 MiB /);

      const during = await vault(['info', file, '--password-stdin', '--json', ...COST], {
        stdin: `${PASSWORD}\n`,
      });
      const info = JSON.parse(during.stdout) as { filesystem: string; mounted: unknown };
      expect(info.filesystem).toBe('ext4');
      expect(info.mounted).toEqual({
        mountpoint: mnt,
        blockFile: expect.stringMatching(/^\/run\/vault\/.*\/fuse\/volume$/),
        readOnly: false,
        filesystem: 'ext4',
        idleDismountSeconds: null,
      });
      const text = await vault(['info', file, '--password-stdin', ...COST], { stdin: `${PASSWORD}\n` });
      expect(text.stdout).toContain(`mounted:        yes, at ${mnt} (ext4, read-write)`);
    } finally {
      expect((await vault(['dismount', mnt])).code).toBe(EXIT_CODES.OK);
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))(
    'mount at a terminal: a wrong password asks again; the right one then mounts',
    async () => {
      const file = join(dir, 'shown.vol');
      const mnt = join(dir, 'retry-mnt');
      mkdirSync(mnt);
      const prompt = `Password for ${file}: `;
      const run = await onTerminal(
        ['mount', file, mnt, '--type', 'vault', ...COST],
        [
          [prompt, 'wrong password\r'],
          ['2 tries left', ''],
          [prompt, `${PASSWORD}\r`],
        ],
      );
      expect(run.code, run.screen).toBe(EXIT_CODES.OK);
      try {
        expect(isMounted(mnt)).toBe(true);
        expect(readFileSync('/proc/self/mounts', 'utf8')).toContain(mnt);
      } finally {
        expect((await vault(['dismount', mnt])).code).toBe(EXIT_CODES.OK);
      }
    },
  );
});
