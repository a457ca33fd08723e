import { cellText } from './flatten.js';

// RFC 4180: CRLF between records; a field with a comma, a quote, CR or LF is quoted,
// and quotes inside it are doubled.
function csvField(text) {
  const s = String(text);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// A spreadsheet runs a cell that begins with one of these as a formula (CSV injection:
// `=HYPERLINK(..)`, `+cmd|..`): OWASP's advice is a single quote in front, and the cell
// quoted. A number as JSON writes it (`-3.5`, `-1e-7`) is no formula and stays a number.
const FORMULA_START = /^[=+\-@\t\r]/;
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** One cell's text as a CSV field, neutralised when a spreadsheet would run it. */
export function csvCell(text) {
  const s = String(text);
  if (FORMULA_START.test(s) && !NUMBER.test(s)) return `"'${s.replace(/"/g, '""')}"`;
  return csvField(s);
}

export function toCsv(columns, rows) {
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(cellText(row[c]))).join(','));
  return lines.join('\r\n') + '\r\n';
}

export function csvFileName(operationName, datasetPath) {
  const base = [operationName || 'result', datasetPath]
    .filter(Boolean)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${base}.csv`;
}

/** Offers text as a file download, through a Blob URL (no data leaves the browser). */
export function downloadText(text, fileName, type = 'text/csv;charset=utf-8') {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
