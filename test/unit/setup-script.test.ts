// scripts/setup.sh keeps the build quiet (issue 18 point 16): the output of npm ci (node-gyp, compilers)
// is shown only when it fails. Its `quietly` function is run here on stand-in commands.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const script = readFileSync(new URL('../../scripts/setup.sh', import.meta.url), 'utf8');
const quietly = /^quietly\(\) \{\n[\s\S]*?\n\}\n/m.exec(script)?.[0] ?? '';

// quietly's logs (mktemp -t) go here, not into /tmp, and go with it.
const logDir = mkdtempSync(join(tmpdir(), 'vault-setup-test-'));
afterAll(() => rmSync(logDir, { recursive: true, force: true }));

function run(command: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('bash', ['-c', `set -euo pipefail\n${quietly}\n${command}`], {
    encoding: 'utf8',
    env: { ...process.env, TMPDIR: logDir },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('setup.sh', () => {
  it('ends by showing that the main job works here: vault doctor, its last command', () => {
    const commands = script.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
    expect(commands.at(-1)).toBe('bin/vault doctor');
  });

  it('runs npm ci through quietly', () => {
    expect(quietly).not.toBe('');
    expect(script).toMatch(/^quietly npm ci /m);
  });

  it('quietly: a command that succeeds prints nothing', () => {
    const ok = run("quietly sh -c 'echo gyp info it worked; echo CC native/xts.o >&2'");
    expect(ok).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(readdirSync(logDir)).toEqual([]);
  });

  it('quietly: a command that fails shows all its output and says what failed', () => {
    const failed = run("quietly sh -c 'echo gyp info; echo gyp ERR! build error >&2; exit 3'");
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('gyp info\ngyp ERR! build error\n');
    expect(failed.stderr).toMatch(
      /vault setup: error: sh -c .* failed \(output above; also in \S+\/vault-setup\.\w+\)/,
    );
    // The log of a failure is kept, where the message says.
    const [log] = readdirSync(logDir);
    expect(failed.stderr).toContain(`also in ${join(logDir, log ?? '')})`);
    expect(readFileSync(join(logDir, log ?? ''), 'utf8')).toBe('gyp info\ngyp ERR! build error\n');
  });
});
