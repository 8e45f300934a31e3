// The two shapes of the benchmark's table: a figure per row, and a figure at two store sizes with
// its growth.
import { fmt } from './stats.js';

/** [label, field, unit, note]; in a sizes table the note 'growth' asks for the growth column. */
export type Row = [string, string, string, string];

/** A field's target and verdict, or ''. */
export type Mark = (field: string) => string;

export function metricHeader(title: string): string[] {
  return [`${title.padEnd(36)}${'value'.padStart(11)}  ${'unit'.padEnd(6)}${'target'.padEnd(16)}note`, '-'.repeat(86)];
}

export function metricLine(out: Record<string, number>, mark: Mark, [label, field, unit, note]: Row): string {
  return `${label.padEnd(36)}${fmt(out[field]).padStart(11)}  ${unit.padEnd(6)}${mark(field).padEnd(16)}${note}`;
}

/** Rows of PREFIX_small_FIELD and PREFIX_FIELD, with PREFIX_growth_FIELD (its unit suffix cut). */
export function sizesTable(title: string, prefix: string, rows: Row[], out: Record<string, number>, mark: Mark): string[] {
  const lines = [`${title.padEnd(30)}${'small'.padStart(11)}${'large'.padStart(11)}  ${'unit'.padEnd(6)}${'growth'.padStart(7)}  target`, '-'.repeat(86)];
  for (const [label, field, unit, note] of rows) {
    const g = note === 'growth' ? fmt(out[`${prefix}_growth_${field.replace(/_(s|ms|mb)$/, '')}`]) + 'x' : '';
    lines.push(`${label.padEnd(30)}${fmt(out[`${prefix}_small_${field}`]).padStart(11)}${fmt(out[`${prefix}_${field}`]).padStart(11)}  ${unit.padEnd(6)}${g.padStart(7)}  ${mark(`${prefix}_${field}`)}`);
  }
  lines.push('');
  return lines;
}
