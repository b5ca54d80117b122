"""The STAC schemas pinned under stac_schemas/ (see its README), served to jsonschema from
a local registry: a test validates against the official schemas and fetches nothing."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

FOLDER = Path(__file__).with_name("stac_schemas")
CORE = {
    "Feature": "item-spec/json-schema/item.json",
    "Catalog": "catalog-spec/json-schema/catalog.json",
    "Collection": "collection-spec/json-schema/collection.json",
}


@cache
def registry() -> Registry:
    """Every pinned schema, by the URL it was published at (its path under stac_schemas/)."""
    resources = []
    for path in sorted(FOLDER.rglob("*.json")):
        url = "https://" + path.relative_to(FOLDER).as_posix()
        resources.append((url, Resource.from_contents(json.loads(path.read_text()), DRAFT7)))
    return Registry().with_resources(resources)


def schema_urls(document: dict) -> list[str]:
    """The schemas a STAC document must satisfy: its type's, of its stac_version, and
    each extension's it declares."""
    core = f"https://schemas.stacspec.org/v{document['stac_version']}/{CORE[document['type']]}"
    return [core, *document.get("stac_extensions", [])]


def errors(document: dict) -> list[str]:
    """Every way a STAC document breaks its schemas, as ``<schema>: <path>: <message>``;
    a schema that is not pinned is one such error."""
    found = []
    for url in schema_urls(document):
        try:
            schema = registry().contents(url.removesuffix("#"))
        except LookupError:
            found.append(f"{url}: no pinned copy under {FOLDER.name}/")
            continue
        validator = Draft7Validator(schema, registry=registry())
        for error in validator.iter_errors(document):
            where = "/".join(map(str, error.absolute_schema_path))
            found.append(f"{url}: {error.json_path}: {where}: {error.message[:200]}")
    return found
