// The systemd story (issue 18 point 15): the shipped template unit docs/examples/vault@.service, the
// README that tells how to use it and the CLI agree, line by line: every vault command in the unit is
// one the CLI accepts with those options, the paths of the unit are the README's, the unit ships in the
// package, systemd itself finds nothing wrong in it, and `keyfile generate` makes /etc/vault (0700).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { generateKeyfile } from '../../src/cli/commands/keyfile.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT_PATH = 'docs/examples/vault@.service';
const unit = readFileSync(join(ROOT, UNIT_PATH), 'utf8');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const lines = unit.split('\n');
const setting = (key: string) =>
  lines.filter((line) => line.startsWith(`${key}=`)).map((line) => line.slice(key.length + 1));
const forData = (text: string) => text.replaceAll('%i', 'data');

async function program(): Promise<Command> {
  const { buildProgram } = await import('../../src/cli/program.js');
  const { loadCommands } = await import('../../src/cli/commands/index.js');
  return buildProgram(await loadCommands([]));
}

/** Every `vault ...` command line of the unit: Exec* settings and the commands its comments show. */
function vaultCommands(): string[][] {
  const commands: string[][] = [];
  for (const line of lines) {
    const text = line.replace(/^#\s*/, '').replace(/^Exec\w+=/, '');
    const words = text.split('#')[0]?.trim().split(/\s+/) ?? [];
    const at = words.findIndex((word) => word === 'vault' || word.endsWith('/bin/vault'));
    if (at >= 0 && (line.startsWith('Exec') || line.startsWith('#   ') || line.startsWith('#   Exec'))) {
      commands.push(words.slice(at + 1));
    }
  }
  return commands;
}

describe('the systemd template unit', () => {
  it('every vault command in it is accepted by the CLI, with options that exist for that command', async () => {
    const root = await program();
    const commands = vaultCommands();
    expect(commands.length).toBeGreaterThanOrEqual(5);
    for (const words of commands) {
      let command: Command | undefined = root;
      let at = 0;
      while (at < words.length) {
        const next: Command | undefined = command?.commands.find((sub) => sub.name() === words[at]);
        if (!next) break;
        command = next;
        at += 1;
      }
      expect(command, words.join(' ')).not.toBe(root);
      for (const word of words.slice(at).filter((token) => token.startsWith('-'))) {
        const known = command?.options.some((option) => option.long === word || option.short === word);
        expect(known, `${word} in "vault ${words.join(' ')}"`).toBe(true);
      }
    }
  });

  it('its paths agree with each other and with the README', () => {
    const [start] = setting('ExecStart');
    expect(start).toBe(
      '/usr/local/bin/vault mount /srv/vaults/%i.vol /mnt/%i --keyfile /etc/vault/%i.key --non-interactive',
    );
    expect(setting('ConditionPathExists')).toEqual(['/srv/vaults/%i.vol']);
    expect(setting('RequiresMountsFor')[0]?.split(' ')).toEqual([
      '/srv/vaults/%i.vol',
      '/etc/vault/%i.key',
      '/mnt',
    ]);
    expect(setting('ExecStartPre')).toEqual(['/bin/mkdir -p /mnt/%i']);
    expect(setting('ExecStop')).toEqual(['/usr/local/bin/vault dismount /mnt/%i']);
    // The README's commands create and mount exactly what vault@data mounts.
    const vaultFile = forData('/srv/vaults/%i.vol');
    const keyfile = forData('/etc/vault/%i.key');
    expect(readme).toContain(`vault keyfile generate ${keyfile}`);
    expect(readme).toContain(`vault create 10G ${vaultFile} -k ${keyfile} --non-interactive`);
    expect(readme).toContain(
      `vault mount ${vaultFile} ${forData('/mnt/%i')} -k ${keyfile} --non-interactive`,
    );
    expect(readme).toContain('systemctl daemon-reload && systemctl enable --now vault@data');
    expect(readme).not.toMatch(/\/srv\/data\.vol/);
    // /usr/local/bin/vault is what scripts/setup.sh links.
    expect(readFileSync(join(ROOT, 'scripts/setup.sh'), 'utf8')).toContain('/usr/local/bin/vault');
  });

  // One `npm pack --dry-run` for both shipped units (this template and vault-tab.service).
  it('ships in the npm package, with docs/examples/vault-tab.service', () => {
    const listed = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const files = (JSON.parse(listed) as Array<{ files: Array<{ path: string }> }>)[0]?.files ?? [];
    expect(files.map((file) => file.path)).toContain(UNIT_PATH);
    expect(files.map((file) => file.path)).toContain('docs/examples/vault-tab.service');
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))(
    'systemd-analyze verify finds nothing to say about it',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'vault-unit-'));
      try {
        // As installed: the template, and one instance of it, by name.
        writeFileSync(join(dir, 'vault@.service'), unit);
        writeFileSync(join(dir, 'vault@data.service'), unit);
        const verify = spawnSync('systemd-analyze', ['verify', join(dir, 'vault@data.service')], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        const aboutUnit = verify.stderr
          .split('\n')
          .filter((line) => line.includes('vault@') && !/is not executable|No such file/.test(line));
        expect(aboutUnit).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('vault keyfile generate', () => {
  it('creates missing parent directories with mode 0700', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vault-keyfile-'));
    try {
      const path = join(dir, 'etc', 'vault', 'data.key');
      await generateKeyfile(path);
      expect(statSync(join(dir, 'etc', 'vault')).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'etc')).mode & 0o777).toBe(0o700);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(path).size).toBe(64);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
