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
    // A dot per value, while they stand apart.
    (points.length <= 72 ? xy.filter(Boolean).map(([cx, cy]) => `<circle r="3" fill="${colour}" cx="${cx}" cy="${cy}"/>`).join('') : '') +
    '</g>';
}

const xTick = (x, label, cls = 'x-tick', dy = 14) =>
  `<g class="${cls}"><line x1="${x}" x2="${x}" y1="${HEIGHT - BOTTOM}" y2="${HEIGHT - BOTTOM + (cls === 'x-tick' ? 4 : 10)}" stroke="#444"/>` +
  `<text x="${x}" y="${HEIGHT - BOTTOM + dy}" text-anchor="middle">${escape(label)}</text></g>`;

/** A month's tick label in a series of `count` months: its initial up to two years, the
 * quarters' names up to six, none past that (the years say enough). */
function monthLabel(m, count) {
  if (count <= 24) return MONTHS[m][0];
  return count <= 72 && m % 3 === 0 ? MONTHS[m] : '';
}

/** The series in time order: a tick per month (labelled as monthLabel says), the year
 * under each January (every fifth past 20 years), or a tick per year for yearly values. */
function overTime(points, yearly) {
  const { y, svg } = yAxis(points.filter((p) => p.value !== null).map((p) => p.value));
  const step = (WIDTH - LEFT - RIGHT) / Math.max(points.length, 1);
  const x = (p, i) => LEFT + step * (i + 0.5);
  const every = (yearly ? points.length : points.length / 12) > 20 ? 5 : 1;
  let axis = '';
  points.forEach((p, i) => {
    const year = Number(p.period.slice(0, 4));
    if (yearly) {
      axis += xTick(x(p, i), year % every === 0 ? p.period : '');
      return;
    }
    const m = Number(p.period.slice(5, 7)) - 1;
    if (points.length <= 72) axis += xTick(x(p, i), monthLabel(m, points.length));
    if ((m === 0 || i === 0) && year % every === 0) axis += xTick(x(p, i) - step / 2, String(year), 'year-tick', 30);
  });
  return svg + axis + line(points, x, y, '#2c7fb8', 'class="series-line"');
}

/** One line per year on a January-to-December axis: up to 8 years each in its colour
 * with a legend; past that, every year in grey and the map's year in blue. */
function yearsOverlaid(points, shownYear) {
  const { y, svg } = yAxis(points.filter((p) => p.value !== null).map((p) => p.value));
  const step = (WIDTH - LEFT - RIGHT) / 12;
  const x = (p) => LEFT + step * (Number(p.period.slice(5, 7)) - 0.5);
  const years = [...new Set(points.map((p) => p.period.slice(0, 4)))];
  const axis = MONTHS.map((name, m) => xTick(LEFT + step * (m + 0.5), name)).join('');
  const legend = (i, colour, text) =>
    `<text class="year-legend" x="${LEFT + 8 + 54 * i}" y="${HEIGHT - 6}" fill="${colour}">■ ${escape(text)}</text>`;
  const many = years.length > YEARS.length;
  const colour = (year, i) => (!many ? YEARS[i] : year === shownYear ? '#2c7fb8' : '#bbb');
  // The map's year last, on top of the others.
  const order = many ? [...years.filter((year) => year !== shownYear), ...years.filter((year) => year === shownYear)] : years;
  const lines = order.map((year) => {
    const i = years.indexOf(year);
    const attributes = `class="year-line" data-year="${year}"`;
    return line(points.filter((p) => p.period.startsWith(year)), x, y, colour(year, i), attributes);
  });
  const legends = many
    ? legend(0, '#2c7fb8', shownYear ?? '') + legend(1.2, '#999', `other years (${years[0]}–${years.at(-1)})`)
    : years.map((year, i) => legend(i, YEARS[i], year)).join('');
  return svg + axis + lines.join('') + legends;
}

/** Draw a series in the chart: over time, or (months only) its years overlaid, the map's
 * year (shownYear) standing out when they are many. */
export function drawChart(svg, points, { overlay, yearly, shownYear }) {
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  if (!points.some((p) => p.value !== null)) {
    svg.innerHTML = '<text x="10" y="20">no data here</text>';
    return;
  }
  svg.innerHTML = overlay && !yearly ? yearsOverlaid(points, shownYear) : overTime(points, yearly);
}
