"""Finding pretrained weights without the network: folders, packaged models, revisions, offline errors."""

import pytest

from vqa_cli.errors import ModelError
from vqa_cli.store.hub import packaged_path, resolve, split_revision


def test_revisions_split_from_ids():
    assert split_revision("org/name@refs/pr/9") == ("org/name", "refs/pr/9")
    assert split_revision("org/name") == ("org/name", None)


def test_a_folder_resolves_to_itself(tmp_path):
    assert resolve(str(tmp_path)) == str(tmp_path)


def test_the_builtin_text_encoder_ships_in_a_package():
    path = packaged_path("sentence-transformers/all-MiniLM-L6-v2")
    assert path and resolve("sentence-transformers/all-MiniLM-L6-v2") == path


def test_offline_and_not_cached_names_the_pull_command():
    with pytest.raises(ModelError, match="vqa pull org/absent"):
        resolve("org/absent")


def test_a_bundle_whose_encoder_asks_for_remote_code_is_refused_without_reading_stdin(tiny_bundle, tmp_path, scene_png):
    """An auto_map in an encoder's config.json would make transformers prompt on stdin and run the bundle's code."""
    import json
    import shutil
    import subprocess
    import sys

    bundle = tmp_path / "evil"
    shutil.copytree(tiny_bundle, bundle)
    config_path = bundle / "text_encoder" / "config.json"
    config = json.loads(config_path.read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    config_path.write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (bundle / "text_encoder" / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    result = subprocess.run(
        [sys.executable, "-m", "vqa_cli", "ask", "-m", str(bundle), str(scene_png), "is there a circle?"],
        input="y\ny\n", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "auto_map" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_resolve_refuses_a_checkpoint_folder_with_auto_map(tmp_path):
    import json

    import pytest

    from vqa_cli.errors import ModelError
    from vqa_cli.store.hub import resolve

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert resolve(str(tmp_path)) == str(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["x.Tok", None]}}))
    with pytest.raises(ModelError, match="tokenizer_config.json.*own Python code"):
        resolve(str(tmp_path))
