import json
import sys
import textwrap
import types

import pytest
from click.testing import CliRunner

from mia.cli.main import cli
from mia.core import hookimpl
from mia.core.base.errors import MiaError
from mia.core.registry.plugins import get_component, get_plugin_manager, get_registry, reset_plugins


def _plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_builtins_are_registered_through_the_hooks():
    assert {"resnet50", "resnet18", "mobilenet_v2"} <= set(get_registry("image-encoder").names())
    assert get_registry("text-encoder").names() == ["bigru", "bigru-final", "bigru-wide", "clip", "transformer"]
    assert "global" in get_registry("alignment").names()
    assert {"cuhk-pedes", "icfg-pedes", "rstpreid", "synthpedes"} <= set(get_registry("dataset").names())
    assert get_component("alignment", "global-global").name == "global"  # alias


def test_duplicate_name_names_both_plugins():
    def register_image_encoders(register):
        register("resnet50", lambda *a, **k: None)

    get_plugin_manager().register(_plugin("copycat", register_image_encoders=register_image_encoders), name="copycat")
    with pytest.raises(MiaError, match=r"'resnet50' is registered twice: by plugin 'mia.plugins.image_encoders' and by plugin 'copycat'"):
        get_registry("image-encoder")


def test_unknown_name_lists_what_exists():
    with pytest.raises(MiaError, match=r"unknown image-encoder 'resnet51'; available: clip, mobilenet_v2, resnet18, resnet50, timm"):
        get_component("image-encoder", "resnet51")


def install_distribution(root, monkeypatch, module: str, entry_name: str, source: str):
    """A real distribution on sys.path: a module plus a dist-info with entry_points.txt."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[mia]\n{entry_name} = {module}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, module, raising=False)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    install_distribution(tmp_path, monkeypatch, "fake_mia_vit", "vit", '''
        from mia.core import hookimpl
        from mia.plugins.torchvision_encoders import _resnet

        @hookimpl
        def register_image_encoders(register):
            register("fake-vit", _resnet("resnet18"), description="test encoder from an entry point")
    ''')
    yield
    sys.modules.pop("fake_mia_vit", None)


def test_misspelled_hook_in_a_plugin_is_an_error(tmp_path, monkeypatch):
    install_distribution(tmp_path, monkeypatch, "typo_plugin", "typo", '''
        from mia.core import hookimpl

        @hookimpl
        def register_image_encoder(register):
            pass
    ''')
    monkeypatch.delenv("MIA_LOAD_PLUGINS")
    reset_plugins()
    with pytest.raises(MiaError, match="plugin 'typo' implements an unknown hook"):
        get_plugin_manager()
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 1


def test_entry_point_plugin_is_discovered(installed_plugin, monkeypatch):
    monkeypatch.delenv("MIA_LOAD_PLUGINS")
    reset_plugins()
    assert "fake-vit" in get_registry("image-encoder").names()
    result = CliRunner().invoke(cli, ["list", "image-encoder"])
    assert "fake-vit: test encoder from an entry point [vit]" in result.output
    plugins = json.loads(CliRunner().invoke(cli, ["plugins"]).output)
    assert {"name": "vit", "hooks": ["register_image_encoders"], "version": "0.3"} in plugins


def test_mia_load_plugins_limits_entry_points(installed_plugin, monkeypatch):
    monkeypatch.setenv("MIA_LOAD_PLUGINS", "")
    reset_plugins()
    assert "fake-vit" not in get_registry("image-encoder").names()
    monkeypatch.setenv("MIA_LOAD_PLUGINS", "fake-mia-vit")  # by distribution name
    reset_plugins()
    assert "fake-vit" in get_registry("image-encoder").names()


def test_plugins_command_lists_builtins_as_json():
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    names = {p["name"]: p["hooks"] for p in json.loads(result.output)}
    assert names["mia.plugins.alignments"] == ["register_alignments"]
    assert names["mia.plugins.datasets"] == ["register_datasets"]


def test_list_all_kinds():
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0
    for heading in ("alignments:", "datasets:", "image-encoders:", "text-encoders:"):
        assert heading in result.output


def test_documented_image_encoder_plugin_works_as_a_distribution(tmp_path, monkeypatch):
    """docs/plugins.md's image-encoder example, installed as a real distribution, is listed and encodes."""
    import re
    from pathlib import Path

    import torch

    from mia.core.modeling.model import ModelSpec, create_model

    page = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    source = next(block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "class TinyCNN" in block)
    install_distribution(tmp_path, monkeypatch, "mia_tinycnn", "tinycnn", source)
    monkeypatch.setenv("MIA_LOAD_PLUGINS", "tinycnn")
    reset_plugins()
    result = CliRunner().invoke(cli, ["list", "image-encoder"])
    assert "tinycnn: a toy encoder [tinycnn]" in result.output
    model = create_model(ModelSpec(image_encoder="tinycnn", embed_dim=8, num_parts=3, vocab_size=5, num_classes=2))
    image = model.encode_image(torch.randn(2, 3, 48, 16))
    assert image.global_.shape == (2, 8) and image.parts.shape == (2, 3, 8)


def test_command_summaries_match_the_commands():
    """`mia --help` reads summaries from COMMANDS without importing the commands."""
    from mia.cli.main import COMMANDS

    for name in COMMANDS:
        command = cli.get_command(None, name)
        assert command.get_short_help_str(limit=200) == COMMANDS[name][1], name


NO_TORCH = """
import sys
from mia.cli.main import cli
try:
    cli(sys.argv[1:])
except SystemExit as exit:
    assert not exit.code, exit.code
leaked = [name for name in ("torch", "torchvision", "transformers") if name in sys.modules]
assert not leaked, leaked
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "text-encoder"], ["data", "--help"]])
def test_help_and_listing_never_import_torch(args):
    import subprocess

    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
