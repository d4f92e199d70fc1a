"""Write ``src/poiflow/data/land_mask.npz``: which cells of a 1/24-degree grid hold land.

Made from the 30-arc-second GLOBE land mask of the ``global-land-mask`` package (a dev
dependency; public-domain NOAA GLOBE data). A cell is land if any of its 30" points is,
or any neighbouring cell's: so a point is "in the sea" only with no land within about one
cell (~4 km). Packed as bits, the file is small enough to ship and loads in milliseconds.

Usage:
    .venv/bin/python scripts/make_land_mask.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from global_land_mask import globe

FACTOR = 5  # 30" points per cell side: cells of 1/24 degree (~4.6 km of latitude)
OUT = Path(__file__).resolve().parent.parent / "src" / "poiflow" / "data" / "land_mask.npz"


def main() -> None:
    # The package stores the ocean; rows run from latitude +90 down, columns from -180 east.
    fine = ~np.asarray(globe._mask)
    rows, cols = fine.shape
    factor = FACTOR
    coarse = fine[: rows - rows % factor, : cols - cols % factor]
    coarse = coarse.reshape(rows // factor, factor, cols // factor, factor).any(axis=(1, 3))
    grown = coarse.copy()
    grown[1:] |= coarse[:-1]
    grown[:-1] |= coarse[1:]
    grown[:, 1:] |= coarse[:, :-1]
    grown[:, :-1] |= coarse[:, 1:]
    grown[:, 0] |= coarse[:, -1]  # the grid wraps at the antimeridian
    grown[:, -1] |= coarse[:, 0]
    np.savez_compressed(OUT, land=np.packbits(grown, axis=1), shape=np.array(grown.shape))
    print(f"{OUT}: {grown.shape}, land share {grown.mean():.3f}, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
