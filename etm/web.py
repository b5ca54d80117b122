"""The map page published beside the catalog (rule map_page).

``web/`` holds the page (``index.html``) and its script's source (``map.js``); npm bundles
the script and OpenLayers' style from the pinned packages of ``web/package-lock.json``
into ``web/dist/``, the code the first map does not need in chunks loaded when asked for,
with the US states' and counties' boundaries of the ``us-atlas`` package (``make web``).
The page reads ``catalog.json``, the list of the region periods of the product and kind
it shows, and their COGs, from its own folder, by HTTP range requests: no server of its
own.
"""

from __future__ import annotations

from pathlib import Path

from etm.errors import EtmError
from etm.files import copy_whole

#: The page's files in ``web/``, by the name they are published under.
PAGE = {
    "index.html": "index.html",
    "map.js": "dist/map.js",
    "map.css": "dist/map.css",
    # US Census boundaries (us-atlas): the states, drawn at once, and the counties (842 KB),
    # fetched once zoomed in or a place is looked for.
    "states.json": "dist/states.json",
    "counties.json": "dist/counties.json",
}
#: The script's chunks (``web/dist/chunks/*.js``), published under ``chunks/``; their
#: names, from their content, change with the build.
CHUNKS = "chunks"


def page_files(workflow_dir: str) -> dict[str, str]:
    """The page's files in the workflow's ``web/`` folder, by published name: :data:`PAGE`,
    then the script's chunks.

    Raises
    ------
    EtmError
        If the script is not built, saying how to build it.
    """
    web = Path(workflow_dir) / "web"
    files = {name: web / path for name, path in PAGE.items()}
    missing = [str(path) for path in files.values() if not path.is_file()]
    chunks = sorted((web / "dist" / CHUNKS).glob("*.js"))
    if not chunks:
        missing.append(str(web / "dist" / CHUNKS / "*.js"))
    if missing:
        raise EtmError(
            f"the map page is not built ({', '.join(missing)} missing): run `make web` "
            "(Node.js and npm) in the workflow's folder, then run again"
        )
    files.update({f"{CHUNKS}/{chunk.name}": chunk for chunk in chunks})
    return {name: str(path) for name, path in files.items()}


def write_page(sources: list[str], destinations: list[str]) -> None:
    """Publish the page's files (:data:`PAGE`), each to its destination."""
    for source, destination in zip(sources, destinations, strict=True):
        copy_whole(source, destination)
