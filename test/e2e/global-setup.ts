// Runs once before the whole e2e run (vitest globalSetup), not once per file: builds dist/, which every
// e2e test runs through bin/vault. A failed build stops the run with tsc's own output.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export default async function buildDist(): Promise<void> {
  const output = await new Promise<string>((resolveBuild) => {
    execFile(
      join(ROOT, 'node_modules/.bin/tsc'),
      ['-p', join(ROOT, 'tsconfig.build.json')],
      { timeout: 300_000, encoding: 'utf8' },
      (error, stdout, stderr) => resolveBuild(error ? `${stdout}${stderr}${error.message}` : ''),
    );
  });
  if (output !== '' || !existsSync(join(ROOT, 'dist/cli/main.js')))
    throw new Error(`build failed:\n${output}`);
}
