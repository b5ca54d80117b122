// A point's every month from the product's series store (series/<product>.zarr, written by
// etm.series with series_store: true): the store's metadata (consolidated: every array's
// metadata and what each month was read from), then per shard along time (240 months) its
// index (the shard's last bytes) and the point's inner chunk (ZSTD after a byte shuffle,
// decoded by the ZSTD decoder geotiff.js uses for the COGs: the same module, loaded once),
// the shards' reads at once.
import { ZSTDDecoder } from 'zstddec/stream';
import { CATALOG } from './data.js';

const FORMAT = 'etm-series/1';
const EMPTY = 0xffffffffffffffffn;
const stores = new Map();
let decoder;

const storeUrl = (product, key) => new URL(`series/${product}.zarr/${key}`, CATALOG).href;

/** The store's group metadata, or null where the prefix has none (read once a product). */
function metadata(product) {
  if (!stores.has(product)) {
    stores.set(product, fetch(storeUrl(product, 'zarr.json'))
      .then((response) => (response.ok ? response.json() : null))
      .then((found) => (found?.attributes?.etm?.format === FORMAT ? found : null))
      .catch(() => null));
  }
  return stores.get(product);
}

/** Bytes of a range of a file (`bytes=a-b`, or `bytes=-n`: its last n); null if absent. */
async function range(url, wanted) {
  const response = await fetch(url, { headers: { Range: wanted } });
  if (response.status === 404 || response.status === 403) return null;
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (response.status === 206) return bytes;
  // A host that ignores ranges sends the whole file.
  const suffix = /^bytes=-(\d+)$/.exec(wanted);
  if (suffix) return bytes.slice(bytes.length - Number(suffix[1]));
  const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(wanted).map(Number);
  return bytes.slice(start, end + 1);
}

/** An inner chunk's float32 values from its bytes, through the codecs etm writes. */
async function decode(bytes, codecs, size) {
  let data = bytes;
  for (const codec of [...codecs].reverse()) {
    if (codec.name === 'zstd') {
      if (!decoder) {
        decoder = new ZSTDDecoder();
        await decoder.init();
      }
      data = decoder.decode(data, size * 4);
    } else if (codec.name === 'numcodecs.shuffle') {
      const width = codec.configuration.elementsize;
      const count = data.length / width;
      const out = new Uint8Array(data.length);
      for (let b = 0; b < width; b += 1) {
        for (let i = 0; i < count; i += 1) out[i * width + b] = data[b * count + i];
      }
      data = out;
    } else if (codec.name !== 'bytes' || codec.configuration.endian !== 'little') {
      throw new Error(`series store: codec ${codec.name} is not one etm writes`);
    }
  }
  return new Float32Array(data.buffer, data.byteOffset, size);
}

/** Which of a month's COGs ([href, digest, [col, row, width, height]]) holds a pixel. */
function pixelCog(sources, col, row) {
  const found = sources.find(([, , [c, r, w, h]]) => c <= col && col < c + w && r <= row && row < r + h);
  return found ? found[0] : '';
}

/** A point's months from the product's store: [{period: YYYY-MM, value (null for no
 * data), cog}] for the months a COG holds it, and its pixel's square; null where the
 * prefix has no store, or the point is outside it. */
export async function storedPoint(product, lon, lat) {
  const meta = await metadata(product);
  if (!meta) return null;
  const etm = meta.attributes.etm;
  const [xres, , west, , yres, north] = etm.transform;
  const [months, height, width] = etm.shape;
  const col = Math.floor((lon - west) / xres);
  const row = Math.floor((lat - north) / yres);
  if (col < 0 || row < 0 || col >= width || row >= height) return null;
  const array = meta.consolidated_metadata.metadata[product];
  const shard = array.chunk_grid.configuration.chunk_shape;
  const { chunk_shape: inner, codecs } = array.codecs[0].configuration;
  const across = shard[2] / inner[2];
  // Chunk keys as the array's metadata spells them: `c/t/y/x` or `t/y/x`.
  const prefix = array.chunk_key_encoding.name === 'default' ? 'c/' : '';
  const entry = Math.floor((row % shard[1]) / inner[1]) * across + Math.floor((col % shard[2]) / inner[2]);
  const at = (row % inner[1]) * inner[2] + (col % inner[2]);
  const values = new Array(months).fill(NaN);
  const blocks = Array.from({ length: Math.ceil(months / shard[0]) }, (_, block) => block);
  await Promise.all(blocks.map(async (block) => {
    const key = storeUrl(product, `${product}/${prefix}${block}/${Math.floor(row / shard[1])}/${Math.floor(col / shard[2])}`);
    const index = await range(key, `bytes=-${(shard[1] / inner[1]) * across * 16 + 4}`);
    if (!index) return;
    const view = new DataView(index.buffer, index.byteOffset, index.byteLength);
    const offset = view.getBigUint64(entry * 16, true);
    const length = view.getBigUint64(entry * 16 + 8, true);
    if (offset === EMPTY) return;
    const bytes = await range(key, `bytes=${offset}-${offset + length - 1n}`);
    const chunk = await decode(bytes, codecs, inner[0] * inner[1] * inner[2]);
    for (let t = 0; t < inner[0] && block * shard[0] + t < months; t += 1) {
      values[block * shard[0] + t] = chunk[t * inner[1] * inner[2] + at];
    }
  }));
  const square = [west + col * xres, north + (row + 1) * yres, west + (col + 1) * xres, north + row * yres];
  const points = etm.periods.map((p, t) => ({
    period: `${p.slice(0, 4)}-${p.slice(4)}`,
    value: Number.isNaN(values[t]) ? null : values[t],
    cog: pixelCog(etm.sources[p], col, row),
  }));
  return { points: points.filter((p) => p.cog), square };
}
