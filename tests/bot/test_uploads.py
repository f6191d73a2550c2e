"""Uploads: hostile names reduced or refused, sizes and overwrites checked, atomic writes via hidden temps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import UploadError
from bot.uploads import safe_filename, save_upload
from rag_engine.config import LoadingConfig
from rag_engine.errors import RagError
from rag_engine.ingest.loading import is_candidate

EXTENSIONS = LoadingConfig().extensions


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\windows\\notes.txt", "notes.txt"),
        ("C:\\Users\\me\\Report.PDF", "Report.pdf"),
        ("  my   field\u00a0notes .md  ", "my field notes.md"),
        ("a/b\\c/d.HTML", "d.html"),
        ("foo..md", "foo..md"),
        ("Ünïcödé notes.md", "Ünïcödé notes.md"),
        ("Unicode\u0301.md", "Unicodé.md"),  # NFC: a combining accent joins its letter
        ("x" * 300 + ".md", "x" * 97 + ".md"),
        ("é" * 300 + ".txt", "é" * 96 + ".txt"),
    ],
)
def test_safe_filename_reduces_names(name: str, expected: str) -> None:
    assert safe_filename(name, EXTENSIONS) == expected


def test_safe_filename_byte_limit_for_wide_characters() -> None:
    name = safe_filename("𝔘" * 100 + ".md", EXTENSIONS)  # 4 bytes each
    assert name.endswith(".md") and len(name.encode()) <= 200 and len(name) <= 100


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("docs/", "empty"),
        ("..", "not a file name"),
        ("../..", "not a file name"),
        (".", "not a file name"),
        (".hidden.md", "hidden"),
        ("../.bashrc.md", "hidden"),
        ("~notes.md", "hidden"),
        ("bad\x00name.md", "control"),
        ("bad\nname.md", "control"),
        ("bad\tname.md", "control"),
        ("bad\x1bname.md", "control"),
        ("evil\u202edm.txt", "control"),
        ("../../etc/passwd", r"unsupported file type \(none\).*supported: \.htm, \.html, \.md, \.pdf, \.txt"),
        ("script.py", r"unsupported file type \.py"),
        ("archive.tar.gz", r"unsupported file type \.gz"),
        ("notes.md.exe", r"unsupported file type \.exe"),
        ("md", "unsupported"),
    ],
)
def test_safe_filename_refuses(name: str, reason: str) -> None:
    with pytest.raises(UploadError, match=reason):
        safe_filename(name, EXTENSIONS)


def test_upload_error_is_a_rag_error() -> None:
    assert issubclass(UploadError, RagError)


def test_extensions_may_be_given_without_dots_or_in_capitals() -> None:
    assert safe_filename("a.MD", ["MD", "txt"]) == "a.md"
    with pytest.raises(UploadError, match=r"supported: \.md, \.txt"):
        safe_filename("a.pdf", ["MD", ".txt"])


def test_every_safe_name_is_a_candidate_for_the_indexer() -> None:
    config = LoadingConfig()
    for name in ["notes.md", "#draft.md", "x.bak.md", "a b.txt", "Report.PDF"]:
        assert is_candidate(safe_filename(name, EXTENSIONS), config)


@pytest.fixture
def domain(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge" / "history"
    folder.mkdir(parents=True)
    return folder


def save(folder: Path, name: str, data: bytes, *, replace: bool = False, max_bytes: int = 1000) -> Path:
    return save_upload(folder, name, data, replace=replace, max_bytes=max_bytes, extensions=EXTENSIONS)


def test_save_writes_the_file_and_leaves_nothing_else(domain: Path) -> None:
    path = save(domain, "Notes.md", b"# Notes\n")
    assert path == domain.resolve() / "Notes.md"
    assert path.read_bytes() == b"# Notes\n"
    assert sorted(p.name for p in domain.iterdir()) == ["Notes.md"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_traversal_name_lands_inside_the_folder(domain: Path) -> None:
    path = save(domain, "../../etc/passwd.md", b"root:x:0:0\n")
    assert path == domain.resolve() / "passwd.md"
    assert not (domain.parent.parent / "etc").exists()
    with pytest.raises(UploadError, match="unsupported"):
        save(domain, "../../etc/passwd", b"root:x:0:0\n")


def test_existing_files_are_only_replaced_on_request(domain: Path) -> None:
    save(domain, "notes.md", b"first\n")
    with pytest.raises(UploadError, match="replace:true"):
        save(domain, "notes.md", b"second\n")
    assert (domain / "notes.md").read_bytes() == b"first\n"
    save(domain, "notes.md", b"second\n", replace=True)
    assert (domain / "notes.md").read_bytes() == b"second\n"
    assert sorted(p.name for p in domain.iterdir()) == ["notes.md"]


def test_size_limit(domain: Path) -> None:
    save(domain, "exact.md", b"x" * 1000)
    with pytest.raises(UploadError, match=r"limit of 5\.0 MB"):
        save(domain, "big.md", b"x" * 5_000_001, max_bytes=5_000_000)
    assert not (domain / "big.md").exists()


def test_the_domain_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="'nowhere' does not exist"):
        save(tmp_path / "nowhere", "notes.md", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UploadError, match="does not exist"):
        save(tmp_path / "file", "notes.md", b"x")


def test_a_folder_of_that_name_is_never_replaced(domain: Path) -> None:
    (domain / "sub.md").mkdir()
    with pytest.raises(UploadError, match="is a folder"):
        save(domain, "sub.md", b"x", replace=True)


def test_a_planted_symlink_cannot_redirect_the_write(domain: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("precious\n")
    (domain / "notes.md").symlink_to(outside)
    with pytest.raises(UploadError, match="outside the domain folder"):
        save(domain, "notes.md", b"overwritten\n", replace=True)
    assert outside.read_text() == "precious\n"


def test_the_temporary_file_is_hidden_from_the_watcher(domain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moves: list[tuple[str, str]] = []
    real_replace, real_link = os.replace, os.link

    def spy_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        moves.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    def spy_link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        moves.append((Path(src).name, Path(dst).name))
        real_link(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "link", spy_link)
    save(domain, "new.md", b"a\n")
    save(domain, "new.md", b"b\n", replace=True)
    assert [dst for _, dst in moves] == ["new.md", "new.md"]
    config = LoadingConfig()
    for src, _ in moves:
        assert src.startswith(".") and Path(src).parent == Path(".")
        assert not is_candidate(src, config)


def test_without_hard_links_a_new_file_is_still_saved(domain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = save(domain, "notes.md", b"fallback\n")
    assert path.read_bytes() == b"fallback\n"
    with pytest.raises(UploadError, match="replace:true"):
        save(domain, "notes.md", b"again\n")
    assert sorted(p.name for p in domain.iterdir()) == ["notes.md"]


def test_a_failed_write_leaves_no_temporary_file(domain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UploadError, match="No space left on device"):
        save(domain, "notes.md", b"x\n")
    assert list(domain.iterdir()) == []
