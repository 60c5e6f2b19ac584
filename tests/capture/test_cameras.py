"""Camera definitions: shipped files load, paths resolve per file, bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pnp_vision.capture.cameras import SourceKind, load_cameras
from pnp_vision.config import PROJECT_ROOT
from pnp_vision.errors import ConfigError, UnknownCamera

CAMERAS = PROJECT_ROOT / "cameras"


def test_shipped_definitions_load() -> None:
    (demo,) = load_cameras(CAMERAS)
    assert demo.name == "demo"
    assert demo.source_kind is SourceKind.RECORDING
    assert Path(str(demo.source)) == PROJECT_ROOT / "recordings" / "demo"
    usb = load_cameras(CAMERAS / "examples" / "usb.toml")
    assert [c.source_kind for c in usb] == [SourceKind.DEVICE]
    net = load_cameras(CAMERAS / "examples" / "network.toml")
    assert [c.source_kind for c in net] == [SourceKind.STREAM, SourceKind.STREAM]
    assert "password" not in net[0].describe()


def test_relative_source_is_taken_from_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "frames").mkdir()
    (tmp_path / "sub" / "a.toml").write_text('[[camera]]\nname = "a"\nsource = "../frames"\n')
    (cam,) = load_cameras(tmp_path / "sub")
    assert Path(str(cam.source)) == tmp_path / "frames"
    assert cam.source_kind is SourceKind.RECORDING


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('name = "a"\nsource = 0\nrotate = 45', "rotate"),
        ('name = "a b"\nsource = 0', "name"),
        ('name = "a"\nsource = 0\nwidth = 640', "both `width` and `height`"),
        ('name = "a"\nsource = "x.mp4"\npacing = "fixed"', "needs `fps`"),
        ('name = "a"\nsource = 0\nencoding = "webp"', "webp"),
        ('name = "a"\nsource = 0\nexposure = 3', "exposure"),
        ('name = "a"\nsource = 0\nroi = [0, 0, 0, 10]', "zero width"),
    ],
)
def test_bad_definitions_name_the_value(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[camera]]\n" + body + "\n")
    with pytest.raises(ConfigError, match=needle) as info:
        load_cameras(path)
    assert "bad.toml" in str(info.value)


def test_duplicate_and_unknown_names(tmp_path: Path) -> None:
    one = '[[camera]]\nname = "a"\nsource = 0\n'
    (tmp_path / "1.toml").write_text(one)
    assert [c.name for c in load_cameras(tmp_path, ["a"])] == ["a"]
    with pytest.raises(UnknownCamera, match="'zz'"):
        load_cameras(tmp_path, ["zz"])
    (tmp_path / "2.toml").write_text(one)
    with pytest.raises(ConfigError, match="defined twice"):
        load_cameras(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        load_cameras(tmp_path / "missing")
