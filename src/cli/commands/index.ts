// Every subcommand, one file each; the order here is the order in `vault --help`.
import type { Command } from 'commander';
import * as benchmark from './benchmark.js';
import * as completion from './completion.js';
import * as create from './create.js';
import * as dismount from './dismount.js';
import * as exportImage from './export.js';
import * as header from './header.js';
import * as importImage from './import.js';
import * as info from './info.js';
import * as key from './key.js';
import * as keyfile from './keyfile.js';
import * as list from './list.js';
import * as mount from './mount.js';
import * as passwd from './passwd.js';
import * as repair from './repair.js';
import * as resize from './resize.js';

const commands: ReadonlyArray<{ register(program: Command): void }> = [
  create,
  mount,
  dismount,
  list,
  info,
  passwd,
  key,
  keyfile,
  header,
  repair,
  resize,
  importImage,
  exportImage,
  benchmark,
  completion,
];

export function registerCommands(program: Command): void {
  for (const command of commands) command.register(program);
}
