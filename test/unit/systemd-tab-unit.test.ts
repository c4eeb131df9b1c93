// The boot story with a vaulttab: the shipped unit docs/examples/vault-tab.service runs vault commands
// the CLI accepts, with options that exist for them, and its setup comments write a vaulttab line the
// parser accepts (that it ships in the npm package: systemd-unit.test.ts). Its lines are run for real in test/e2e/vaulttab.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseVaulttab } from '../../src/cli/vaulttab.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT_PATH = 'docs/examples/vault-tab.service';
const lines = readFileSync(join(ROOT, UNIT_PATH), 'utf8').split('\n');

async function program(): Promise<Command> {
  const { buildProgram } = await import('../../src/cli/program.js');
  const { loadCommands } = await import('../../src/cli/commands/index.js');
  return buildProgram(await loadCommands([]));
}

describe('the vaulttab systemd unit', () => {
  it('its ExecStart and ExecStop are vault commands with options that exist for them', async () => {
    const root = await program();
    const exec = lines.filter((line) => /^Exec(Start|Stop)=/.test(line));
    expect(exec).toEqual([
      'ExecStart=/usr/local/bin/vault mount --tab --non-interactive',
      'ExecStop=/usr/local/bin/vault dismount --tab',
    ]);
    for (const line of exec) {
      const [binary, name, ...words] = line.replace(/^Exec\w+=/, '').split(' ');
      expect(binary).toBe('/usr/local/bin/vault');
      const command = root.commands.find((sub) => sub.name() === name);
      expect(command, line).toBeDefined();
      for (const word of words) {
        expect(
          command?.options.some((option) => option.long === word),
          `${word} in ${line}`,
        ).toBe(true);
      }
    }
  });

  it('the vaulttab line its comments add is one the parser accepts', () => {
    const echo = lines.find((line) => line.includes('>> /etc/vaulttab'));
    const line = /echo '([^']+)'/.exec(echo ?? '')?.[1];
    expect(line).toBeDefined();
    expect(parseVaulttab(line ?? '', '/etc/vaulttab')).toMatchObject([
      { file: '/srv/vaults/data.vol', mountpoint: '/mnt/data', keyfile: '/etc/vault/data.key', name: 'data' },
    ]);
  });
});
