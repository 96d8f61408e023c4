"""The command line: happy paths and every bad-input path (one line, non-zero exit, no trace)."""

import json

import h5py
import numpy as np
import pytest

from phylaw.cli import main


def run(argv, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits on usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def small_split(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "u-id"
    assert (
        main(
            [
                "data",
                "build",
                "--scenario",
                "uniform",
                "--split",
                "eval-id",
                "--size",
                "40",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_build_info_preview_export_import(small_split, tmp_path, capsys):
    code, out, _ = run(["data", "info", small_split, "--verify"], capsys)
    assert code == 0 and "40 of 40" in out and "every checksum matches" in out
    code, out, _ = run(
        [
            "data",
            "preview",
            small_split,
            "--out",
            tmp_path / "p.gif",
            "--count",
            "4",
            "--resolution",
            "32",
        ],
        capsys,
    )
    assert code == 0 and (tmp_path / "p.gif").stat().st_size > 0
    code, _, _ = run(
        [
            "data",
            "export",
            small_split,
            "--format",
            "phyworld-hdf5",
            "--out",
            tmp_path / "x.hdf5",
            "--resolution",
            "32",
        ],
        capsys,
    )
    assert code == 0
    code, out, _ = run(["data", "import", tmp_path / "x.hdf5", "--out", tmp_path / "imp"], capsys)
    assert code == 0 and "40 uniform" in out


BUILD = ["data", "build", "--scenario", "uniform", "--split", "train", "--out", "x"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (BUILD[:3] + ["pendulum"] + BUILD[4:], "pendulum"),
        (BUILD[:5] + ["test"] + BUILD[6:], "test"),
        (BUILD + ["--size", "0"], "size"),
        (BUILD + ["--size", "-5"], "size"),
        (BUILD + ["--size", "nan"], "size"),
        (BUILD + ["--workers", "0"], "workers"),
        (BUILD + ["--seed", "-1"], "seed"),
        (["data", "export", ".", "--format", "avi", "--out", "x"], "avi"),
        (["quickstart", "--bogus"], "bogus"),
    ],
)
def test_bad_flags_give_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, needle)


def test_unwritable_output(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = run(
        [
            "data",
            "build",
            "--scenario",
            "uniform",
            "--split",
            "eval-id",
            "--out",
            tmp_path / "f" / "sub",
        ],
        capsys,
    )
    assert_one_line_error(code, err, "cannot write")


def test_missing_and_corrupt_splits(small_split, tmp_path, capsys):
    code, _, err = run(["data", "info", tmp_path / "nothing"], capsys)
    assert_one_line_error(code, err, "no split directory")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{oops")
    code, _, err = run(["data", "info", broken], capsys)
    assert_one_line_error(code, err, "corrupt")


def test_truncated_shard_is_reported_and_nothing_is_overwritten(small_split, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_split, copy)
    npy = next((copy / "shards").glob("*/pos.npy"))
    npy.write_bytes(npy.read_bytes()[:100])
    manifest_before = (copy / "manifest.json").read_bytes()
    code, _, err = run(["data", "preview", copy, "--out", tmp_path / "p.gif"], capsys)
    assert_one_line_error(code, err, "truncated")
    code, _, err = run(["data", "info", copy, "--verify"], capsys)
    assert code != 0 and "Traceback" not in err
    assert (copy / "manifest.json").read_bytes() == manifest_before
    assert not (tmp_path / "p.gif").exists()


def test_wrong_hdf5_layout_is_refused(tmp_path, capsys):
    path = tmp_path / "wrong.hdf5"
    with h5py.File(path, "w") as f:
        f["something_else"] = np.zeros(3)
    code, _, err = run(["data", "import", path, "--out", tmp_path / "imp"], capsys)
    assert_one_line_error(code, err)
    garbage = tmp_path / "garbage.hdf5"
    garbage.write_bytes(b"not an hdf5 file at all")
    code, _, err = run(["data", "import", garbage, "--out", tmp_path / "imp2"], capsys)
    assert_one_line_error(code, err)


def test_every_command_has_help_with_an_example(capsys):
    for argv in (
        ["--help"],
        ["data", "--help"],
        ["data", "build", "--help"],
        ["data", "info", "--help"],
        ["data", "preview", "--help"],
        ["data", "export", "--help"],
        ["data", "import", "--help"],
        ["quickstart", "--help"],
    ):
        code, out, _ = run(argv, capsys)
        assert code == 0 and "phylaw" in out and "example" in out, argv


def test_manifest_is_deterministic_json(small_split):
    m = json.loads((small_split / "manifest.json").read_text())
    assert m["format"] == "phylaw-states" and m["count"] == 40
