/**
 * A line chart as an SVG document (pure: series in, text out), and its rendering to PNG by
 * headless Chromium (playwright-core, as the dashboard tests use). For benchmark figures in docs/.
 */
import { existsSync, writeFileSync } from 'node:fs';

export interface Series {
  name: string;
  /** [x, y] points, x ascending. */
  points: Array<[number, number]>;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Vertical markers (e.g. "node stopped") at these x values. */
  markers?: Array<{ x: number; label: string }>;
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const MARGIN = { left: 80, right: 180, top: 40, bottom: 50 };
const TICKS = 5;

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function lineChartSvg(series: Series[], o: ChartOptions): string {
  const width = o.width ?? 960;
  const height = o.height ?? 480;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const yMax = niceMax(ys.length ? Math.max(...ys) : 1);
  const sx = (x: number): number => MARGIN.left + ((x - xMin) / (xMax - xMin || 1)) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`);
  for (let i = 0; i <= TICKS; i++) {
    const y = (yMax * i) / TICKS;
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${sy(y) + 4}" text-anchor="end">${esc(formatNumber(y))}</text>`);
    const x = xMin + ((xMax - xMin) * i) / TICKS;
    parts.push(`<text x="${sx(x)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${esc(formatNumber(x))}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  (o.markers ?? []).forEach((m, i) => {
    parts.push(`<line x1="${sx(m.x)}" x2="${sx(m.x)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#999" stroke-dasharray="4 3"/>`);
    // Staggered so markers close together stay readable.
    parts.push(`<text x="${sx(m.x) + 3}" y="${MARGIN.top + plotH - 8 - i * 14}" fill="#555">${esc(m.label)}</text>`);
  });
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    if (s.points.length > 0) {
      const d = s.points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    const ly = MARGIN.top + 10 + i * 18;
    parts.push(`<line x1="${MARGIN.left + plotW + 14}" x2="${MARGIN.left + plotW + 34}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${MARGIN.left + plotW + 40}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

/** Writes the SVG next to `pngPath` and renders it to PNG; returns an error text if Chromium is missing. */
export async function writeChart(svg: string, pngPath: string): Promise<string | undefined> {
  writeFileSync(pngPath.replace(/\.png$/, '.svg'), svg);
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (bash scripts/setup-test-deps.sh installs it): only the SVG was written`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  try {
    const w = Number(/width="(\d+)"/.exec(svg)?.[1] ?? 960);
    const h = Number(/height="(\d+)"/.exec(svg)?.[1] ?? 480);
    const page = await browser.newPage({ viewport: { width: w, height: h } });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: pngPath, clip: { x: 0, y: 0, width: w, height: h } });
  } finally {
    await browser.close();
  }
  return undefined;
}
