// etm's map page: the region's monthly COGs of a product on a map, with a month slider
// and a legend in mm; a click draws that pixel's monthly series. Everything is read from
// the page's own folder: catalog.json, the shown product's <product>-monthly/items.ndjson
// (one GET each, a product's when first shown), then the COGs by HTTP range requests.
import 'ol/ol.css';
import OlMap from 'ol/Map.js';
import View from 'ol/View.js';
import Graticule from 'ol/layer/Graticule.js';
import TileLayer from 'ol/layer/WebGLTile.js';
import DataTile from 'ol/source/DataTile.js';
import TileGrid from 'ol/tilegrid/TileGrid.js';
import { fromUrl } from 'geotiff';

// ColorBrewer YlGnBu: dry (yellow) to wet (blue).
const RAMP = ['#ffffcc', '#a1dab4', '#41b6c4', '#2c7fb8', '#253494'];
const CATALOG = new URL('catalog.json', document.baseURI);
const REGION_MONTHLY = /^\.\/([a-z0-9]+)-monthly\/collection\.json$/;

const $ = (id) => document.getElementById(id);
const cogs = new Map();

/** A COG's levels, full resolution first (geotiff.js reads its header by range requests). */
function levels(url) {
  if (!cogs.has(url)) {
    cogs.set(url, fromUrl(url).then(async (tiff) => {
      const count = await tiff.getImageCount();
      return Promise.all([...Array(count).keys()].map((i) => tiff.getImage(i)));
    }));
  }
  return cogs.get(url);
}

/** A map source of a COG: its own tiles and levels, so that a tile is one range request;
 * each tile is the value and a band that is 0 where the COG has no data (NaN). */
async function cogSource(url) {
  const images = await levels(url);
  const [full] = images;
  const [west, north] = full.getOrigin();
  const [xres] = full.getResolution();
  const size = [full.getTileWidth(), full.getTileHeight()];
  const extent = [west, north - xres * full.getHeight(), west + xres * full.getWidth(), north];
  const coarsest = [...images].reverse();
  const tileGrid = new TileGrid({
    extent,
    origin: [west, north],
    tileSize: size,
    resolutions: coarsest.map((image) => (xres * full.getWidth()) / image.getWidth()),
  });
  const loader = async (z, x, y) => {
    const window = [x * size[0], y * size[1], (x + 1) * size[0], (y + 1) * size[1]];
    const [values] = await coarsest[z].readRasters({ window, fillValue: NaN });
    const tile = new Float32Array(values.length * 2);
    values.forEach((value, i) => {
      const valid = !Number.isNaN(value);
      tile[2 * i] = valid ? value : 0;
      tile[2 * i + 1] = valid ? 1 : 0;
    });
    return tile;
  };
  return new DataTile({
    loader, tileGrid, projection: 'EPSG:4326', bandCount: 2, interpolate: false, wrapX: false,
  });
}

async function fetched(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

/** The products whose region months the catalog has a Collection of, in its order. */
async function readProducts() {
  const catalog = JSON.parse(await fetched(CATALOG));
  return catalog.links.filter((link) => link.rel === 'child')
    .map((link) => REGION_MONTHLY.exec(link.href)?.[1]).filter(Boolean);
}

const indexes = new Map();

/** A product's region months in time order, from its Collection's index: read once, when
 * the product is first shown. */
function monthsOf(product) {
  if (!indexes.has(product)) {
    const index = new URL(`${product}-monthly/items.ndjson`, CATALOG);
    indexes.set(product, fetched(index).then((text) => text.split('\n')
      .filter((line) => line.trim()).map((line) => ({ ...JSON.parse(line), index }))
      .sort((a, b) => a.properties.datetime.localeCompare(b.properties.datetime))));
  }
  return indexes.get(product);
}

const cogUrl = (item) => new URL(item.assets.data.href, item.index).href;
const month = (item) => item.properties.datetime.slice(0, 7);
const band = (item) => item.assets.data['raster:bands'][0];

/** The colour scale of a product: its months' smallest and largest values. */
function range(items) {
  const low = Math.min(...items.map((item) => band(item).statistics.minimum));
  const high = Math.max(...items.map((item) => band(item).statistics.maximum));
  return high > low ? [low, high] : [low, low + 1];
}

function style([low, high]) {
  const stops = RAMP.flatMap((colour, i) => [low + ((high - low) * i) / (RAMP.length - 1), colour]);
  // Band 2 is 0 where the COG has no data, which stays transparent.
  return {
    color: ['case', ['==', ['band', 2], 0], [0, 0, 0, 0], ['interpolate', ['linear'], ['band', 1], ...stops]],
  };
}

function drawLegend([low, high]) {
  const canvas = $('legend-ramp');
  const context = canvas.getContext('2d');
  const gradient = context.createLinearGradient(0, 0, canvas.width, 0);
  RAMP.forEach((colour, i) => gradient.addColorStop(i / (RAMP.length - 1), colour));
  context.fillStyle = gradient;
  context.fillRect(0, 0, canvas.width, canvas.height);
  $('legend-low').textContent = `${low.toFixed(1)}`;
  $('legend-high').textContent = `${high.toFixed(1)} mm`;
}

/** A COG's value at a point, reading the one block that holds it; null for no data. */
async function pixelValue(url, lon, lat) {
  const [image] = await levels(url);
  const [west, north] = image.getOrigin();
  const [xres, yres] = image.getResolution();
  const col = Math.floor((lon - west) / xres);
  const row = Math.floor((lat - north) / yres);
  if (col < 0 || row < 0 || col >= image.getWidth() || row >= image.getHeight()) return null;
  const [values] = await image.readRasters({ window: [col, row, col + 1, row + 1] });
  return Number.isNaN(values[0]) ? null : values[0];
}

function drawSeries(points, lon, lat) {
  const valid = points.filter((p) => p.value !== null);
  $('series-title').textContent = `${$('product').value} at ${lat.toFixed(4)}° N, ${lon.toFixed(4)}° E`;
  const table = $('series-values');
  table.replaceChildren(
    ...points.map((p) => {
      const row = document.createElement('tr');
      row.dataset.period = p.period;
      row.dataset.value = p.value === null ? '' : String(p.value);
      row.innerHTML = `<td>${p.period}</td><td>${p.value === null ? 'no data' : p.value.toFixed(2)}</td>`;
      return row;
    }),
  );
  const svg = $('series-chart');
  if (!valid.length) {
    svg.innerHTML = '<text x="10" y="20">no data at this point</text>';
    return;
  }
  const [width, height, pad] = [480, 160, 30];
  const low = Math.min(0, ...valid.map((p) => p.value));
  const high = Math.max(...valid.map((p) => p.value)) || 1;
  const x = (i) => pad + ((width - 2 * pad) * i) / Math.max(points.length - 1, 1);
  const y = (v) => height - pad - ((height - 2 * pad) * (v - low)) / (high - low || 1);
  const line = points.map((p, i) => (p.value === null ? null : `${x(i)},${y(p.value)}`));
  svg.innerHTML =
    `<polyline fill="none" stroke="#2c7fb8" stroke-width="2" points="${line.filter(Boolean).join(' ')}"/>` +
    line.map((xy) => (xy ? `<circle r="3" fill="#253494" cx="${xy.split(',')[0]}" cy="${xy.split(',')[1]}"/>` : '')).join('') +
    `<text x="2" y="${y(high) + 4}">${high.toFixed(1)}</text><text x="2" y="${y(low) + 4}">${low.toFixed(1)}</text>` +
    `<text x="${pad}" y="${height - 8}">${points[0].period}</text>` +
    `<text x="${width - pad}" y="${height - 8}" text-anchor="end">${points.at(-1).period} (mm)</text>`;
}

async function main() {
  const products = await readProducts();
  if (!products.length) throw new Error(`${CATALOG} lists no monthly region Collection`);
  const select = $('product');
  for (const product of products) select.add(new Option(product, product));
  const layer = new TileLayer({});
  const map = new OlMap({
    target: 'map',
    // Labelled meridians and parallels place the region without a base map from elsewhere.
    layers: [layer, new Graticule({ showLabels: true, wrapX: false })],
    view: new View({ projection: 'EPSG:4326' }),
  });
  const slider = $('month');

  async function show() {
    const items = await monthsOf(select.value);
    const item = items[Number(slider.value)];
    $('month-label').textContent = month(item);
    const shown = `${select.value} ${month(item)}`;
    const source = await cogSource(cogUrl(item));
    if (shown !== `${select.value} ${month(items[Number(slider.value)])}`) return; // moved on
    layer.setSource(source);
    if (!map.getView().isDef()) map.getView().fit(source.getTileGrid().getExtent());
    document.body.dataset.shown = shown;
  }

  async function choose() {
    const items = await monthsOf(select.value);
    slider.max = String(items.length - 1);
    slider.value = String(Math.min(Number(slider.value), items.length - 1));
    const scale = range(items);
    layer.setStyle(style(scale));
    drawLegend(scale);
    await show();
  }

  select.addEventListener('change', choose);
  slider.addEventListener('input', show);
  await choose();
  map.on('rendercomplete', () => (document.body.dataset.rendered = document.body.dataset.shown));

  map.on('singleclick', async (event) => {
    const [lon, lat] = event.coordinate;
    const items = await monthsOf(select.value);
    $('series-title').textContent = 'reading…';
    const values = await Promise.all(items.map((item) => pixelValue(cogUrl(item), lon, lat)));
    drawSeries(items.map((item, i) => ({ period: month(item), value: values[i] })), lon, lat);
    document.body.dataset.series = `${lon},${lat}`;
  });
}

main().catch((error) => {
  $('status').textContent = `The map could not load: ${error.message}`;
  throw error;
});
