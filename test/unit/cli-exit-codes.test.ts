// docs/CLI.md promises scripts one exit code per error kind; this keeps its table and the code's
// EXIT_CODES identical, and every error code reachable by a user mapped.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';

function documentedExitCodes(): Record<string, number> {
  const text = readFileSync(new URL('../../docs/CLI.md', import.meta.url), 'utf8');
  const section = text.split(/^## Exit codes$/m)[1]?.split(/^## /m)[0] ?? '';
  const table: Record<string, number> = {};
  for (const line of section.split('\n')) {
    const row = /^\|\s*(\d+)\s*\|\s*`([A-Z_]+)`\s*\|/.exec(line);
    if (row?.[1] && row[2]) table[row[2]] = Number(row[1]);
  }
  return table;
}

describe('exit codes', () => {
  it('docs/CLI.md lists exactly the codes of src/cli/exit-codes.ts', () => {
    expect(documentedExitCodes()).toEqual({ ...EXIT_CODES });
  });

  it('gives every error kind its own code, none clashing with shell conventions', () => {
    const codes = Object.values(EXIT_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, code] of Object.entries(EXIT_CODES)) {
      if (name === 'INTERRUPTED')
        expect(code).toBe(128 + 2); // as a shell reports SIGINT
      else expect(code).toBeLessThan(126); // 126/127 mean "cannot execute"/"not found" to shells
    }
  });

  it('matches the summary in `vault --help`', async () => {
    const { buildProgram } = await import('../../src/cli/program.js');
    const { loadCommands } = await import('../../src/cli/commands/index.js');
    let help = '';
    buildProgram(await loadCommands([]))
      .configureOutput({ writeOut: (text) => (help += text) })
      .outputHelp();
    const summary = help.slice(help.indexOf('Exit codes:')).replace(/\s+/g, ' ');
    for (const code of Object.values(EXIT_CODES)) expect(summary).toMatch(new RegExp(`\\b${code} [A-Za-z]`));
  });
});
