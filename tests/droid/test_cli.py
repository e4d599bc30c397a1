from __future__ import annotations

import json

from robosteer_assets.cli import main
from robosteer_assets.droid.synthetic import write_task


def test_validate_names_broken_episodes_and_fails(tmp_path, capsys):
    eps = write_task(tmp_path / "demos", "pick_cube", 4, T=12, image_size=16)
    (eps[1] / "trajectory.h5").unlink()
    meta = next(eps[3].glob("metadata_*.json"))
    meta.write_text("{broken")
    rc = main(["validate", str(tmp_path / "demos"), "--min-episodes", "2", "--image-size", "16"])
    out = capsys.readouterr().out.splitlines()
    assert rc != 0
    assert f"OK {eps[0]}" in out and f"OK {eps[2]}" in out
    bad = [line for line in out if line.startswith("INVALID")]
    assert len(bad) == 2
    assert bad[0].startswith(f"INVALID {eps[1]}: MissingFileError") and "trajectory.h5" in bad[0]
    assert bad[1].startswith(f"INVALID {eps[3]}: CorruptFileError") and "valid JSON" in bad[1]


def test_validate_task_folder_ok_and_min_episodes(tmp_path, capsys):
    eps = write_task(tmp_path / "demos", "pick_cube", 2, T=12, image_size=16)
    assert main(["validate", str(tmp_path / "demos" / "pick_cube"), "--min-episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 2 and "INVALID" not in out
    assert main(["validate", str(tmp_path / "demos" / "pick_cube"), "--min-episodes", "3"]) == 1
    assert "TooFewEpisodesError" in capsys.readouterr().out
    assert main(["validate", str(eps[0])]) == 0  # a single episode folder


def test_validate_unsafe_task_and_annotations(tmp_path, capsys):
    write_task(tmp_path / "demos", "pick_cube", 1, T=12, image_size=16)
    (tmp_path / "demos" / "bad name").mkdir()
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"x": {"language_instruction1": "do it"}}))
    rc = main(["validate", str(tmp_path / "demos"), "--min-episodes", "1", "--annotations", str(ann)])
    out = capsys.readouterr().out
    assert rc == 1 and "UnsafeTaskNameError" in out and "bad name" in out
    assert main(["validate", str(tmp_path / "empty_does_not_exist")]) == 2
