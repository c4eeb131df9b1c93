// Hints a user copies into a shell must survive the shell (issue 18 point 7), and default mountpoints
// keep the letters of the vault's name.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandLine, shellQuote } from '../../src/cli/output.js';
import { mountpointName } from '../../src/fuse/mount.js';

describe('shell-quoted hints', () => {
  it('leaves plain words alone and quotes the rest so that sh gives back the same words', () => {
    expect(shellQuote('secret.vol')).toBe('secret.vol');
    expect(shellQuote('/srv/a-b_c+d@e:f,g=h%')).toBe('/srv/a-b_c+d@e:f,g=h%');
    const words = ['vault', 'mount', "it's my vault.vol", '-k', 'key $HOME `x`.bin', 'tëst;rm -rf ~', ''];
    const echoed = execFileSync(
      'sh',
      ['-c', `for w in ${commandLine(words.slice(2))}; do printf '[%s]' "$w"; done`],
      {
        encoding: 'utf8',
      },
    );
    expect(echoed).toBe(
      words
        .slice(2)
        .map((word) => `[${word}]`)
        .join(''),
    );
  });
});

describe('default mountpoint names', () => {
  it.each([
    ['secret.vol', 'secret'],
    ['/home/a/tëst-ñø.vol', 'tëst-ñø'],
    ['Доку менты.vol', 'Доку_менты'],
    ['a\nb\tc.vol', 'a_b_c'],
    ['.hidden.vol', 'vault.hidden'],
    ['...vol', 'vault'],
    ['.vol', 'vault.vol'],
  ])('%j -> %j', (file, name) => {
    expect(mountpointName(file)).toBe(name);
  });
});
