// The CSV of memfa import csv: address, secret (base32), then optionally the phone number and the
// alternate address. A first row naming the columns (address, secret, phone, altEmail, in any
// order) is a header; without one the columns are in that order. Fields may be quoted as RFC 4180
// says (one line per record). Blank lines and lines starting with '#' are skipped. No problem text
// ever contains a field's value: a secret in the wrong column must not be printed.

export const MAX_CSV_LINE = 4096;

export type Column = 'address' | 'secret' | 'phone' | 'altEmail';
const DEFAULT_ORDER: Column[] = ['address', 'secret', 'phone', 'altEmail'];
const HEADER_NAMES: Record<string, Column> = {
  address: 'address',
  mailbox: 'address',
  secret: 'secret',
  phone: 'phone',
  altemail: 'altEmail',
  alternateaddress: 'altEmail',
  alternateemail: 'altEmail',
};

export interface CsvRow {
  line: number;
  values: Partial<Record<Column, string>>;
}

export interface CsvProblem {
  line: number;
  problem: string;
}

/** The fields of one line, or null when a quote is not closed or is followed by text. */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return null;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') return null;
    } else {
      const end = line.indexOf(',', i);
      field = end === -1 ? line.slice(i) : line.slice(i, end);
      i = end === -1 ? line.length : end;
    }
    fields.push(field.trim());
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

function headerOf(fields: string[]): Column[] | null {
  const names = fields.map((f) => f.toLowerCase().replace(/[\s_-]+/g, ''));
  if (!names.includes('address') && !names.includes('secret') && !names.includes('mailbox')) return null;
  return names.map((n) => (Object.prototype.hasOwnProperty.call(HEADER_NAMES, n) ? HEADER_NAMES[n]! : ('?' as Column)));
}

export function parseCsv(text: string): { rows: CsvRow[]; problems: CsvProblem[] } {
  const rows: CsvRow[] = [];
  const problems: CsvProblem[] = [];
  let order: Column[] | null = null;
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, raw] of lines.entries()) {
    const n = i + 1;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (line.length > MAX_CSV_LINE) {
      problems.push({ line: n, problem: `longer than ${MAX_CSV_LINE} characters` });
      continue;
    }
    const fields = splitCsvLine(line);
    if (fields === null) {
      problems.push({ line: n, problem: 'a quote is not closed, or is followed by more than a comma' });
      continue;
    }
    if (order === null) {
      const header = headerOf(fields);
      order = DEFAULT_ORDER;
      if (header !== null) {
        // By number, not by name: a header's text is not echoed either.
        const unknown = header.flatMap((c, j) => (c.startsWith('?') ? [String(j + 1)] : []));
        const missing = (['address', 'secret'] as Column[]).filter((c) => !header.includes(c));
        const twice = header.filter((c, j) => !c.startsWith('?') && header.indexOf(c) !== j);
        if (unknown.length > 0 || missing.length > 0 || twice.length > 0) {
          const why = [
            ...(unknown.length > 0 ? [`column ${unknown.join(', ')} has an unknown name`] : []),
            ...(missing.length > 0 ? [`no ${missing.join(' or ')} column`] : []),
            ...(twice.length > 0 ? [`column ${twice.join(', ')} twice`] : []),
          ];
          problems.push({ line: n, problem: `header: ${why.join('; ')} (columns: address, secret, phone, altEmail)` });
          return { rows: [], problems };
        }
        order = header;
        continue;
      }
    }
    if (fields.length > order.length) {
      problems.push({ line: n, problem: `${fields.length} fields; at most ${order.length} (${order.join(', ')})` });
      continue;
    }
    const values: Partial<Record<Column, string>> = {};
    order.forEach((c, j) => {
      const v = fields[j];
      if (v !== undefined && v !== '') values[c] = v;
    });
    rows.push({ line: n, values });
  }
  return { rows, problems };
}
