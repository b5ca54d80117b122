// What the page reads of the published catalog, in one place: catalog.json (one GET), then
// a product's region Items from its Collection's index (<product>-<kind>/items.ndjson, one
// GET, when that product and kind are first shown), and from each Item its COG's address,
// period and statistics. The COGs themselves are read by HTTP range requests (cogs.js).

export const CATALOG = new URL('catalog.json', document.baseURI);
// The region's Collections, <product>-monthly and <product>-yearly (not tiles-*).
const REGION = /^\.\/([a-z0-9]+)-(monthly|yearly)\/collection\.json$/;

async function fetched(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

/** The products the catalog has region Collections of, in its order, with their kinds
 * (Map of product to a Set of 'monthly' and 'yearly'). */
export async function readProducts() {
  const catalog = JSON.parse(await fetched(CATALOG));
  const products = new Map();
  for (const link of catalog.links.filter((l) => l.rel === 'child')) {
    const [, product, kind] = REGION.exec(link.href) ?? [];
    if (!product) continue;
    if (!products.has(product)) products.set(product, new Set());
    products.get(product).add(kind);
  }
  return products;
}

const indexes = new Map();

/** A product's region Items of one kind in time order, read once from its Collection's
 * index. */
export function itemsOf(product, kind) {
  const key = `${product}-${kind}`;
  if (!indexes.has(key)) {
    const index = new URL(`${key}/items.ndjson`, CATALOG);
    indexes.set(key, fetched(index).then((text) => text.split('\n')
      .filter((line) => line.trim()).map((line) => JSON.parse(line))
      .sort((a, b) => start(a).localeCompare(start(b)))));
  }
  return indexes.get(key);
}

// A month's Item has its time in datetime; a year's only in start_datetime and end_datetime.
const start = (item) => item.properties.start_datetime ?? item.properties.datetime;
// A month's COG is the asset "data", a year's "year".
const cog = (item) => item.assets.data ?? item.assets.year;

/** The address of an Item's COG, read from the page's own folder: the index names the
 * output prefix as the run was told (public_url, s3://, a local path), its root link
 * the catalog there. */
export function cogUrl(item) {
  const { href } = cog(item);
  const root = item.links.find((link) => link.rel === 'root').href;
  const folder = root.slice(0, root.lastIndexOf('/') + 1);
  return new URL(href.startsWith(folder) ? href.slice(folder.length) : href, CATALOG).href;
}

/** An Item's COG relative to the output prefix, as `etm timeseries` names it. */
export const cogHref = (item) => cogUrl(item).replace(new URL('.', CATALOG).href, '');

/** An Item's period: YYYY-MM for a month, YYYY for a year. */
export const period = (item) =>
  start(item).slice(0, item.properties['etm:period'] === 'year' ? 4 : 7);

/** An Item's smallest and largest value (its COG's statistics). */
export function extremes(item) {
  const { minimum, maximum } = cog(item)['raster:bands'][0].statistics;
  return [minimum, maximum];
}
