// `npm run bench -- <name>`: runs bench/<name>.mjs (a module that does its work when imported;
// arguments after the name are process.argv.slice(3)). With no or an unknown name, lists the benches.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDirectory = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(benchDirectory)
  .filter((file) => file.endsWith('.mjs') && file !== 'run.mjs')
  .map((file) => file.slice(0, -'.mjs'.length))
  .sort();

const name = process.argv[2];
if (name === undefined || !available.includes(name)) {
  const stream = name === undefined ? process.stdout : process.stderr;
  if (name !== undefined) stream.write(`bench: unknown benchmark "${name}"\n`);
  stream.write(`usage: npm run bench -- <name>\navailable: ${available.join(', ') || '(none)'}\n`);
  process.exit(name === undefined ? 0 : 2);
}
await import(pathToFileURL(join(benchDirectory, `${name}.mjs`)).href);
