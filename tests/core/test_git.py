"""The one git runner (core/git.py): every git call of the package goes through it, and it
keeps its promises against a real git: a clear error naming the command and the repository,
no prompt, no pager, a checkout owned by another user read, a timeout."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest

from nexus_assets.core.git import GitError, git, git_answer, run_git
from nexus_assets.core.release_version import is_git_checkout
from nexus_assets.resources.git import GitRepo

PACKAGE = Path(__file__).resolve().parents[2] / "nexus_assets"
RUNNER = PACKAGE / "core" / "git.py"


def _git_process_calls(path: Path, root: Path = PACKAGE) -> list[str]:
    """file:line of every git command line written in path: a list whose first word is "git"
    (what subprocess takes; a tuple is a table row, `("git", "abc on main")`), or a shell string
    starting `git ` given to subprocess or os."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.List) and node.elts:
            head = node.elts[0]
            if isinstance(head, ast.Constant) and head.value == "git":
                found.add(node.lineno)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id in {"subprocess", "os"}
              and node.args and isinstance(node.args[0], ast.Constant)
              and str(node.args[0].value).startswith("git ")):
            found.add(node.lineno)
    return [f"{path.relative_to(root)}:{line}" for line in sorted(found)]


def test_no_module_but_the_runner_starts_git():
    calls = [c for p in sorted(PACKAGE.rglob("*.py")) if p != RUNNER and "sample_repo" not in p.parts
             for c in _git_process_calls(p)]
    assert calls == [], f"git run outside core/git.py (use run_git/git/git_answer): {calls}"


def test_the_scan_finds_a_direct_git_call(tmp_path):
    stray = tmp_path / "stray.py"  # proves the scan can fail
    stray.write_text('import subprocess\nsubprocess.run(["git", "-C", ".", "status"])\n'
                     'cmd = ["git", "log"]\nsubprocess.check_output([*cmd])\n', encoding="utf-8")
    stray.write_text(stray.read_text() + 'import os\nos.system("git push")\n', encoding="utf-8")
    assert _git_process_calls(stray, tmp_path) == ["stray.py:2", "stray.py:3", "stray.py:6"]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x.invalid"}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "one"], check=True, env=env)
    return repo


def test_answers_and_errors_name_the_command_and_the_repository(tmp_path):
    repo = _repo(tmp_path)
    assert len(git(repo, "rev-parse", "HEAD")) == 40
    assert run_git(repo, "show", "HEAD:a.txt") == b"a\n"
    assert git_answer(repo, "rev-parse", "--verify", "-q", "refs/tags/nope") is None
    assert git_answer(repo, "status", "--porcelain") == ""  # an empty answer is an answer, not a failure
    with pytest.raises(GitError) as caught:
        git(repo, "rev-parse", "--verify", "refs/tags/nope")
    assert f"`git rev-parse --verify refs/tags/nope` failed in {repo} (exit 128)" in str(caught.value)
    assert is_git_checkout(repo) and not is_git_checkout(repo.parent)


def test_a_remote_asking_for_a_password_fails_at_once_and_shows_no_credentials(tmp_path):
    repo = _repo(tmp_path)
    # Nothing listens on port 9: a prompt would hang; a credential in the URL must not be shown.
    git(repo, "remote", "add", "origin", "http://ci:s3cr3t-tok3n@127.0.0.1:9/x.git")
    with pytest.raises(GitError) as caught:
        git(repo, "push", "origin", "main", timeout=30)
    assert "s3cr3t-tok3n" not in str(caught.value) and "`git push origin main` failed" in str(caught.value)


def test_no_pager_and_a_timeout(tmp_path):
    repo = _repo(tmp_path)
    git(repo, "config", "core.pager", "sleep 30")
    assert "one" in git(repo, "log", "-1", "--format=%s", timeout=10)  # the pager would have slept
    git(repo, "config", "alias.slow", "!sleep 30")
    with pytest.raises(GitError, match=r"`git slow` in .* did not finish within 1s"):
        git(repo, "slow", timeout=1)


def test_the_resource_reads_through_the_runner(tmp_path):
    repo = _repo(tmp_path)
    resource = GitRepo(path=str(repo / "sub-folder-not-there"))
    assert resource.revision() is None
    assert GitRepo(path=str(repo)).revision() == git(repo, "rev-parse", "HEAD")
