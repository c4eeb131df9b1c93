// Runs once around the whole test run (vitest globalSetup): every temporary file or directory named
// vault* that a test creates in the temp directory must be gone when the run ends. A leak of a few
// 64 MiB images per run fills a CI machine's /tmp over weeks, so it fails the run, by name.
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';

function ours(): Set<string> {
  return new Set(readdirSync(tmpdir()).filter((name) => name.startsWith('vault')));
}

export default function watchTempDir(): () => void {
  const before = ours();
  return () => {
    const left = [...ours()].filter((name) => !before.has(name));
    if (left.length > 0)
      throw new Error(`the tests left these behind in ${tmpdir()}: ${left.sort().join(', ')}`);
  };
}
