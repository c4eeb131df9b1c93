// Runs once before the whole e2e run (vitest globalSetup), not once per file: builds dist/, which every
// e2e test runs through bin/vault. A failed build stops the run with tsc's own output.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export default async function buildDist(): Promise<void> {
  // As `npm run build` does: tsc, then the two programs bundled (scripts/bundle.mjs), so that the
  // suite runs the same files a user's `vault` runs.
  const output =
    (await step(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json')])) ||
    (await step(process.execPath, [join(ROOT, 'scripts/bundle.mjs')]));
  if (output !== '' || !existsSync(join(ROOT, 'dist/cli/main.js')))
    throw new Error(`build failed:\n${output}`);
}

function step(command: string, args: string[]): Promise<string> {
  return new Promise<string>((resolveStep) => {
    execFile(command, args, { timeout: 300_000, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolveStep(error ? `${stdout}${stderr}${error.message}` : ''),
    );
  });
}
