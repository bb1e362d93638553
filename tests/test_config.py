"""Settings: defaults < config/*.toml < MODELSHELF_* environment < flags; and the CLI."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelshelf.config import Settings, SettingsError, load_settings
from tests.factories import LegacyLibrary, environ_without_modelshelf, fake_sha

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder; the working directory is tmp_path so relative paths are stable."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "config"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_defaults_apply_when_nothing_is_configured(config_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_dir=config_dir)
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.data_dir == tmp_path / "data"
    assert settings.data_dir.is_absolute()
    assert settings.effective_legacy_root == tmp_path / "data" / "legacy"
    assert settings.trusted_proxies == []
    assert settings.path_prefix == ""


def test_the_shipped_default_toml_is_valid_and_matches_the_built_in_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    from_file = load_settings(environ={}, config_dir=REPO / "config")
    built_in = Settings().resolve_paths()
    assert from_file.model_dump(exclude={"workers"}) == built_in.model_dump(exclude={"workers"})


def test_a_toml_file_overrides_the_defaults(config_dir: Path, tmp_path: Path) -> None:
    write(config_dir, "site.toml", 'host = "0.0.0.0"\nport = 9000\ndata_dir = "/srv/shelf"\n')
    settings = load_settings(environ={}, config_dir=config_dir)
    assert (settings.host, settings.port, settings.data_dir) == (
        "0.0.0.0",
        9000,
        Path("/srv/shelf"),
    )
    assert settings.read_connections == 4  # untouched keys keep their defaults


def test_toml_files_are_read_in_name_order_later_ones_winning(config_dir: Path) -> None:
    write(config_dir, "20-local.toml", "port = 2000\n")
    write(config_dir, "10-base.toml", 'port = 1000\nhost = "10.0.0.1"\n')
    write(config_dir, "notes.txt", "port = 'not toml, not read'\n")
    settings = load_settings(environ={}, config_dir=config_dir)
    assert (settings.host, settings.port) == ("10.0.0.1", 2000)


def test_default_toml_is_read_first_whatever_the_other_files_are_named(
    config_dir: Path,
) -> None:
    write(config_dir, "default.toml", 'port = 8080\nhost = "127.0.0.1"\n')
    write(config_dir, "custom.toml", "port = 18111\n")  # named before default.toml
    settings = load_settings(environ={}, config_dir=config_dir)
    assert (settings.host, settings.port) == ("127.0.0.1", 18111)


def test_a_modelshelf_table_in_a_toml_file_is_read(config_dir: Path) -> None:
    write(
        config_dir,
        "shared.toml",
        '[othertool]\nport = 1\n\n[modelshelf]\nport = 8181\nhost = "192.168.1.2"\n',
    )
    settings = load_settings(environ={}, config_dir=config_dir)
    assert (settings.host, settings.port) == ("192.168.1.2", 8181)


def test_the_environment_overrides_toml_files(config_dir: Path) -> None:
    write(config_dir, "site.toml", 'port = 9000\nhost = "0.0.0.0"\n')
    env = {"MODELSHELF_PORT": "9100", "MODELSHELF_DATA_DIR": "/var/lib/shelf"}
    settings = load_settings(environ=env, config_dir=config_dir)
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert settings.data_dir == Path("/var/lib/shelf")


def test_flags_override_the_environment_and_files(config_dir: Path) -> None:
    write(config_dir, "site.toml", "port = 9000\n")
    settings = load_settings(
        flags={"port": 9200, "host": None, "data_dir": Path("/opt/shelf")},
        environ={"MODELSHELF_PORT": "9100", "MODELSHELF_HOST": "10.1.1.1"},
        config_dir=config_dir,
    )
    assert settings.port == 9200
    assert settings.host == "10.1.1.1", "a flag that was not given must not hide the environment"
    assert settings.data_dir == Path("/opt/shelf")


def test_modelshelf_config_dir_chooses_the_folder_of_toml_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other, "x.toml", "port = 7777\n")
    settings = load_settings(environ={"MODELSHELF_CONFIG_DIR": str(other)})
    assert settings.port == 7777


def test_an_empty_config_dir_variable_is_no_config_dir(config_dir: Path, tmp_path: Path) -> None:
    """`MODELSHELF_CONFIG_DIR=${CONFIG_DIR}` with CONFIG_DIR unset: an empty path is no path,
    as for every other path variable; it read the working directory's *.toml instead of
    config/."""
    write(config_dir, "site.toml", "port = 9100\n")
    write(tmp_path, "stray.toml", "port = 9200\n")
    assert load_settings(environ={"MODELSHELF_CONFIG_DIR": ""}).port == 9100
    assert load_settings(environ={"MODELSHELF_CONFIG_DIR": " "}).port == 9100


def test_a_missing_config_folder_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_dir=tmp_path / "no-such-folder")
    assert settings.port == 8080


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MODELSHELF_PORT": "eighty"}, "port"),
        ({"MODELSHELF_PORT": "70000"}, "port"),
        ({"MODELSHELF_WORKERS": "0"}, "workers"),
        ({"MODELSHELF_READ_CONNECTIONS": "-1"}, "read_connections"),
        ({"MODELSHELF_MAX_IMAGE_PIXELS": "lots"}, "max_image_pixels"),
        ({"MODELSHELF_SHUTDOWN_TIMEOUT": "soon"}, "shutdown_timeout"),
        ({"MODELSHELF_BULK_NICE": "-1"}, "bulk_nice"),
        ({"MODELSHELF_BULK_NICE": "20"}, "bulk_nice"),
    ],
)
def test_a_bad_environment_value_is_a_settings_error_naming_the_field(
    config_dir: Path, env: dict[str, str], field: str
) -> None:
    with pytest.raises(SettingsError, match=field):
        load_settings(environ=env, config_dir=config_dir)


def test_a_bad_toml_value_is_a_settings_error_naming_the_field_and_the_file(
    config_dir: Path,
) -> None:
    write(config_dir, "site.toml", 'port = "eighty"\n')
    with pytest.raises(SettingsError, match=rf"port \(from {config_dir / 'site.toml'}\): "):
        load_settings(environ={}, config_dir=config_dir)


def test_an_unknown_key_is_a_settings_error_naming_it_and_its_file(config_dir: Path) -> None:
    write(config_dir, "site.toml", "prot = 8080\n")
    with pytest.raises(SettingsError, match=rf"prot \(from {config_dir / 'site.toml'}\): "):
        load_settings(environ={}, config_dir=config_dir)


def test_a_bad_value_names_the_variable_or_the_flag_it_came_from(config_dir: Path) -> None:
    with pytest.raises(SettingsError, match=r"port \(from MODELSHELF_PORT\): "):
        load_settings(environ={"MODELSHELF_PORT": "abc"}, config_dir=config_dir)
    with pytest.raises(SettingsError, match=r"log_level \(from --log-level\): "):
        load_settings({"log_level": "loud"}, environ={}, config_dir=config_dir)


def test_a_malformed_toml_file_is_a_settings_error_naming_the_file(config_dir: Path) -> None:
    write(config_dir, "broken.toml", "port = = 1\n")
    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(environ={}, config_dir=config_dir)


def test_a_modelshelf_key_that_is_not_a_table_is_a_settings_error(config_dir: Path) -> None:
    write(config_dir, "site.toml", "modelshelf = 5\n")
    with pytest.raises(SettingsError, match="must be a table"):
        load_settings(environ={}, config_dir=config_dir)


@pytest.mark.parametrize("given", ["debug", "INFO", "Warning", "error", "CRITICAL"])
def test_log_level_accepts_the_standard_names_in_any_case(config_dir: Path, given: str) -> None:
    settings = load_settings(environ={"MODELSHELF_LOG_LEVEL": given}, config_dir=config_dir)
    assert settings.log_level == given.upper()


def test_an_unknown_log_level_is_a_settings_error_naming_the_field(config_dir: Path) -> None:
    with pytest.raises(SettingsError, match="log_level"):
        load_settings(environ={"MODELSHELF_LOG_LEVEL": "loud"}, config_dir=config_dir)


def test_trusted_proxies_from_the_environment_are_comma_separated(config_dir: Path) -> None:
    env = {"MODELSHELF_TRUSTED_PROXIES": " 127.0.0.1, 10.0.0.0/8,,::1 ,"}
    settings = load_settings(environ=env, config_dir=config_dir)
    assert settings.trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]


def test_trusted_proxies_from_a_toml_list(config_dir: Path) -> None:
    write(config_dir, "site.toml", 'trusted_proxies = ["192.168.0.0/16"]\n')
    settings = load_settings(environ={}, config_dir=config_dir)
    assert settings.trusted_proxies == ["192.168.0.0/16"]


@pytest.mark.parametrize("bad", ["not-an-address", "10.0.0.0/33", "300.1.1.1"])
def test_a_trusted_proxy_that_is_not_an_address_is_a_settings_error(
    config_dir: Path, bad: str
) -> None:
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load_settings(
            environ={"MODELSHELF_TRUSTED_PROXIES": f"127.0.0.1,{bad}"}, config_dir=config_dir
        )


@pytest.mark.parametrize(
    ("given", "kept"), [("", ""), ("/shelf", "/shelf"), ("/shelf/", "/shelf"), ("/a/b", "/a/b")]
)
def test_path_prefix_is_kept_without_a_trailing_slash(
    config_dir: Path, given: str, kept: str
) -> None:
    settings = load_settings(environ={"MODELSHELF_PATH_PREFIX": given}, config_dir=config_dir)
    assert settings.path_prefix == kept


def test_a_path_prefix_without_a_leading_slash_is_a_settings_error(config_dir: Path) -> None:
    with pytest.raises(SettingsError, match="path_prefix"):
        load_settings(environ={"MODELSHELF_PATH_PREFIX": "shelf"}, config_dir=config_dir)


def test_relative_paths_are_resolved_against_the_working_directory(
    config_dir: Path, tmp_path: Path
) -> None:
    write(config_dir, "site.toml", 'legacy_root = "old/library"\nmodels_root = "~/models"\n')
    settings = load_settings(environ={"MODELSHELF_DATA_DIR": "d"}, config_dir=config_dir)
    assert settings.data_dir == tmp_path / "d"
    assert settings.legacy_root == tmp_path / "old" / "library"
    assert settings.models_root == Path("~/models").expanduser()
    assert settings.database_path == tmp_path / "d" / "modelshelf.db"


def test_model_roots_from_a_toml_table_one_folder_or_a_list(config_dir: Path) -> None:
    write(
        config_dir,
        "site.toml",
        '[model_roots]\ncheckpoints = "/models/checkpoints"\n'
        'loras = ["/models/loras", "/models/lycoris"]\n"My LoRAs" = []\n',
    )
    settings = load_settings(environ={}, config_dir=config_dir)
    assert settings.model_roots == {
        "checkpoints": [Path("/models/checkpoints")],
        "loras": [Path("/models/loras"), Path("/models/lycoris")],
        "My LoRAs": [],
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("loras=/a,/b;checkpoints=/c", {"loras": ["/a", "/b"], "checkpoints": ["/c"]}),
        (" loras = /a , /b ; ;vae=/v;", {"loras": ["/a", "/b"], "vae": ["/v"]}),
        ("loras=/a;loras=/b", {"loras": ["/a", "/b"]}),
        ('{"loras": ["/odd,name;here"]}', {"loras": ["/odd,name;here"]}),
        ("", {}),
    ],
)
def test_model_roots_from_the_environment(
    config_dir: Path, given: str, expected: dict[str, list[str]]
) -> None:
    settings = load_settings(environ={"MODELSHELF_MODEL_ROOTS": given}, config_dir=config_dir)
    assert settings.model_roots == {k: [Path(p) for p in v] for k, v in expected.items()}


@pytest.mark.parametrize("given", ["/models/loras", "=/a", "loras=/a;/b", "{not json", '{"a": 1}'])
def test_a_bad_model_roots_variable_is_a_settings_error_naming_the_field(
    config_dir: Path, given: str
) -> None:
    with pytest.raises(SettingsError, match="model_roots"):
        load_settings(environ={"MODELSHELF_MODEL_ROOTS": given}, config_dir=config_dir)


def test_model_roots_are_made_absolute_keeping_symlinks(config_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    write(config_dir, "site.toml", '[model_roots]\nloras = ["link/../link", "~/loras"]\n')
    settings = load_settings(environ={}, config_dir=config_dir)
    assert settings.model_roots == {"loras": [tmp_path / "link", Path("~/loras").expanduser()]}


def test_comfyui_model_paths_and_watch_from_the_environment(
    config_dir: Path, tmp_path: Path
) -> None:
    env = {"MODELSHELF_COMFYUI_MODEL_PATHS": "extra.yaml", "MODELSHELF_WATCH": "true"}
    settings = load_settings(environ=env, config_dir=config_dir)
    assert settings.comfyui_model_paths == tmp_path / "extra.yaml"
    assert settings.watch is True


def test_an_empty_variable_unsets_an_optional_path(config_dir: Path) -> None:
    write(config_dir, "site.toml", 'comfyui_model_paths = "/etc/extra.yaml"\n')
    env = {"MODELSHELF_COMFYUI_MODEL_PATHS": ""}
    assert load_settings(environ=env, config_dir=config_dir).comfyui_model_paths is None


def test_an_empty_data_dir_variable_is_no_data_dir(config_dir: Path, tmp_path: Path) -> None:
    # Not the working directory: the default (or a file's value) stands.
    assert load_settings(environ={"MODELSHELF_DATA_DIR": ""}, config_dir=config_dir).data_dir == (
        tmp_path / "data"
    )
    write(config_dir, "site.toml", 'data_dir = "/srv/shelf"\n')
    settings = load_settings(environ={"MODELSHELF_DATA_DIR": " "}, config_dir=config_dir)
    assert settings.data_dir == Path("/srv/shelf")


@pytest.mark.parametrize(("given", "expected"), [("1", True), ("no", False), ("FALSE", False)])
def test_watch_takes_the_usual_spellings_of_a_boolean(
    config_dir: Path, given: str, expected: bool
) -> None:
    settings = load_settings(environ={"MODELSHELF_WATCH": given}, config_dir=config_dir)
    assert settings.watch is expected


def test_a_bad_watch_value_is_a_settings_error(config_dir: Path) -> None:
    with pytest.raises(SettingsError, match="watch"):
        load_settings(environ={"MODELSHELF_WATCH": "sometimes"}, config_dir=config_dir)


@pytest.mark.parametrize(("given", "expected"), [("0", 0), ("5", 5), ("19", 19)])
def test_bulk_nice_from_the_environment(config_dir: Path, given: str, expected: int) -> None:
    settings = load_settings(environ={"MODELSHELF_BULK_NICE": given}, config_dir=config_dir)
    assert settings.bulk_nice == expected


# --- the command line ---------------------------------------------------------------------------


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = environ_without_modelshelf() | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "modelshelf", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_help_lists_its_options(tmp_path: Path) -> None:
    done = run_cli("serve", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for option in ("--data-dir", "--host", "--port", "--config-dir", "--log-level"):
        assert option in done.stdout


def test_a_bad_setting_stops_the_cli_with_a_clear_message(tmp_path: Path) -> None:
    done = run_cli(
        "serve", "--data-dir", str(tmp_path / "d"), cwd=tmp_path, env={"MODELSHELF_PORT": "x"}
    )
    assert done.returncode == 2
    assert "port" in done.stderr
    assert not (tmp_path / "d").exists()


def test_a_mistyped_variable_is_a_warning_naming_it_and_the_ones_meant(tmp_path: Path) -> None:
    """A typo in a TOML key stops the CLI; one in a variable was not even mentioned, and
    MODELSHELF_DATADIR=/srv/shelf served a new, empty library in ./data. Not an error: a
    variable left from another version must not stop a service from starting."""
    done = run_cli(
        "check",
        "--data-dir",
        str(tmp_path / "d"),
        cwd=tmp_path,
        env={"MODELSHELF_DATADIR": "/srv/shelf", "MODELSHELF_CONFIG_DIR": str(tmp_path)},
    )
    assert done.returncode == 3, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert any("MODELSHELF_DATADIR" in w and "MODELSHELF_DATA_DIR" in w for w in warnings), (
        done.stderr
    )
    assert "MODELSHELF_CONFIG_DIR" not in done.stderr


def test_the_tests_own_variables_are_no_warning_and_a_typo_of_one_still_is(
    tmp_path: Path,
) -> None:
    """MODELSHELF_CHROMIUM (the browser the web UI's tests drive, which the README says to
    export) and MODELSHELF_PROPERTY_EXAMPLES: a developer's shell that ran the tests then
    served the library (make serve) with "names no setting: ignored" for each, a warning about
    nothing wrong, which taught to pass over the one about a real typo."""
    done = run_cli(
        "check",
        "--data-dir",
        str(tmp_path / "d"),
        cwd=tmp_path,
        env={
            "MODELSHELF_CHROMIUM": "/usr/bin/chromium",
            "MODELSHELF_PROPERTY_EXAMPLES": "5",
            "MODELSHELF_BULK_NISE": "5",
        },
    )
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line]
    assert not [w for w in warnings if "CHROMIUM" in w or "PROPERTY_EXAMPLES" in w], warnings
    assert any("MODELSHELF_BULK_NISE" in w for w in warnings), done.stderr


@pytest.mark.parametrize("flag", ["--data-dir", "--config-dir"])
def test_an_empty_folder_flag_stops_the_cli_rather_than_naming_the_working_directory(
    tmp_path: Path, flag: str
) -> None:
    """`modelshelf scan --data-dir "$DIR"` with DIR unset made a library in the working
    directory (an empty path is "."). An empty variable is no path (above); an empty flag
    is a mistake, said before anything is made."""
    done = run_cli("scan", flag, "", "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"argument {flag}: an empty path names no folder" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_log_level_flag_stops_the_cli_with_a_clear_message(tmp_path: Path) -> None:
    done = run_cli("serve", "--log-level", "loud", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert done.returncode == 2
    assert "log_level" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_legacy_prints_the_json_report_and_logs_progress(tmp_path: Path) -> None:
    legacy = LegacyLibrary(tmp_path / "legacy")
    legacy.add_tag(1, "checkpoint")
    legacy.add_tag(2, "anime")
    picture = legacy.image("model_1_1700000000_cat.png", width=40, height=30)
    legacy.add_model(1, hash_hex=fake_sha(1), tags=[1, 2], images=[picture])
    legacy.add_model(2, tags=[1], images=[legacy.image("model_2_1700000000_dog.jpg")])
    data_dir = tmp_path / "data"

    done = run_cli(*legacy.migrate_args(data_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "success"
    assert report["db_migration"]["legacy_models"] == 2
    assert report["db_migration"]["models_imported"] == 1
    assert report["db_migration"]["pending_created"] == 1
    assert report["image_migration"]["renditions_created"] == 1
    assert report["image_migration"]["pending_images_copied"] == 1
    assert report["problems"] == []
    assert "modelshelf.progress" in done.stderr
    assert "legacy import: finished 2/2" in done.stderr

    with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as conn:
        assert conn.execute("SELECT sha256 FROM models").fetchall() == [(fake_sha(1),)]
        assert conn.execute("SELECT id FROM pending_import").fetchall() == [(2,)]
        assert conn.execute("SELECT id, name FROM tags ORDER BY id").fetchall() == [
            (1, "checkpoint"),
            (2, "anime"),
        ]
    assert len(list((data_dir / "images").glob(f"{fake_sha(1)}_0_*.webp"))) == 3
    assert (data_dir / "images" / "pending" / "2.jpg").read_bytes() == (
        legacy.images_dir / "model_2_1700000000_dog.jpg"
    ).read_bytes()


@pytest.mark.parametrize(
    ("database", "says"),
    [("missing.db", "missing.db does not exist"), ("images", "images is a folder, not a file")],
    ids=["missing", "a-folder"],
)
def test_migrate_legacy_without_a_database_file_fails_with_a_message_and_makes_nothing(
    tmp_path: Path, database: str, says: str
) -> None:
    (tmp_path / "images").mkdir()
    done = run_cli(
        "migrate-legacy",
        "--data-dir",
        str(tmp_path / "data"),
        "--legacy-db",
        str(tmp_path / database),
        "--legacy-images",
        str(tmp_path / "images"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert says in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "data").exists()
