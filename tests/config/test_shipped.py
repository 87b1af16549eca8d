"""Shipped files are found in the tree, else where an install puts them."""

from firmware.config import shipped
from firmware.config.board import boards_dir

from conftest import ROOT


def test_ok__from_a_clone_the_trees_own_files():
    assert shipped.shipped("plans/plans.toml") == ROOT / "plans" / "plans.toml"
    assert boards_dir() == shipped.shipped_dir("boards") == ROOT / "boards"
    assert (boards_dir() / "desk.toml").is_file()


def test_ok__installed_the_share_folder(tmp_path, monkeypatch):
    (tmp_path / "share" / "plans").mkdir(parents=True)
    (tmp_path / "share" / "plans" / "plans.toml").write_text("")
    monkeypatch.setattr(shipped, "TREE", tmp_path / "no-tree")
    monkeypatch.setattr(shipped, "INSTALLED", tmp_path / "share")
    assert shipped.shipped("plans/plans.toml") == tmp_path / "share" / "plans" / "plans.toml"
    assert shipped.shipped_dir("boards") == tmp_path / "share" / "boards"


def test_fail__a_file_shipped_nowhere_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "INSTALLED", tmp_path)
    assert shipped.shipped("plans/no-such.toml") is None
