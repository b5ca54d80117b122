// The side panel's chart (SVG): a series over time with month and year ticks, or its
// years overlaid on one January-to-December axis, one line per year.
import { MONTHS, ticks } from './format.js';

const [WIDTH, HEIGHT] = [480, 200];
const [LEFT, RIGHT, TOP, BOTTOM] = [46, 12, 12, 38];
// ColorBrewer Dark2, one colour per year.
const YEARS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];

const escape = (text) => String(text).replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

function yAxis(values) {
  const marks = ticks(Math.min(0, ...values), Math.max(...values, 1));
  const [low, high] = [marks[0], marks.at(-1)];
  const y = (v) => HEIGHT - BOTTOM - ((HEIGHT - TOP - BOTTOM) * (v - low)) / (high - low);
  const svg = marks
    .map((v) => `<g class="y-tick"><line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>` +
      `<text x="${LEFT - 4}" y="${y(v) + 4}" text-anchor="end">${v}</text></g>`)
    .join('');
  const unit = `<text x="12" y="${TOP + (HEIGHT - TOP - BOTTOM) / 2}" transform="rotate(-90 12 ${TOP + (HEIGHT - TOP - BOTTOM) / 2})" text-anchor="middle">mm</text>`;
  return { y, svg: svg + unit };
}

function line(points, x, y, colour, attributes = '') {
  const xy = points.map((p, i) => (p.value === null ? null : [x(p, i), y(p.value)]));
  // A gap where a period has no data.
  const runs = [[]];
  xy.forEach((p) => (p ? runs.at(-1).push(p) : runs.push([])));
  return `<g ${attributes}>` +
    runs.filter((r) => r.length).map((r) => `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${r.map((p) => p.join(',')).join(' ')}"/>`).join('') +
    xy.filter(Boolean).map(([cx, cy]) => `<circle r="3" fill="${colour}" cx="${cx}" cy="${cy}"/>`).join('') +
    '</g>';
}

const xTick = (x, label, cls = 'x-tick', dy = 14) =>
  `<g class="${cls}"><line x1="${x}" x2="${x}" y1="${HEIGHT - BOTTOM}" y2="${HEIGHT - BOTTOM + (cls === 'x-tick' ? 4 : 10)}" stroke="#444"/>` +
  `<text x="${x}" y="${HEIGHT - BOTTOM + dy}" text-anchor="middle">${escape(label)}</text></g>`;

/** The series in time order: a tick per month (its initial; every third month's name
 * past two years), the year under each January, or a tick per year for yearly values. */
function overTime(points, yearly) {
  const { y, svg } = yAxis(points.filter((p) => p.value !== null).map((p) => p.value));
  const step = (WIDTH - LEFT - RIGHT) / Math.max(points.length, 1);
  const x = (p, i) => LEFT + step * (i + 0.5);
  let axis = '';
  points.forEach((p, i) => {
    if (yearly) {
      axis += xTick(x(p, i), p.period);
      return;
    }
    const m = Number(p.period.slice(5, 7)) - 1;
    const label = points.length <= 24 ? MONTHS[m][0] : m % 3 === 0 ? MONTHS[m] : '';
    axis += xTick(x(p, i), label);
    if (m === 0 || i === 0) axis += xTick(x(p, i) - step / 2, p.period.slice(0, 4), 'year-tick', 30);
  });
  return svg + axis + line(points, x, y, '#2c7fb8', 'class="series-line"');
}

/** One line per year on a January-to-December axis, with a legend of the years. */
function yearsOverlaid(points) {
  const { y, svg } = yAxis(points.filter((p) => p.value !== null).map((p) => p.value));
  const step = (WIDTH - LEFT - RIGHT) / 12;
  const x = (p) => LEFT + step * (Number(p.period.slice(5, 7)) - 0.5);
  const years = [...new Set(points.map((p) => p.period.slice(0, 4)))];
  const axis = MONTHS.map((name, m) => xTick(LEFT + step * (m + 0.5), name)).join('');
  const lines = years.map((year, i) => {
    const colour = YEARS[i % YEARS.length];
    const legend = `<text class="year-legend" x="${LEFT + 8 + 44 * i}" y="${HEIGHT - 6}" fill="${colour}">■ ${year}</text>`;
    return line(points.filter((p) => p.period.startsWith(year)), x, y, colour, `class="year-line" data-year="${year}"`) + legend;
  });
  return svg + axis + lines.join('');
}

/** Draw a series in the chart: over time, or (months only) its years overlaid. */
export function drawChart(svg, points, { overlay, yearly }) {
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  if (!points.some((p) => p.value !== null)) {
    svg.innerHTML = '<text x="10" y="20">no data here</text>';
    return;
  }
  svg.innerHTML = overlay && !yearly ? yearsOverlaid(points) : overTime(points, yearly);
}
