// Tables for people and JSON for programs: `vault list` and `vault info` output that scripts parse.
import { describe, expect, it } from 'vitest';
import { formatTable, printJson } from '../../src/cli/output.js';

function capture(): { stream: { write(text: string): boolean }; text: () => string } {
  let written = '';
  return {
    stream: {
      write(text: string) {
        written += text;
        return true;
      },
    },
    text: () => written,
  };
}

describe('formatTable', () => {
  it('aligns columns under upper-case headers, two spaces apart, no trailing blanks', () => {
    const text = formatTable(
      [
        { file: '/srv/a.vol', pid: '7' },
        { file: 'b.vol', pid: '12345' },
      ],
      ['file', { key: 'pid', align: 'right' }],
    );
    expect(text).toBe('FILE          PID\n/srv/a.vol      7\nb.vol       12345\n');
  });

  it('uses the first row keys by default, "-" for missing cells, custom headers', () => {
    const text = formatTable([{ a: 'x', b: 'y' }, { a: 'long value' }], undefined);
    expect(text).toBe('A           B\nx           y\nlong value  -\n');
    expect(formatTable([{ blockFile: 'f' }], [{ key: 'blockFile', header: 'BLOCK FILE' }])).toBe(
      'BLOCK FILE\nf\n',
    );
  });

  it('counts characters, not bytes, when aligning', () => {
    expect(
      formatTable([
        { n: 'ä', m: '1' },
        { n: 'ab', m: '2' },
      ]),
    ).toBe('N   M\nä   1\nab  2\n');
  });

  it('prints only the header for no rows, nothing without columns', () => {
    expect(formatTable([], ['file', 'state'])).toBe('FILE  STATE\n');
    expect(formatTable([])).toBe('');
  });
});

describe('printJson', () => {
  it('writes 2-space indented JSON and a newline that parses back', () => {
    const out = capture();
    const value = { vaults: [{ file: 'a.vol', readOnly: false, pid: 12 }], count: 1 };
    printJson(value, out.stream as unknown as NodeJS.WritableStream);
    expect(out.text()).toBe(`${JSON.stringify(value, null, 2)}\n`);
    expect(JSON.parse(out.text())).toEqual(value);
  });
});
