import { cellText } from './flatten.js';

// RFC 4180: CRLF between records; a field with a comma, a quote, CR or LF is quoted,
// and quotes inside it are doubled.
export function csvField(text) {
  const s = String(text);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns, rows) {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(cellText(row[c]))).join(','));
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
