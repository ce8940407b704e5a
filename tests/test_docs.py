"""Every model or experiment name the docs, notebooks and helpers mention exists.

Reference models get renamed (the 96-pixel family lost the name ``flowers-vgg11`` to
an alias); a README or a notebook that still says the old name sends a student to a
model that is not there. Names are matched by their shape, ``flowers-...`` or
``cifar10-...``; a name followed by ``*`` or an f-string field (``-seed{s}``) is a
pattern, and it must begin at least one real name. README section names
(``<!-- cifar10-budget:start -->``, which notebooks fill with ``report.replace_section``)
have the same shape and are not models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import experiments, registry
from helpers.paths import PROJECT_ROOT

# A name, not inside a longer word or path; then what follows it (a wildcard, an f-string field).
NAME = re.compile(r"(?<![\w/.-])((?:flowers|cifar10)-[A-Za-z0-9.-]*[A-Za-z0-9])(-?\{|\*)?")
SECTION_MARKER = re.compile(r"<!-- ([\w.-]+):(start|end) -->")


def names_in(text: str) -> list[tuple[str, bool]]:
    """``(name, is_prefix)`` for every model-like name in ``text``, README section markers left out."""
    text = SECTION_MARKER.sub("", text)
    return [(m.group(1), m.group(2) is not None) for m in NAME.finditer(text)]


def text_of(path: Path) -> str:
    if path.suffix == ".ipynb":  # the cells' sources, not their outputs
        return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"])
    return path.read_text()


def documented_files() -> list[Path]:
    root = PROJECT_ROOT
    return sorted(
        [root / "README.md", *root.glob("docs/*.md"), *root.glob("notebooks/*.ipynb"), *root.glob("helpers/*.py")]
    )


def test_names_in_is_not_fooled():
    text = (
        "take `flowers-vgg11`, then flowers-vgg11-96px-lambda* and f\"flowers-vgg11-128px-wd-seed{s}-heads\";\n"
        "<!-- cifar10-budget:start --> runs/flowers-vgg11-96px/model.keras tf_flowers-like cifar10-resnet18-{n}"
    )
    assert names_in(text) == [
        ("flowers-vgg11", False),
        ("flowers-vgg11-96px-lambda", True),
        ("flowers-vgg11-128px-wd-seed", True),
        ("cifar10-resnet18", True),
    ]


@pytest.mark.parametrize("path", documented_files(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_named_model_exists(path):
    sections = set(SECTION_MARKER.findall((PROJECT_ROOT / "README.md").read_text()))
    known = set(registry.reference_names()) | set(registry.aliases()) | set(experiments.EXPERIMENTS)
    known |= {name for name, _ in sections}
    assert "flowers-vgg11" in known and "flowers-vgg11-96px" in known  # the check sees the shipped models
    unknown = sorted(
        {
            name + ("…" if prefix else "")
            for name, prefix in names_in(text_of(path))
            if not (any(k.startswith(name) for k in known) if prefix else name in known)
        }
    )
    assert not unknown, f"{path.name} names models or experiments that do not exist: {unknown}"
