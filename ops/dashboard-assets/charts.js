// Shared by the two dashboard pages (ops/dashboard.html for the demo, ops/deployment-dashboard.html
// for `ferry dashboard`), served at /charts.js by ops/dashboard.ts: SVG line charts over a time
// window that grows with the run, number formatting, table cells and the once-a-second poll.
// A chart's series is a polyline whose data-key, data-last and data-max attributes carry its name,
// its newest and its largest value shown (read by the dashboard tests).
'use strict';
(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const PAD_L = 46, PAD_B = 16, PAD_T = 8, W = 600;
  /** The time axis grows with the run from one to five minutes, in whole minutes. */
  const WINDOW_MS_MIN = 60000, WINDOW_MS_MAX = 300000;

  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }
  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function fmt(v) { return v < 0 ? '?' : Math.round(v).toLocaleString('en-US'); }

  /** A chart box (id chart-<id>) appended to `parent`: heading, legend, SVG with axes and labels. */
  function chart(parent, o) {
    const H = o.height;
    const box = document.createElement('div');
    box.className = 'chart';
    box.id = 'chart-' + o.id;
    const h = document.createElement(o.headingTag || 'h3');
    h.textContent = o.title;
    const legend = document.createElement('div');
    legend.className = 'legend';
    const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
    box.append(h, legend, svg);
    el('line', { class: 'axis', x1: PAD_L, y1: H - PAD_B, x2: W, y2: H - PAD_B }, svg);
    el('line', { class: 'axis', x1: PAD_L, y1: PAD_T, x2: PAD_L, y2: H - PAD_B }, svg);
    const top = el('text', { class: 'label', x: 2, y: PAD_T + 8 }, svg);
    el('text', { class: 'label', x: 2, y: H - PAD_B }, svg).textContent = '0';
    const left = el('text', { class: 'label', x: PAD_L, y: H - 3 }, svg);
    el('text', { class: 'label', x: W - 24, y: H - 3 }, svg).textContent = 'now';
    parent.appendChild(box);
    const lines = new Map();
    return {
      box, legend, svg, lines,
      /** The series `key` (created on first use, colour `color`): legend entry and polyline. */
      series(key, label, color) {
        let l = lines.get(key);
        if (l) return l;
        const span = document.createElement('span');
        const i = document.createElement('i');
        i.style.background = color;
        const b = document.createElement('b');
        b.className = 'value';
        b.dataset.key = key;
        span.append(i, label + ': ', b);
        legend.appendChild(span);
        l = { key, span, txt: b, poly: el('polyline', { stroke: color, 'data-key': key, 'data-last': 0, 'data-max': 0, points: '' }, svg) };
        lines.set(key, l);
        return l;
      },
      /**
       * Draws every series in `data` (key -> [[at, value], ...], oldest first) over the window
       * `win` (from timeWindow); series of this chart missing from `data` are hidden.
       */
      draw(win, data) {
        let max = 0;
        for (const pts of data.values()) for (const [, v] of pts) max = Math.max(max, v);
        const scale = max > 0 ? max * 1.1 : 1;
        const y = (v) => H - PAD_B - (Math.max(0, v) / scale) * (H - PAD_B - PAD_T);
        for (const [key, l] of lines) {
          const pts = data.get(key);
          l.span.style.display = pts ? '' : 'none';
          if (!pts) { l.poly.setAttribute('points', ''); continue; }
          l.poly.setAttribute('points', pts.map(([at, v]) => `${win.x(at).toFixed(1)},${y(v).toFixed(1)}`).join(' '));
          const last = pts.length ? pts[pts.length - 1][1] : 0;
          l.poly.setAttribute('data-last', String(last));
          l.poly.setAttribute('data-max', String(pts.reduce((m, [, v]) => Math.max(m, v), 0)));
          l.txt.textContent = fmt(last);
        }
        top.textContent = fmt(scale);
        left.textContent = `-${Math.round(win.windowMs / 1000)} s`;
      },
    };
  }

  /** The samples shown (those in the window) and the x coordinate of a time. */
  function timeWindow(samples) {
    const now = samples.length ? samples[samples.length - 1].at : Date.now();
    const first = samples.length ? samples[0].at : now;
    const windowMs = Math.min(WINDOW_MS_MAX, Math.max(WINDOW_MS_MIN, Math.ceil((now - first) / 60000) * 60000));
    const from = now - windowMs;
    return { now, windowMs, shown: samples.filter((s) => s.at >= from), x: (at) => PAD_L + ((at - from) / windowMs) * (W - PAD_L) };
  }

  /** GET /api/stats once a second; `draw` gets the state, `disconnected` is called on failure. */
  function poll(draw, disconnected) {
    const once = async () => {
      try {
        const res = await fetch('/api/stats', { cache: 'no-store' });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        draw(await res.json());
      } catch (e) {
        disconnected(e);
      }
      setTimeout(once, 1000);
    };
    once();
  }

  window.FerryCharts = { el, cell, fmt, chart, timeWindow, poll };
})();
