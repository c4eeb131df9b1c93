// The container and crypto layers are a library (src/container/index.ts): their error messages and
// hints name no command and no flag of the CLI. Errors that need the CLI's advice carry a reason, and
// src/cli/hints.ts words it. A hint with `--force` or `vault repair` in the library fails here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_WORDS, cliWords } from '../../src/cli/hints.js';
import { cannotUnlock } from '../../src/container/errors.js';
import { VaultError } from '../../src/host/errors.js';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The string literals and template texts of a TypeScript file, comments left out. */
function literals(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...code.matchAll(/'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`|"((?:[^"\\\n]|\\.)*)"/g)].map(
    (match) => match[1] ?? match[2] ?? match[3] ?? '',
  );
}

const CLI_WORD =
  /(^|[\s(`'"])--[a-z]|(^|[\s(`])-k\b|\bvault (create|mount|dismount|repair|resize|key|passwd|header (backup|restore)|import|export|info|list|benchmark)\b/;

describe('library errors carry no CLI words', () => {
  it('no message or hint in src/container or src/crypto names a flag or a vault command', () => {
    const found: string[] = [];
    for (const file of [...sources(join(ROOT, 'src/container')), ...sources(join(ROOT, 'src/crypto'))]) {
      for (const literal of literals(readFileSync(file, 'utf8'))) {
        // Node's own flag (Whirlpool needs OpenSSL's legacy provider) is not one of vault's.
        if (CLI_WORD.test(literal) && !literal.includes('--openssl-legacy-provider'))
          found.push(`${file.slice(ROOT.length + 1)}: ${literal}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('every reason the CLI words is raised somewhere below it', () => {
    const below = [
      ...sources(join(ROOT, 'src/container')),
      ...sources(join(ROOT, 'src/host')),
      ...sources(join(ROOT, 'src/fuse')),
    ]
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
    const unused = Object.keys(CLI_WORDS).filter((reason) => !below.includes(`'${reason}'`));
    expect(unused).toEqual([]);
  });

  it('the CLI prints its own words for a known reason, and the library words otherwise', () => {
    const failed = cannotUnlock();
    expect(failed.hint).not.toMatch(CLI_WORD);
    expect(cliWords(failed)).toEqual({
      message: failed.message,
      hint: 'check the password, give every keyfile (-k) and the --cost level used at creation',
    });
    const tooLarge = new VaultError('USAGE', 'the largest hidden volume that fits is 12 MiB', undefined, {
      reason: 'hidden-too-large',
      details: { largest: '12 MiB', option: '12M' },
    });
    expect(cliWords(tooLarge).hint).toBe(
      'the largest hidden volume that fits is 12 MiB: give --hidden 12M or less',
    );
    const plain = new VaultError('IO', 'disk on fire', 'call the fire brigade');
    expect(cliWords(plain)).toEqual({ message: 'disk on fire', hint: 'call the fire brigade' });
  });
});
