"""The lookup (README "Configuration"): which rig folder, settings, templates, cameras and model a
command reads, and the one-line errors of a broken setup, each with its own code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pnp_vision.capture.cameras import load_cameras
from pnp_vision.config import load_settings
from pnp_vision.defaults import shipped
from pnp_vision.errors import (
    EXIT_CODES,
    ConfigError,
    FolderNotFound,
    ModelNotFound,
    StartupCode,
)
from pnp_vision.inspect.templates import TemplateSet
from pnp_vision.protocol.requests import error_reply
from pnp_vision.rig import service_toml, write_rig

SHIPPED_TEMPLATES = sorted(p.stem for p in shipped("prompts").glob("*.toml"))
NEW_TEMPLATE = (
    'name = "reel_present"\ndescription = "Is a reel loaded?"\n'
    'question = "Is a reel loaded? Answer YES or NO."\n'
)


@pytest.fixture
def rig(tmp_path: Path) -> Path:
    return write_rig(tmp_path / "rig")


def test_home_is_the_variable_then_the_current_directory_then_none(
    rig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    by_variable = load_settings(env={"PNP_VISION_HOME": str(rig)}).folders
    assert (by_variable.home, by_variable.found_by) == (str(rig), "PNP_VISION_HOME")
    assert by_variable.config == str(rig / "config")
    none = load_settings(env={}).folders
    assert (none.home, none.found_by, none.config) == (None, "none", str(shipped("config")))
    assert none.prompts == [str(shipped("prompts"))]
    monkeypatch.chdir(rig)
    here = load_settings(env={}).folders
    assert (here.home, here.found_by) == (str(rig), "current directory")
    assert here.prompts == [str(shipped("prompts")), str(rig / "prompts")]
    # PNP_VISION_CONFIG_DIR names the settings folder before all of them.
    other = tmp_path / "other-config"
    other.mkdir()
    (other / "s.toml").write_text("queue_size = 3\n")
    chosen = load_settings(env={"PNP_VISION_CONFIG_DIR": str(other), "PNP_VISION_HOME": str(rig)})
    assert chosen.queue_size == 3 and chosen.folders.config == str(other)


def test_a_broken_config_in_the_current_directory_is_read_not_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "service.toml").write_text("# mine\n\nqueue_sise = 8\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(env={})
    text = str(info.value)
    assert text.startswith(f"{tmp_path}/config/service.toml:3: queue_sise is not a setting")
    assert "did you mean queue_size?" in text
    assert "Extra inputs" not in text and "\n" not in text
    assert info.value.code is StartupCode.CONFIG_ERROR
    (tmp_path / "config" / "service.toml").write_text('log_level = "INFO"\nqueue_size = "many"\n')
    with pytest.raises(ConfigError, match=r"service\.toml:2: queue_size='many': .*integer"):
        load_settings(env={})


def test_missing_folders_are_folder_not_found(tmp_path: Path) -> None:
    for env in ({"PNP_VISION_HOME": str(tmp_path / "no")}, {"PNP_VISION_CONFIG_DIR": "/no/such"}):
        with pytest.raises(FolderNotFound) as info:
            load_settings(env=env)
        assert info.value.code is StartupCode.FOLDER_NOT_FOUND and info.value.exit_code == 4
    with pytest.raises(FolderNotFound, match="template folder"):
        TemplateSet.load([shipped("prompts"), tmp_path / "prompts"])


def test_rig_templates_and_cameras_add_to_or_replace_the_shipped_ones(rig: Path) -> None:
    (rig / "prompts" / "reel_present.toml").write_text(NEW_TEMPLATE)
    tombstone = rig / "prompts" / "tombstone.toml"
    tombstone.write_text(tombstone.read_text().replace("standing on one end", "on its end"))
    (rig / "prompts" / "part_marking.toml").unlink()  # the shipped one still answers
    (rig / "cameras" / "line.toml").write_text('[[camera]]\nname = "line"\nsource = 0\n')
    demo = rig / "cameras" / "demo.toml"
    demo.write_text(demo.read_text().replace('pacing = "recorded"', 'pacing = "drain"'))
    settings = load_settings(env={"PNP_VISION_HOME": str(rig)})

    templates = TemplateSet.load(settings.prompts_dir)
    assert templates.names() == sorted([*SHIPPED_TEMPLATES, "reel_present"])
    assert "on its end" in templates.get("tombstone").question
    cameras = {c.name: c for c in load_cameras(settings.cameras_dir)}
    assert set(cameras) == {"demo", "line"}
    assert cameras["demo"].pacing == "drain"
    assert Path(str(cameras["demo"].source)) == rig / "recordings" / "demo"  # init copied it
    # Named explicitly, a folder is read alone (what tests and a strict rig use).
    alone = load_settings(env={"PNP_VISION_HOME": str(rig), "PNP_VISION_CAMERAS_DIR": str(rig)})
    assert alone.cameras_dir == rig


def test_model_by_path_or_by_name_under_models(rig: Path) -> None:
    env = {"PNP_VISION_HOME": str(rig)}
    assert load_settings(env=env).require_model() == shipped("models", "pnp-inspector")
    own = rig / "models" / "pnp-inspector"
    shutil.copytree(shipped("models", "pnp-inspector"), own)
    assert load_settings(env=env).require_model() == own  # the rig's copy wins
    (rig / "models" / "line-2").mkdir()
    (rig / "models" / "line-2" / "config.json").write_text("{}")
    config = rig / "config" / "line.toml"
    config.write_text('model_dir = "line-2"\nkeys_dir = "keys"\n')
    settings = load_settings(env=env)
    assert settings.model_dir == rig / "models" / "line-2"
    assert settings.keys_dir == rig / "keys"  # relative paths in a rig's files: from the rig
    config.write_text('model_dir = "line-3"\n')
    with pytest.raises(ModelNotFound) as info:
        load_settings(env=env).require_model()
    text = str(info.value)
    assert str(rig / "line-3") in text and str(rig / "models" / "line-3") in text
    assert str(shipped("models", "line-3")) in text
    assert info.value.exit_code == 6


def test_start_up_codes_never_reach_the_wire_and_each_has_its_exit_status() -> None:
    assert error_reply("r1", ConfigError("x")).error.code == "bad_request"
    assert error_reply("r2", ModelNotFound("x")).error.code == "model_error"
    assert sorted(EXIT_CODES.values()) == list(range(3, 3 + len(StartupCode)))


def test_init_writes_every_setting_commented_at_its_default(rig: Path, tmp_path: Path) -> None:
    from pnp_vision.config import Settings

    text = (rig / "config" / "service.toml").read_text()
    assert text == service_toml()
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == []
    for name in Settings.model_fields:
        assert f"# {name} = " in text or f"# [{name}]" in text, name
    # Uncommented, every `# key = value` line is valid TOML that gives the defaults.
    assignments = [re.match(r"# ([a-z_]+) = (.*)$", line) for line in text.splitlines()]
    body = [
        f"{m[1]} = {m[2]}"
        for m in assignments
        if m
        and m[1] in Settings.model_fields
        and "unset by default" not in m[2]
        and m[1] not in ("prompts_dir", "cameras_dir")  # written: the rig's folder alone
    ]
    assert len(body) >= 20
    uncommented = tmp_path / "uncommented"
    uncommented.mkdir()
    (uncommented / "service.toml").write_text("\n".join(body) + "\n")
    env = {"PNP_VISION_HOME": str(rig)}
    from_file = load_settings(env={**env, "PNP_VISION_CONFIG_DIR": str(uncommented)})
    assert from_file.model_dump() == load_settings(env=env).model_dump()
    (rig / "config" / "service.toml").write_text('prompts_dir = "prompts"\n')
    assert load_settings(env=env).prompts_dir == rig / "prompts"


def test_init_never_writes_over_a_folder(rig: Path) -> None:
    from pnp_vision.errors import FolderNotEmpty

    with pytest.raises(FolderNotEmpty) as info:
        write_rig(rig)
    assert "is not empty (holds cameras, config, prompts, ...)" in str(info.value)
    assert info.value.exit_code == 5
