"""The model's products, all in mm: what each one means and how its quicklooks are coloured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One model output.

    ``monthly_max`` fixes the quicklook colour scale (0 to it, in mm) so that months
    compare; a year summed from its months uses a scale 12 times larger.
    """

    title: str
    description: str
    colormap: str
    monthly_max: float


PRODUCTS: dict[str, Product] = {
    "etasw": Product(
        "Actual evapotranspiration",
        "Actual evapotranspiration from the soil water balance; monthly sum.",
        "YlGnBu",
        250,
    ),
    "etasw5": Product(
        "Actual evapotranspiration (etasw5)",
        "Actual evapotranspiration, the model's etasw5 output; monthly sum.",
        "YlGnBu",
        250,
    ),
    "etc": Product(
        "Potential evapotranspiration", "Potential evapotranspiration; monthly sum.", "YlGnBu", 300
    ),
    "netet": Product(
        "Net evapotranspiration",
        "Potential minus actual evapotranspiration (etc - etasw); monthly sum.",
        "YlOrRd",
        200,
    ),
    "srf": Product("Surface runoff", "Surface runoff; monthly sum.", "PuBu", 100),
    "dd": Product("Deep drainage", "Deep drainage; monthly sum.", "PuBu", 100),
    "rain": Product("Rainfall", "Rainfall; monthly sum.", "GnBu", 300),
    "swe": Product(
        "Snowfall water equivalent", "Snowfall as water equivalent; monthly sum.", "Blues", 200
    ),
    "snwpk": Product("Snowpack", "Snowpack water equivalent; monthly value.", "Blues", 500),
    "snowmelt": Product("Snowmelt", "Snowmelt; monthly sum.", "Blues", 200),
    "swi": Product("Soil water (swi)", "Soil water, the model's swi output.", "BrBG", 300),
    "swf": Product("Soil water (swf)", "Soil water, the model's swf output.", "BrBG", 300),
}


def colour_scale(product: str, *, annual: str | None) -> tuple[float, float]:
    """The fixed (vmin, vmax) of a product's quicklooks, in mm.

    Parameters
    ----------
    product : str
    annual : {"sum", "mean"} or None
        How a year was aggregated, or None for a month.
    """
    return 0.0, PRODUCTS[product].monthly_max * (12 if annual == "sum" else 1)
