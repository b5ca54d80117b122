"""A polygon's monthly mean from the published COGs, with etm.timeseries.polygon_series.

Usage: .venv/bin/python examples/polygon_series.py OUTPUT_PREFIX FIELD.geojson
       [--product etasw]

Prints `period,mean_mm,valid_pixels` (CSV), as `etm timeseries --polygon FIELD.geojson`
does: the mean of the pixels whose centre the polygon holds (its first feature).
"""

import argparse
import json
from pathlib import Path

from etm.timeseries import as_csv, polygon_series

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("prefix")
parser.add_argument("geojson", help="a GeoJSON file: its first feature's geometry")
parser.add_argument("--product", default="etasw")
args = parser.parse_args()
document = json.loads(Path(args.geojson).read_text())
geometry = document.get("features", [document])[0].get("geometry", document)
print(as_csv(polygon_series(args.prefix, args.product, geometry)), end="")
