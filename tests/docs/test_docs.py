"""The documentation: the generated config reference covers every key, links stay inside the repository, and
every English page has its Chinese twin. (`make docs` builds the site itself with --strict.)"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from open_autoglm.config import Config
from open_autoglm.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS / "en") for p in (DOCS / "en").rglob("*.md"))
MARKDOWN = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted(DOCS.rglob("*.md"))]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("config_reference", DOCS / "hooks" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


reference = _generator()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _reachable(model: type[BaseModel], found: dict[type[BaseModel], None]) -> dict[type[BaseModel], None]:
    """Every config model reachable from `model` through fields, lists, unions and optionals."""
    found[model] = None
    for info in model.model_fields.values():
        for nested in _models_in(info.annotation):
            if nested not in found:
                _reachable(nested, found)
    return found


def _keys(section: Any) -> list[str]:
    return [row.key.strip("`") for row in section.rows]


def test_the_reference_lists_every_key_of_every_config_section():
    sections = {section.model: section for section in reference.config_sections()}
    models = list(_reachable(Config, {}))
    assert set(sections) == set(models)
    for model in models:
        assert _keys(sections[model]) == list(model.model_fields), model.__name__
    rendered = reference.render("en")
    for section in sections.values():
        assert f"{{ #{section.anchor} }}" in rendered
        for row in section.rows:
            assert f"| {row.key} |" in rendered


def test_the_reference_lists_every_methods_params():
    built_in = [n for n in METHODS.names() if METHODS.get(n).__module__.startswith("open_autoglm.")]
    sections = {section.path: section for section in reference.method_sections()}
    assert sorted(sections) == sorted(f"method ({name})" for name in built_in)
    for name in built_in:
        assert _keys(sections[f"method ({name})"]) == list(METHODS.get(name).params_cls.model_fields)


def test_the_reference_shows_types_defaults_and_descriptions():
    rows = {(s.path, row.key.strip("`")): row for s in reference.config_sections() for row in s.rows}
    assert rows["model", "device"].type == "`'auto' | 'cpu' | 'cuda' | 'mps'`"
    assert rows["train", "batch_size"].type == "`int (> 0)`" and rows["train", "batch_size"].default == "`16`"
    assert "run folder name" in rows["", "name"].description
    assert "&lt;output_dir&gt;" in rows["", "name"].description  # a placeholder, not an HTML tag
    assert rows["", "model"].type == "`section`" and "(#cfg-model)" in rows["", "model"].description


def test_the_chinese_reference_has_chinese_headings():
    assert "| 键 | 类型 | 默认值 | 说明 |" in reference.render("zh")


_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(
    r"\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)"  # inline: [text](target "title")
    r"|^\s*\[[^\]]+\]:\s*(\S+)"  # reference definition: [name]: target
    r"|(?:href|src)=\"([^\"]+)\"",  # raw HTML
    re.M,
)


def _links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return [next(g for g in match.groups() if g) for match in _LINK.finditer(text)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(path: Path):
    for target in _links(path):
        assert ":" not in target.split("#")[0] and not target.startswith("/"), (
            f"{path}: {target} leaves the repo"
        )
        assert not target.startswith("../shared"), f"{path}: {target}"
        file = target.split("#")[0]
        if not file:
            continue  # an anchor on the same page
        resolved = (path.parent / file).resolve()
        assert resolved.is_relative_to(ROOT), f"{path}: {target} leaves the repository"
        assert resolved.exists(), f"{path}: {target} does not exist"


def test_the_link_pattern_sees_inline_reference_and_html_links(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text('[a](x.md#y) [b](<c d.md>)\n[r]: ../r.md\n<img src="i.png">\n`[no](code.md)`\n')
    assert _links(page) == ["x.md#y", "c d.md", "../r.md", "i.png"]


def test_every_english_page_has_a_chinese_twin_with_chinese_text():
    zh_pages = sorted(p.relative_to(DOCS / "zh") for p in (DOCS / "zh").rglob("*.md"))
    assert PAGES and zh_pages == PAGES
    for page in PAGES:
        text = (DOCS / "zh" / page).read_text(encoding="utf-8")
        assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 100, f"docs/zh/{page}: too little Chinese"


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in _nav_pages(item)]


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert sorted(_nav_pages(config["nav"])) == sorted(str(p) for p in PAGES)
