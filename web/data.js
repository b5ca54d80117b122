// What the page reads of the published catalog, in one place: catalog.json (one GET), then
// a product's region periods from its Collection's list of them (<product>-<kind>/
// periods.json, one GET, when that product and kind are first shown: each period's COG and
// value range, 100 bytes where its Item in items.ndjson takes 2 KB). The COGs themselves
// are read by HTTP range requests (cogs.js).

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

const lists = new Map();

/** A product's region periods of one kind in time order ({period, cog, minimum, maximum}),
 * read once from its Collection's list; each keeps the list's address, against which its
 * COG's href is relative. */
export function periodsOf(product, kind) {
  const key = `${product}-${kind}`;
  if (!lists.has(key)) {
    const list = new URL(`${key}/periods.json`, CATALOG);
    lists.set(key, fetched(list).then((text) => JSON.parse(text).periods.map((p) => ({ ...p, list }))));
  }
  return lists.get(key);
}

/** The address of a period's COG. */
export const cogUrl = (item) => new URL(item.cog, item.list).href;

/** A period's COG relative to the output prefix, as `etm timeseries` names it. */
export const cogHref = (item) => cogUrl(item).replace(new URL('.', CATALOG).href, '');

/** A period: YYYY-MM for a month, YYYY for a year. */
export const period = (item) => item.period;

/** A period's smallest and largest value (its COG's statistics). */
export const extremes = (item) => [item.minimum, item.maximum];
