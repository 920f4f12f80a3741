"""``toolkit rehearse``: the committed release workflow run on this machine, job by job, as GitHub would run it.

No Actions runner can be installed here, so this reads the YAML that CI reads (the workflow as committed at
HEAD) and runs it: jobs in ``needs`` order, the ``plan`` job's outputs expanding the matrices, ``if:`` with
GitHub's status rules, every job instance in a fresh clone with its own ``RUNNER_TEMP`` and
``$GITHUB_OUTPUT``/``$GITHUB_ENV``/``$GITHUB_PATH`` files, steps with the workflow's, job's and step's
``env``, secrets masked in the logs. The few actions the rendered workflows use are stood in for (see
``_ACTIONS``); any other action, key or runner is an error, never skipped.

The engine's services stand for what a runner reaches on the network: its dockerd for the runner's, its
registry and index for the release's registry and index (their credentials are the secrets). Where
``sudo`` is missing and the rehearsal runs as root, a stand-in with the runners' ``env_reset`` and
``secure_path`` runs the ``sudo`` steps, so a step that would lose ``PATH`` on GitHub loses it here too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import getpass
import glob
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from . import console, ghexpr, hostinfo, locks, settings, signing
from .console import say, step
from .engine import credentials
from .engine.daemon import host_arch
from .errors import ConfigError
from .matrix import tomllib

RELEASE_WORKFLOW = Path(".github/workflows/release.yml")
SUCCESS, FAILURE, SKIPPED = "success", "failure", "skipped"
# permissions, environment and concurrency change nothing on one machine; anything not listed is refused.
_JOB_KEYS = {"name", "needs", "if", "runs-on", "permissions", "environment", "concurrency", "outputs", "env",
             "strategy", "steps"}
_STEP_KEYS = {"id", "name", "if", "uses", "with", "run", "env", "shell", "working-directory", "continue-on-error"}
_STRATEGY_KEYS = {"matrix", "fail-fast", "max-parallel"}
_SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"], "sh": ["sh", "-e"]}
# sudo as GitHub's Ubuntu runners configure it (env_reset, secure_path), for a rehearsal run as root without sudo.
_SUDO = '''#!{python} -I
"""sudo as GitHub's Ubuntu runners have it (env_reset, secure_path), standing in for the rehearsal."""
import os, pwd, sys
args, keep, keep_all = sys.argv[1:], [], False
while args and args[0].startswith("-"):
    opt = args.pop(0)
    if opt.startswith("--preserve-env="):
        keep += opt.split("=", 1)[1].split(",")
    elif opt in ("-E", "--preserve-env"):
        keep_all = True
    elif opt == "--":
        break
    else:
        sys.exit(f"sudo (rehearsal stand-in): {{opt}} is not supported")
if not args:
    sys.exit("usage: sudo [--preserve-env=LIST] [-E] command ...")
root = pwd.getpwuid(0)
env = dict(os.environ) if keep_all else {{k: os.environ[k] for k in {kept!r} + keep if k in os.environ}}
env.update(PATH={secure_path!r}, HOME=root.pw_dir, USER=root.pw_name, LOGNAME=root.pw_name,
           SHELL=root.pw_shell, SUDO_USER=os.environ.get("USER", "root"))
os.execvpe(args[0], args, env)
'''
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"
_SUDO_KEEP = ["TERM", "LANG", "LANGUAGE", "LC_ALL", "TZ", "COLORS", "DISPLAY", "HOSTNAME", "LS_COLORS"]


@dataclasses.dataclass
class JobRun:
    """One job instance (a matrix entry is one) and how it ended."""

    job: str
    name: str
    result: str
    seconds: float = 0.0
    runner: str = ""
    note: str = ""
    log: str = ""


class StepFailed(Exception):
    """A step of a rehearsed job failed: its job's result is failure (never an error of the rehearsal itself)."""


@dataclasses.dataclass
class Artifacts:
    """The run's artifacts, one folder per name, in upload order (upload/download-artifact v4 semantics)."""

    root: Path
    order: list[str] = dataclasses.field(default_factory=list)

    def upload(self, name: str, files: dict[str, Path], overwrite: bool) -> None:
        bad = set(name) & set('":<>|*?\r\n\\/')
        if bad or not name:
            raise StepFailed(f"upload-artifact: the name {name!r} is not valid (no \" : < > | * ? \\ / or newlines)")
        if name in self.order:
            if not overwrite:
                raise StepFailed(f"upload-artifact: (409) Conflict: an artifact named {name!r} already exists on "
                                 "this workflow run (set overwrite: true to replace it)")
            shutil.rmtree(self.root / name)
            self.order.remove(name)
        for rel, src in files.items():
            (self.root / name / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, self.root / name / rel)
        self.order.append(name)

    def download(self, name: str, pattern: str, dest: Path, merge: bool) -> list[str]:
        if name:
            if name not in self.order:
                raise StepFailed(f"download-artifact: Unable to download artifact(s): Artifact '{name}' not found")
            chosen = [name]
        else:
            chosen = [a for a in self.order if not pattern or fnmatch.fnmatchcase(a, pattern)]
        for artifact in chosen:
            # Later artifacts overwrite earlier files of the same name: what merge-multiple really does.
            shutil.copytree(self.root / artifact, dest if name or merge else dest / artifact, dirs_exist_ok=True)
        return chosen


@dataclasses.dataclass
class _Instance:
    """The runner of one job instance: its folders, environment, contexts and what its steps left."""

    workspace: Path
    temp: Path
    log: Path
    env: dict[str, str]
    contexts: dict[str, Any]
    path: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def _fail_config(where: str, problem: str) -> ConfigError:
    return ConfigError([f"{where}: {problem}"])


def load(text: str, where: str) -> dict:
    """The workflow as a mapping, checked for what the rehearsal can run; ConfigError naming the key otherwise."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail_config(where, f"not YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise _fail_config(where, "no jobs: mapping")
    on = doc.pop(True, doc.get("on")) or {}  # YAML 1.1 reads the bare key `on` as true
    doc["on"] = {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on
    problems = []
    for job_id, job in doc["jobs"].items():
        if not isinstance(job, dict):
            problems.append(f"{where}: jobs.{job_id}: not a mapping")
            continue
        problems += [f"{where}: jobs.{job_id}.{k}: the rehearsal cannot run this key; it runs "
                     f"{', '.join(sorted(_JOB_KEYS))}" for k in job if k not in _JOB_KEYS]
        problems += [f"{where}: jobs.{job_id}.strategy.{k}: not supported; allowed: {', '.join(sorted(_STRATEGY_KEYS))}"
                     for k in (job.get("strategy") or {}) if k not in _STRATEGY_KEYS]
        needs = _needs(job)
        problems += [f"{where}: jobs.{job_id}.needs: no job {n!r}" for n in needs if n not in doc["jobs"]]
        for i, s in enumerate(job.get("steps") or []):
            at = f"{where}: jobs.{job_id}.steps[{i}]"
            problems += [f"{at}.{k}: not supported; allowed: {', '.join(sorted(_STEP_KEYS))}" for k in s
                         if k not in _STEP_KEYS]
            if ("uses" in s) == ("run" in s):
                problems.append(f"{at}: needs exactly one of uses: and run:")
            elif "uses" in s:
                action = str(s["uses"]).split("@")[0]
                if action not in _ACTIONS:
                    problems.append(f"{at}.uses: {action} has no stand-in; the rehearsal runs "
                                    f"{', '.join(sorted(_ACTIONS))}")
                else:
                    allowed = _ACTIONS[action][1]
                    problems += [f"{at}.with.{k}: {action}'s stand-in does not implement it; it takes "
                                 f"{', '.join(sorted(allowed))}" for k in (s.get("with") or {}) if k not in allowed]
            elif s.get("shell") not in _SHELLS:
                problems.append(f"{at}.shell: {s['shell']!r} is not supported; allowed: bash, sh")
    if problems:
        raise ConfigError(problems)
    _order(doc["jobs"], where)
    return doc


def _needs(job: dict) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _order(jobs: dict, where: str) -> list[str]:
    """Job ids in an order where every job comes after its needs (the YAML order among equals)."""
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [j for j in jobs if j not in done and all(n in done for n in _needs(jobs[j]))]
        if not ready:
            raise _fail_config(where, f"the needs of {', '.join(j for j in jobs if j not in done)} form a cycle")
        done.append(ready[0])
    return done


def _ancestors(jobs: dict, job_id: str) -> set[str]:
    out: set[str] = set()
    for need in _needs(jobs[job_id]):
        out |= {need} | _ancestors(jobs, need)
    return out


def _combos(matrix: Any, where: str) -> list[dict]:
    """A strategy.matrix expanded as GitHub does: axes crossed, exclude dropped, include merged or added."""
    if matrix is None:
        return [{}]
    if not isinstance(matrix, dict):
        raise StepFailed(f"{where}: strategy.matrix is not a mapping: {ghexpr.to_string(matrix)[:80]}")
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for key, values in axes.items():
        if not isinstance(values, list):
            raise StepFailed(f"{where}: strategy.matrix.{key} is not a list")
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())] if axes else []
    combos = [c for c in combos if not any(all(c.get(k) == v for k, v in e.items()) for e in matrix.get("exclude")
                                            or [])]
    original = list(combos)  # an include joins a combination of the axes, never one that an include added
    for extra in matrix.get("include") or []:
        fits = [c for c in original if all(c[k] == v for k, v in extra.items() if k in axes)]
        for c in fits:
            c.update({k: v for k, v in extra.items() if k not in axes})
        if not fits:
            combos.append(dict(extra))
    if not combos:
        raise StepFailed(f"{where}: the matrix has no entries (GitHub fails such a job)")
    return combos


def _runner(labels: Any) -> tuple[bool, str]:
    """Whether this machine can stand in for a runner with these labels, and what to say about it."""
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    names = ", ".join(map(str, labels))
    if "self-hosted" in labels:
        if "gpu" in labels:
            return (True, "") if hostinfo.gpus() else (False, f"no GPU here for the runner [{names}]")
        return False, f"no self-hosted runner [{names}] here"
    hosted = [str(label) for label in labels if str(label).startswith("ubuntu-")]
    if len(hosted) != 1 or len(labels) != 1:
        raise StepFailed(f"runs-on [{names}]: the rehearsal stands in for ubuntu-* runners and a self-hosted GPU "
                         "runner only")
    if "arm" in hosted[0]:
        return True, (f"{hosted[0]} stood in for by this {host_arch().value} host: aarch64 builds use the "
                      "matrix's [build-mode]")
    return True, ""


def _bool_input(value: Any, name: str) -> bool:
    text = ghexpr.to_string(value)
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return text.lower() == "true"
    raise StepFailed(f"input {name}: {text!r} is not a YAML 1.2 boolean (true or false)")


def _checkout(run: _Instance, with_: dict[str, Any], rehearsal: Rehearsal) -> None:
    if any(run.workspace.iterdir()):
        raise StepFailed("checkout: the workspace is not empty")
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(rehearsal.repo), str(run.workspace)],
                   check=True, capture_output=True)
    subprocess.run(["git", "-C", str(run.workspace), "checkout", "--quiet", "--detach", rehearsal.sha], check=True,
                   capture_output=True)


def _interpreter(version: str) -> tuple[str, str]:
    """The host's Python ``version`` (on PATH or installed by pyenv, as the runners' tool cache holds it), else
    the rehearsal's own interpreter (and a note saying so)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=lambda p: p.parts[-3])
    for found in [shutil.which(f"python{version}"), *(str(p) for p in installed[::-1])]:
        if not found:
            continue
        proc = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip(), ""
    base = getattr(sys, "_base_executable", sys.executable)
    here = ".".join(map(str, sys.version_info[:2]))
    return base, f"setup-python {version}: no Python {version} here, the host's {here} stands in"


def _setup_python(run: _Instance, with_: dict[str, Any], rehearsal: Rehearsal) -> None:
    python, note = _interpreter(ghexpr.to_string(with_.get("python-version", "")).strip() or "3")
    if note:
        run.notes.append(note)
    bindir = run.temp / "setup-python" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (bindir / name).unlink(missing_ok=True)
        (bindir / name).symlink_to(python)
    run.path.insert(0, str(bindir))


def _upload_files(run: _Instance, patterns: list[str], hidden: bool) -> dict[str, Path]:
    """The files of an upload and their names inside the artifact (relative to the patterns' common root)."""
    found, roots = [], []
    for pattern in patterns:
        if pattern.startswith("!"):
            raise StepFailed(f"upload-artifact: exclusions ({pattern}) are not implemented by the stand-in")
        full = run.workspace / pattern
        parts = Path(pattern).parts
        literal = list(itertools.takewhile(lambda p: not glob.has_magic(p), parts))
        roots.append(run.workspace.joinpath(*literal) if literal else run.workspace)
        for match in sorted(glob.glob(str(full), recursive=True)):
            path = Path(match)
            found += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if len(patterns) == 1 and len(found) == 1 and found[0] == roots[0]:
        root = found[0].parent  # one file named outright: it sits at the artifact's top
    else:
        root = Path(os.path.commonpath(roots))
    files = {str(p.relative_to(root)): p for p in found}
    return {rel: p for rel, p in files.items() if hidden or not any(part.startswith(".") for part in Path(rel).parts)}


def _upload(run: _Instance, with_: dict[str, Any], rehearsal: Rehearsal) -> None:
    name = ghexpr.to_string(with_.get("name", "artifact")) or "artifact"
    patterns = [line.strip() for line in ghexpr.to_string(with_.get("path", "")).splitlines() if line.strip()]
    if not patterns:
        raise StepFailed("upload-artifact: path: is required")
    files = _upload_files(run, patterns, _bool_input(with_.get("include-hidden-files", "false"), "hidden"))
    if not files:
        missing = ghexpr.to_string(with_.get("if-no-files-found", "warn"))
        message = f"upload-artifact: no files were found with the provided path: {', '.join(patterns)}"
        if missing == "error":
            raise StepFailed(message)
        if missing == "warn":
            run.notes.append(message + "; no artifact will be uploaded")
        return
    rehearsal.artifacts.upload(name, files, _bool_input(with_.get("overwrite", "false"), "overwrite"))


def _download(run: _Instance, with_: dict[str, Any], rehearsal: Rehearsal) -> None:
    dest = run.workspace / ghexpr.to_string(with_.get("path", ""))
    rehearsal.artifacts.download(ghexpr.to_string(with_.get("name", "")), ghexpr.to_string(with_.get("pattern", "")),
                                 dest, _bool_input(with_.get("merge-multiple", "false"), "merge-multiple"))


# action -> (its stand-in, the `with:` keys the stand-in implements)
_ACTIONS: dict[str, tuple[Callable[[_Instance, dict[str, Any], Rehearsal], None], set[str]]] = {
    "actions/checkout": (_checkout, {"persist-credentials", "fetch-depth"}),
    "actions/setup-python": (_setup_python, {"python-version"}),
    "actions/upload-artifact": (_upload, {"name", "path", "if-no-files-found", "overwrite", "retention-days",
                                          "include-hidden-files"}),
    "actions/download-artifact": (_download, {"name", "pattern", "path", "merge-multiple"}),
}


def _read_commands_file(path: Path) -> dict[str, str]:
    """``name=value`` and ``name<<DELIM`` … ``DELIM`` lines, as in $GITHUB_OUTPUT and $GITHUB_ENV."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1) if delim in lines[i + 1:] else -1
            if end < 0:
                raise StepFailed(f"{path.name}: no closing {delim} for {name}")
            out[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if line.strip():
            if "=" not in line:
                raise StepFailed(f"{path.name}: {line[:60]!r} is neither name=value nor name<<DELIMITER")
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


class Rehearsal:
    """One run of a workflow: its artifacts, secrets, jobs' results and folders under ``root``."""

    def __init__(self, repo: Path, workflow: Path, root: Path, *, inputs: Mapping[str, str],
                 between_jobs: Callable[[str, Artifacts], None] | None = None):
        self.repo, self.root, self.between_jobs = repo, root, between_jobs
        self.sha = _git(repo, "rev-parse", "HEAD")
        where = f"{workflow} (at HEAD {self.sha[:12]})"
        self.doc = _at_head(repo, workflow, where)
        self.where, self.workflow = where, workflow
        self.inputs, self.event = self._inputs(dict(inputs))
        if self.event == "push":  # the tag a release pushes: v<[project] version>
            version = tomllib.loads(_git(repo, "show", "HEAD:matrix.toml"))["project"]["version"]
            self.ref = f"refs/tags/v{version}"
        else:
            self.ref = f"refs/heads/{_git(repo, 'rev-parse', '--abbrev-ref', 'HEAD')}"
        origin = subprocess.run(["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True,
                                text=True).stdout.strip()
        match = re.search(r"[:/]([^/:]+/[^/]+?)(?:\.git)?$", origin)
        self.repository = match.group(1) if match else f"local/{repo.name}"
        self.artifacts = Artifacts(root / "artifacts")
        self.results: dict[str, str] = {}
        self.outputs: dict[str, dict[str, str]] = {}

    def _inputs(self, given: dict[str, str]) -> tuple[dict[str, str], str]:
        """workflow_dispatch's inputs (declared ones only, defaults filled) when given, else a tag push."""
        on = self.doc["on"]
        if not given:
            if "push" not in on:
                raise _fail_config(self.where, "on: has no push trigger to rehearse; pass --input for "
                                               "workflow_dispatch")
            return {}, "push"
        if "workflow_dispatch" not in on:
            raise _fail_config(self.where, "on: has no workflow_dispatch, so it takes no --input")
        declared = (on.get("workflow_dispatch") or {}).get("inputs") or {}
        unknown = [k for k in given if k not in declared]
        if unknown:
            raise ConfigError([f"--input {k}: the workflow declares no such input; it takes: "
                               f"{', '.join(declared) or 'none'}" for k in unknown])
        values = {k: ghexpr.to_string((spec or {}).get("default", "")) for k, spec in declared.items()}
        return {**values, **given}, "workflow_dispatch"

    def github(self, job_id: str, workspace: Path | str = "") -> dict[str, Any]:
        return {"event_name": self.event, "ref": self.ref, "ref_name": self.ref.split("/", 2)[-1],
                "ref_type": "tag" if self.event == "push" else "branch", "sha": self.sha, "actor": getpass.getuser(),
                "repository": self.repository, "workspace": str(workspace), "job": job_id, "run_id": "1",
                "run_attempt": "1", "server_url": "https://github.com", "event": {"inputs": self.inputs}}

    def secrets(self) -> dict[str, str]:
        """The engine's credentials as the secrets the workflow names (GITHUB_TOKEN: none here); loading
        them registers the passwords with :func:`console.mask`, which every log line goes through."""
        state = settings.state_dir()
        registry, index = credentials.load(state, "registry"), credentials.load(state, "index")
        return {"REGISTRY_USERNAME": registry.username, "REGISTRY_PASSWORD": registry.password,
                "INDEX_USERNAME": index.username, "INDEX_PASSWORD": index.password, "GITHUB_TOKEN": ""}

    def run(self) -> list[JobRun]:
        jobs = self.doc["jobs"]
        if self.event == "push":
            tags = ((self.doc["on"].get("push") or {}).get("tags") or ["*"])
            ref_name = self.ref.removeprefix("refs/tags/")
            if not any(fnmatch.fnmatchcase(ref_name, t) for t in tags):
                raise _fail_config(self.where, f"on.push.tags {tags} does not match the release tag {ref_name}")
        secrets = self.secrets()
        runs: list[JobRun] = []
        for job_id in _order(jobs, self.where):
            runs += self._job(job_id, jobs, secrets)
            if self.between_jobs:
                self.between_jobs(job_id, self.artifacts)
        return runs

    def _job(self, job_id: str, jobs: dict, secrets: dict[str, str]) -> list[JobRun]:
        job = jobs[job_id]
        needs = {n: {"result": self.results[n], "outputs": self.outputs.get(n, {})} for n in _needs(job)}
        status = {"success": all(r["result"] == SUCCESS for r in needs.values()),
                  "failure": any(self.results[a] == FAILURE for a in _ancestors(jobs, job_id)),
                  "always": True, "cancelled": False}
        contexts = {"github": self.github(job_id), "inputs": self.inputs, "needs": needs, "vars": {}}
        where = f"{self.where}: jobs.{job_id}"
        try:
            wanted = ghexpr.condition(job.get("if", "success()"), contexts, status)
            combos = _combos(ghexpr.render((job.get("strategy") or {}).get("matrix"), contexts), where) if wanted \
                else []
        except (ghexpr.ExpressionError, StepFailed) as exc:
            step(f"{job_id}: {exc}")
            self.results[job_id] = FAILURE
            return [JobRun(job=job_id, name=job_id, result=FAILURE, note=str(exc))]
        if not wanted:
            unsuccessful = [f"{n} {r['result']}" for n, r in needs.items() if r["result"] != SUCCESS]
            why = f"if: {job.get('if', 'success()')}" + (f", with {', '.join(unsuccessful)}" if unsuccessful else "")
            step(f"{job_id}: skipped ({why})")
            self.results[job_id] = SKIPPED
            return [JobRun(job=job_id, name=job_id, result=SKIPPED, note=why)]
        runs = [self._instance(job_id, job, {**contexts, "matrix": combo, "secrets": secrets,
                                             "strategy": {"job-index": i, "job-total": len(combos)}}, i)
                for i, combo in enumerate(combos)]
        results = {r.result for r in runs}
        self.results[job_id] = FAILURE if FAILURE in results else SUCCESS if SUCCESS in results else SKIPPED
        return runs

    def _instance(self, job_id: str, job: dict, contexts: dict[str, Any], index: int) -> JobRun:
        base = self.root / "jobs" / f"{job_id}-{index}"
        run = _Instance(workspace=base / "workspace", temp=base / "temp", log=base / "log.txt", env={},
                        contexts=contexts)
        for folder in (run.workspace, run.temp):
            folder.mkdir(parents=True)
        started = time.monotonic()
        try:
            name = ghexpr.to_string(ghexpr.render(job.get("name", job_id), contexts))
            runner = ghexpr.render(job.get("runs-on"), contexts)
            can, note = _runner(runner)
        except (ghexpr.ExpressionError, StepFailed) as exc:
            return JobRun(job=job_id, name=job_id, result=FAILURE, note=str(exc), log=str(run.log))
        labels = _labels(runner)
        if not can:
            step(f"{name}: skipped ({note})")
            return JobRun(job=job_id, name=name, result=SKIPPED, runner=labels, note=note)
        step(f"{name} ({job_id}) on {labels}" + (f": {note}" if note else ""))
        contexts["github"] = self.github(job_id, run.workspace)
        contexts["runner"] = {"os": "Linux", "arch": "X64", "temp": str(run.temp), "name": "rehearsal"}
        contexts["job"] = {"status": SUCCESS}
        contexts["steps"] = {}
        result, detail = SUCCESS, ""
        try:
            env = {**_render_env(self.doc.get("env"), contexts), **_render_env(job.get("env"), contexts)}
            run.env = env
            for i, s in enumerate(job.get("steps") or []):
                if not self._step(run, s, i, result):
                    result = FAILURE
                    detail = f"step {i + 1} ({_step_name(s)}) failed"
                    contexts["job"]["status"] = FAILURE
            self.outputs[job_id] = {k: ghexpr.to_string(ghexpr.render(v, contexts))
                                    for k, v in (job.get("outputs") or {}).items()}
        except (ghexpr.ExpressionError, StepFailed) as exc:  # an expression, or a malformed $GITHUB_OUTPUT
            result, detail = FAILURE, str(exc)
            say(f"    {exc}")
        notes = [n for n in dict.fromkeys([note, *run.notes, detail]) if n]
        return JobRun(job=job_id, name=name, result=result, seconds=round(time.monotonic() - started, 1),
                      runner=labels, note="; ".join(notes), log=str(run.log))

    def _step(self, run: _Instance, s: dict, index: int, job_result: str) -> bool:
        """Run one step; False when it failed (and does not continue on error)."""
        contexts = {**run.contexts, "env": run.env}
        status = {"success": job_result == SUCCESS, "failure": job_result == FAILURE, "always": True,
                  "cancelled": False}
        label = _step_name(s)
        if not ghexpr.condition(s.get("if", "success()"), contexts, status):
            say(f"    - {label}: skipped")
            if s.get("id"):
                run.contexts["steps"][s["id"]] = {"outputs": {}, "outcome": SKIPPED, "conclusion": SKIPPED}
            return True
        env = {**run.env, **_render_env(s.get("env"), contexts)}
        files = {k: run.temp / f"{k.lower()}-{index}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                                                                  "GITHUB_STEP_SUMMARY")}
        for f in files.values():
            f.touch()
        started, offset = time.monotonic(), run.log.stat().st_size if run.log.exists() else 0
        try:
            if "uses" in s:
                action = str(s["uses"]).split("@")[0]
                with_ = {k: ghexpr.render(v, contexts) for k, v in (s.get("with") or {}).items()}
                self._log(run, f"### {label}: {action} (stand-in) with {with_}\n")
                _ACTIONS[action][0](run, with_, self)
            else:
                self._shell(run, s, index, env, files, contexts)
            ok = True
        except (StepFailed, subprocess.CalledProcessError) as exc:
            message = exc.stderr.decode(errors="replace").strip() if isinstance(
                exc, subprocess.CalledProcessError) and exc.stderr else str(exc)
            self._log(run, message + "\n")
            ok = False
        outputs = _read_commands_file(files["GITHUB_OUTPUT"])
        run.env.update(_read_commands_file(files["GITHUB_ENV"]))
        run.path[:0] = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line.strip()][::-1]
        continue_on_error = bool(s.get("continue-on-error"))
        if s.get("id"):
            outcome = SUCCESS if ok else FAILURE
            run.contexts["steps"][s["id"]] = {"outputs": outputs, "outcome": outcome,
                                              "conclusion": SUCCESS if continue_on_error else outcome}
        say(f"    - {label}: {'ok' if ok else 'FAILED'} ({time.monotonic() - started:.1f} s)")
        if not ok:
            with run.log.open(errors="replace") as log:
                log.seek(offset)
                tail = log.read().splitlines()[-40:]
            say("\n".join(f"      | {line}" for line in tail))
        return ok or continue_on_error

    def _shell(self, run: _Instance, s: dict, index: int, env: dict[str, str], files: dict[str, Path],
               contexts: dict[str, Any]) -> None:
        script = run.temp / f"step-{index}.sh"
        script.write_text(ghexpr.to_string(ghexpr.render(s["run"], contexts)))
        cwd = run.workspace / ghexpr.to_string(ghexpr.render(s.get("working-directory", ""), contexts))
        full_env = {**self._runner_env(run), **env, **{k: str(v) for k, v in files.items()}}
        self._log(run, f"### {_step_name(s)}\n{console.mask(script.read_text())}\n###\n")
        if full_env.get(settings.SIGNING_ENV) == signing.KEYLESS:
            # Sigstore's Fulcio and Rekor, and the runner's OIDC token, are out of reach: the engine's key signs.
            full_env[settings.SIGNING_ENV] = signing.KEY
            self._log(run, f"### stand-in: {settings.SIGNING_ENV}=keyless signs with the engine's key here\n")
        with subprocess.Popen([*_SHELLS[s.get("shell")], str(script)], cwd=cwd, env=full_env, text=True,
                              errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                self._log(run, line)
        if proc.returncode != 0:
            raise StepFailed(f"the step exited with {proc.returncode}")

    def _runner_env(self, run: _Instance) -> dict[str, str]:
        """The host's environment as a fresh runner's: none of this run's toolkit, venv or CI variables."""
        own_bin = str(Path(sys.prefix) / "bin") if sys.prefix != sys.base_prefix else None
        host = {k: v for k, v in os.environ.items()
                if not k.startswith(("TOOLKIT_", "TWINE_", "GITHUB_", "RUNNER_", "NOX_", "PYTEST_"))
                and k not in ("VIRTUAL_ENV", "DOCKER_CONFIG", "PYTHONPATH", "PYTHONHOME", "CI")}
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != own_bin]
        if shutil.which("sudo") is None and os.geteuid() == 0:
            path.append(str(sudo_stand_in(self.root / "sudo-stand-in")))
        github = run.contexts["github"]
        return {**host, "PATH": os.pathsep.join([*run.path, *path]), "CI": "true", "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(run.workspace), "GITHUB_REF": github["ref"],
                "GITHUB_REF_NAME": github["ref_name"], "GITHUB_SHA": self.sha, "GITHUB_EVENT_NAME": self.event,
                "GITHUB_REPOSITORY": github["repository"], "GITHUB_RUN_ID": "1", "GITHUB_ACTOR": github["actor"],
                "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ATTEMPT": "1",
                "GITHUB_WORKFLOW_REF": f"{github['repository']}/{self.workflow.as_posix()}@{github['ref']}",
                "GITHUB_JOB": github["job"], "RUNNER_TEMP": str(run.temp), "RUNNER_OS": "Linux",
                "RUNNER_ARCH": "X64"}

    def _log(self, run: _Instance, text: str) -> None:
        with run.log.open("a") as out:
            out.write(console.mask(text))


def _labels(runs_on: Any) -> str:
    return ", ".join(map(str, runs_on)) if isinstance(runs_on, list) else ghexpr.to_string(runs_on)


def sudo_stand_in(bindir: Path) -> Path:
    """A folder holding ``sudo`` as the runners have it, for a rehearsal run as root where sudo is missing."""
    sudo = bindir / "sudo"
    if not sudo.exists():
        bindir.mkdir(parents=True, exist_ok=True)
        sudo.write_text(_SUDO.format(python=getattr(sys, "_base_executable", sys.executable), kept=_SUDO_KEEP,
                                     secure_path=SECURE_PATH))
        sudo.chmod(0o755)
    return bindir


def _render_env(env: Mapping[str, Any] | None, contexts: dict[str, Any]) -> dict[str, str]:
    return {str(k): ghexpr.to_string(ghexpr.render(v, contexts)) for k, v in (env or {}).items()}


def _step_name(s: dict) -> str:
    first = str(s.get("run", "")).splitlines()[0] if s.get("run") else ""
    return str(s.get("name") or str(s.get("uses", "")).split("@")[0] or f"Run {first[:72]}")


def _at_head(repo: Path, workflow: Path, where: str) -> dict:
    """The workflow as committed at HEAD (what CI reads), checked by :func:`load`."""
    return load(_git(repo, "show", f"HEAD:{workflow.as_posix()}"), where)


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError([f"{repo}: git {' '.join(args)}: {proc.stderr.strip() or 'failed'} (the rehearsal runs "
                           "the committed workflow of a git checkout)"])
    return proc.stdout.strip()


def rehearse(repo: Path, *, workflow: Path = RELEASE_WORKFLOW, inputs: Mapping[str, str] | None = None,
             root: Path | None = None, between_jobs: Callable[[str, Artifacts], None] | None = None) -> list[JobRun]:
    """Run ``workflow`` of ``repo``'s HEAD here; every job instance and how it ended.

    ``root`` (default ``<repo>/build/rehearse``) is emptied first: each rehearsal is a new workflow run.
    """
    if os.environ.get(settings.STATE_ENV):
        # Jobs see a runner's environment (no TOOLKIT_*), and sudo resets it: they use the default state.
        raise ConfigError([f"${settings.STATE_ENV} is set: a rehearsal's jobs use the default state directory, "
                           "as on a runner, so its secrets would come from another engine; unset it"])
    root = (root or repo / "build" / "rehearse").resolve()
    with locks.hold(root.parent / f"{root.name}.run", f"the rehearsal folder {root}"):
        rehearsal = Rehearsal(repo, workflow, root, inputs=inputs or {}, between_jobs=between_jobs)  # checks first
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        if _git(repo, "status", "--porcelain", "--untracked-files=no"):
            say(f"note: {repo} has uncommitted changes; GitHub runs the pushed commit, so the rehearsal runs "
                f"HEAD ({rehearsal.sha[:12]}) without them")
        return rehearsal.run()


def check(repo: Path, workflow: Path = RELEASE_WORKFLOW) -> list[tuple[str, str, str]]:
    """The jobs in run order with their needs and runners, after checking every step can be stood in for."""
    doc = _at_head(repo, workflow, f"{workflow} (at HEAD)")
    return [(j, ", ".join(_needs(doc["jobs"][j])) or "-", _labels(doc["jobs"][j].get("runs-on")))
            for j in _order(doc["jobs"], str(workflow))]
