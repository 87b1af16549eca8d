"""The TAS-100 on either chain driver: the shipped file (bit-banged) or its SPI wiring.

Fixtures for the panel's tests: ``from chain_boards import driver, tas100, tas100_spi``
(a conftest.py in tests/panel would shadow the suite's own ``conftest`` module).
"""

import pytest

from firmware.config.board import find_board, load_board

DRIVERS = ("bitbang", "spi")


def tas100_path(driver: str, tmp_path):
    """The TAS-100 board file wired for ``driver`` (SPI: the lamp clock moves to SCLK)."""
    path = find_board("tas100")
    if driver == "bitbang":
        return path
    text = path.read_text()
    assert 'driver = "bitbang"' in text and 'clock = "GPIO21"' in text
    text = text.replace('driver = "bitbang"', 'driver = "spi"').replace(
        'clock = "GPIO21"', 'clock = "GPIO11"')
    out = tmp_path / "tas100-spi.toml"
    out.write_text(text)
    return out


@pytest.fixture(params=DRIVERS)
def driver(request):
    return request.param


@pytest.fixture
def tas100(driver, tmp_path):
    """(board, path): the TAS-100 on the driver under test."""
    path = tas100_path(driver, tmp_path)
    return load_board(path), path


@pytest.fixture
def tas100_spi(tmp_path):
    """The TAS-100 wired for SPI0."""
    return load_board(tas100_path("spi", tmp_path))
