// TEST ONLY: a library call that must be refused with a VaultError and leave a file byte for byte as it was.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { isVaultError, type VaultError } from '../../src/container/index.js';
import { type KeyWatch, watched } from './key-watch.js';
import { refusal } from './refusal.js';

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/**
 * The VaultError `run` is refused with; fails the test when it resolves or `path` changed, and (with a
 * KeyWatch) when a key it made is left unwiped.
 */
export async function refusedUnchanged(
  path: string,
  watch: KeyWatch | null,
  run: () => Promise<unknown>,
): Promise<VaultError> {
  const before = await sha256File(path);
  const error = await refusal(watch ? watched(watch, run) : run());
  expect(isVaultError(error), String(error)).toBe(true);
  expect(await sha256File(path), 'the refused call changed the file').toBe(before);
  return error as VaultError;
}
