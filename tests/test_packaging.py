"""setup.cfg ships the whole tree: a non-editable ``pip install .`` (a wheel) has every
package and every file the code reads, not just what an editable install happens to find."""

import configparser
from fnmatch import fnmatch
from pathlib import Path

from conftest import ROOT


def setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def package_dirs(cfg) -> dict[str, Path]:
    """Each top-level package of ``package_dir`` -> its folder."""
    pairs = (ln.split("=", 1) for ln in lines(cfg.get("options", "package_dir")))
    return {name.strip(): ROOT / folder.strip() for name, folder in pairs}


def test_ok__every_package_in_the_tree_is_listed():
    cfg = setup_cfg()
    in_tree = set()
    for name, folder in package_dirs(cfg).items():
        for init in folder.rglob("__init__.py"):
            in_tree.add(".".join([name, *init.parent.relative_to(folder).parts]))
    assert set(lines(cfg.get("options", "packages"))) == in_tree


def test_ok__every_file_beside_the_code_is_package_data():
    cfg = setup_cfg()
    data = {pkg: lines(globs.replace(",", "\n")) for pkg, globs in cfg.items("options.package_data")
            if pkg in lines(cfg.get("options", "packages"))}
    missing = []
    for name, folder in package_dirs(cfg).items():
        for f in folder.rglob("*"):
            if not f.is_file() or f.suffix in (".py", ".pyc") or "__pycache__" in f.parts:
                continue
            rel = f.relative_to(folder)
            # the nearest package above the file, and the file's path below it
            parts = rel.parent.parts
            while parts and not (folder.joinpath(*parts) / "__init__.py").exists():
                parts = parts[:-1]
            pkg = ".".join([name, *parts])
            below = Path(*rel.parts[len(parts):]).as_posix()
            if not any(fnmatch(below, g) for g in data.get(pkg, ())):
                missing.append(str(f.relative_to(ROOT)))
    assert missing == []
