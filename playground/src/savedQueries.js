// The saved queries shipped in playground/queries/*.graphql, bundled at build time.
// Each file's first line is `# Title — short description`; an optional line
// `# view: <dataset> group by <column>` says how the table should open the result.

const files = import.meta.glob('../queries/*.graphql', { query: '?raw', import: 'default', eager: true });

export function parseSavedQuery(fileName, text) {
  const lines = text.split(/\r?\n/);
  const head = (lines[0] ?? '').replace(/^#\s*/, '').trim();
  const m = /^(.+?)\s+[—–-]\s+(.+)$/.exec(head);
  const title = m ? m[1] : head || fileName;
  const description = m ? m[2] : '';
  let view = null;
  for (const line of lines.slice(1)) {
    if (!line.startsWith('#')) break;
    const v = /^#\s*view:\s*(\S+)(?:\s+group by\s+(\S+))?/i.exec(line);
    if (v) view = { dataset: v[1], groupBy: v[2] ?? null };
  }
  const op = /^\s*(?:query|mutation)\s+([A-Za-z_][A-Za-z0-9_]*)/m.exec(text);
  return {
    id: fileName.replace(/\.graphql$/, ''),
    title,
    description,
    view,
    operationName: op ? op[1] : null,
    query: text.endsWith('\n') ? text : `${text}\n`,
  };
}

export const SAVED_QUERIES = Object.keys(files)
  .sort()
  .map((path) => parseSavedQuery(path.split('/').pop(), files[path]));

const MINE_KEY = 'c360.playground.myQueries';

export function loadMyQueries() {
  try {
    const list = JSON.parse(localStorage.getItem(MINE_KEY) ?? '[]');
    return Array.isArray(list) ? list.filter((q) => q && typeof q.query === 'string') : [];
  } catch {
    return [];
  }
}

export function storeMyQueries(list) {
  try {
    localStorage.setItem(MINE_KEY, JSON.stringify(list));
  } catch {
    // storage full or disabled: kept for this page only
  }
}
