// Made the saved sample vaults in test/vectors once (format v1). They are decoded forever by
// test/unit/vectors-v1.test.ts; never regenerate them for an existing format version.
// Usage: npx tsc -p tsconfig.build.json && node test/tools/make-samples-v1.mjs
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { addKey, createVault, openVault, Secret } from '../../dist/container/index.js';

const dir = new URL('../vectors/', import.meta.url);
const pattern = (length, seed) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
const samples = [];

async function make(name, inputs, extra) {
  const path = new URL(name, dir).pathname;
  const keyfileSecret = async (s) =>
    Secret.fromInputs({
      password: Buffer.from(s.password, 'utf8'),
      keyfiles: await Promise.all(
        (s.keyfiles ?? []).map(async (hex, i) => {
          const file = `/tmp/sample-keyfile-${name}-${i}`;
          await writeFile(file, Buffer.from(hex, 'hex'));
          return file;
        }),
      ),
    });
  await createVault(path, {
    fileSize: 1048576,
    secret: await keyfileSecret(inputs),
    costLevel: 1,
    force: true,
  });
  if (extra) await addKey(path, await keyfileSecret(inputs), await keyfileSecret(extra), { costLevel: 1 });
  const vault = await openVault(path, await keyfileSecret(inputs), { costLevel: 1 });
  const writes = [
    { offset: 0, hex: pattern(4096, 1).toString('hex') },
    { offset: 5000, hex: Buffer.from(`vault sample ${name}`).toString('hex') },
    { offset: vault.size - 100, hex: pattern(100, 7).toString('hex') },
  ];
  for (const write of writes) await vault.writeAt(Buffer.from(write.hex, 'hex'), write.offset);
  const all = Buffer.alloc(vault.size);
  await vault.readAt(all, 0);
  await vault.close();
  samples.push({
    file: name,
    secrets: extra ? [inputs, extra] : [inputs],
    costLevel: 1,
    dataSize: all.length,
    slotsUsed: extra ? [0, 1] : [0],
    sequence: extra ? 2 : 1,
    writes,
    cleartextSha256: createHash('sha256').update(all).digest('hex'),
  });
}

await make('sample-v1-password.vol', { password: 'vault sample v1' });
await make(
  'sample-v1-keyfiles.vol',
  { password: '', keyfiles: ['6b657966696c65206f6e65', Buffer.alloc(300, 0xab).toString('hex')] },
  { password: 'pässwörd with ünïcode' },
);
await writeFile(
  new URL('samples-v1.json', dir),
  `${JSON.stringify({ source: 'vault: made by test/tools/make-samples-v1.mjs with format v1; must never change', samples }, null, 2)}\n`,
);
