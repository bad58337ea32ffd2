"""The repository a command works on, read from the working tree or from any git ref.

This module is the one seam to git (gitpython): every git error is translated here into an
:class:`~modelops.errors.InputError` with a one-line message. gitpython is imported only when git is
needed (a ref, the head commit, a diff), so validating the working tree never pays for it.

Paths handed to and returned by a :class:`Workspace` are repo-relative posix strings
(``models/iris/model.yaml``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.config.yamlsource import MAX_BYTES
from modelops.errors import InputError

MODELS_DIR = "models"
PIPELINES_DIR = "pipelines"
MODEL_FILE = "model.yaml"
ENVIRONMENTS_FILE = "pipelines/environments.yaml"
POLICY_FILE = "pipelines/policy.yaml"

NOT_A_REPO = "{path} is not inside a modelops repository (no pipelines/ folder or .git found above it)"
NOT_A_REPO_HINT = "run modelops inside the repository, or pass a path in it; `modelops init --repo` starts one"
#: What to do when a folder has no pipelines/environments.yaml: it is not a modelops repository (yet).
INIT_REPO_HINT = ("`modelops init --repo` starts a modelops repository here (pipelines/ with a local dev, "
                  "staging and prod, CI files and a first model)")
NOT_GIT = ("{path} is not a git repository, and this needs git: a --ref, --changed-since, --since or --base, "
           "or a deploy beyond dev (only committed content goes there)")
NOT_GIT_HINT = "run git init and commit; without git, validate, build and deploy to dev use the working tree"
BAD_REF = "git ref '{ref}' does not exist in {path}"
BAD_REF_HINT = "check the name with git branch -a / git tag; fetch it first if it is remote"
GIT_FAILED = "git failed in {path}: {detail}"
NO_MERGE_BASE = "{ref} and {head} have no common ancestor in {path}{why}: cannot tell what the change touches"
NO_MERGE_BASE_SHALLOW_HINT = ("fetch the history down to where the branch forked "
                              "(git fetch --unshallow, or a deeper --depth); CI needs a clone that is not shallow")
NO_MERGE_BASE_HINT = "compare with a ref the branch was made from"
NO_FILE = "{file} does not exist{where}"
TOO_LARGE = "{file} is {size} bytes, more than the {limit} bytes a config may have"
NOT_A_FILE = "{file} is not a regular file"
DANGLING_LINK = "{file} is a symlink to {target}, which does not exist"
ESCAPES = "'{path}' leaves the model folder {folder}"
LINK_LEAVES_REPO = "{file} is a symlink that leads out of the repository"
ESCAPES_LINK = "'{path}' is a symlink that leads out of the model folder {folder}"

_SYMLINK_MODE = 0o120000
_TREE_MODE = 0o040000


class ReadError(InputError):
    """A file could not be read. ``rule`` says why (``config.missing-file``, ``yaml.too-large``...)."""

    def __init__(self, rule: str, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.rule = rule


def find_root(start: Path) -> Path:
    """The repository root above ``start``: the nearest folder holding ``pipelines/`` or ``.git``."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        if (candidate / PIPELINES_DIR).is_dir() or (candidate / ".git").exists():
            return candidate
    raise InputError(NOT_A_REPO.format(path=start), hint=NOT_A_REPO_HINT)


@dataclass(frozen=True)
class Workspace:
    """A repository root, read at ``ref`` (None: the working tree, uncommitted changes included).

    Build one with :meth:`discover`, then :meth:`at` for a ref. ``commit`` is the full sha the ref
    resolved to."""

    root: Path
    ref: str | None = None
    commit: str | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def discover(cls, start: Path) -> Workspace:
        return cls(find_root(start))

    # -- git ----------------------------------------------------------------------------------

    def _repo(self) -> Any:
        repo = self._cache.get("repo")
        if repo is None:
            import git

            try:
                repo = git.Repo(self.root)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
                raise InputError(NOT_GIT.format(path=self.root), hint=NOT_GIT_HINT) from exc
            self._cache["repo"] = repo
        return repo

    def _resolve(self, ref: str) -> Any:
        import git
        from gitdb.exc import BadName, BadObject

        repo = self._repo()
        try:
            commit = repo.commit(ref)
            commit.tree  # noqa: B018 - a full sha resolves lazily: reading its tree says whether it exists
            return commit
        except (BadName, BadObject, ValueError, IndexError) as exc:
            raise InputError(BAD_REF.format(ref=ref, path=self.root), hint=BAD_REF_HINT) from exc
        except git.GitError as exc:
            raise InputError(GIT_FAILED.format(path=self.root, detail=_one_line(exc))) from exc

    @property
    def is_git(self) -> bool:
        return (self.root / ".git").exists()

    def init_git(self) -> bool:
        """Make the root a git repository on branch ``main`` unless it is in one already (its own or
        an enclosing one). Returns True when it made one."""
        import git

        try:
            git.Repo(self.root, search_parent_directories=True)
            return False
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            pass
        try:
            git.Repo.init(self.root, initial_branch="main")
        except git.GitError as exc:
            raise InputError(GIT_FAILED.format(path=self.root, detail=_one_line(exc))) from exc
        return True

    def at(self, ref: str | None) -> Workspace:
        """The same repository read at ``ref`` (None: the working tree)."""
        if ref is None:
            return Workspace(self.root, _cache=self._cache)
        commit = self._resolve(ref)
        return Workspace(self.root, ref, commit.hexsha, _cache=self._cache)

    @property
    def head_commit(self) -> str | None:
        """The commit read (``ref``'s), or HEAD's for the working tree; None outside git or before the
        first commit."""
        if self.commit:
            return self.commit
        if not self.is_git:
            return None
        try:
            return str(self._repo().head.commit.hexsha)
        except ValueError:  # no commit yet
            return None

    def is_dirty(self, paths: Iterable[str] = ()) -> bool:
        """True when the working tree differs from HEAD under ``paths`` (all of it when empty),
        untracked files included. A workspace at a ref is never dirty."""
        if self.ref is not None:
            return False
        import git

        repo = self._repo()
        try:
            out = repo.git.status("--porcelain", "--untracked-files=all", "--", *(list(paths) or ["."]))
        except git.GitCommandError as exc:
            raise InputError(GIT_FAILED.format(path=self.root, detail=_one_line(exc))) from exc
        return bool(out.strip())

    def user_email(self) -> str | None:
        """git's ``user.email`` for this repository (None outside git or when unset)."""
        try:
            value = self._repo().config_reader().get_value("user", "email", default="")
        except Exception:  # not a repo, no config: no identity from git
            return None
        return str(value) or None

    def commit_author(self, commit: str) -> str | None:
        """The author e-mail of ``commit`` (None when the repository does not have it)."""
        try:
            return str(self._repo().commit(commit).author.email) or None
        except Exception:  # not a repo, an unknown commit: the caller fails closed
            return None

    def changed_files(self, since_ref: str) -> tuple[str, ...]:
        """Files changed between the merge base of ``since_ref`` and what this workspace reads (a
        commit, or the working tree with uncommitted and untracked files)."""
        import git

        repo = self._repo()
        base = self._resolve(since_ref)
        target = self._resolve(self.commit) if self.commit else None
        try:
            head = target or repo.head.commit
            merge_bases = repo.merge_base(base, head)
            if not merge_bases:
                # Diffing from the ref itself would list (and plan) what the other branch changed since
                # the fork, reverted: a wrong answer that looks right. Say why instead.
                shallow = repo.git.rev_parse("--is-shallow-repository").strip() == "true"
                raise InputError(
                    NO_MERGE_BASE.format(ref=since_ref, head=self.commit[:12] if self.commit else "HEAD",
                                         path=self.root, why=" (a shallow clone)" if shallow else ""),
                    hint=NO_MERGE_BASE_SHALLOW_HINT if shallow else NO_MERGE_BASE_HINT)
            start = merge_bases[0].hexsha
            if target is not None:
                out = repo.git.diff("--name-only", "--no-renames", start, target.hexsha)
                untracked: list[str] = []
            else:
                out = repo.git.diff("--name-only", "--no-renames", start)
                untracked = list(repo.untracked_files)
        except (git.GitCommandError, ValueError) as exc:
            raise InputError(GIT_FAILED.format(path=self.root, detail=_one_line(exc))) from exc
        return tuple(sorted({*out.splitlines(), *untracked} - {""}))

    def changed_models(self, since_ref: str) -> tuple[str, ...]:
        """Model folders whose files changed since ``since_ref`` (see :meth:`changed_files`); every
        model when anything under ``pipelines/`` changed. Deleted models are left out."""
        changed = self.changed_files(since_ref)
        folders = self.model_folders()
        if any(p.startswith(PIPELINES_DIR + "/") for p in changed):
            return folders
        touched = {"/".join(p.split("/")[:2]) for p in changed if p.startswith(MODELS_DIR + "/")}
        return tuple(f for f in folders if f in touched)

    # -- files --------------------------------------------------------------------------------

    def _tree(self) -> Any:
        tree = self._cache.get(("tree", self.commit))
        if tree is None:
            tree = self._resolve(self.commit or "HEAD").tree
            self._cache[("tree", self.commit)] = tree
        return tree

    def _entry(self, rel: str) -> Any:
        """The git tree entry at ``rel`` (None when absent)."""
        rel = rel.strip("/")
        if not rel or rel == ".":
            return self._tree()
        try:
            return self._tree() / rel
        except KeyError:
            return None

    def _abs(self, rel: str) -> str:
        # os.path on strings: these run for every path of every model, and pathlib costs 5x more.
        root = self._cache.get("root")
        if root is None:
            root = self._cache["root"] = str(self.root)
        return os.path.join(root, rel)

    def exists(self, rel: str) -> bool:
        """Whether there is an entry at ``rel``, whatever it is: a dangling symlink, a link loop or a
        FIFO exists (reading it then says what is wrong) rather than being silently absent."""
        if self.commit is None:
            return os.path.lexists(self._abs(rel))
        return self._entry(rel) is not None

    def is_file(self, rel: str) -> bool:
        if self.commit is None:
            return os.path.isfile(self._abs(rel))
        entry = self._entry(rel)
        return entry is not None and entry.type == "blob" and entry.mode != _SYMLINK_MODE

    def is_dir(self, rel: str) -> bool:
        if self.commit is None:
            return os.path.isdir(self._abs(rel))
        entry = self._entry(rel)
        return entry is not None and entry.type == "tree"

    def list_dir(self, rel: str) -> tuple[str, ...]:
        """Names in the folder ``rel`` (sorted; empty when it is not a folder)."""
        if self.commit is None:
            path = self.root / rel
            return tuple(sorted(os.listdir(path))) if path.is_dir() else ()
        entry = self._entry(rel)
        if entry is None or entry.type != "tree":
            return ()
        return tuple(sorted(item.name for item in entry))

    def walk(self, rel: str) -> tuple[str, ...]:
        """Every regular file under the folder ``rel`` (repo-relative paths, sorted); symlinks and
        hidden folders are not followed."""
        out: list[str] = []
        if self.commit is None:
            base = self.root / rel
            if not base.is_dir() or base.is_symlink():
                return ()
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                     and not os.path.islink(os.path.join(dirpath, d)))
                prefix = Path(dirpath).relative_to(self.root).as_posix()
                out.extend(f"{prefix}/{n}" for n in filenames if os.path.isfile(os.path.join(dirpath, n))
                           and not os.path.islink(os.path.join(dirpath, n)))
            return tuple(sorted(out))
        entry = self._entry(rel)
        if entry is None or entry.type != "tree":
            return ()
        for item in entry.traverse():
            if item.type == "blob" and item.mode != _SYMLINK_MODE and not any(
                    part.startswith(".") for part in item.path[len(rel):].split("/")[:-1]):
                out.append(item.path)
        return tuple(sorted(out))

    def links(self, rel: str) -> tuple[str, ...]:
        """Every symlink under the folder ``rel`` (repo-relative paths, sorted), files and folders alike;
        symlinked folders and hidden folders are not entered (what :meth:`walk` leaves out)."""
        out: list[str] = []
        if self.commit is None:
            base = self.root / rel
            if not base.is_dir() or base.is_symlink():
                return ()
            folders = [(str(base), rel.rstrip("/"))]
            while folders:  # scandir's d_type answers is_symlink without a stat per file
                path, prefix = folders.pop()
                with os.scandir(path) as entries:
                    for item in entries:
                        if item.is_symlink():
                            out.append(f"{prefix}/{item.name}")
                        elif item.is_dir() and not item.name.startswith("."):
                            folders.append((item.path, f"{prefix}/{item.name}"))
            return tuple(sorted(out))
        entry = self._entry(rel)
        if entry is None or entry.type != "tree":
            return ()
        return tuple(sorted(item.path for item in entry.traverse() if item.type == "blob"
                            and item.mode == _SYMLINK_MODE
                            and not any(p.startswith(".") for p in item.path[len(rel):].split("/")[:-1])))

    def model_folders(self) -> tuple[str, ...]:
        """Every ``models/<name>`` folder holding a ``model.yaml`` (of any kind: one that is not a
        readable regular file is reported when it is read, not skipped), sorted."""
        return tuple(
            f"{MODELS_DIR}/{name}" for name in self.list_dir(MODELS_DIR)
            if self.exists(f"{MODELS_DIR}/{name}/{MODEL_FILE}")
        )

    def read_bytes(self, rel: str, *, limit: int = MAX_BYTES) -> bytes:
        """The content of the file ``rel``; :class:`ReadError` when it is missing, not a regular
        file, or larger than ``limit`` bytes (checked before reading)."""
        where = f" at {self.ref}" if self.ref else ""
        if self.commit is None:
            path = self._abs(rel)
            if self._has_link("", rel):
                root = os.path.realpath(self.root)
                if not os.path.realpath(path).startswith(root + os.sep):
                    raise ReadError("security.path-escape", LINK_LEAVES_REPO.format(file=rel),
                                    hint="configs must be files in the repository")
            try:
                st = os.stat(path)
            except FileNotFoundError as exc:
                if os.path.islink(path):
                    raise ReadError("config.unreadable", DANGLING_LINK.format(file=rel, target=os.readlink(path)),
                                    hint="point the link at a file in the repository, or replace it with the file") from exc
                raise ReadError("config.missing-file", NO_FILE.format(file=rel, where=where)) from exc
            except OSError as exc:
                raise ReadError("config.unreadable", f"{rel}: {exc.strerror}") from exc
            if not stat.S_ISREG(st.st_mode):
                raise ReadError("config.unreadable", NOT_A_FILE.format(file=rel))
            if st.st_size > limit:
                raise ReadError("yaml.too-large", TOO_LARGE.format(file=rel, size=st.st_size, limit=limit))
            try:
                with open(path, "rb") as fh:
                    data = fh.read(limit + 1)
            except OSError as exc:
                raise ReadError("config.unreadable", f"{rel}: {exc.strerror}") from exc
            if len(data) > limit:
                raise ReadError("yaml.too-large", TOO_LARGE.format(file=rel, size=len(data), limit=limit))
            return data
        entry = self._entry(rel)
        if entry is None:
            raise ReadError("config.missing-file", NO_FILE.format(file=rel, where=where))
        if entry.type != "blob":
            raise ReadError("config.unreadable", NOT_A_FILE.format(file=rel))
        if entry.mode == _SYMLINK_MODE:
            target = self._link_target(rel, entry)
            if target is None:
                raise ReadError("config.unreadable", NOT_A_FILE.format(file=rel))
            return self.read_bytes(target, limit=limit)
        if entry.size > limit:
            raise ReadError("yaml.too-large", TOO_LARGE.format(file=rel, size=entry.size, limit=limit))
        return bytes(entry.data_stream.read())

    def _link_target(self, rel: str, entry: Any) -> str | None:
        target = entry.data_stream.read().decode("utf-8", "replace")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        return None if target.startswith("/") or joined.startswith("..") else joined

    def sha256(self, rel: str) -> str:
        """The sha256 of a file of any size (streamed)."""
        digest = hashlib.sha256()
        if self.commit is None:
            with open(self.root / rel, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()
        entry = self._entry(rel)
        if entry is not None and entry.mode == _SYMLINK_MODE:
            target = self._link_target(rel, entry)
            return self.sha256(target) if target else digest.hexdigest()
        if entry is None or entry.type != "blob":
            raise ReadError("config.missing-file", NO_FILE.format(file=rel, where=f" at {self.ref}"))
        stream = entry.data_stream
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def size(self, rel: str) -> int:
        """A file's size in bytes (symlinks followed in the working tree; the blob's at a ref)."""
        if self.commit is None:
            return os.stat(self._abs(rel)).st_size
        entry = self._entry(rel)
        if entry is None or entry.type != "blob":
            raise ReadError("config.missing-file", NO_FILE.format(file=rel, where=f" at {self.ref}"))
        return int(entry.size)

    def identity(self, rel: str) -> str | None:
        """A cheap key that changes when the file's content may have (for caches): stat data in
        the working tree, the blob id at a ref. None when the file is absent."""
        if self.commit is None:
            try:
                st = os.stat(self._abs(rel))
            except OSError:
                return None
            return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        entry = self._entry(rel)
        return None if entry is None else f"git:{entry.hexsha}"

    def folder_identities(self, folders: Iterable[str], *, settled_before_ns: int) -> dict[str, str | None]:
        """:meth:`folder_identity` of many folders at once. In a git working tree this asks git
        (two commands, whatever the number of folders): a folder's key is its tree id at HEAD (its
        content) plus the stat data of its files that ``git status`` lists as changed, untracked or
        ignored; without git (or when git fails), each folder is walked."""
        wanted = list(folders)
        if self.commit is not None or not self.is_git or not wanted:
            return {f: self.folder_identity(f, settled_before_ns=settled_before_ns) for f in wanted}
        import subprocess

        def git_out(*args: str, check: bool = True) -> bytes:
            done = subprocess.run(["git", "--no-optional-locks", *args], cwd=self.root, capture_output=True,
                                  check=check, timeout=120)
            return done.stdout if done.returncode == 0 else b""

        parents = sorted({f.rsplit("/", 1)[0] + "/" if "/" in f else "." for f in wanted})
        try:
            listed = git_out("ls-tree", "-z", "HEAD", "--", *parents, check=False)  # nothing before a first commit
            # The folders' parents as pathspecs: git matches a thousand pathspecs one by one.
            status = git_out("status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching",
                             "--", *parents)
        except (OSError, subprocess.SubprocessError):
            return {f: self.folder_identity(f, settled_before_ns=settled_before_ns) for f in wanted}
        trees: dict[str, str] = {}
        for line in listed.decode("utf-8", "surrogateescape").split("\0"):
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "tree":
                trees[path] = parts[2]
        changed: dict[str, list[str]] = {f: [] for f in wanted}
        entries = status.decode("utf-8", "surrogateescape").split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code[0] in "RC":
                i += 1  # a rename's or copy's source path follows
            if "/__pycache__/" in f"/{path}":
                continue
            folder = next((f for f in (path.rsplit("/", k)[0] for k in range(1, path.count("/") + 1)) if f in changed),
                          None)
            if folder is None:
                continue
            if path.endswith("/"):  # an ignored folder: what is in it counts (generated artifacts...)
                inside = self.folder_identity(path.rstrip("/"), settled_before_ns=settled_before_ns)
                changed[folder].append(f"{path}\0{code}\0{inside}" if inside else "unsettled")
                continue
            try:
                st = os.lstat(self.root / path)
            except OSError:
                changed[folder].append(f"{path}\0{code}\0gone")
                continue
            if st.st_mtime_ns >= settled_before_ns:
                changed[folder].append("unsettled")
                continue
            changed[folder].append(f"{path}\0{code}\0{st.st_mode}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        out: dict[str, str | None] = {}
        for folder in wanted:
            lines = changed[folder]
            if "unsettled" in lines:
                out[folder] = None
                continue
            if folder not in trees and not lines:
                out[folder] = self.folder_identity(folder, settled_before_ns=settled_before_ns)
                continue
            text = trees.get(folder, "untracked") + "\n" + "\n".join(sorted(lines))
            out[folder] = "git-wt:" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        return out

    def folder_identity(self, rel: str, *, settled_before_ns: int | None = None) -> str | None:
        """A key that changes when anything under the folder ``rel`` may have changed (files added,
        removed, renamed, written; links re-pointed), for caches of results that read the folder:
        the tree id at a ref; in the working tree, a digest of every entry's path and stat data
        (``__pycache__`` and ``.git`` left out). None when the folder is absent, or when an entry
        was written at or after ``settled_before_ns`` (a write in the same clock tick could keep its
        stat data: such a folder is not safe to cache yet, as git treats "racy" index entries)."""
        if self.commit is not None:
            entry = self._entry(rel)
            return None if entry is None or entry.type != "tree" else f"git:{entry.hexsha}"
        lines: list[str] = []
        pending = [self._abs(rel)]
        try:
            while pending:
                path = pending.pop()
                with os.scandir(path) as entries:
                    for item in entries:
                        name = item.name
                        if name == "__pycache__" or name == ".git":
                            continue
                        st = item.stat(follow_symlinks=False)
                        if settled_before_ns is not None and st.st_mtime_ns >= settled_before_ns:
                            return None
                        if item.is_symlink():
                            lines.append(f"{item.path}\0{st.st_mode}\0{os.readlink(item.path)}")
                            continue
                        lines.append(f"{item.path}\0{st.st_mode}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
                        if item.is_dir(follow_symlinks=False):
                            pending.append(item.path)
        except OSError:
            return None
        lines.sort()
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def _has_link(self, folder: str, joined: str) -> bool:
        """True when a component of ``joined`` below ``folder`` is a symlink (lstat per component,
        far cheaper than resolving the whole path)."""
        current = self._abs(folder) if folder else self._abs("")
        for part in joined[len(folder):].strip("/").split("/"):
            if not part:
                continue
            current = os.path.join(current, part)
            try:
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    return True
            except OSError:
                return False  # what does not exist cannot lead anywhere
        return False

    def escape_reason(self, folder: str, relative: str) -> str | None:
        """Why ``relative`` (a path in the model folder ``folder``) leaves that folder, or None when
        it stays inside: ``..`` segments, absolute paths, or symlinks (at any level) that lead out."""
        joined = posixpath.normpath(posixpath.join(folder, relative))
        if relative.startswith("/") or not (joined == folder or joined.startswith(folder + "/")):
            return ESCAPES.format(path=relative, folder=folder)
        if self.commit is None:
            if not self._has_link(folder, joined):
                return None  # no symlink on the way: the normalized path is the real one
            base = os.path.realpath(self.root / folder)
            target = os.path.realpath(self.root / joined)
            if target != base and not target.startswith(base + os.sep):
                return ESCAPES_LINK.format(path=relative, folder=folder)
            return None
        # At a ref: follow symlink blobs component by component.
        parts = joined.split("/")
        current: list[str] = []
        hops = 0
        while parts:
            current.append(parts.pop(0))
            entry = self._entry("/".join(current))
            if entry is not None and entry.mode == _SYMLINK_MODE:
                hops += 1
                link = entry.data_stream.read().decode("utf-8", "replace")
                if link.startswith("/") or hops > 20:
                    return ESCAPES_LINK.format(path=relative, folder=folder)
                resolved = posixpath.normpath(posixpath.join("/".join(current[:-1]), link))
                if not (resolved == folder or resolved.startswith(folder + "/")):
                    return ESCAPES_LINK.format(path=relative, folder=folder)
                parts = resolved.split("/") + parts
                current = []
        return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."
