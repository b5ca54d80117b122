"""A point's monthly series from the published COGs, with etm.timeseries.point_series.

Usage: .venv/bin/python examples/point_series.py OUTPUT_PREFIX LON LAT [--product etasw]

Prints `period,value_mm` (CSV), as `etm timeseries --lon LON --lat LAT` does. The prefix
may be a folder, s3://bucket/prefix or an https:// URL: only a few ranges of each COG are
read.
"""

import argparse

from etm.timeseries import as_csv, point_series

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("prefix")
parser.add_argument("lon", type=float, help="degrees east (negative: west)")
parser.add_argument("lat", type=float, help="degrees north")
parser.add_argument("--product", default="etasw")
args = parser.parse_args()
readings = point_series(args.prefix, args.product, args.lon, args.lat)
print(as_csv(readings), end="")
wettest = max((r for r in readings if r.value == r.value), key=lambda r: r.value)
print(f"# largest: {wettest.value:.1f} mm in {wettest.period[:4]}-{wettest.period[4:]}")
