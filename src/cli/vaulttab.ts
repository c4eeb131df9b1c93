// /etc/vaulttab, read by `vault mount --tab` and `vault dismount --tab` (docs/CLI.md "vaulttab"): one
// vault a line, like crypttab and fstab: `file mountpoint keyfile options`, # comments, \040 for a space.
// Parsing is strict: a malformed line or an unknown option stops everything (USAGE, with the line).
import { isAbsolute, normalize, resolve } from 'node:path';
import { VaultError } from '../container/errors.js';
import { MAX_COST_LEVEL, MIN_COST_LEVEL } from '../crypto/kdf.js';
import { mountpointName } from '../fuse/mount.js';
import { parseFsOptions } from '../host/mounts.js';
import { parseDuration } from './duration.js';
import { parseVolumeTypeOptions, type VolumeTypeOptions } from './volume-options.js';

export const DEFAULT_VAULTTAB = '/etc/vaulttab';

export interface TabOptions {
  readOnly: boolean;
  /** Not mounted by `vault mount --tab` unless named. */
  noauto: boolean;
  /** Its failure is reported but does not fail the run (exit status). */
  nofail: boolean;
  preserveTimestamps: boolean;
  /** Password prompts at a terminal (entries without a keyfile). */
  tries?: number;
  /** The Argon2id cost level (not stored in the vault). */
  cost?: number;
  /** Whom the mount belongs to (a user name or uid), as --owner. */
  owner?: string;
  partition?: number;
  /** Extra mount options (fs=noatime), checked as --fs-options. */
  fsOptions: string[];
  idleDismountMs?: number;
  /** type=, hash=, pim= as --type, --hash, --pim. */
  volume: VolumeTypeOptions;
}

export interface TabEntry {
  /** 1-based line number in the vaulttab. */
  line: number;
  /** Absolute path of the vault file. */
  file: string;
  /** Absolute mountpoint; null for "-" (the default, /media/vault/<name>). */
  mountpoint: string | null;
  /** Absolute keyfile path; null for "none" or "-" (a password is asked for). */
  keyfile: string | null;
  /** The file's name without extension (as its default mountpoint): what `--tab NAME` matches. */
  name: string;
  options: TabOptions;
}

/** The options a line may carry, for hints and docs. */
export const TAB_OPTIONS = [
  'defaults',
  'ro',
  'rw',
  'noauto',
  'auto',
  'nofail',
  'preserve-timestamps',
  'tries=N',
  'cost=N',
  'owner=USER',
  'partition=N',
  'fs=OPTION',
  'idle-dismount=DURATION',
  'type=TYPE',
  'hash=NAME',
  'pim=N',
] as const;

const OPTIONS_HINT = `options are comma-separated, from: ${TAB_OPTIONS.join(', ')} (docs/CLI.md "vaulttab")`;
const LINE_HINT =
  'a line is: file mountpoint [keyfile|none|-] [options]; absolute paths, \\040 for a space, # for a comment';

/** Parses a vaulttab's text; `path` is named in errors. Throws VaultError USAGE naming the line. */
export function parseVaulttab(text: string, path: string): TabEntry[] {
  const entries: TabEntry[] = [];
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    const fail = (message: string, hint = LINE_HINT): never => {
      throw new VaultError('USAGE', `${path} line ${line}: ${message}`, hint);
    };
    const content = raw.replace(/\r$/, '').trim();
    if (content === '' || content.startsWith('#')) continue;
    if ([...content].some(isControl)) fail('contains a control character');
    const fields = content.split(/[ \t]+/).map((field) => unescapeField(field, fail));
    if (fields.length < 2) fail('needs at least a vault file and a mountpoint');
    if (fields.length > 4) {
      fail(
        `has ${fields.length} fields, at most 4 are allowed`,
        `${LINE_HINT}; a space inside a path is written \\040`,
      );
    }
    const [fileField = '', mountpointField = '', keyfileField = '-', optionsField = 'defaults'] = fields;
    const file = absolutePath(fileField, 'the vault file', fail);
    const mountpoint = mountpointField === '-' ? null : absolutePath(mountpointField, 'the mountpoint', fail);
    const keyfile =
      keyfileField === '-' || keyfileField === 'none'
        ? null
        : absolutePath(keyfileField, 'the keyfile', fail);
    const options = parseTabOptions(optionsField, (message, hint) => fail(message, hint));
    for (const earlier of entries) {
      if (earlier.file === file) fail(`names ${file} again (line ${earlier.line})`, 'one line per vault');
      if (mountpoint !== null && earlier.mountpoint === mountpoint) {
        fail(`mounts on ${mountpoint} again (line ${earlier.line})`, 'one vault per mountpoint');
      }
    }
    entries.push({ line, file, mountpoint, keyfile, name: mountpointName(file), options });
  }
  return entries;
}

/** A control character other than TAB (a field separator). */
function isControl(character: string): boolean {
  const code = character.charCodeAt(0);
  return (code < 0x20 && code !== 0x09) || code === 0x7f;
}

/** fstab's escapes: \040 space, \011 tab, \012 newline, \134 backslash; any other backslash is an error. */
function unescapeField(field: string, fail: (message: string) => never): string {
  return field.replace(/\\(.{0,3})/g, (match, digits: string) => {
    const code = /^[0-7]{3}$/.test(digits) ? Number.parseInt(digits, 8) : Number.NaN;
    if (![0o40, 0o11, 0o12, 0o134].includes(code)) fail(`unknown escape "${match}" (use \\040 for a space)`);
    return String.fromCharCode(code);
  });
}

function absolutePath(field: string, what: string, fail: (message: string) => never): string {
  if (!isAbsolute(field)) fail(`${what} must be an absolute path, not "${field}"`);
  const path = normalize(field);
  return path.length > 1 ? path.replace(/\/$/, '') : path;
}

/** The options field: comma-separated names and name=value pairs; every one known, none twice. */
export function parseTabOptions(field: string, fail: (message: string, hint?: string) => never): TabOptions {
  const options: TabOptions = {
    readOnly: false,
    noauto: false,
    nofail: false,
    preserveTimestamps: false,
    fsOptions: [],
    volume: {},
  };
  const seen = new Set<string>();
  for (const item of field.split(',')) {
    if (item === '') fail('empty option (two commas, or a comma at an end)', OPTIONS_HINT);
    const equals = item.indexOf('=');
    const name = equals === -1 ? item : item.slice(0, equals);
    const value = equals === -1 ? null : item.slice(equals + 1);
    const group = name === 'ro' || name === 'rw' ? 'ro/rw' : name === 'auto' ? 'noauto' : name;
    if (name !== 'fs' && name !== 'defaults' && seen.has(group)) {
      fail(
        `option "${name}" ${group === name ? 'is given twice' : `contradicts or repeats another`}`,
        OPTIONS_HINT,
      );
    }
    seen.add(group);
    const flag = (): void => {
      if (value !== null) fail(`option "${name}" takes no value`, OPTIONS_HINT);
    };
    const needValue = (): string => {
      if (value === null || value === '') fail(`option "${name}" needs a value (${name}=...)`, OPTIONS_HINT);
      return value as string;
    };
    const wrap = <T>(parse: () => T, label = `${name}=`): T => {
      try {
        return parse();
      } catch (error) {
        if (error instanceof VaultError) fail(`${label}${error.message}`, error.hint);
        throw error;
      }
    };
    switch (name) {
      case 'defaults':
      case 'auto':
      case 'rw':
        flag();
        break;
      case 'ro':
        flag();
        options.readOnly = true;
        break;
      case 'noauto':
        flag();
        options.noauto = true;
        break;
      case 'nofail':
        flag();
        options.nofail = true;
        break;
      case 'preserve-timestamps':
        flag();
        options.preserveTimestamps = true;
        break;
      case 'tries':
        options.tries = wholeNumber(needValue(), 1, 100, name, fail);
        break;
      case 'cost':
        options.cost = wholeNumber(needValue(), MIN_COST_LEVEL, MAX_COST_LEVEL, name, fail);
        break;
      case 'partition':
        options.partition = wholeNumber(needValue(), 1, 999, name, fail);
        break;
      case 'owner': {
        const owner = needValue();
        if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(owner)) fail(`owner=${owner}: not a user name or uid`);
        options.owner = owner;
        break;
      }
      case 'fs':
        options.fsOptions.push(...wrap(() => parseFsOptions(needValue())));
        break;
      case 'idle-dismount':
        options.idleDismountMs = wrap(() => parseDuration(needValue(), 'idle-dismount'), '');
        break;
      case 'type':
      case 'hash':
      case 'pim':
        options.volume[name] = needValue();
        break;
      default:
        fail(`unknown option "${name}"`, OPTIONS_HINT);
    }
  }
  return options;
}

/**
 * type=, hash= and pim= checked as --type, --hash and --pim are (a hash may need its KDF loaded, so
 * this is separate from parseVaulttab); throws USAGE naming the line.
 */
export async function checkVolumeOptions(entries: readonly TabEntry[], path: string): Promise<void> {
  for (const entry of entries) {
    if (Object.keys(entry.options.volume).length === 0) continue;
    try {
      await parseVolumeTypeOptions(entry.options.volume);
    } catch (error) {
      if (!(error instanceof VaultError)) throw error;
      throw new VaultError(
        'USAGE',
        `${path} line ${entry.line}: ${error.message.replaceAll('--', '')}`,
        error.hint?.replaceAll('--', ''),
      );
    }
  }
}

function wholeNumber(
  text: string,
  min: number,
  max: number,
  name: string,
  fail: (message: string, hint?: string) => never,
): number {
  const value = /^\d{1,4}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) fail(`${name}=${text}: must be a whole number from ${min} to ${max}`);
  return value;
}

/**
 * The entries `vault mount --tab [selectors]` acts on: with no selectors every entry but the noauto ones
 * (`all`: those too); otherwise the entries whose name, vault file or mountpoint a selector names, in
 * the order of the file. A selector that names none is an error (NOT_FOUND), before anything is done.
 */
export function selectEntries(
  entries: readonly TabEntry[],
  selectors: readonly string[],
  path: string,
  options: { all?: boolean } = {},
): TabEntry[] {
  if (selectors.length === 0) return entries.filter((entry) => options.all || !entry.options.noauto);
  const matches = (entry: TabEntry, selector: string): boolean =>
    selector === entry.name ||
    (selector.includes('/') && (resolve(selector) === entry.file || resolve(selector) === entry.mountpoint));
  for (const selector of selectors) {
    if (!entries.some((entry) => matches(entry, selector))) {
      throw new VaultError(
        'NOT_FOUND',
        `${path} has no vault "${selector}"`,
        entries.length === 0
          ? `${path} lists no vaults`
          : `name one by its name (${entries.map((entry) => entry.name).join(', ')}), its file or its mountpoint`,
      );
    }
  }
  return entries.filter((entry) => selectors.some((selector) => matches(entry, selector)));
}
