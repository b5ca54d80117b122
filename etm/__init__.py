"""etm: verify the ET model's chips and mosaic them into monthly Cloud-Optimized GeoTIFFs."""
