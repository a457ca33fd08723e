import { ListCell, isSuppressedRow } from './flatten.js';

// Which chart fits a dataset, from its shape alone:
// - points of a curve (two numeric columns, the first rising, no label): a line
//   (the Pareto curve: share of customers → share of revenue);
// - rows with a label and numbers (segments, lifecycle stages, sources): bars, one
//   numeric column at a time.

function isNumberColumn(rows, column) {
  let numbers = 0;
  for (const row of rows) {
    const v = row[column];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'number') return false;
    numbers += 1;
  }
  return numbers > 0;
}

function isLabelColumn(rows, column) {
  let strings = 0;
  for (const row of rows) {
    const v = row[column];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'string' || v instanceof ListCell) return false;
    strings += 1;
  }
  return strings > 0;
}

function isRising(rows, column) {
  let last = -Infinity;
  for (const row of rows) {
    const v = row[column];
    if (typeof v !== 'number' || v < last) return false;
    last = v;
  }
  return true;
}

export const ALL_RATES = 'all rates';

const PREFERRED_METRICS = ['customers', 'count', 'records', 'revenueShare', 'share'];

export function chartSpecOf(dataset) {
  if (!dataset || dataset.rows.length === 0) {
    return { chart: null, reason: 'There are no rows to draw.' };
  }
  const { rows, columns } = dataset;
  const numeric = columns.filter((c) => c !== 'suppressed' && isNumberColumn(rows, c));
  const labels = columns.filter((c) => isLabelColumn(rows, c));
  const suppressedCount = rows.filter(isSuppressedRow).length;

  if (columns.includes('customerShare') && columns.includes('revenueShare') && rows.length >= 1) {
    return { chart: 'line', x: 'customerShare', y: 'revenueShare', numeric, suppressedCount, pareto: true };
  }
  if (labels.length === 0 && numeric.length >= 2 && rows.length >= 2 && isRising(rows, numeric[0])) {
    return { chart: 'line', x: numeric[0], y: numeric[1], numeric, suppressedCount, pareto: false };
  }
  if (labels.length > 0 && numeric.length > 0 && rows.length <= 250) {
    // Grouped rows (e.g. sends by campaign): every rate side by side, by default.
    const rates = dataset.grouped
      ? numeric.filter((c) => c.endsWith('(share)') && rows.some((r) => r[c] !== null && r[c] < 1))
      : [];
    if (rates.length >= 2) {
      return { chart: 'bar', label: labels[0], metrics: [ALL_RATES, ...numeric], metric: ALL_RATES, rates, suppressedCount };
    }
    const metric = rates[0] ?? PREFERRED_METRICS.find((m) => numeric.includes(m)) ?? numeric[0];
    return { chart: 'bar', label: labels[0], metrics: numeric, metric, rates, suppressedCount };
  }
  if (numeric.length === 0) {
    return { chart: null, reason: 'Charts need numbers: this result has none.' };
  }
  if (labels.length === 0) {
    return { chart: null, reason: 'Charts need a label column (e.g. a segment or stage) beside the numbers.' };
  }
  return { chart: null, reason: 'Too many rows for a readable chart: use the table.' };
}

export function isShareColumn(rows, column) {
  if (!/share|risk|rate/i.test(column)) return false;
  return rows.every((r) => r[column] === null || (typeof r[column] === 'number' && r[column] >= 0 && r[column] <= 1));
}
