"""The TAS-100 on either chain driver: the shipped file (bit-banged) or its SPI wiring."""

from firmware.config.board import find_board

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
