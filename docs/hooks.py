"""MkDocs hooks: the pages that come from the repository rather than from docs/.

- An API page per public module of ``deepdepth`` and ``hydra_plugins.deepdepth_bisect``
  (``::: module`` for mkdocstrings), listed under "API reference" in the nav, so a module
  added or moved gets its page without editing mkdocs.yml.
- ``<!-- include: PATH -->`` on a line of its own in a docs page is replaced by the text of
  the repository file PATH (headings one level down), so a study's page shows the
  ``report.md`` its directory holds and the speed page shows ``benchmarks/RESULTS.md``,
  without a copy to keep in step.
- Every PNG under ``results/`` is served at the same path in the site, so a report's
  relative image links work from its page (``docs/results/<study>/index.md``).
- A ``report.md`` under ``results/`` that no page includes is a warning (an error under
  ``--strict``): every committed study has its page.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("deepdepth", "hydra_plugins/deepdepth_bisect")
API_SECTION = "API reference"
INCLUDE = re.compile(r"^<!-- include: (\S+) -->[ \t]*$", re.MULTILINE)
HEADING = re.compile(r"^(#{1,5}) ", re.MULTILINE)

log = logging.getLogger("mkdocs.plugins.deepdepth")
_included: set[str] = set()


def public_modules() -> list[str]:
    """Dotted names of the public modules (no part starting with ``_`` but ``__init__``)."""
    names = []
    for package in PACKAGES:
        base = ROOT / package
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            if any(p.startswith("_") for p in parts) or "conf" in parts:
                continue
            names.append(".".join(parts))
    return sorted(set(names))


def _api_uri(module: str) -> str:
    return f"api/{module}.md"


def on_config(config):
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and API_SECTION in entry:
            entry[API_SECTION] = [e for e in entry[API_SECTION] if not isinstance(e, dict)]
            entry[API_SECTION] += [{m: _api_uri(m)} for m in public_modules()]
    return config


def on_files(files, config):
    for module in public_modules():
        files.append(File.generated(config, _api_uri(module), content=f"::: {module}\n"))
    for png in sorted((ROOT / "results").rglob("*.png")):
        uri = png.relative_to(ROOT).as_posix()
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files


def _demoted(text: str) -> str:
    return HEADING.sub(lambda m: "#" + m.group(1) + " ", text)


def _include(match: re.Match) -> str:
    rel = match.group(1)
    path = ROOT / rel
    if not path.is_file():
        log.warning("include: %s does not exist", rel)
        return match.group(0)
    _included.add(rel)
    return _demoted(path.read_text(encoding="utf-8"))


def on_page_markdown(markdown, page, config, files):
    return INCLUDE.sub(_include, markdown)


def on_post_build(config):
    for report in sorted((ROOT / "results").rglob("report.md")):
        rel = report.relative_to(ROOT).as_posix()
        if rel not in _included:
            log.warning("%s is on no page: add docs/%s/index.md with <!-- include: %s -->",
                        rel, Path(rel).parent.as_posix(), rel)
    _included.clear()
