"""Fill an installed copy's virtual environment from the clone's, offline.

Run by scripts/install-pi.sh with the clone's ``.venv/bin/python``:

    copy_venv.py SRC_TREE DEST_VENV PREFIX

``DEST_VENV`` is a fresh venv (``python -m venv --without-pip``) at the place it
will have inside the target root; ``PREFIX`` is where the installed copy lives
inside that root (``/opt/switchboard``), for the console scripts' ``#!`` lines.

What is copied: the distributions the daemon needs and everything they need
(setup.cfg's ``install_requires`` and the ``telephony`` extra, markers
evaluated here), plus the pin libraries and PJSUA2 when the clone's venv has
them (``lgpio``, ``RPi``, ``pigpio``, ``pjsua2``): the very files
scripts/setup.sh installed or built, so nothing is downloaded or compiled
again. The test tools are left behind. The project itself is not built: a
``.pth`` file puts ``PREFIX/src`` (a copy of the tree) on ``sys.path``, as the
tests do, and the console scripts of setup.cfg are written into ``bin/``.
"""

from __future__ import annotations

import configparser
import importlib.metadata as md
import importlib.util
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:                     # a venv without packaging still has pip's copy
    from pip._vendor.packaging.requirements import Requirement

EXTRAS = ("telephony",)
OPTIONAL_MODULES = ("lgpio", "RPi", "pigpio", "pjsua2")


def fail(msg: str):
    print(f"install-pi: {msg}", file=sys.stderr)
    sys.exit(1)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_cfg(src: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(src / "setup.cfg")
    return cfg


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def wanted(req: str, extras=()) -> str | None:
    """The distribution a requirement names, or None when its marker says not here."""
    r = Requirement(req)
    envs = [{"extra": e} for e in (extras or ("",))]
    if r.marker is not None and not any(r.marker.evaluate(env) for env in envs):
        return None
    return r.name


def distribution(name: str):
    for n in (name, norm(name), norm(name).replace("-", "_")):
        try:
            return md.distribution(n)
        except md.PackageNotFoundError:
            continue
    return None


def closure(roots: list[str]) -> dict:
    """Every distribution the roots need, by normalised name."""
    found: dict = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if norm(name) in found:
            continue
        dist = distribution(name)
        if dist is None:
            fail(f"the clone's venv has no {name!r}, which the daemon needs: run scripts/setup.sh")
        found[norm(name)] = dist
        for req in dist.requires or ():
            dep = wanted(req)
            if dep:
                todo.append(dep)
    return found


def copy_dist(dist, dest: Path) -> int:
    """Copy one distribution's files (its RECORD) into site-packages ``dest``.

    Files are found where the distribution lives (the venv's site-packages, or the
    system's for a venv made with --system-site-packages)."""
    n = 0
    for f in dist.files or ():
        if f.parts and f.parts[0] == "..":       # console scripts and data outside site-packages
            continue
        src = Path(dist.locate_file(f))
        if not src.is_file() or "__pycache__" in f.parts:
            continue
        out = dest / f
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
        n += 1
    return n


def copy_module(name: str, site: Path, dest: Path):
    """A module importable in the clone's venv but not installed as a distribution."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return
    origin = Path(spec.origin)
    if spec.submodule_search_locations:          # a package: its directory
        pkg = Path(list(spec.submodule_search_locations)[0])
        if pkg.parent == site:
            shutil.copytree(pkg, dest / pkg.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        return
    if origin.parent == site:                    # pjsua2.py + _pjsua2*.so and the like
        for f in site.glob(f"*{name}*"):
            if f.is_file():
                shutil.copy2(f, dest / f.name)


def console_scripts(cfg, bindir: Path, python: str):
    text = cfg.get("options.entry_points", "console_scripts", fallback="")
    names = []
    for ln in lines(text):
        name, _, target = (p.strip() for p in ln.partition("="))
        module, _, func = target.partition(":")
        script = bindir / name
        script.write_text(f"#!{python}\n# -*- coding: utf-8 -*-\nimport sys\n"
                          f"from {module} import {func}\n"
                          f"if __name__ == \"__main__\":\n    sys.exit({func}())\n")
        script.chmod(0o755)
        names.append(name)
    return names


def main(argv):
    if len(argv) != 3:
        fail("usage: copy_venv.py SRC_TREE DEST_VENV PREFIX")
    src, dest_venv, prefix = Path(argv[0]), Path(argv[1]), argv[2]
    site = Path(sysconfig.get_paths()["purelib"])
    rel = Path(site).relative_to(sys.prefix)
    dest = dest_venv / rel
    if not dest.is_dir():
        fail(f"{dest}: not a venv made by the same Python ({sys.version.split()[0]}) as the clone's")
    cfg = setup_cfg(src)
    roots = [d for d in (wanted(r) for r in lines(cfg.get("options", "install_requires"))) if d]
    for extra in EXTRAS:
        text = cfg.get("options.extras_require", extra, fallback="")
        roots += [d for d in (wanted(r, (extra,)) for r in lines(text)) if d]
    pkgs = md.packages_distributions()
    for mod in OPTIONAL_MODULES:
        roots += [d for d in pkgs.get(mod, ()) if d not in roots]
    dists = closure(roots)
    files = sum(copy_dist(d, dest) for d in dists.values())
    for mod in OPTIONAL_MODULES:
        if mod not in pkgs and importlib.util.find_spec(mod) is not None:
            copy_module(mod, site, dest)
    # The project: the tree copied to PREFIX/src, on sys.path through a .pth file whose
    # entries are relative to site-packages (so the venv works wherever the root is mounted).
    paths = []
    for name, folder in (ln.split("=", 1) for ln in lines(cfg.get("options", "package_dir"))):
        name, folder = name.strip(), folder.strip()
        if Path(folder).name != name:
            fail(f"setup.cfg: package_dir {name} = {folder}: expected the folder to be named "
                 "as the package")
        paths.append(str(Path(folder).parent))
    back = os.path.relpath(dest_venv.parent, dest)
    pth = [os.path.normpath(f"{back}/src/{p}") for p in dict.fromkeys(paths)]
    (dest / "tas_switchboard.pth").write_text("\n".join(pth) + "\n")
    scripts = console_scripts(cfg, dest_venv / "bin", f"{prefix}/venv/bin/python")
    print(f"install-pi: venv: {len(dists)} distributions ({files} files) from the clone's venv; "
          f"scripts: {', '.join(scripts)}")


if __name__ == "__main__":
    main(sys.argv[1:])
