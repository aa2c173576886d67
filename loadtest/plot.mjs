// Draws p99 latency (answer sent -> responsible received) against offered
// load from otj-load JSON reports, as an SVG with a logarithmic latency
// axis: one line per number of otjd instances and run label.
//
//   node loadtest/plot.mjs OUT.svg REPORT.json...
import { readFileSync, writeFileSync } from 'node:fs';

const [out, ...files] = process.argv.slice(2);
if (!out || !files.length) {
  console.error('usage: node loadtest/plot.mjs OUT.svg REPORT.json...');
  process.exit(2);
}

const series = new Map(); // label -> [{x, y, behind}]
for (const f of files) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  const lat = r.latency?.answer_to_responsible;
  if (!lat?.count) continue;
  const n = r.servers.length;
  const key = `${n} otjd instance${n > 1 ? 's' : ''}${r.label ? ` (${r.label})` : ''}`;
  if (!series.has(key)) series.set(key, []);
  series.get(key).push({ x: r.achieved.offered_deliveries_per_s, y: lat.p99_ms, behind: r.schedule.behind });
}
for (const pts of series.values()) pts.sort((a, b) => a.x - b.x);

const W = 760, H = 440, L = 80, R = 90, T = 40, B = 60;
const xs = [...series.values()].flat().map((p) => p.x);
const xmax = Math.max(100000, ...xs) * 1.05;
const ymin = 0.5, ymax = Math.max(1000, ...[...series.values()].flat().map((p) => p.y)) * 1.5;
const px = (x) => L + (x / xmax) * (W - L - R);
const py = (y) => T + (1 - (Math.log10(Math.max(y, ymin)) - Math.log10(ymin)) /
  (Math.log10(ymax) - Math.log10(ymin))) * (H - T - B);

const colors = ['#1f6feb', '#d1242f', '#1a7f37', '#8250df'];
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">\n`;
svg += `<rect width="${W}" height="${H}" fill="white"/>\n`;
svg += `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">otj-load fanout: p99 answer-to-responsible latency vs offered load</text>\n`;
// axes and grid (latency axis: log scale)
for (let e = Math.ceil(Math.log10(ymin)); e <= Math.log10(ymax); e++) {
  const y = py(10 ** e);
  svg += `<line x1="${L}" x2="${W - R}" y1="${y}" y2="${y}" stroke="#ddd"/>`;
  svg += `<text x="${L - 6}" y="${y + 4}" text-anchor="end">${10 ** e} ms</text>\n`;
}
for (let x = 0; x <= xmax; x += 20000) {
  svg += `<line x1="${px(x)}" x2="${px(x)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`;
  svg += `<text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${x / 1000}k</text>\n`;
}
svg += `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">offered deliveries per second (rooms of 1 responsible + 29 learners)</text>\n`;
// targets: 10 ms at 50k, 25 ms at 100k
for (const [x, y] of [[50000, 10], [100000, 25]]) {
  svg += `<circle cx="${px(x)}" cy="${py(y)}" r="6" fill="none" stroke="black" stroke-dasharray="2,2"/>`;
  svg += `<text x="${px(x) + 8}" y="${py(y) - 8}">target ${y} ms</text>\n`;
}
let i = 0;
for (const [name, pts] of [...series.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
  const c = colors[i % colors.length];
  svg += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>\n`;
  for (const p of pts)
    svg += `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="4" fill="${p.behind ? 'white' : c}" stroke="${c}"/>` +
      `<text x="${px(p.x) + 6}" y="${py(p.y) + 14}" fill="${c}" font-size="10">${p.y.toFixed(1)}</text>\n`;
  svg += `<text x="${L + 10}" y="${T + 16 + 16 * i}" fill="${c}">${name}</text>\n`;
  i++;
}
svg += `<text x="${L + 10}" y="${T + 16 + 16 * i}" fill="#555">open circle: the generator fell behind its schedule</text>\n`;
svg += '</svg>\n';
writeFileSync(out, svg);
