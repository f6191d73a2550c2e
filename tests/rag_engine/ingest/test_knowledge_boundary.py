"""The knowledge folder's boundary and its failures, with real files, real symlinks and real permissions.

Nothing outside the resolved knowledge folder is listed or read: a link leading outside, nowhere or round in a
loop is skipped with a reason naming it, a domain that is such a link is no domain, and a link swapped in after
the walk is refused when the file is opened. A folder that cannot be listed fails the sync and keeps the last
good index; folders nested too deep are skipped; a full disk keeps the last index answering; a saved index's
folder is synced after the rename.

Root reads through `chmod 000`, so when the suite runs as root the real permission failures run the CLI as
`nobody` (`runuser`, with an interpreter `nobody` can reach); the other failure tests make a folder fail
through the walker's `scandir` seam, as the OS would.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rag_engine.ingest.storage
from rag_engine.config import Config
from rag_engine.engine import Engine
from rag_engine.errors import IndexStoreError, KnowledgeFolderReadError, SymlinkError, UnknownDomainError
from rag_engine.ingest.folder import MAX_FOLDER_DEPTH
from rag_engine.ingest.knowledge import KnowledgeBase
from rag_engine.ingest.loading import load_document
from rag_engine.records import Document
from ragscope.cli import main
from tests.conftest import REPO, write
from tests.fakes import EchoGenerator, HashingEmbedder

SECRET = "Xylocarp sentinel: the vault code is ninety-one"
SECRET_WORD = "xylocarp"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A document outside the knowledge folder whose words must never reach an index."""
    return write(tmp_path / "outside" / "secret.md", f"{SECRET}.\n\n{SECRET} again.\n")


def texts_of(engine: Engine, domain: str) -> str:
    return "\n".join(p.text for p in engine.snapshot(domain).space.passages.values())


def embedded(embedder: HashingEmbedder) -> str:
    return "\n".join(text for call in embedder.calls for text in call)


def skipped_of(engine: Engine, domain: str) -> dict[str, str]:
    return {entry.path: entry.reason for entry in engine.domain_stats(domain).skipped}


def fake(config: Config) -> Engine:
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)


# -- symlinks ------------------------------------------------------------------------------------------------


def test_a_link_to_a_file_outside_is_skipped_and_never_read(
    fake_engine: Engine, embedder: HashingEmbedder, knowledge_dir: Path, secret: Path
) -> None:
    (knowledge_dir / "zoology" / "passwd.md").symlink_to("/etc/passwd")  # the repro
    (knowledge_dir / "zoology" / "notes").mkdir()
    (knowledge_dir / "zoology" / "notes" / "vault.md").symlink_to(secret)
    (knowledge_dir / "zoology" / "relative.txt").symlink_to(os.path.relpath(secret, knowledge_dir / "zoology"))

    fake_engine.index("zoology")
    stats = fake_engine.domain_stats("zoology")
    assert stats.files == ("quillfish.txt", "zorblat.md")
    assert skipped_of(fake_engine, "zoology") == {
        "notes/vault.md": "symlink to outside the knowledge folder: notes/vault.md",
        "passwd.md": "symlink to outside the knowledge folder: passwd.md",
        "relative.txt": "symlink to outside the knowledge folder: relative.txt",
    }
    assert not any(entry.failed for entry in stats.skipped)
    assert SECRET_WORD not in texts_of(fake_engine, "zoology").lower() and "root:" not in texts_of(
        fake_engine, "zoology"
    )
    assert SECRET_WORD not in embedded(embedder).lower() and "root:" not in embedded(embedder)
    assert all(hit.passage.path in stats.files for hit in fake_engine.retrieve(SECRET, "zoology", 5))


def test_ragscope_index_names_the_skipped_link(
    knowledge_dir: Path, tmp_path: Path, secret: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (knowledge_dir / "zoology" / "passwd.md").symlink_to(secret)
    assert main(["index", "--knowledge", str(knowledge_dir), "--data-dir", str(tmp_path / "data")], fake) == 0
    out = capsys.readouterr().out
    assert "    skipped passwd.md: symlink to outside the knowledge folder: passwd.md" in out.splitlines()


def test_a_domain_linked_outside_is_not_a_domain(
    fake_engine: Engine, knowledge_dir: Path, secret: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (knowledge_dir / "vault").symlink_to(secret.parent)
    (knowledge_dir / "etc").symlink_to("/etc")  # the repro: it listed the files of /etc
    (knowledge_dir / "nowhere").symlink_to(knowledge_dir.parent / "missing")

    assert fake_engine.domains() == ["geology", "zoology"]
    assert fake_engine.refused_domains() == {
        "etc": "symlink to outside the knowledge folder: etc",
        "nowhere": "broken symlink: nowhere",
        "vault": "symlink to outside the knowledge folder: vault",
    }
    with pytest.raises(UnknownDomainError):
        fake_engine.index("vault")
    assert "vault is not a domain: symlink to outside the knowledge folder: vault" in caplog.text
    fake_engine.domains()
    assert caplog.text.count("vault is not a domain") == 1  # said once, not at every listing
    fake_engine.index("zoology")
    assert all(SECRET_WORD not in hit.passage.text.lower() for hit in fake_engine.answer(SECRET).hits)


def test_links_inside_the_resolved_knowledge_folder_are_followed(
    config: Config, embedder: HashingEmbedder, knowledge_dir: Path, tmp_path: Path
) -> None:
    zoology = knowledge_dir / "zoology"
    (zoology / "basalt-link.md").symlink_to(Path("..") / "geology" / "basalt.md")
    (zoology / "rocks").symlink_to(knowledge_dir / "geology")
    (knowledge_dir / "animals").symlink_to(zoology)  # a domain that is a link inside the root is a domain
    # The configured folder is itself a link: the boundary is where it resolves to.
    linked_root = tmp_path / "knowledge-link"
    linked_root.symlink_to(knowledge_dir)
    engine = Engine(config.with_paths(knowledge_dir=linked_root), embedder=lambda: embedder)

    assert engine.domains() == ["animals", "geology", "zoology"]
    engine.index("zoology")
    stats = engine.domain_stats("zoology")
    assert stats.files == ("basalt-link.md", "quillfish.txt", "rocks/basalt.md", "zorblat.md") and not stats.skipped
    assert engine.retrieve("Varnholm basalt columns", "zoology", 1)[0].passage.path in (
        "basalt-link.md",
        "rocks/basalt.md",
    )
    engine.index("animals")
    assert engine.domain_stats("animals").files == stats.files


def test_broken_and_looping_links_are_skipped_with_a_reason(fake_engine: Engine, knowledge_dir: Path) -> None:
    zoology = knowledge_dir / "zoology"
    (zoology / "gone.md").symlink_to(zoology / "never-there.md")
    (zoology / "loop-a.md").symlink_to("loop-b.md")
    (zoology / "loop-b.md").symlink_to("loop-a.md")
    write(zoology / "notes" / "newt.md", "The glass newt hides under Quenth stones.\n")
    (zoology / "notes" / "up").symlink_to("..")  # walking it would never end
    (zoology / "notes" / "everything").symlink_to(knowledge_dir)  # contains itself too
    (zoology / ".hidden.md").symlink_to("/etc/passwd")  # hidden names stay silent, links or not

    fake_engine.index("zoology")  # a loop used to raise OSError (ELOOP) out of the sync
    assert fake_engine.domain_stats("zoology").files == ("notes/newt.md", "quillfish.txt", "zorblat.md")
    assert skipped_of(fake_engine, "zoology") == {
        "gone.md": "broken symlink: gone.md",
        "loop-a.md": "symlink loop: loop-a.md",
        "loop-b.md": "symlink loop: loop-b.md",
        "notes/everything": "symlink loop: notes/everything",
        "notes/up": "symlink loop: notes/up",
    }
    assert not fake_engine.index("zoology").applied  # the same skips again are no change


def test_a_link_swapped_in_after_the_walk_is_refused_when_read(
    fake_engine: Engine, embedder: HashingEmbedder, knowledge_dir: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zoology = knowledge_dir / "zoology"
    write(zoology / "notes" / "newt.md", "The glass newt hides under Quenth stones.\n")
    walked = dict(fake_engine.domain_files("zoology"))
    # A file turned into a link, and a folder turned into a link to a folder outside, after the walk.
    (zoology / "zorblat.md").unlink()
    (zoology / "zorblat.md").symlink_to(secret)
    shutil.rmtree(zoology / "notes")
    write(secret.parent / "newt.md", f"{SECRET} in a folder.\n")
    (zoology / "notes").symlink_to(secret.parent)
    config = fake_engine.config.loading
    with pytest.raises(SymlinkError, match=r"^symlink to outside the knowledge folder: zorblat\.md$"):
        load_document(walked["zorblat.md"], "zorblat.md", config)
    with pytest.raises(SymlinkError, match=r"^symlink to outside the knowledge folder: notes/newt\.md$"):
        load_document(walked["notes/newt.md"], "notes/newt.md", config)
    assert load_document(walked["quillfish.txt"], "quillfish.txt", config).blocks

    # Through a whole sync: the swap happens after the walk, as the first file is read.
    (zoology / "zorblat.md").unlink()
    write(zoology / "zorblat.md", "The zorblat eats blue moss.\n")
    swapped: list[str] = []

    def swap_then_load(path: Path, relative: str, loading: Any) -> Document:
        if not swapped:
            swapped.append(relative)
            (zoology / "zorblat.md").unlink()
            (zoology / "zorblat.md").symlink_to(secret)
        return load_document(path, relative, loading)

    monkeypatch.setattr("rag_engine.ingest.incremental.load_document", swap_then_load)
    fake_engine.index("zoology")
    assert swapped
    assert skipped_of(fake_engine, "zoology")["zorblat.md"] == "symlink to outside the knowledge folder: zorblat.md"
    assert SECRET_WORD not in texts_of(fake_engine, "zoology").lower()
    assert SECRET_WORD not in embedded(embedder).lower()


# -- folders that cannot be read -----------------------------------------------------------------------------


def deny(knowledge: KnowledgeBase, folder: Path) -> None:
    """Make listing `folder` fail as `chmod 000` does for anyone but root."""
    real_scandir = knowledge.scandir
    denied = os.path.realpath(folder)

    def scandir(path: str) -> contextlib.AbstractContextManager[Iterator[os.DirEntry[str]]]:
        if os.path.realpath(path) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_scandir(path)

    knowledge.scandir = scandir


@pytest.mark.parametrize("denied", ["zoology", "zoology/notes"])
def test_an_unreadable_folder_fails_the_sync_and_keeps_the_last_index(
    fake_engine: Engine,
    knowledge_base: KnowledgeBase,
    knowledge_dir: Path,
    caplog: pytest.LogCaptureFixture,
    denied: str,
) -> None:
    write(knowledge_dir / "zoology" / "notes" / "newt.md", "The glass newt hides under Quenth stones.\n")
    fake_engine.index("zoology")
    knowledge = knowledge_base
    stored = knowledge.index_path("zoology").read_bytes()
    before = knowledge.get("zoology")
    write(knowledge_dir / "zoology" / "toad.md", "The Quenth toad sings in the rain.\n")
    deny(knowledge, knowledge_dir / denied)

    with pytest.raises(KnowledgeFolderReadError, match=f"^cannot read folder {denied}: Permission denied$"):
        fake_engine.index("zoology")
    assert knowledge.index_path("zoology").read_bytes() == stored  # no emptied index written
    assert knowledge.get("zoology") is before  # and none swapped in
    answer = fake_engine.answer("glass newt Quenth stones", "zoology")  # questions keep their answers
    assert answer.hits and answer.hits[0].passage.path == "notes/newt.md"
    assert "answering from v1 of zoology, not up to date: cannot read folder" in caplog.text

    knowledge.scandir = os.scandir
    update = fake_engine.index("zoology")
    assert (update.added, update.removed, update.version) == (1, 0, 2)


def test_an_unreadable_knowledge_folder_is_a_one_line_error(
    knowledge_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def denying(config: Config) -> Engine:
        knowledge = KnowledgeBase(config, HashingEmbedder)
        deny(knowledge, knowledge_dir)
        return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator, knowledge=knowledge)

    for command in (["index"], ["ask", "where does the zorblat live"], ["domains"]):
        argv = [*command[:1], "--knowledge", str(knowledge_dir), "--data-dir", str(tmp_path / "data"), *command[1:]]
        assert main(argv, denying) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"ragscope: error: cannot read the knowledge folder {knowledge_dir}: Permission denied")


def test_a_folder_replaced_by_a_file_during_the_walk_is_gone_not_an_error(
    fake_engine: Engine, knowledge_base: KnowledgeBase, knowledge_dir: Path
) -> None:
    zoology = knowledge_dir / "zoology"
    write(zoology / "notes" / "newt.md", "The glass newt hides under Quenth stones.\n")
    fake_engine.index("zoology")
    knowledge = knowledge_base
    real_scandir = knowledge.scandir

    def swap_after_listing(path: str) -> contextlib.AbstractContextManager[Iterator[os.DirEntry[str]]]:
        with real_scandir(path) as listing:
            entries = list(listing)
        if os.path.realpath(path) == os.path.realpath(zoology) and (zoology / "notes").is_dir():
            shutil.rmtree(zoology / "notes")
            write(zoology / "notes", "now a file\n")
        return contextlib.nullcontext(iter(entries))

    knowledge.scandir = swap_after_listing
    update = fake_engine.index("zoology")
    assert (update.removed, update.added) == (1, 0)
    assert fake_engine.domain_stats("zoology").files == ("quillfish.txt", "zorblat.md")


# -- real permissions, as an unprivileged user ---------------------------------------------------------------

_CLI = """
import sys
from ragscope.cli import main
from rag_engine.engine import Engine
from tests.fakes import EchoGenerator, HashingEmbedder
def fake(config):
    return Engine(config, embedder=HashingEmbedder, generator=EchoGenerator)
sys.exit(main(sys.argv[1:], make_engine=fake))
"""


def _unprivileged_python() -> list[str] | None:
    """A command prefix running Python as a user `chmod 000` stops, with this checkout importable; None if the
    suite runs as root and `nobody` can run no interpreter (the venv's may live under /root)."""
    if os.geteuid() != 0:
        return [sys.executable]
    runuser = shutil.which("runuser")
    if runuser is None:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in dict.fromkeys([sys.executable, shutil.which(version, path="/usr/bin:/usr/local/bin")]):
        if python is None:
            continue
        prefix = [runuser, "-u", "nobody", "--", python]
        probe = subprocess.run([*prefix, "-c", "import ragscope.cli, tests.fakes"], env=_env(), capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def _env() -> dict[str, str]:
    paths = dict.fromkeys([str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(paths),
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder under /tmp that `nobody` can reach (pytest's tmp_path is root's own, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="ragscope-permissions-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        for current, folders, _ in os.walk(folder):
            for name in folders:
                os.chmod(os.path.join(current, name), 0o755)
        shutil.rmtree(folder)


def test_real_permission_failures_fail_with_a_reason_and_keep_the_index(open_tmp: Path) -> None:
    prefix = _unprivileged_python()
    if prefix is None:
        pytest.skip("running as root, and no interpreter that `nobody` can run")
    knowledge, data = open_tmp / "knowledge", open_tmp / "data"
    write(knowledge / "zoology" / "zorblat.md", "The zorblat lives in the valley of Quenth and eats blue moss.\n")
    write(knowledge / "zoology" / "quillfish.txt", "The quillfish swims in the cold lakes of Varnholm.\n")
    write(knowledge / "geology" / "basalt.md", "The Varnholm basalt columns formed from cooling lava.\n")

    def ragscope(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [*prefix, "-c", _CLI, args[0], "--config", str(REPO / "config.toml")]
        argv += ["--knowledge", str(knowledge), "--data-dir", str(data), *args[1:]]
        return subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)

    built = ragscope("index", "--json")
    assert built.returncode == 0, built.stderr
    stored = data / "indexes" / "zoology.npz"
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()

    # An unreadable domain folder: exit 2 with the reason, and the stored index untouched.
    write(knowledge / "zoology" / "toad.md", "The Quenth toad sings in the rain.\n")
    (knowledge / "zoology").chmod(0)
    failed = ragscope("index", "--domain", "zoology")
    (knowledge / "zoology").chmod(0o755)
    assert failed.returncode == 2, failed.stderr
    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("ragscope: error: ")]
    assert errors == ["ragscope: error: cannot read folder zoology: Permission denied"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest

    # An unreadable new file fails with its reason and the others are indexed; an indexed file that turns
    # unreadable (chmod leaves its size and mtime) keeps its last good passages.
    write(knowledge / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n").chmod(0)
    (knowledge / "zoology" / "zorblat.md").chmod(0)
    partly = ragscope("index", "--domain", "zoology", "--json")
    assert partly.returncode == 0, partly.stderr
    (zoology,) = json.loads(partly.stdout)["domains"]
    assert sorted(zoology["indexed_files"]) == ["quillfish.txt", "toad.md", "zorblat.md"]
    assert [(f["path"], f["reason"]) for f in zoology["failed"]] == [("newt.md", "unreadable: Permission denied")]

    # An unreadable knowledge folder: one line, for every command.
    knowledge.chmod(0)
    for command in (("index",), ("domains",), ("ask", "where does the zorblat live")):
        refused = ragscope(*command)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.splitlines() == [
            f"ragscope: error: cannot read the knowledge folder {knowledge}: Permission denied"
        ]
    knowledge.chmod(0o755)


# -- depth, full disks, durable writes -----------------------------------------------------------------------


def _nest(top: Path, names: list[str], files: dict[int, str]) -> None:
    """Folders `names` nested in one another under `top`, made through folder handles: the whole path is
    longer than the OS takes at once. `files[depth]` is written into the folder at that depth."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(names, start=1):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if depth in files:
                out = os.open("note.md", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(out, files[depth].encode())
                os.close(out)
    finally:
        os.close(fd)


def _unnest(top: Path, names: list[str]) -> None:
    """Remove what `_nest` made, deepest first, through folder handles (rmtree recurses, and would overflow)."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    for name in names:
        fds.append(os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
    for depth in range(len(names), 0, -1):
        for entry in os.listdir(fds[depth]):
            os.unlink(entry, dir_fd=fds[depth])
        os.close(fds[depth])
        os.rmdir(names[depth - 1], dir_fd=fds[depth - 1])
    os.close(fds[0])


def test_folders_nested_a_thousand_deep_are_cut_at_the_depth_limit(fake_engine: Engine, knowledge_dir: Path) -> None:
    names = [f"level{i:04d}" for i in range(1, 1001)]  # 10,000 characters of path: past PATH_MAX
    deepest_walked = MAX_FOLDER_DEPTH
    notes = {3: "Shallow note about Quenth moss.\n", deepest_walked: "Deep note about Quenth lichen.\n"}
    _nest(knowledge_dir / "zoology", names, {**notes, 1000: "Bottom note nobody reaches.\n"})
    try:
        fake_engine.index("zoology")  # os.walk: RecursionError (or a path too long for the OS)
        files = fake_engine.domain_stats("zoology").files
        assert "/".join(names[:3]) + "/note.md" in files
        assert "/".join(names[:deepest_walked]) + "/note.md" in files
        assert len(files) == 4
        cut = "/".join(names[: deepest_walked + 1])
        assert skipped_of(fake_engine, "zoology") == {
            cut: f"folder nested deeper than {MAX_FOLDER_DEPTH} levels: {cut}"
        }
    finally:
        _unnest(knowledge_dir / "zoology", names)


def _full_disk(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_full_disk_keeps_answering_from_the_last_index(
    fake_engine: Engine, knowledge_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_engine.index("zoology")
    stored = fake_engine.index_file("zoology").read_bytes()
    write(knowledge_dir / "zoology" / "newt.md", "The glass newt hides under Quenth stones.\n")
    monkeypatch.setattr(rag_engine.ingest.storage, "atomic_write_bytes", _full_disk)  # every index and cache write

    answer = fake_engine.answer("Where does the zorblat live? Quenth valley blue moss", "zoology")
    assert answer.covered and answer.text and answer.hits[0].passage.path == "zorblat.md"
    assert all(hit.passage.path != "newt.md" for hit in answer.hits)  # from v1: the new file is not in it
    assert "answering from v1 of zoology, not up to date: could not write zoology.npz: No space left on device" in (
        caplog.text
    )
    with pytest.raises(IndexStoreError, match="No space left on device"):  # asked to index, it says so
        fake_engine.index("zoology")
    assert fake_engine.index_file("zoology").read_bytes() == stored

    monkeypatch.undo()
    answer = fake_engine.answer("glass newt Quenth stones", "zoology")
    assert answer.hits[0].passage.path == "newt.md"
    assert fake_engine.domain_stats("zoology").version == 2


def test_a_saved_index_syncs_its_folder_after_the_rename(fake_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    target = fake_engine.index_file("zoology")
    synced: list[tuple[str, str, bool]] = []
    real_fsync: Callable[[int], None] = os.fsync

    def recording_fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        synced.append((kind, os.readlink(f"/proc/self/fd/{fd}"), target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)  # what rag_engine.ingest.storage calls
    fake_engine.index("zoology")
    last_file = max(i for i, (kind, _, _) in enumerate(synced) if kind == "file")  # the index's temp file
    assert ("folder", str(target.parent), True) in synced[last_file:], synced  # then its folder, after the rename
