// Text the page shows or writes: coordinates, chart ticks, CSV, the permalink.

/** A latitude or longitude as a hydrologist reads it: 108.7900° W, 43.4000° N. */
export function degrees(value, positive, negative, digits = 4) {
  return `${Math.abs(value).toFixed(digits)}° ${value >= 0 ? positive : negative}`;
}

/** A point as latitude, longitude: 43.4000° N, 108.7900° W. */
export const place = (lon, lat) => `${degrees(lat, 'N', 'S')}, ${degrees(lon, 'E', 'W')}`;

/** Round tick values (1, 2 or 5 times a power of ten), about `count` of them, from the
 * last at or below low to the first at or above high. */
export function ticks(low, high, count = 5) {
  const raw = (high - low) / count || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const values = [Math.floor(low / step) * step];
  while (values.at(-1) < high) values.push(Number((values.at(-1) + step).toPrecision(12)));
  return values;
}

export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A series as CSV, the columns of `etm timeseries`: period,value_mm,cog for a point (cog:
 * the COG the value is from), period,mean_mm,valid_pixels for a polygon; empty where there
 * is no data. */
export function csv(points, polygon) {
  const value = (v) => (v === null ? '' : String(Number(v.toPrecision(9))));
  const lines = [polygon ? 'period,mean_mm,valid_pixels' : 'period,value_mm,cog'];
  for (const p of points) {
    lines.push(`${p.period},${value(p.value)},${polygon ? p.valid : p.cog ?? ''}`);
  }
  return `${lines.join('\n')}\n`;
}

const pair = (xy) => xy.map((v) => Number(v.toFixed(5))).join(',');

/** The permalink's hash: product, period, the point or polygon, the chart's years. */
export function toHash({ product, period, point, polygon, overlay, view }) {
  const params = new URLSearchParams({ product, period });
  if (point) params.set('at', pair(point));
  if (polygon) params.set('polygon', polygon.map(pair).join(';'));
  if (overlay) params.set('years', 'overlaid');
  if (view) params.set('view', [view.center[0].toFixed(4), view.center[1].toFixed(4), view.zoom.toFixed(2)].join(','));
  return `#${params}`;
}

/** What a permalink's hash asks for (see toHash); absent parts are undefined. */
export function fromHash(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const numbers = (text) => text.split(',').map(Number);
  const view = params.get('view') && numbers(params.get('view'));
  return {
    product: params.get('product') ?? undefined,
    period: params.get('period') ?? undefined,
    point: params.get('at') ? numbers(params.get('at')) : undefined,
    polygon: params.get('polygon') ? params.get('polygon').split(';').map(numbers) : undefined,
    overlay: params.get('years') === 'overlaid',
    view: view && view.length === 3 ? { center: view.slice(0, 2), zoom: view[2] } : undefined,
  };
}
