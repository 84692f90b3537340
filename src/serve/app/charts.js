// Charts in plain SVG: histograms with bounds, horizontal stacked bars, a stacked area over time, a shard timeline.
import { fmtInt, fmtNum } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const title = (text) => s('title', null, text);

function svgRoot(width, height, label, testid) {
  return s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'chart', 'data-testid': testid });
}

/**
 * A histogram of stacked series over `edges` (n + 1 ascending), with bounds drawn on it:
 * bounds [{ op, value, high?, label, color }]; the values a bound rejects are shaded.
 */
export function histogram({ edges, series, bounds = [], width = 300, height = 130, label = 'histogram', testid }) {
  const svg = svgRoot(width, height, label, testid);
  if (!edges || edges.length < 2) {
    svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'nothing measured'));
    return svg;
  }
  const m = { l: 30, r: 8, t: 8, b: 22 };
  const lo = Math.min(edges[0], ...bounds.map((b) => b.value));
  const hi = Math.max(edges[edges.length - 1], ...bounds.map((b) => b.high ?? b.value));
  const pad = hi > lo ? 0 : 0.5;
  const x = (v) => m.l + ((v - (lo - pad)) / (hi + pad - (lo - pad))) * (width - m.l - m.r);
  const bins = edges.length - 1;
  const totals = Array.from({ length: bins }, (_, i) => series.reduce((n, ser) => n + (ser.counts[i] ?? 0), 0));
  const top = Math.max(1, ...totals);
  const y = (n) => height - m.b - (n / top) * (height - m.t - m.b);

  // Shade what each bound rejects, under the bars.
  for (const b of bounds) {
    const shade = (a, z) => z > a && svg.append(s('rect', { x: x(a), y: m.t, width: x(z) - x(a), height: height - m.t - m.b, fill: b.color ?? '#d62728', opacity: 0.08 }));
    const [left, right] = [lo - pad, hi + pad];
    if (b.op === '>=' || b.op === '>') shade(left, b.value);
    else if (b.op === '<=' || b.op === '<') shade(b.value, right);
    else if (b.op === 'in') {
      shade(left, b.value);
      shade(b.high, right);
    }
  }
  for (let i = 0; i < bins; i++) {
    let base = 0;
    for (const ser of series) {
      const n = ser.counts[i] ?? 0;
      if (!n) continue;
      const x0 = x(edges[i]);
      const x1 = x(edges[i + 1]);
      svg.append(
        s('rect', { x: x0 + 0.5, y: y(base + n), width: Math.max(0.5, x1 - x0 - 1), height: y(base) - y(base + n), fill: ser.color }, title(`${ser.name}: ${fmtInt(n)} in [${fmtNum(edges[i])}, ${fmtNum(edges[i + 1])}${i === bins - 1 ? ']' : ')'}`)),
      );
      base += n;
    }
  }
  // Axes: baseline, the range's ends and middle, the tallest bar's count.
  svg.append(s('line', { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b, class: 'axis' }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(s('text', { x: x(v), y: height - 6, 'text-anchor': v === lo ? 'start' : v === hi ? 'end' : 'middle', class: 'tick' }, fmtNum(v)));
  }
  svg.append(s('text', { x: m.l - 4, y: m.t + 8, 'text-anchor': 'end', class: 'tick' }, fmtInt(top)));
  svg.append(s('text', { x: m.l - 4, y: height - m.b, 'text-anchor': 'end', class: 'tick' }, '0'));
  for (const [k, b] of bounds.entries()) {
    for (const v of b.op === 'in' ? [b.value, b.high] : [b.value]) {
      svg.append(s('line', { x1: x(v), x2: x(v), y1: m.t, y2: height - m.b, stroke: b.color ?? '#d62728', 'stroke-width': 1.5, 'stroke-dasharray': '4 3' }, title(b.label)));
    }
    if (b.label) svg.append(s('text', { x: Math.min(x(b.value) + 3, width - m.r - 2), y: m.t + 9 + 11 * k, class: 'bound-label', fill: b.color ?? '#d62728', 'text-anchor': x(b.value) > width * 0.7 ? 'end' : 'start' }, b.label));
  }
  return svg;
}

/** Horizontal stacked bars: rows [{ label, parts: [{ name, value, color }] }], with the values written in the segments. */
export function stackedBars(rows, { width = 640, barHeight = 22, label = 'bars', testid } = {}) {
  const m = { l: Math.max(60, 12 + 7 * Math.max(0, ...rows.map((r) => r.label.length))), r: 60 };
  const height = rows.length * (barHeight + 8) + 4;
  const svg = svgRoot(width, height, label, testid);
  const top = Math.max(1, ...rows.map((r) => r.parts.reduce((n, p) => n + p.value, 0)));
  const w = (v) => (v / top) * (width - m.l - m.r);
  rows.forEach((r, k) => {
    const y = 2 + k * (barHeight + 8);
    svg.append(s('text', { x: m.l - 8, y: y + barHeight / 2 + 4, 'text-anchor': 'end', class: 'bar-label' }, r.label));
    let x = m.l;
    for (const p of r.parts) {
      if (!p.value) continue;
      svg.append(s('rect', { x, y, width: w(p.value), height: barHeight, fill: p.color }, title(`${r.label}: ${p.name} ${fmtInt(p.value)}`)));
      if (w(p.value) > 28) svg.append(s('text', { x: x + w(p.value) / 2, y: y + barHeight / 2 + 4, 'text-anchor': 'middle', class: 'bar-value' }, fmtInt(p.value)));
      x += w(p.value);
    }
    svg.append(s('text', { x: x + 6, y: y + barHeight / 2 + 4, class: 'tick' }, r.note ?? ''));
  });
  return svg;
}

/** Stacked areas over time: points [{ t (ms), values: {name: n} }], series [{ name, color }] bottom first. */
export function stackedArea(points, series, { width = 640, height = 180, label = 'over time', testid, yMax } = {}) {
  const svg = svgRoot(width, height, label, testid);
  const m = { l: 44, r: 10, t: 8, b: 22 };
  if (points.length === 0) return svg;
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 10_000);
  const top = yMax ?? Math.max(1, ...points.map((p) => series.reduce((n, ser) => n + (p.values[ser.name] ?? 0), 0)));
  const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (width - m.l - m.r);
  const y = (n) => height - m.b - (n / top) * (height - m.t - m.b);
  // One point alone is drawn as a flat band to the right edge.
  const pts = points.length === 1 ? [points[0], { ...points[0], t: t1 }] : points;
  const below = pts.map(() => 0);
  for (const ser of series) {
    const upper = pts.map((p, i) => below[i] + (p.values[ser.name] ?? 0));
    const path = [...pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(upper[i]).toFixed(1)}`), ...pts.map((p, i) => `L${x(pts[pts.length - 1 - i].t).toFixed(1)},${y(below[pts.length - 1 - i]).toFixed(1)}`), 'Z'];
    svg.append(s('path', { d: path.join(' '), fill: ser.color, opacity: 0.85 }, title(ser.name)));
    upper.forEach((v, i) => (below[i] = v));
  }
  svg.append(s('line', { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b, class: 'axis' }));
  svg.append(s('text', { x: m.l - 4, y: m.t + 8, 'text-anchor': 'end', class: 'tick' }, fmtInt(top)));
  svg.append(s('text', { x: m.l - 4, y: height - m.b, 'text-anchor': 'end', class: 'tick' }, '0'));
  svg.append(s('text', { x: m.l, y: height - 6, class: 'tick' }, clock(t0)));
  svg.append(s('text', { x: width - m.r, y: height - 6, 'text-anchor': 'end', class: 'tick' }, clock(t1)));
  return svg;
}

/**
 * Shards as bars from their start to their commit, packed into lanes (a lane ≈ one worker busy in turn):
 * items [{ shard, start (ms), end (ms), label }].
 */
export function timeline(items, { width = 640, laneHeight = 14, label = 'shards over time', testid } = {}) {
  const lanes = [];
  const placed = [...items].sort((a, b) => a.start - b.start).map((it) => {
    let lane = lanes.findIndex((end) => end <= it.start);
    if (lane < 0) lane = lanes.push(0) - 1;
    lanes[lane] = it.end;
    return { ...it, lane };
  });
  const m = { l: 44, r: 10, t: 4, b: 22 };
  const height = m.t + m.b + Math.max(1, lanes.length) * (laneHeight + 3);
  const svg = svgRoot(width, height, label, testid);
  if (placed.length === 0) return svg;
  const t0 = Math.min(...placed.map((p) => p.start));
  const t1 = Math.max(...placed.map((p) => p.end), t0 + 1000);
  const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (width - m.l - m.r);
  for (const p of placed) {
    svg.append(s('rect', { x: x(p.start), y: m.t + p.lane * (laneHeight + 3), width: Math.max(2, x(p.end) - x(p.start)), height: laneHeight, rx: 2, class: 'shard-bar' }, title(p.label)));
  }
  svg.append(s('text', { x: m.l - 4, y: m.t + laneHeight - 3, 'text-anchor': 'end', class: 'tick' }, `${lanes.length} lane${lanes.length === 1 ? '' : 's'}`));
  svg.append(s('text', { x: m.l, y: height - 6, class: 'tick' }, clock(t0)));
  svg.append(s('text', { x: width - m.r, y: height - 6, 'text-anchor': 'end', class: 'tick' }, clock(t1)));
  return svg;
}

/** A small legend: [{ name, color }]. */
export function legend(items) {
  const el = document.createElement('div');
  el.className = 'legend';
  for (const it of items) {
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = it.color;
    const item = document.createElement('span');
    item.className = 'legend-item';
    item.append(sw, it.name);
    el.append(item);
  }
  return el;
}

export const clock = (t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });
