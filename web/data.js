// What the page reads of the published catalog, in one place: the index of Items
// (items.ndjson, one GET) and, from each region Item, its COG's address, period and
// statistics. The COGs themselves are read by HTTP range requests (cogs.js).

export const INDEX = new URL('items.ndjson', document.baseURI);
// The region's collections: <product>-monthly and <product>-yearly (not tiles-*).
const REGION = /^([a-z0-9]+)-(monthly|yearly)$/;

/** The region's Items per product and kind ({monthly: [...], yearly: [...]}), in time
 * order. */
export async function readIndex() {
  const response = await fetch(INDEX);
  if (!response.ok) throw new Error(`${INDEX}: HTTP ${response.status}`);
  const byProduct = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (!line.trim()) continue;
    const item = JSON.parse(line);
    const [, product, kind] = REGION.exec(item.collection) ?? [];
    if (!product) continue;
    if (!byProduct.has(product)) byProduct.set(product, { monthly: [], yearly: [] });
    byProduct.get(product)[kind].push(item);
  }
  for (const kinds of byProduct.values()) {
    for (const items of Object.values(kinds)) {
      items.sort((a, b) => a.properties.datetime.localeCompare(b.properties.datetime));
    }
  }
  return byProduct;
}

/** The address of an Item's COG. */
export const cogUrl = (item) => new URL(item.assets.data.href, INDEX).href;

/** An Item's COG relative to the output prefix, as `etm timeseries` names it. */
export const cogHref = (item) => item.assets.data.href.replace(/^\.\//, '');

/** An Item's period: YYYY-MM for a month, YYYY for a year. */
export const period = (item) =>
  item.properties.datetime.slice(0, item.collection.endsWith('-yearly') ? 4 : 7);

/** An Item's smallest and largest value (its COG's statistics). */
export function extremes(item) {
  const { minimum, maximum } = item.assets.data['raster:bands'][0].statistics;
  return [minimum, maximum];
}
