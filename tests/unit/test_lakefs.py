import pytest

from tradelake.lakefs import LakeError, LocalLakeFS


def test_local_lake_round_trip_and_listing(tmp_path):
    fs = LocalLakeFS(f"file://{tmp_path}/lake")
    fs.write_bytes("raw/t/dt=2026-01-05/a.parquet", b"abc")
    assert fs.read_bytes("raw/t/dt=2026-01-05/a.parquet") == b"abc"
    assert fs.size("raw/t/dt=2026-01-05/a.parquet") == 3
    assert fs.list("raw/t") == ["dt=2026-01-05"]
    assert fs.list("raw/missing") == []
    assert fs.uri("raw/t") == f"file://{tmp_path}/lake/raw/t"


def test_rename_is_atomic_and_never_overwrites(tmp_path):
    fs = LocalLakeFS(tmp_path)
    fs.write_bytes("_tmp/x.tmp", b"new")
    fs.write_bytes("final/x", b"old")
    with pytest.raises(LakeError, match="target exists"):
        fs.rename("_tmp/x.tmp", "final/x")
    assert fs.read_bytes("final/x") == b"old"
    fs.rename("_tmp/x.tmp", "final/y")
    assert fs.read_bytes("final/y") == b"new" and not fs.exists("_tmp/x.tmp")


def test_paths_cannot_escape_the_lake(tmp_path):
    fs = LocalLakeFS(tmp_path / "lake")
    with pytest.raises(LakeError, match="leaves the lake root"):
        fs.write_bytes("../outside", b"x")


def test_delete(tmp_path):
    fs = LocalLakeFS(tmp_path)
    fs.write_bytes("a/b/c", b"1")
    assert fs.delete("a", recursive=True) and not fs.exists("a/b/c")
    assert fs.delete("a") is False
