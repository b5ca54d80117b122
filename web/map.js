// etm's map page: the region's monthly or yearly COGs of a product on a map, with a
// period slider, a legend in mm, US state and county boundaries and a place finder; a
// click (or a drawn polygon) gives that pixel's series (or the polygon's mean series),
// over time or with its years overlaid, as a chart, a table and a CSV download. The URL's
// hash is a permalink to what is shown. Everything is read from the page's own folder: a
// pixel's monthly series from the product's series store where it is published. What the
// first map does not need is fetched when asked for (the counties, the polygon tool, the
// COG decoders other than ZSTD's): the page opens on well under 1 MB.
import 'ol/ol.css';
import OlMap from 'ol/Map.js';
import View from 'ol/View.js';
import Feature from 'ol/Feature.js';
import TopoJSON from 'ol/format/TopoJSON.js';
import Point from 'ol/geom/Point.js';
import Polygon, { fromExtent } from 'ol/geom/Polygon.js';
import Graticule from 'ol/layer/Graticule.js';
import VectorLayer from 'ol/layer/Vector.js';
import TileLayer from 'ol/layer/WebGLTile.js';
import VectorSource from 'ol/source/Vector.js';
import { Circle, Fill, Stroke, Style, Text } from 'ol/style.js';
import { cogSource, pixelAt, polygonMean } from './cogs.js';
import { cogHref, cogUrl, extremes, period, periodsOf, readProducts } from './data.js';
import { storedPoint } from './series.js';
import { drawChart } from './chart.js';
import { csv, degrees, fromHash, place, toHash } from './format.js';

// ColorBrewer YlGnBu: dry (yellow) to wet (blue).
const RAMP = ['#ffffcc', '#a1dab4', '#41b6c4', '#2c7fb8', '#253494'];
const MARKER = '#e41a1c';
const STATES = new URL('states.json', document.baseURI);
const COUNTIES = new URL('counties.json', document.baseURI);
// Degrees a screen pixel below which counties are drawn (and so first fetched).
const COUNTY_RESOLUTION = 0.02;

const $ = (id) => document.getElementById(id);

/** The colour scale of a product's months or years: their smallest and largest values. */
function range(items) {
  const low = Math.min(...items.map((item) => extremes(item)[0]));
  const high = Math.max(...items.map((item) => extremes(item)[1]));
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

/** One layer of the bundled US Census boundaries (TopoJSON); none if it cannot be read,
 * as the map works without them. */
async function boundaries(url, layer) {
  const response = await fetch(url).catch(() => null);
  if (!response?.ok) return [];
  return new TopoJSON({ layers: [layer] }).readFeatures(await response.json());
}

/** The place finder's names: states by name, counties as "name, state". */
function listPlaces(places) {
  $('places').replaceChildren(...[...places.keys()].sort().map((name) => new Option(name)));
}

/** The states, drawn at once, and in the place finder; then the counties (842 KB), drawn
 * zoomed in, fetched once the view is zoomed in or the place finder is used. A Map of the
 * places by name, and a function that resolves once the counties are in it. */
async function places(map) {
  const found = new Map();
  const states = await boundaries(STATES, 'states');
  for (const state of states) found.set(state.get('name'), state);
  const stroke = (color, width) => new Style({ stroke: new Stroke({ color, width }) });
  map.addLayer(new VectorLayer({ source: new VectorSource({ features: states }), style: stroke('#333', 1.2) }));
  listPlaces(found);
  const names = new Map(states.map((state) => [state.getId(), state.get('name')]));
  let counties;
  const withCounties = () => (counties ??= boundaries(COUNTIES, 'counties').then((features) => {
    for (const county of features) found.set(`${county.get('name')}, ${names.get(String(county.getId()).slice(0, 2))}`, county);
    map.addLayer(new VectorLayer({
      source: new VectorSource({ features }), style: stroke('rgba(60,60,60,0.45)', 0.5), maxResolution: COUNTY_RESOLUTION,
    }));
    listPlaces(found);
  }));
  const zoomedIn = () => map.getView().getResolution() < COUNTY_RESOLUTION && withCounties();
  map.on('moveend', zoomedIn);
  zoomedIn();
  return { found, withCounties };
}

async function main() {
  const products = await readProducts();
  if (!products.size) throw new Error('the catalog lists no region Collection');
  const wanted = fromHash(location.hash);
  const select = $('product');
  for (const product of products.keys()) select.add(new Option(product, product));
  if (products.has(wanted.product)) select.value = wanted.product;
  const kind = $('kind');
  if (wanted.period?.length === 4) kind.value = 'yearly';
  $('overlay').checked = wanted.overlay;

  const layer = new TileLayer({});
  const marks = new VectorSource();
  const markStyle = [
    new Style({ stroke: new Stroke({ color: MARKER, width: 2 }), fill: new Fill({ color: 'rgba(228,26,28,0.15)' }) }),
    new Style({ image: new Circle({ radius: 5, stroke: new Stroke({ color: MARKER, width: 2.5 }) }) }),
  ];
  const map = new OlMap({
    target: 'map',
    // Labelled meridians and parallels place the region without a base map from elsewhere.
    layers: [layer, new Graticule({ showLabels: true, wrapX: false }), new VectorLayer({ source: marks, style: markStyle, zIndex: 10 })],
    view: new View({ projection: 'EPSG:4326' }),
  });
  const slider = $('month');
  let selection = null; // {point: [lon, lat]} or {polygon: [[lon, lat], ...]}
  let points = [];
  let drawn = 0; // which series is the latest asked for
  let shownPeriod;

  let shownItems = []; // the product and kind chosen, once their index is read
  const items = () => shownItems;
  const current = () => items()[Number(slider.value)];

  function permalink() {
    if (!current()) return; // the index is still being read: the address stays as opened
    const view = map.getView();
    const shown = view.isDef() ? { center: view.getCenter(), zoom: view.getZoom() } : undefined;
    history.replaceState(null, '', toHash({
      product: select.value, period: period(current()), point: selection?.point,
      polygon: selection?.polygon, overlay: $('overlay').checked, view: shown,
    }));
  }

  async function show() {
    const item = current();
    shownPeriod = period(item);
    $('month-label').textContent = shownPeriod;
    const shown = `${select.value} ${period(item)}`;
    permalink();
    const source = await cogSource(cogUrl(item));
    if (shown !== `${select.value} ${period(current())}`) return; // moved on
    layer.setSource(source);
    if (!map.getView().isDef()) map.getView().fit(source.getTileGrid().getExtent());
    document.body.dataset.shown = shown;
  }

  function drawSeries() {
    const yearly = kind.value === 'yearly';
    const polygon = Boolean(selection.polygon);
    const where = polygon
      ? `mean of ${Math.max(...points.map((p) => p.valid))} pixels in the polygon`
      : `at ${place(...selection.point)}`;
    $('series-title').textContent = `${select.value} ${yearly ? 'yearly' : 'monthly'} ${where}`;
    $('series-values').replaceChildren(...points.map((p) => {
      const row = document.createElement('tr');
      row.dataset.period = p.period;
      row.dataset.value = p.value === null ? '' : String(p.value);
      row.innerHTML = `<td>${p.period}</td><td>${p.value === null ? 'no data' : `${p.value.toFixed(2)} mm`}</td>` +
        (polygon ? `<td>${p.valid} pixels</td>` : '');
      return row;
    }));
    drawChart($('series-chart'), points, { overlay: $('overlay').checked, yearly, shownYear: shownPeriod?.slice(0, 4) });
    const download = $('download');
    URL.revokeObjectURL(download.href);
    download.href = URL.createObjectURL(new Blob([csv(points, polygon)], { type: 'text/csv' }));
    const at = polygon ? 'polygon' : `${degrees(selection.point[1], 'N', 'S', 4)}_${degrees(selection.point[0], 'E', 'W', 4)}`.replace(/[° ]/g, '');
    download.download = `${select.value}_${kind.value}_${at}.csv`;
    download.hidden = false;
  }

  /** Read the selection's series from every COG of the product and kind, then draw it. */
  async function readSeries() {
    if (!selection) return;
    const asked = ++drawn;
    const list = items();
    $('series-title').textContent = 'reading…';
    let series;
    if (selection.point) {
      const [lon, lat] = selection.point;
      // Monthly: the series store's three requests where it is published, else the COGs.
      const stored = kind.value === 'monthly' ? await storedPoint(select.value, lon, lat) : null;
      let square = stored?.square;
      if (stored) {
        series = stored.points;
      } else {
        const readings = await Promise.all(list.map((item) => pixelAt(cogUrl(item), lon, lat)));
        square = readings.find(Boolean)?.square;
        series = list.map((item, i) => ({ period: period(item), value: readings[i]?.value ?? null, cog: cogHref(item) }));
      }
      marks.clear();
      marks.addFeature(new Feature(new Point(selection.point)));
      if (square) marks.addFeature(new Feature(fromExtent(square)));
    } else {
      const polygon = new Polygon([selection.polygon]);
      marks.clear();
      marks.addFeature(new Feature(polygon));
      const readings = await Promise.all(list.map((item) => polygonMean(cogUrl(item), polygon)));
      series = list.map((item, i) => ({ period: period(item), ...readings[i] }));
    }
    if (asked !== drawn) return; // another click, product or kind since
    const marked = JSON.stringify(selection);
    map.once('rendercomplete', () => (document.body.dataset.marked = marked));
    map.render();
    points = series;
    drawSeries();
    if (selection.point) document.body.dataset.point = selection.point.join(',');
    document.body.dataset.series = `${select.value} ${kind.value} ${selection.point ? 'point' : 'polygon'}`;
  }

  /** Show the product and kind chosen, at the period shown before (or its year's). */
  async function choose(keep = shownPeriod) {
    // Yearly maps only where the run published years (annual: true).
    const kinds = products.get(select.value);
    for (const option of kind.options) option.disabled = !kinds.has(option.value);
    if (!kinds.has(kind.value)) kind.value = [...kinds][0];
    const list = await periodsOf(select.value, kind.value);
    shownItems = list;
    slider.max = String(list.length - 1);
    const periods = list.map(period);
    const index = [periods.indexOf(keep), periods.findIndex((p) => p.slice(0, 4) === keep?.slice(0, 4))].find((i) => i >= 0);
    slider.value = String(index ?? 0);
    const scale = range(list);
    layer.setStyle(style(scale));
    drawLegend(scale);
    $('overlay').disabled = kind.value === 'yearly';
    await Promise.all([show(), readSeries()]);
  }

  select.addEventListener('change', () => choose());
  kind.addEventListener('change', () => choose());
  slider.addEventListener('input', () => {
    const year = shownPeriod?.slice(0, 4);
    show();
    // The overlaid years: the map's year stands out.
    if (points.length && $('overlay').checked && shownPeriod.slice(0, 4) !== year) drawSeries();
  });
  $('overlay').addEventListener('change', () => {
    permalink();
    if (points.length) drawSeries();
  });
  map.on('moveend', permalink);
  // A permalink pasted into the address bar of an open page (only the hash changes).
  window.addEventListener('hashchange', () => location.reload());

  let draw; // OpenLayers' Draw, its code loaded when a polygon is first asked for
  let drawnAt = -1; // the time of the click that closed the polygon, which is no point
  const drawing = () => map.getInteractions().getArray().includes(draw);
  async function polygonTool() {
    const { default: Draw } = await import('ol/interaction/Draw.js');
    if (draw) return; // made while this one loaded
    draw = new Draw({ source: new VectorSource(), type: 'Polygon', stopClick: true });
    draw.on('drawend', (event) => {
      drawnAt = performance.now();
      map.removeInteraction(draw);
      $('draw').textContent = 'Draw a polygon';
      selection = { polygon: event.feature.getGeometry().getCoordinates()[0] };
      permalink();
      readSeries();
    });
  }
  $('draw').addEventListener('click', async () => {
    if (drawing()) {
      map.removeInteraction(draw);
      $('draw').textContent = 'Draw a polygon';
      return;
    }
    await polygonTool();
    if (!drawing()) map.addInteraction(draw);
    $('draw').textContent = 'Cancel the polygon';
  });
  map.on('singleclick', (event) => {
    if (drawing()) return; // a polygon's vertex
    if (event.originalEvent.timeStamp <= drawnAt) return;
    selection = { point: event.coordinate };
    permalink();
    readSeries();
  });

  if (wanted.point) selection = { point: wanted.point };
  if (wanted.polygon) selection = { polygon: wanted.polygon };
  if (wanted.view) {
    map.getView().setCenter(wanted.view.center);
    map.getView().setZoom(wanted.view.zoom);
  }
  await choose(wanted.period);
  map.on('rendercomplete', () => (document.body.dataset.rendered = document.body.dataset.shown));

  const { found, withCounties } = await places(map);
  $('place').addEventListener('focus', withCounties);
  $('place').addEventListener('change', async () => {
    const name = $('place').value;
    if (!found.has(name)) await withCounties();
    const feature = found.get(name);
    if (!feature || name !== $('place').value) return;
    map.getView().fit(feature.getGeometry().getExtent(), { padding: [20, 20, 20, 20] });
    document.body.dataset.place = name;
  });
}

main().catch((error) => {
  $('status').textContent = `The map could not load: ${error.message}`;
  throw error;
});
