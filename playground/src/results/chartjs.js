// Chart.js, registered piece by piece so that only bars and lines are bundled. Loaded
// the first time a chart is shown.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
} from 'chart.js';
import { isSuppressedRow } from './flatten.js';
import { ALL_RATES, isShareColumn } from './chartSpec.js';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
);

const BLUE = '#2563eb';
const SLATE = '#64748b';
const SUPPRESSED_LABEL = 'suppressed (< k customers)';

function hatch() {
  const size = 8;
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#e2e8f0';
  ctx.fillRect(0, 0, size, size);
  ctx.strokeStyle = SLATE;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(0, size);
  ctx.lineTo(size, 0);
  ctx.moveTo(-size / 2, size / 2);
  ctx.lineTo(size / 2, -size / 2);
  ctx.moveTo(size / 2, size * 1.5);
  ctx.lineTo(size * 1.5, size / 2);
  ctx.stroke();
  return ctx.createPattern(canvas, 'repeat');
}

function formatter(percent) {
  return percent
    ? (v) => `${(v * 100).toLocaleString(undefined, { maximumFractionDigits: 1 })} %`
    : (v) => (typeof v === 'number' ? v.toLocaleString(undefined, { maximumFractionDigits: 4 }) : v);
}

const BASE = {
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  plugins: { legend: { position: 'bottom', labels: { boxWidth: 14 } } },
};

const PALETTE = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16'];

function ratesConfig(dataset, spec) {
  const { rows } = dataset;
  const fmt = formatter(true);
  return {
    type: 'bar',
    data: {
      labels: rows.map((r) => `${r[spec.label] ?? '(none)'}`),
      datasets: spec.rates.map((c, i) => ({
        label: c.replace(/ \(share\)$/, ''),
        data: rows.map((r) => r[c] ?? null),
        backgroundColor: PALETTE[i % PALETTE.length],
        borderRadius: 2,
      })),
    },
    options: {
      ...BASE,
      scales: {
        x: { ticks: { autoSkip: false, maxRotation: 50 } },
        y: { beginAtZero: true, max: 1, ticks: { callback: fmt }, title: { display: true, text: 'rate' } },
      },
      plugins: {
        ...BASE.plugins,
        tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fmt(ctx.parsed.y)}` } },
      },
    },
    summary: { points: rows.length * spec.rates.length, suppressed: 0 },
  };
}

function barConfig(dataset, spec, metric) {
  if (metric === ALL_RATES) return ratesConfig(dataset, spec);
  const { rows } = dataset;
  const percent = isShareColumn(rows, metric);
  const fmt = formatter(percent);
  const values = rows.map((r) => (isSuppressedRow(r) ? null : r[metric] ?? null));
  const max = Math.max(0, ...values.filter((v) => typeof v === 'number'));
  const stub = max > 0 ? max * 0.06 : 1;
  const labels = rows.map((r) => `${r[spec.label] ?? '(none)'}${isSuppressedRow(r) ? ' ⊘' : ''}`);
  const datasets = [{ label: metric, data: values, backgroundColor: BLUE, borderRadius: 3 }];
  if (spec.suppressedCount > 0) {
    datasets.push({
      label: SUPPRESSED_LABEL,
      data: rows.map((r) => (isSuppressedRow(r) ? stub : null)),
      backgroundColor: hatch(),
      borderColor: SLATE,
      borderWidth: 1,
      borderRadius: 3,
    });
  }
  return {
    type: 'bar',
    data: { labels, datasets },
    options: {
      ...BASE,
      datasets: { bar: { grouped: false, skipNull: true } },
      scales: {
        x: { ticks: { autoSkip: false, maxRotation: 50 } },
        y: { beginAtZero: true, ticks: { callback: fmt }, title: { display: true, text: metric } },
      },
      plugins: {
        ...BASE.plugins,
        tooltip: {
          callbacks: {
            label(ctx) {
              if (ctx.dataset.label === SUPPRESSED_LABEL) {
                return 'withheld: fewer than k customers (k-anonymity)';
              }
              return `${metric}: ${fmt(ctx.parsed.y)}`;
            },
          },
        },
      },
    },
    summary: {
      points: values.filter((v) => v !== null).length,
      suppressed: spec.suppressedCount,
    },
  };
}

function lineConfig(dataset, spec) {
  const { rows } = dataset;
  const xPercent = isShareColumn(rows, spec.x) || spec.pareto;
  const yPercent = isShareColumn(rows, spec.y) || spec.pareto;
  const points = rows
    .filter((r) => typeof r[spec.x] === 'number' && typeof r[spec.y] === 'number')
    .map((r) => ({ x: r[spec.x], y: r[spec.y] }));
  const datasets = [
    {
      label: spec.pareto ? 'share of revenue' : spec.y,
      data: spec.pareto ? [{ x: 0, y: 0 }, ...points] : points,
      borderColor: BLUE,
      backgroundColor: 'rgba(37, 99, 235, 0.12)',
      fill: spec.pareto ? 'origin' : false,
      pointRadius: 3,
      tension: 0,
    },
  ];
  if (spec.pareto) {
    datasets.push({
      label: 'equal shares',
      data: [
        { x: 0, y: 0 },
        { x: 1, y: 1 },
      ],
      borderColor: SLATE,
      borderDash: [6, 4],
      borderWidth: 1,
      pointRadius: 0,
      fill: false,
    });
  }
  return {
    type: 'line',
    data: { datasets },
    options: {
      ...BASE,
      scales: {
        x: {
          type: 'linear',
          min: spec.pareto ? 0 : undefined,
          max: spec.pareto ? 1 : undefined,
          ticks: { callback: formatter(xPercent) },
          title: { display: true, text: spec.pareto ? 'share of customers (biggest spenders first)' : spec.x },
        },
        y: {
          beginAtZero: true,
          max: spec.pareto ? 1 : undefined,
          ticks: { callback: formatter(yPercent) },
          title: { display: true, text: spec.pareto ? 'share of revenue' : spec.y },
        },
      },
      plugins: {
        ...BASE.plugins,
        tooltip: {
          callbacks: {
            label: (ctx) => `${formatter(xPercent)(ctx.parsed.x)} → ${formatter(yPercent)(ctx.parsed.y)}`,
          },
        },
      },
    },
    summary: { points: points.length, suppressed: 0 },
  };
}

/** Draws the dataset on the canvas; returns the chart and what it drew. */
export function drawChart(canvas, dataset, spec, metric) {
  const { summary, ...config } = spec.chart === 'bar' ? barConfig(dataset, spec, metric) : lineConfig(dataset, spec);
  const chart = new Chart(canvas, config);
  return { chart, summary };
}
