// A vault secret: password and keyfiles reduced to one byte string (the Argon2id input) as
// docs/FORMAT.md "Secret material" describes. Keyfiles are streamed, so any size works.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createKeyfileHasher, secretMaterial } from '../crypto/keyfiles.js';
import { wipe } from '../crypto/random.js';
import { VaultError } from './errors.js';

export interface SecretInputs {
  /**
   * The password bytes as given: no normalisation, no encoding check (UTF-8 in practice, FORMAT.md 6.1).
   * May be empty if keyfiles are given.
   */
  password?: Uint8Array;
  keyfiles?: readonly KeyfileSource[];
}

/**
 * A keyfile: a path, or bytes already read (`-k -`, a keyfile piped on stdin, as cryptsetup's
 * --key-file=-); `name` is what messages call it. The bytes stay the caller's to wipe.
 */
export type KeyfileSource = string | { readonly name: string; readonly bytes: Uint8Array };

function keyfileName(source: KeyfileSource): string {
  return typeof source === 'string' ? source : source.name;
}

/**
 * What the foreign formats need besides the vault material (docs/CLI.md "Foreign volumes"): the password
 * bytes, the VeraCrypt/TrueCrypt keyfile pools (64 and 128 bytes; null without keyfiles) and, for LUKS,
 * the bytes of the one keyfile (cryptsetup's --key-file), or null.
 */
export interface ForeignSecretParts {
  password: Buffer;
  pool64: Buffer | null;
  pool128: Buffer | null;
  luksKeyfile: Buffer | null;
  keyfileCount: number;
}

/** cryptsetup's default --keyfile-size limit. */
export const LUKS_KEYFILE_MAX_BYTES = 8 << 20;
const WIRE_MAGIC = Buffer.from('\xff\xfevault-foreign-v1', 'latin1');

export class Secret {
  #material: Buffer | null;
  #foreign: ForeignSecretParts | null;

  private constructor(material: Buffer, foreign: ForeignSecretParts | null = null) {
    this.#material = material;
    this.#foreign = foreign;
  }

  /**
   * Reads and hashes every keyfile, then combines them with the password. Wipes its intermediates.
   * With `foreign`, also keeps what LUKS, VeraCrypt and TrueCrypt volumes need (ForeignSecretParts).
   */
  static async fromInputs(inputs: SecretInputs, options: { foreign?: boolean } = {}): Promise<Secret> {
    const password = inputs.password ?? new Uint8Array(0);
    const keyfiles = inputs.keyfiles ?? [];
    if (password.length === 0 && keyfiles.length === 0) {
      throw new VaultError(
        'MISSING_SECRET',
        'an empty password is allowed only together with a keyfile',
        'give a password, or a keyfile',
        { reason: 'empty-secret' },
      );
    }
    const digests: Buffer[] = [];
    try {
      for (const path of keyfiles) digests.push(await hashKeyfile(path));
      const material = secretMaterial(password, digests);
      let foreign: ForeignSecretParts | null = null;
      try {
        if (options.foreign) foreign = await foreignParts(password, keyfiles);
      } catch (error) {
        wipe(material);
        throw error;
      }
      return new Secret(material, foreign);
    } finally {
      wipe(...digests);
    }
  }

  /** For the daemon, which receives the material over a pipe. Takes ownership of the buffer. */
  static fromMaterial(material: Buffer): Secret {
    return new Secret(material);
  }

  /** The inverse of toWire (what the mount daemon receives). Takes ownership of nothing; wipe `wire`. */
  static fromWire(wire: Uint8Array): Secret {
    const bytes = Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength);
    if (!bytes.subarray(0, WIRE_MAGIC.length).equals(WIRE_MAGIC)) return new Secret(ownedCopy(bytes));
    let at = WIRE_MAGIC.length;
    const field = (): Buffer | null => {
      const length = bytes.readUInt32BE(at);
      at += 4;
      if (length === 0xffffffff) return null;
      const out = ownedCopy(bytes.subarray(at, at + length));
      at += length;
      return out;
    };
    const material = field() as Buffer;
    const password = field() as Buffer;
    const pool64 = field();
    const pool128 = field();
    const luksKeyfile = field();
    const keyfileCount = bytes.readUInt32BE(at);
    return new Secret(material, { password, pool64, pool128, luksKeyfile, keyfileCount });
  }

  /** One byte string for the pipe to the daemon: the material alone, or with the foreign parts. */
  toWire(): Buffer {
    const material = this.material;
    const foreign = this.#foreign;
    if (!foreign) return ownedCopy(material);
    const fields = [material, foreign.password, foreign.pool64, foreign.pool128, foreign.luksKeyfile];
    const length = WIRE_MAGIC.length + fields.reduce((sum, part) => sum + 4 + (part?.length ?? 0), 0) + 4;
    const wire = Buffer.alloc(length);
    let at = WIRE_MAGIC.copy(wire, 0);
    for (const part of fields) {
      at = wire.writeUInt32BE(part ? part.length : 0xffffffff, at);
      if (part) at += part.copy(wire, at);
    }
    wire.writeUInt32BE(foreign.keyfileCount, at);
    return wire;
  }

  get material(): Buffer {
    if (!this.#material) throw new Error('secret already wiped');
    return this.#material;
  }

  /** The parts the foreign formats need; null when the secret was read without `foreign`. */
  get foreign(): ForeignSecretParts | null {
    if (!this.#material) throw new Error('secret already wiped');
    return this.#foreign;
  }

  wipe(): void {
    wipe(this.#material);
    this.#material = null;
    const foreign = this.#foreign;
    if (foreign) wipe(foreign.password, foreign.pool64, foreign.pool128, foreign.luksKeyfile);
    this.#foreign = null;
  }
}

function ownedCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.alloc(bytes.length);
  copy.set(bytes);
  return copy;
}

async function foreignParts(
  password: Uint8Array,
  keyfiles: readonly KeyfileSource[],
): Promise<ForeignSecretParts> {
  // The keyfile pools need foreign-kdf (and its hashes): loaded only when there are keyfiles, which
  // keeps them out of `vault mount`'s start-up.
  const pools = keyfiles.length > 0 ? await import('../crypto/foreign-kdf.js') : null;
  const parts: ForeignSecretParts = {
    password: ownedCopy(password),
    pool64: pools ? Buffer.alloc(pools.TC_POOL_BYTES) : null,
    pool128: pools ? Buffer.alloc(pools.VC_POOL_BYTES) : null,
    luksKeyfile: null,
    keyfileCount: keyfiles.length,
  };
  try {
    for (const path of keyfiles) {
      if (!pools) break;
      const head = await readHead(path, pools.TC_KEYFILE_BYTES);
      try {
        // Stryker disable next-line ConditionalExpression: equivalent, the pools are null only without keyfiles, when this loop never runs
        if (parts.pool64) pools.addKeyfileToPool(parts.pool64, head);
        // Stryker disable next-line ConditionalExpression: equivalent, as above
        if (parts.pool128) pools.addKeyfileToPool(parts.pool128, head);
      } finally {
        head.fill(0);
      }
    }
    // cryptsetup takes one key file; with several, LUKS volumes cannot be opened (said at unlock).
    const [only] = keyfiles;
    // Stryker disable next-line ConditionalExpression: equivalent, with one keyfile `only` is defined (the test is for the type checker)
    if (keyfiles.length === 1 && only !== undefined) {
      parts.luksKeyfile = await readHead(only, LUKS_KEYFILE_MAX_BYTES + 1);
      if (parts.luksKeyfile.length > LUKS_KEYFILE_MAX_BYTES) {
        wipe(parts.luksKeyfile);
        parts.luksKeyfile = null;
      }
    }
    return parts;
  } catch (error) {
    wipe(parts.password, parts.pool64, parts.pool128, parts.luksKeyfile);
    throw error;
  }
}

/** The first `limit` bytes of a keyfile (already checked by hashKeyfile), in a buffer the caller wipes. */
async function readHead(source: KeyfileSource, limit: number): Promise<Buffer> {
  if (typeof source !== 'string') return ownedCopy(source.bytes.subarray(0, limit));
  const path = source;
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, end: limit - 1 })) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
    }
  } catch (error) {
    wipe(...chunks);
    throw new VaultError('IO', `cannot read keyfile: ${path}`, 'check its permissions', { cause: error });
  }
  const out = Buffer.alloc(total);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(out, at);
  wipe(...chunks);
  return out;
}

async function hashKeyfile(source: KeyfileSource): Promise<Buffer> {
  if (typeof source !== 'string') {
    if (source.bytes.length === 0) {
      throw new VaultError(
        'USAGE',
        `keyfile is empty: ${keyfileName(source)}`,
        'an empty keyfile adds no secret; pipe the keyfile into vault',
      );
    }
    const hasher = createKeyfileHasher();
    hasher.update(source.bytes);
    return hasher.digest();
  }
  const path = source;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new VaultError('NOT_FOUND', `keyfile not found: ${path}`, 'check the path of the keyfile', {
      reason: 'keyfile-not-found',
    });
  }
  if (!info.isFile()) {
    throw new VaultError(
      'USAGE',
      `keyfile is not a regular file: ${path}`,
      'a keyfile must be a regular file',
    );
  }
  // Stryker disable next-line ConditionalExpression,BlockStatement: equivalent, the check after reading (hasher.bytes === 0) refuses the same file with the same error
  if (info.size === 0) {
    throw new VaultError(
      'USAGE',
      `keyfile is empty: ${path}`,
      'an empty keyfile adds no secret; use another file',
    );
  }
  const hasher = createKeyfileHasher();
  try {
    // Stryker disable next-line ObjectLiteral: equivalent, the chunk size changes the number of update() calls, not the digest
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
      hasher.update(chunk as Buffer);
  } catch (error) {
    throw new VaultError('IO', `cannot read keyfile: ${path}`, 'check its permissions', { cause: error });
  }
  // Stryker disable all: reached only by a file that shrank to nothing between the stat above and the read
  if (hasher.bytes === 0) {
    throw new VaultError(
      'USAGE',
      `keyfile is empty: ${path}`,
      'an empty keyfile adds no secret; use another file',
    );
  }
  // Stryker restore all
  return hasher.digest();
}
