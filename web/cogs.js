// The region COGs, read by HTTP range requests through geotiff.js: map tiles (one COG
// block each, at the level that fits the zoom), a pixel's value, a polygon's mean.
import DataTile from 'ol/source/DataTile.js';
import TileGrid from 'ol/tilegrid/TileGrid.js';
import { fromUrl } from 'geotiff';

const cogs = new Map();
// Bytes a range request is rounded to (geotiff.js' default 64 KB, mostly unused of a header).
const BLOCK = 16384;

/** A COG's levels, full resolution first (geotiff.js reads its header by range requests). */
function levels(url) {
  if (!cogs.has(url)) {
    cogs.set(url, fromUrl(url, { blockSize: BLOCK }).then(async (tiff) => {
      const count = await tiff.getImageCount();
      return Promise.all([...Array(count).keys()].map((i) => tiff.getImage(i)));
    }));
  }
  return cogs.get(url);
}

/** A map source of a COG: its own tiles and levels, so that a tile is one range request;
 * each tile is the value and a band that is 0 where the COG has no data (NaN). */
export async function cogSource(url) {
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
  // zDirection 1: the level at or just coarser than the screen's pixels, not the finer one
  // (four times the bytes for pixels the screen cannot show).
  return new DataTile({
    loader, tileGrid, projection: 'EPSG:4326', bandCount: 2, interpolate: false, wrapX: false, zDirection: 1,
  });
}

/** The pixel of a COG that holds a point: its value (null for no data) and its square
 * [west, south, east, north]; null outside the COG. */
export async function pixelAt(url, lon, lat) {
  const [image] = await levels(url);
  const [west, north] = image.getOrigin();
  const [xres, yres] = image.getResolution();
  const col = Math.floor((lon - west) / xres);
  const row = Math.floor((lat - north) / yres);
  if (col < 0 || row < 0 || col >= image.getWidth() || row >= image.getHeight()) return null;
  const [values] = await image.readRasters({ window: [col, row, col + 1, row + 1] });
  const square = [west + col * xres, north + (row + 1) * yres, west + (col + 1) * xres, north + row * yres];
  return { value: Number.isNaN(values[0]) ? null : values[0], square };
}

/** A COG's mean over the pixels whose centre a polygon holds (as `etm timeseries
 * --polygon`): {value (null if none has data), valid: how many have data}. */
export async function polygonMean(url, polygon) {
  const [image] = await levels(url);
  const [west, north] = image.getOrigin();
  const [xres, yres] = image.getResolution();
  const [left, bottom, right, top] = polygon.getExtent();
  const cols = [Math.max(0, Math.floor((left - west) / xres)), Math.min(image.getWidth(), Math.ceil((right - west) / xres))];
  const rows = [Math.max(0, Math.floor((top - north) / yres)), Math.min(image.getHeight(), Math.ceil((bottom - north) / yres))];
  if (cols[1] <= cols[0] || rows[1] <= rows[0]) return { value: null, valid: 0 };
  const [values] = await image.readRasters({ window: [cols[0], rows[0], cols[1], rows[1]] });
  const width = cols[1] - cols[0];
  let [sum, valid] = [0, 0];
  values.forEach((value, i) => {
    const x = west + (cols[0] + (i % width) + 0.5) * xres;
    const y = north + (rows[0] + Math.floor(i / width) + 0.5) * yres;
    if (!Number.isNaN(value) && polygon.intersectsCoordinate([x, y])) {
      sum += value;
      valid += 1;
    }
  });
  return { value: valid ? sum / valid : null, valid };
}
