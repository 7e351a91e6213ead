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
