// Turns a GraphQL result into tables: every list (and every Relay connection, one row
// per node) is a dataset; nested objects become dotted columns (`insights.rfm.segment`);
// lists inside a row become one cell that counts them and can be opened.

export function isConnection(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Array.isArray(value.edges) &&
    value.edges.every((e) => e === null || typeof e === 'object')
  );
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function nodesOf(connection) {
  return connection.edges.map((edge) => (edge && 'node' in edge ? edge.node : edge));
}

/** A list cell: the items, and what the whole list holds when the hub said. */
export class ListCell {
  constructor(items, totalCount = null) {
    this.items = items;
    this.totalCount = totalCount;
  }
}

function flattenInto(value, prefix, out) {
  for (const [key, v] of Object.entries(value)) {
    const column = prefix ? `${prefix}.${key}` : key;
    if (v === null || typeof v !== 'object') {
      out[column] = v;
    } else if (Array.isArray(v)) {
      out[column] = v.every((x) => x === null || typeof x !== 'object') ? v : new ListCell(v);
    } else if (isConnection(v)) {
      out[column] = new ListCell(nodesOf(v), typeof v.totalCount === 'number' ? v.totalCount : null);
    } else {
      flattenInto(v, column, out);
    }
  }
  return out;
}

/** One flat row of a node: `{ "insights.rfm.segment": "CHAMPIONS", ... }`. */
export function flattenRow(node) {
  if (!isPlainObject(node)) return { value: node };
  return flattenInto(node, '', {});
}

function columnsOf(rows) {
  const seen = new Set();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

export function makeDataset(path, nodes, extra = {}) {
  const rows = nodes.map(flattenRow);
  return { path, rows, columns: columnsOf(rows), ...extra };
}

/**
 * The lists inside a dataset's rows, opened: `customers.orders` has one row per order
 * of every customer in `customers` (and so on, `depth` levels down).
 */
function nestedDatasets(dataset, depth) {
  if (depth <= 0) return [];
  const out = [];
  for (const column of dataset.columns) {
    const cells = dataset.rows.map((r) => r[column]).filter((v) => v instanceof ListCell);
    if (cells.length === 0) continue;
    const items = cells.flatMap((cell) => cell.items);
    if (!items.some(isPlainObject)) continue;
    const nested = makeDataset(`${dataset.path}.${column}`, items, { opened: true });
    out.push(nested, ...nestedDatasets(nested, depth - 1));
  }
  return out;
}

/**
 * Every table in a result's `data`, outermost first. A list or connection is one
 * dataset (rows are not searched further: their lists are cells); an object with
 * plain fields is a dataset of one row, and the lists inside it are datasets too.
 */
export function datasetsOf(data) {
  const out = [];
  function visit(value, path, depth) {
    if (value === null || typeof value !== 'object' || depth > 6) return;
    if (Array.isArray(value)) {
      if (value.length === 0 || value.some((x) => isPlainObject(x))) {
        const dataset = makeDataset(path, value);
        out.push(dataset, ...nestedDatasets(dataset, 2));
      } else {
        out.push(makeDataset(path, value.map((x) => ({ value: x }))));
      }
      return;
    }
    if (isConnection(value)) {
      const dataset = makeDataset(path, nodesOf(value), {
        totalCount: typeof value.totalCount === 'number' ? value.totalCount : null,
        hasNextPage: value.pageInfo?.hasNextPage ?? null,
      });
      out.push(dataset, ...nestedDatasets(dataset, 2));
      return;
    }
    const hasScalars = Object.values(value).some((v) => v === null || typeof v !== 'object');
    if (hasScalars) out.push(makeDataset(path, [value], { single: true }));
    for (const [key, v] of Object.entries(value)) {
      if (v !== null && typeof v === 'object') visit(v, `${path}.${key}`, depth + 1);
    }
  }
  if (isPlainObject(data)) {
    for (const [key, value] of Object.entries(data)) {
      if (value !== null && typeof value === 'object') visit(value, key, 0);
      else out.push(makeDataset(key, [{ [key]: value }], { single: true }));
    }
  }
  return out;
}

/** The text a cell shows, which is also what the CSV holds. */
export function cellText(value) {
  if (value === null || value === undefined) return '';
  if (value instanceof ListCell) {
    const n = value.items.length;
    const total = value.totalCount != null && value.totalCount !== n ? ` of ${value.totalCount}` : '';
    return `${n}${total} ${n === 1 && !total ? 'item' : 'items'}`;
  }
  if (Array.isArray(value)) return value.map((v) => (v === null ? '' : String(v))).join('; ');
  return String(value);
}

function sortKey(value) {
  if (value instanceof ListCell) return value.totalCount ?? value.items.length;
  if (Array.isArray(value)) return value.length;
  return value;
}

/** Sorted copy of rows by one column; nulls last in either direction. */
export function sortRows(rows, column, direction) {
  if (!column || !direction) return rows;
  const sign = direction === 'desc' ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => {
      const x = sortKey(a.row[column]);
      const y = sortKey(b.row[column]);
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull || yNull) return xNull === yNull ? a.index - b.index : xNull ? 1 : -1;
      let c;
      if (typeof x === 'number' && typeof y === 'number') c = x - y;
      else if (typeof x === 'boolean' && typeof y === 'boolean') c = Number(x) - Number(y);
      else c = String(x).localeCompare(String(y), undefined, { numeric: true });
      return c === 0 ? a.index - b.index : sign * c;
    })
    .map(({ row }) => row);
}

/** Whether a row is a group the hub withheld (k-anonymity). */
export function isSuppressedRow(row) {
  return row.suppressed === true;
}

/**
 * The rows summarised per value of one column: how many rows; for numbers their mean;
 * for a column with one value per group that value; for any other column the share of
 * rows where it is set (a timestamp like `openedAt` set on 31% of sends: a 31% open rate).
 */
export function groupDataset(dataset, column) {
  const groups = new Map();
  for (const row of dataset.rows) {
    const key = cellText(row[column]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  const others = dataset.columns.filter(
    (c) => c !== column && !dataset.rows.some((r) => r[c] instanceof ListCell || Array.isArray(r[c])),
  );
  const plan = others.map((c) => {
    const values = dataset.rows.map((r) => r[c]).filter((v) => v !== null && v !== undefined);
    if (values.length > 0 && values.every((v) => typeof v === 'number')) return { c, kind: 'mean', name: `mean ${c}` };
    const constant = [...groups.values()].every((rows) => new Set(rows.map((r) => cellText(r[c]))).size === 1);
    if (constant && values.length > 0) return { c, kind: 'value', name: c };
    return { c, kind: 'share', name: `${c} (share)` };
  });
  const rows = [...groups.entries()].map(([key, members]) => {
    const row = { [column]: members[0][column] ?? null, rows: members.length };
    for (const { c, kind, name } of plan) {
      if (kind === 'value') row[name] = members[0][c] ?? null;
      else if (kind === 'mean') {
        const nums = members.map((r) => r[c]).filter((v) => typeof v === 'number');
        row[name] = nums.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null;
      } else {
        const set = members.filter((r) => r[c] !== null && r[c] !== undefined && r[c] !== false).length;
        row[name] = set / members.length;
      }
    }
    return row;
  });
  return {
    path: `${dataset.path} by ${column}`,
    rows,
    columns: [column, 'rows', ...plan.map((p) => p.name)],
    grouped: true,
  };
}

/** A dataset of one row shown as field / value pairs (one customer, one model). */
export function transposeDataset(dataset) {
  const [row] = dataset.rows;
  return {
    ...dataset,
    columns: ['field', 'value'],
    rows: dataset.columns.map((c) => ({ field: c, value: row[c] ?? null })),
    transposed: true,
  };
}
