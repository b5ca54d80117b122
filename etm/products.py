"""The model's products, all in mm: what each one means and its quicklooks' colour map (their
scale is fitted over the archive: :func:`etm.quicklook.fitted_scale`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """One model output."""

    title: str
    description: str
    colormap: str


PRODUCTS: dict[str, Product] = {
    "etasw": Product(
        "Actual evapotranspiration",
        "Actual evapotranspiration from the soil water balance; monthly sum.",
        "YlGnBu",
    ),
    "etasw5": Product(
        "Actual evapotranspiration (etasw5)",
        "Actual evapotranspiration, the model's etasw5 output; monthly sum.",
        "YlGnBu",
    ),
    "etc": Product(
        "Potential evapotranspiration", "Potential evapotranspiration; monthly sum.", "YlGnBu"
    ),
    "netet": Product(
        "Net evapotranspiration",
        "Potential minus actual evapotranspiration (etc - etasw); monthly sum.",
        "YlOrRd",
    ),
    "srf": Product("Surface runoff", "Surface runoff; monthly sum.", "PuBu"),
    "dd": Product("Deep drainage", "Deep drainage; monthly sum.", "PuBu"),
    "rain": Product("Rainfall", "Rainfall; monthly sum.", "GnBu"),
    "swe": Product(
        "Snowfall water equivalent", "Snowfall as water equivalent; monthly sum.", "Blues"
    ),
    "snwpk": Product("Snowpack", "Snowpack water equivalent; monthly value.", "Blues"),
    "snowmelt": Product("Snowmelt", "Snowmelt; monthly sum.", "Blues"),
    "swi": Product("Soil water (swi)", "Soil water, the model's swi output.", "BrBG"),
    "swf": Product("Soil water (swf)", "Soil water, the model's swf output.", "BrBG"),
}
