// Every subcommand, one file each; the order here is the order in `vault --help`. Modules load on
// demand: a run of `vault mount` imports only mount.ts and what it needs (not argon2, not the image
// code), which keeps `vault` quick to start; help and completion load them all.
import type { Command } from 'commander';

export interface CommandModule {
  register(program: Command): void;
}

const loaders: ReadonlyArray<readonly [name: string, load: () => Promise<CommandModule>]> = [
  ['create', () => import('./create.js')],
  ['mount', () => import('./mount.js')],
  ['dismount', () => import('./dismount.js')],
  ['list', () => import('./list.js')],
  ['info', () => import('./info.js')],
  ['passwd', () => import('./passwd.js')],
  ['key', () => import('./key.js')],
  ['keyfile', () => import('./keyfile.js')],
  ['header', () => import('./header.js')],
  ['repair', () => import('./repair.js')],
  ['resize', () => import('./resize.js')],
  ['import', () => import('./import.js')],
  ['export', () => import('./export.js')],
  ['benchmark', () => import('./benchmark.js')],
  ['doctor', () => import('./doctor.js')],
  ['completion', () => import('./completion.js')],
];

/** The modules a command line needs: just the named command's, or all (help, completion, anything else). */
export async function loadCommands(argv: readonly string[]): Promise<CommandModule[]> {
  const word = argv[2];
  const only = word === 'completion' ? undefined : loaders.find(([name]) => name === word);
  return only ? [await only[1]()] : Promise.all(loaders.map(([, load]) => load()));
}

export function registerCommands(program: Command, commands: readonly CommandModule[]): void {
  for (const command of commands) command.register(program);
}
