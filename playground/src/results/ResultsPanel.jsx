import { Fragment, useEffect, useMemo, useRef, useState } from 'react';
import {
  ListCell,
  cellText,
  datasetsOf,
  groupDataset,
  isSuppressedRow,
  makeDataset,
  sortRows,
  transposeDataset,
} from './flatten.js';
import { csvFileName, downloadText, toCsv } from './csv.js';
import { chartSpecOf } from './chartSpec.js';
import { errorsOf, hintFor } from './errors.js';

const MAX_ROWS = 2000;

function SuppressionNote() {
  return (
    <p className="legend-note" data-testid="suppression-note">
      <span className="hatch-swatch" aria-hidden="true" />
      <span>
        <strong>Suppressed (&lt; k).</strong> Hatched rows and bars marked ⊘ are groups the hub withheld: fewer
        than <em>k</em> customers (k-anonymity, <code>insights.min_group_size</code>), too few to show to a viewer
        who may not know who they are. Their numbers are null, not zero.
      </span>
    </p>
  );
}

function ErrorList({ errors, viewer }) {
  if (errors.length === 0) return null;
  return (
    <ul className="error-list" data-testid="errors">
      {errors.map((error, i) => {
        const code = error.extensions?.code;
        const hint = hintFor(error, viewer);
        return (
          <li key={i} className="error-item" data-code={code ?? ''}>
            <div className="error-head">
              {code && <span className="error-code">{code}</span>}
              <span className="error-message">{error.message}</span>
              {Array.isArray(error.path) && <span className="error-path">at {error.path.join('.')}</span>}
            </div>
            {hint && <div className="error-hint">{hint}</div>}
          </li>
        );
      })}
    </ul>
  );
}

function NestedList({ cell }) {
  const dataset = useMemo(() => makeDataset('', cell.items), [cell]);
  if (cell.items.length === 0) return <p className="muted">Empty list.</p>;
  return <DataTable dataset={dataset} nested />;
}

function DataTable({ dataset, nested = false, sort, onSort }) {
  const [localSort, setLocalSort] = useState({ column: null, direction: null });
  const [open, setOpen] = useState(() => new Set());
  const s = sort ?? localSort;
  const setSort = onSort ?? setLocalSort;
  const rows = useMemo(() => sortRows(dataset.rows, s.column, s.direction), [dataset, s.column, s.direction]);
  const shown = rows.slice(0, MAX_ROWS);
  const numeric = useMemo(
    () =>
      new Set(
        dataset.columns.filter((c) =>
          dataset.rows.every((r) => r[c] === null || r[c] === undefined || typeof r[c] === 'number'),
        ),
      ),
    [dataset],
  );

  function clickHeader(column) {
    if (s.column !== column) setSort({ column, direction: 'asc' });
    else if (s.direction === 'asc') setSort({ column, direction: 'desc' });
    else setSort({ column: null, direction: null });
  }

  function toggle(key) {
    setOpen((prev) => {
      const next = new Set(prev);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });
  }

  return (
    <>
      <table className={nested ? 'result-table nested' : 'result-table'} data-testid={nested ? undefined : 'result-table'}>
        <thead>
          <tr>
            {dataset.columns.map((c) => (
              <th
                key={c}
                scope="col"
                aria-sort={s.column === c ? (s.direction === 'asc' ? 'ascending' : 'descending') : 'none'}
                className={numeric.has(c) ? 'num' : undefined}
              >
                <button type="button" className="th-button" onClick={() => clickHeader(c)} title={`Sort by ${c}`}>
                  {c}
                  <span className="sort-mark" aria-hidden="true">
                    {s.column === c ? (s.direction === 'asc' ? '▲' : '▼') : '↕'}
                  </span>
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((row, i) => {
            const rowKey = `${i}`;
            const suppressed = isSuppressedRow(row);
            const openColumns = dataset.columns.filter((c) => open.has(`${rowKey}:${c}`));
            return (
              <Fragment key={rowKey}>
                <tr className={suppressed ? 'suppressed' : undefined} title={suppressed ? 'Withheld: fewer than k customers' : undefined}>
                  {dataset.columns.map((c) => {
                    const v = row[c];
                    const text = cellText(v);
                    if (v instanceof ListCell) {
                      const key = `${rowKey}:${c}`;
                      return (
                        <td key={c} className="list-cell">
                          <button type="button" className="expand" aria-expanded={open.has(key)} onClick={() => toggle(key)}>
                            {text}
                          </button>
                        </td>
                      );
                    }
                    const cls = [
                      numeric.has(c) ? 'num' : null,
                      v === null || v === undefined ? 'null' : null,
                      c === 'suppressed' && v === true ? 'suppressed-flag' : null,
                    ]
                      .filter(Boolean)
                      .join(' ');
                    return (
                      <td key={c} className={cls || undefined}>
                        {text}
                      </td>
                    );
                  })}
                </tr>
                {openColumns.map((c) => (
                  <tr key={`${rowKey}:${c}`} className="nested-row">
                    <td colSpan={dataset.columns.length}>
                      <div className="nested-content">
                        <div className="nested-title">{dataset.transposed ? row.field : c}</div>
                        <NestedList cell={row[c]} />
                      </div>
                    </td>
                  </tr>
                ))}
              </Fragment>
            );
          })}
        </tbody>
      </table>
      {rows.length > MAX_ROWS && (
        <p className="muted">
          Showing {MAX_ROWS} of {rows.length} rows; the CSV has them all.
        </p>
      )}
    </>
  );
}

function ChartView({ dataset, spec }) {
  const canvasRef = useRef(null);
  const [metric, setMetric] = useState(spec.metric);
  const [summary, setSummary] = useState(null);
  const [failure, setFailure] = useState(null);

  useEffect(() => setMetric(spec.metric), [spec]);

  useEffect(() => {
    let chart = null;
    let cancelled = false;
    setSummary(null);
    import('./chartjs.js')
      .then(({ drawChart }) => {
        if (cancelled || !canvasRef.current) return;
        const drawn = drawChart(canvasRef.current, dataset, spec, metric ?? spec.metric);
        chart = drawn.chart;
        setSummary(drawn.summary);
      })
      .catch((e) => setFailure(String(e?.message ?? e)));
    return () => {
      cancelled = true;
      chart?.destroy();
    };
  }, [dataset, spec, metric]);

  return (
    <div
      className="chart-view"
      data-testid="chart"
      data-chart-type={spec.chart}
      data-ready={summary ? 'true' : 'false'}
      data-points={summary?.points ?? 0}
      data-suppressed={summary?.suppressed ?? 0}
    >
      {spec.chart === 'bar' && spec.metrics.length > 1 && (
        <label className="metric-picker">
          Measure{' '}
          <select value={metric ?? spec.metric} onChange={(e) => setMetric(e.target.value)} data-testid="chart-metric">
            {spec.metrics.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>{' '}
          by <code>{spec.label}</code>
        </label>
      )}
      <div className="chart-box">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={spec.chart === 'bar' ? `Bar chart of ${metric} by ${spec.label}` : `Line chart of ${spec.y} over ${spec.x}`}
        />
      </div>
      {failure && <p className="error-hint">The chart could not be drawn: {failure}</p>}
      {spec.suppressedCount > 0 && <SuppressionNote />}
    </div>
  );
}

function countLabel(dataset) {
  const n = dataset.rows.length;
  const rows = `${n} ${n === 1 ? 'row' : 'rows'}`;
  if (dataset.totalCount != null && dataset.totalCount !== n) return `${rows} of ${dataset.totalCount}`;
  if (dataset.hasNextPage) return `${rows} (more follow)`;
  return rows;
}

export default function ResultsPanel({ result, viewer, views = {} }) {
  const [tab, setTab] = useState('table');
  const [index, setIndex] = useState(0);
  const [groupBy, setGroupBy] = useState('');
  const [sort, setSort] = useState({ column: null, direction: null });

  const datasets = useMemo(() => (result?.body?.data ? datasetsOf(result.body.data) : []), [result]);
  const errors = useMemo(() => errorsOf(result?.body), [result]);
  const base = datasets[Math.min(index, Math.max(0, datasets.length - 1))] ?? null;
  const groupable = useMemo(
    () =>
      base && base.rows.length > 1
        ? base.columns.filter(
            (c) =>
              c !== 'suppressed' &&
              base.rows.every((r) => r[c] === null || r[c] === undefined || ['string', 'boolean'].includes(typeof r[c])) &&
              new Set(base.rows.map((r) => r[c])).size < base.rows.length,
          )
        : [],
    [base],
  );
  const dataset = useMemo(() => {
    if (!base) return null;
    if (groupBy && groupable.includes(groupBy)) return groupDataset(base, groupBy);
    // One row (a customer, the model) reads better as field / value pairs.
    if (base.rows.length === 1 && base.columns.length > 3) return transposeDataset(base);
    return base;
  }, [base, groupBy, groupable]);
  const spec = useMemo(() => chartSpecOf(base && dataset?.transposed ? base : dataset), [base, dataset]);

  useEffect(() => {
    // A saved query may say how to open its result (`# view:` in its file).
    const view = result?.operationName ? views[result.operationName] : null;
    const at = view ? datasets.findIndex((d) => d.path === view.dataset) : -1;
    setIndex(at >= 0 ? at : 0);
    setGroupBy(at >= 0 && view.groupBy ? view.groupBy : '');
    setSort({ column: null, direction: null });
  }, [result, datasets, views]);
  useEffect(() => setSort({ column: null, direction: null }), [index, groupBy]);

  const sortedRows = useMemo(
    () => (dataset ? sortRows(dataset.rows, sort.column, sort.direction) : []),
    [dataset, sort],
  );
  const suppressedCount = dataset ? dataset.rows.filter(isSuppressedRow).length : 0;

  function downloadCsv() {
    if (!dataset) return;
    downloadText(toCsv(dataset.columns, sortedRows), csvFileName(result.operationName, dataset.path));
  }

  if (!result) {
    return (
      <section className="results empty" data-testid="results">
        <p>
          Run a query (<kbd>Ctrl</kbd> + <kbd>Enter</kbd>, or ▶ on a saved query) to see its result here as a
          table and a chart.
        </p>
      </section>
    );
  }

  return (
    <section className="results" data-testid="results" data-result-id={result.id}>
      <div className="results-bar">
        <div className="tabs" role="tablist" aria-label="Result views">
          {['table', 'chart', 'json'].map((t) => (
            <button
              key={t}
              type="button"
              role="tab"
              aria-selected={tab === t}
              className={tab === t ? 'tab active' : 'tab'}
              onClick={() => setTab(t)}
              data-testid={`tab-${t}`}
            >
              {t === 'json' ? 'JSON' : t[0].toUpperCase() + t.slice(1)}
            </button>
          ))}
        </div>
        {datasets.length > 1 && (
          <label className="dataset-picker">
            Result{' '}
            <select
              value={index}
              onChange={(e) => {
                setIndex(Number(e.target.value));
                setGroupBy('');
              }}
              data-testid="dataset"
            >
              {datasets.map((d, i) => (
                <option key={d.path + i} value={i}>
                  {d.path} ({d.rows.length})
                </option>
              ))}
            </select>
          </label>
        )}
        {base && datasets.length === 1 && <span className="dataset-name">{base.path}</span>}
        {groupable.length > 0 && tab !== 'json' && (
          <label className="dataset-picker">
            Group by{' '}
            <select value={groupBy} onChange={(e) => setGroupBy(e.target.value)} data-testid="group-by">
              <option value="">(no grouping)</option>
              {groupable.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </label>
        )}
        {base && <span className="muted" data-testid="row-count">{countLabel(dataset?.grouped ? dataset : base)}</span>}
        <span className="spacer" />
        <span className={`status status-${Math.floor(result.status / 100)}xx`} title="HTTP status and time">
          {result.status ? `HTTP ${result.status}` : 'no answer'} · {Math.round(result.ms)} ms
        </span>
        {dataset && tab !== 'json' && (
          <button type="button" className="button" onClick={downloadCsv} data-testid="download-csv">
            Download CSV
          </button>
        )}
        {tab === 'json' && (
          <button
            type="button"
            className="button"
            onClick={() =>
              downloadText(
                JSON.stringify(result.body, null, 2) + '\n',
                csvFileName(result.operationName, '').replace(/\.csv$/, '.json'),
                'application/json',
              )
            }
          >
            Download JSON
          </button>
        )}
      </div>
      <ErrorList errors={errors} viewer={viewer} />
      <div className="results-body">
        {tab === 'table' &&
          (dataset ? (
            <>
              {suppressedCount > 0 && <SuppressionNote />}
              <div className="table-scroll">
                <DataTable dataset={dataset} sort={sort} onSort={setSort} />
              </div>
            </>
          ) : (
            <p className="muted">{errors.length ? 'No data came back.' : 'The result has no lists or fields to tabulate.'}</p>
          ))}
        {tab === 'chart' &&
          (spec.chart ? (
            <ChartView dataset={dataset.transposed ? base : dataset} spec={spec} />
          ) : (
            <div className="muted" data-testid="no-chart">
              <p>{dataset ? spec.reason : 'No data came back.'}</p>
              {datasets.some((d) => chartSpecOf(d).chart) && (
                <p>
                  Charts fit:{' '}
                  {datasets.map((d, i) =>
                    chartSpecOf(d).chart ? (
                      <button
                        key={d.path + i}
                        type="button"
                        className="link"
                        onClick={() => {
                          setIndex(i);
                          setGroupBy('');
                        }}
                      >
                        {d.path}
                      </button>
                    ) : null,
                  )}
                </p>
              )}
            </div>
          ))}
        {tab === 'json' && <pre className="json-view" data-testid="json-view">{JSON.stringify(result.body, null, 2)}</pre>}
      </div>
    </section>
  );
}
