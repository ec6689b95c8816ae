"""Run metadata from the standard environment variables of common CI systems, and from
the local git repository."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from .base import text, valid_unicode

# provider: (detect var, {field: var or callable})
_PROVIDERS: dict[str, tuple[str, dict[str, object]]] = {
    "github": (
        "GITHUB_ACTIONS",
        {
            "project": "GITHUB_REPOSITORY",
            "commit": "GITHUB_SHA",
            "branch": lambda e: e.get("GITHUB_HEAD_REF") or e.get("GITHUB_REF_NAME"),
            "build": "GITHUB_RUN_ID",
            "build_url": lambda e: (
                f"{e['GITHUB_SERVER_URL']}/{e['GITHUB_REPOSITORY']}/actions/runs/{e['GITHUB_RUN_ID']}"
                if all(k in e for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
                else None
            ),
        },
    ),
    "gitlab": (
        "GITLAB_CI",
        {
            "project": "CI_PROJECT_PATH",
            "commit": "CI_COMMIT_SHA",
            "branch": lambda e: (
                e.get("CI_COMMIT_REF_NAME") or e.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
            ),
            "build": "CI_PIPELINE_ID",
            "build_url": lambda e: e.get("CI_JOB_URL") or e.get("CI_PIPELINE_URL"),
        },
    ),
    "jenkins": (
        "JENKINS_URL",
        {
            "project": "JOB_NAME",
            "commit": "GIT_COMMIT",
            "branch": lambda e: e.get("BRANCH_NAME") or e.get("GIT_BRANCH"),
            "build": "BUILD_NUMBER",
            "build_url": "BUILD_URL",
        },
    ),
    "circleci": (
        "CIRCLECI",
        {
            "project": lambda e: (
                "/".join(
                    filter(
                        None, [e.get("CIRCLE_PROJECT_USERNAME"), e.get("CIRCLE_PROJECT_REPONAME")]
                    )
                )
                or None
            ),
            "commit": "CIRCLE_SHA1",
            "branch": "CIRCLE_BRANCH",
            "build": "CIRCLE_BUILD_NUM",
            "build_url": "CIRCLE_BUILD_URL",
        },
    ),
    "buildkite": (
        "BUILDKITE",
        {
            "project": "BUILDKITE_PIPELINE_SLUG",
            "commit": "BUILDKITE_COMMIT",
            "branch": "BUILDKITE_BRANCH",
            "build": "BUILDKITE_BUILD_NUMBER",
            "build_url": "BUILDKITE_BUILD_URL",
        },
    ),
}


def detect(env: Mapping[str, str] | None = None,
           folder: str | Path | None = None) -> dict[str, str]:
    """Return ``project/commit/branch/build/build_url/ci_provider`` known from ``env``.

    For this process's own environment (``env`` None or ``os.environ``: the command line,
    the pytest plugin — not a server, which passes the client's or ``{}``), the git
    repository of ``folder`` (default: the current folder) gives the ``commit`` and
    ``branch`` the CI variables do not."""
    own = env is None or env is os.environ
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for provider, (marker, fields) in _PROVIDERS.items():
        if not env.get(marker):
            continue
        out = {"ci_provider": provider}
        for key, how in fields.items():
            value = how(env) if callable(how) else env.get(how)
            # A variable holding bytes that are not UTF-8 (Python decodes them to lone
            # surrogates) cannot be stored: the run is recorded without it.
            if value and valid_unicode(value):
                out[key] = value
        if out.get("branch", "").startswith("origin/"):
            out["branch"] = out["branch"][len("origin/") :]
        break
    if own and not (out.get("commit") and out.get("branch")):
        local = local_git(str(Path(folder or os.getcwd()).absolute()))
        if out.get("commit") and local.get("commit") != out["commit"]:
            local.pop("branch", None)  # (the checkout is another commit than CI's)
        out = {**local, **out}
    return out


_git_lock = threading.Lock()
_git_answers: dict[str, dict[str, str]] = {}


def local_git(folder: str) -> dict[str, str]:
    """``commit`` (full SHA) and ``branch`` (none when detached) checked out in the git
    repository holding ``folder``; {} outside one, without commits, or without git.
    Asked once per folder (a caller asking while :func:`ask_git_early` is still at it waits
    for its answer); each caller gets its own copy."""
    with _git_lock:
        if folder not in _git_answers:
            from ..git import checked_out

            _git_answers[folder] = {k: v for k, v in checked_out(folder).items()
                                    if valid_unicode(v)}
        return dict(_git_answers[folder])


def ask_git_early(folder: str | Path | None = None) -> None:
    """Ask git for the checkout of ``folder`` (default: the working directory) in a thread,
    so that its answer (~0.1 s: a process) comes while the command reads its reports."""
    where = str(Path(folder or os.getcwd()).absolute())
    threading.Thread(target=local_git, args=(where,), name="observatory-git",
                     daemon=True).start()


def run_metadata(
    file_meta: Mapping[str, object],
    flags: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    folder: str | Path | None = None,
) -> dict[str, object]:
    """Merge run metadata: CLI flags, then CI environment variables (then, for this
    process's own environment, the git repository of ``folder``: :func:`detect`), then the
    file itself."""
    out: dict[str, object] = {k: v for k, v in file_meta.items() if v not in (None, "")}
    out.update(detect(env, folder))
    out.update({k: v for k, v in flags.items() if v not in (None, "")})
    out.setdefault("project", "default")
    for key, value in out.items():
        if isinstance(value, str):
            text(value, "run metadata", key)  # (a flag made of bytes that are not UTF-8)
    return out
