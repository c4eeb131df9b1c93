// Writes man/vault.1 (installed through package.json `man`) from the compiled commander program in
// dist/, so run it after tsc: `npm run build` and `prepare` (hence `npm pack`) do.
import { mkdirSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const { buildProgram, VERSION } = await import(new URL('dist/cli/program.js', root).href);
const { loadCommands } = await import(new URL('dist/cli/commands/index.js', root).href);
const { manPage } = await import(new URL('dist/cli/man.js', root).href);

const program = buildProgram(await loadCommands(['node', 'vault']));
mkdirSync(new URL('man/', root), { recursive: true });
writeFileSync(new URL('man/vault.1', root), manPage(program, VERSION));
