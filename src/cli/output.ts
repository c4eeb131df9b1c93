// What commands print for people (aligned tables) and for programs (--json). Both go to stdout;
// progress, warnings and errors go to stderr, so `vault list --json | jq` always sees clean JSON.

export type TableColumn = string | { key: string; header?: string; align?: 'left' | 'right' };

/** JSON with 2-space indentation and a final newline, on stdout. */
export function printJson(value: unknown, stream: NodeJS.WritableStream = process.stdout): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * An aligned table with an upper-case header row, columns separated by two spaces. `columns` defaults to
 * the keys of the first row; missing cells print as "-". With no rows, only the header is printed.
 */
export function printTable(
  rows: ReadonlyArray<Readonly<Record<string, string>>>,
  columns?: readonly TableColumn[],
  stream: NodeJS.WritableStream = process.stdout,
): void {
  stream.write(formatTable(rows, columns));
}

export function formatTable(
  rows: ReadonlyArray<Readonly<Record<string, string>>>,
  columns?: readonly TableColumn[],
): string {
  const specs = (columns ?? Object.keys(rows[0] ?? {})).map((column) =>
    typeof column === 'string'
      ? { key: column, header: column.toUpperCase(), align: 'left' as const }
      : {
          key: column.key,
          header: column.header ?? column.key.toUpperCase(),
          align: column.align ?? 'left',
        },
  );
  if (specs.length === 0) return '';
  const cells = [
    specs.map((spec) => spec.header),
    ...rows.map((row) => specs.map((spec) => row[spec.key] ?? '-')),
  ];
  const widths = specs.map((_, index) => Math.max(...cells.map((line) => [...(line[index] ?? '')].length)));
  return cells
    .map((line) =>
      line
        .map((cell, index) => {
          const pad = ' '.repeat((widths[index] ?? 0) - [...cell].length);
          if (index === line.length - 1 && specs[index]?.align !== 'right') return cell;
          return specs[index]?.align === 'right' ? pad + cell : cell + pad;
        })
        .join('  '),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** One word for a POSIX shell: as it is when it needs no quoting, else in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line to show a user (a hint to copy), each word shell-quoted. */
export function commandLine(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
