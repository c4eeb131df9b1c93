// vault(1), the man page generated from the commander program (src/cli/man.ts, written to man/vault.1
// at build time): every command, subcommand, option and exit code is in it, and groff reads it cleanly.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCommands } from '../../src/cli/commands/index.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { manPage } from '../../src/cli/man.js';
import { buildProgram, VERSION } from '../../src/cli/program.js';

let program: Command;
let page = '';

/** Every command below `command`, with its full name ("vault key add"). */
function commandsOf(command: Command, prefix = 'vault'): Array<[string, Command]> {
  return command.commands.flatMap((sub): Array<[string, Command]> => {
    const name = `${prefix} ${sub.name()}`;
    return [[name, sub], ...commandsOf(sub, name)];
  });
}

/** The page as a reader sees it: roff's escaped hyphens and backslashes back to plain characters. */
function plain(text: string): string {
  return text.replace(/\\-/g, '-').replace(/\\e/g, '\\');
}

beforeAll(async () => {
  program = buildProgram(await loadCommands(['node', 'vault']));
  page = manPage(buildProgram(await loadCommands(['node', 'vault'])), VERSION);
});

describe('vault(1)', () => {
  it('has a section for every command and subcommand, with its description and usage', () => {
    const commands = commandsOf(program);
    expect(commands.map(([name]) => name)).toEqual(
      expect.arrayContaining(['vault create', 'vault mount', 'vault key add', 'vault header restore']),
    );
    for (const [name, command] of commands) {
      expect(plain(page), name).toContain(`.SS "${name}"\n`);
      const section = plain(page).split(`.SS "${name}"\n`)[1]?.split('\n.SS ')[0] ?? '';
      expect(section, name).toContain(command.description());
      expect(section, name).toMatch(new RegExp(`^\\.B ${name}[ |]`, 'm')); // usage (with aliases)
    }
  });

  it("lists every option of every command in that command's section, and the examples", () => {
    for (const [name, command] of commandsOf(program)) {
      const section = plain(page).split(`.SS "${name}"\n`)[1]?.split('\n.SS ')[0] ?? '';
      for (const option of command.options.filter((each) => each.long !== '--help'))
        expect(section, `${name} ${option.flags}`).toContain(`.B ${option.flags}\n`);
    }
    expect(plain(page)).toContain('vault create 2G secret.vol');
  });

  it('names every exit code and the version', () => {
    const exitSection = page.split('.SH EXIT STATUS\n')[1]?.split('\n.SH ')[0] ?? '';
    for (const [name, code] of Object.entries(EXIT_CODES))
      expect(exitSection).toContain(`.B ${code}\n${name}: `);
    expect(page).toMatch(new RegExp(`^\\.TH VAULT 1 "" "vault ${VERSION.replace(/\./g, '\\.')}"`));
  });

  it.runIf(existsSync('/usr/bin/groff'))('is valid roff: groff -man reports no warning', () => {
    const result = spawnSync('groff', ['-man', '-ww', '-z'], { input: page, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
