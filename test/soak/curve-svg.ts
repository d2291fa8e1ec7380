/**
 * A small line chart as SVG (no dependencies): the soak's curves saved as a
 * picture in docs/. Series share the y axis; vertical and horizontal markers
 * (warm-up, the ±10 % band) are drawn as dashed lines.
 */
export interface Series { name: string; color: string; points: Array<[number, number]> }
export interface Chart {
  title: string; xLabel: string; yLabel: string; series: Series[];
  vLines?: Array<{ x: number; label: string }>; hLines?: Array<{ y: number; label: string }>;
}

const W = 760, H = 360, L = 60, R = 150, T = 36, B = 44;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Round tick steps: 1, 2, 5 × 10^k, about 6 ticks. */
function ticks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 6 || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lineChartSvg(c: Chart): string {
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [...c.series.flatMap((s) => s.points.map((p) => p[1])), ...(c.hLines ?? []).map((h) => h.y)];
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys) * 1.08, y0 = 0;
  const X = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const o: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${L}" y="20" font-size="13" font-weight="bold">${esc(c.title)}</text>`];
  for (const t of ticks(y0, y1)) o.push(`<line x1="${L}" x2="${W - R}" y1="${Y(t)}" y2="${Y(t)}" stroke="#eee"/><text x="${L - 6}" y="${Y(t) + 4}" text-anchor="end">${t}</text>`);
  for (const t of ticks(x0, x1)) o.push(`<text x="${X(t)}" y="${H - B + 16}" text-anchor="middle">${t}</text>`);
  o.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#444"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#444"/>`);
  o.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  o.push(`<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`);
  for (const v of c.vLines ?? []) o.push(`<line x1="${X(v.x)}" x2="${X(v.x)}" y1="${T}" y2="${H - B}" stroke="#888" stroke-dasharray="4 3"/><text x="${X(v.x) + 3}" y="${T + 10}" fill="#666">${esc(v.label)}</text>`);
  for (const h of c.hLines ?? []) o.push(`<line x1="${L}" x2="${W - R}" y1="${Y(h.y)}" y2="${Y(h.y)}" stroke="#c44" stroke-dasharray="4 3"/><text x="${W - R + 4}" y="${Y(h.y) + 4}" fill="#c44">${esc(h.label)}</text>`);
  c.series.forEach((s, i) => {
    o.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.6" points="${s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    o.push(`<line x1="${W - R + 8}" x2="${W - R + 24}" y1="${T + 40 + i * 16}" y2="${T + 40 + i * 16}" stroke="${s.color}" stroke-width="2"/><text x="${W - R + 28}" y="${T + 44 + i * 16}">${esc(s.name)}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}
