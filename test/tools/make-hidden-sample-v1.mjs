// Made the saved hidden-volume sample (test/vectors/sample-v1-hidden.vol) once, format v1, and appended its
// two entries (outer and hidden secret) to samples-v1.json. Never regenerate it for an existing format.
// Usage: npx tsc -p tsconfig.build.json && node test/tools/make-hidden-sample-v1.mjs
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createVault, openVault, Secret } from '../../dist/container/index.js';

const dir = new URL('../vectors/', import.meta.url);
const pattern = (length, seed) => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff));
const name = 'sample-v1-hidden.vol';
const path = new URL(name, dir).pathname;
const s = (p) => Secret.fromInputs({ password: Buffer.from(p, 'utf8') });
const outer = { password: 'vault sample v1 outer' };
const hidden = { password: 'vault sample v1 hidden' };
await createVault(path, {
  fileSize: 2 * 1048576,
  secret: await s(outer.password),
  costLevel: 1,
  force: true,
  hidden: { dataSize: 786432, secret: await s(hidden.password) },
});
const entries = [];
for (const [spec, kind] of [
  [outer, 'outer'],
  [hidden, 'hidden'],
]) {
  const vault = await openVault(path, await s(spec.password), { costLevel: 1 });
  const writes = [
    { offset: 0, hex: pattern(4096, kind === 'outer' ? 3 : 5).toString('hex') },
    { offset: 5000, hex: Buffer.from(`vault sample ${name} ${kind}`).toString('hex') },
    // the outer volume's write lands before the hidden volume (never inside it)
    {
      offset: kind === 'outer' ? vault.size - 786432 - 100 : vault.size - 100,
      hex: pattern(100, 9).toString('hex'),
    },
  ];
  for (const write of writes) await vault.writeAt(Buffer.from(write.hex, 'hex'), write.offset);
  await vault.close();
  entries.push({ spec, kind, writes });
}
const samplesFile = new URL('samples-v1.json', dir);
const json = JSON.parse(await readFile(samplesFile, 'utf8'));
for (const { spec, kind, writes } of entries) {
  const vault = await openVault(path, await s(spec.password), { costLevel: 1, readOnly: true });
  const all = Buffer.alloc(vault.size);
  await vault.readAt(all, 0);
  const info = vault.info();
  await vault.close();
  json.samples.push({
    file: name,
    kind,
    secrets: [spec],
    costLevel: 1,
    dataSize: all.length,
    slotsUsed: info.keyslots.used,
    sequence: info.headers.primary.sequence,
    writes,
    cleartextSha256: createHash('sha256').update(all).digest('hex'),
  });
}
await writeFile(samplesFile, `${JSON.stringify(json, null, 2)}\n`);
