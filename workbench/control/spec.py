"""An agent's definition, validated: what the API's ``POST /api/agents`` and ``PUT
.../config`` accept. Every error names the field and says what is wrong (HTTP 400)."""

from __future__ import annotations

import re
from typing import Any

import param

from .. import launcher

#: Where an agent can be; every change is stored as an event (the timeline's source).
STATES = ("idle", "starting", "running", "waiting-for-approval", "paused", "stopping",
          "stopped", "completed", "error", "lost")
#: States with a live process (or session) behind them.
LIVE = frozenset({"starting", "running", "waiting-for-approval", "paused", "stopping"})
#: States an agent can be started from.
STARTABLE = frozenset({"idle", "stopped", "completed", "error", "lost"})

RESTART_POLICIES = ("never", "on-failure", "always")


class Limits(param.Parameterized):
    """Resource limits, enforced by the supervisor (see README, "Agent limits")."""

    memory_mb = param.Number(None, bounds=(1, None), allow_None=True,
                             doc="resident memory of the agent's process tree")
    cpu_nice = param.Integer(None, bounds=(0, 19), allow_None=True,
                             doc="CPU share: the process group's nice value (0-19)")
    max_runtime_s = param.Number(None, bounds=(0.1, None), allow_None=True,
                                 doc="seconds from start before it is stopped")
    max_cost_usd = param.Number(None, bounds=(0, None), allow_None=True,
                                doc="model cost in USD before it is stopped")


class Restart(param.Parameterized):
    policy = param.Selector(default="never", objects=list(RESTART_POLICIES))
    max_restarts = param.Integer(3, bounds=(0, 100))
    backoff_s = param.Number(1.0, bounds=(0, 3600), doc="first delay; doubles each time")


class PolicyRule(param.Parameterized):
    """Decides a permission request before a person has to: the first matching rule wins."""

    tool = param.String("*", doc="tool name, `*` for any, or `A|B`")
    input = param.String("", doc="regular expression searched in the request's input text")
    action = param.Selector(default="deny", objects=["allow", "deny"])
    message = param.String("")

    @param.depends("input", watch=True, on_init=True)
    def _compiles(self) -> None:
        try:
            re.compile(self.input)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None


class Policy(param.Parameterized):
    rules = param.List([], item_type=dict)
    timeout_s = param.Number(None, bounds=(1, None), allow_None=True,
                             doc="a request unanswered this long gets `timeout_action`")
    timeout_action = param.Selector(default="deny", objects=["allow", "deny"])


#: The longest value of each text field of a definition.
MAX_CHARS = {"name": 120, "project": 200, "cwd": 4096, "prompt": 1_000_000, "pool": 120}
_TOP = {"name", "backend", "project", "cwd", "prompt", "command", "env", "labels", "limits",
        "restart", "policy", "config", "pool"}


def _params(cls: type[param.Parameterized], value: Any, field: str) -> dict[str, Any]:
    """``value`` checked against ``cls``'s parameters; a ValueError names the field."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"{field}: must be an object")
    unknown = sorted(k for k in value if k not in cls.param or k == "name")
    if unknown:
        raise ValueError(f"{field}.{unknown[0]}: unknown field (known: "
                         f"{', '.join(k for k in cls.param if k != 'name')})")
    for key, v in value.items():
        try:
            cls.param[key]._validate(v)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{field}.{key}: {_short(err)}") from None
    try:
        obj = cls(**value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{field}: {_short(err)}") from None
    return {k: getattr(obj, k) for k in cls.param if k != "name"}


def _short(err: Exception) -> str:
    return str(err).split("\n")[0][:300]


def check(spec: Any, backends: dict[str, Any]) -> dict[str, Any]:
    """A complete, normalised definition from what a client sent (ValueError if bad)."""
    if not isinstance(spec, dict):
        raise ValueError("agent definition must be a JSON object")
    unknown = sorted(set(spec) - _TOP)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(_TOP))})")
    backend = spec.get("backend")
    if not isinstance(backend, str) or backend not in backends:
        raise ValueError(f"backend: must be one of {', '.join(sorted(backends))}, "
                         f"not {str(backend)[:40]!r}")
    out: dict[str, Any] = {"backend": backend}
    for key in ("name", "project", "cwd", "prompt", "pool"):
        value = spec.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key}: must be a string")
        if value is not None and len(value) > MAX_CHARS[key]:
            raise ValueError(f"{key}: at most {MAX_CHARS[key]} characters")
        out[key] = value
    if not out["name"]:
        raise ValueError("name: required")
    if len(out["name"]) > 120:
        raise ValueError("name: at most 120 characters")
    command = spec.get("command")
    if command is not None and not (isinstance(command, str) or (
            isinstance(command, list) and command and all(isinstance(c, str) for c in command))):
        raise ValueError("command: must be a string or a non-empty list of strings")
    out["command"] = command
    env = spec.get("env") or {}
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError("env: must be an object of string values")
    for key in env:
        if launcher.is_secret(key):
            raise ValueError(f"env.{key}: a secret of the workbench; an agent never gets it")
    out["env"] = env
    labels = spec.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels: must be a list of strings")
    out["labels"] = labels
    out["limits"] = _params(Limits, spec.get("limits"), "limits")
    out["restart"] = _params(Restart, spec.get("restart"), "restart")
    policy = _params(Policy, spec.get("policy"), "policy")
    policy["rules"] = [_params(PolicyRule, r, f"policy.rules[{i}]")
                       for i, r in enumerate(policy["rules"])]
    out["policy"] = policy
    out["config"] = _params(backends[backend].Config, spec.get("config"), "config")
    backends[backend].check(out)
    return out


def external_spec(name: str, project: str | None, cwd: str | None,
                  timeout_s: float | None = None) -> dict[str, Any]:
    """The definition of an agent the workbench did not start (known by its hooks): its
    requests unanswered for ``timeout_s`` are denied (its session waits on an open HTTP
    request, which must not wait forever)."""
    policy = _params(Policy, {"timeout_s": timeout_s or None, "timeout_action": "deny"},
                     "policy")
    return {"name": name[:MAX_CHARS["name"]], "backend": "external",
            "project": project[:MAX_CHARS["project"]] if project else project,
            "cwd": cwd, "prompt": None, "command": None, "env": {}, "labels": [],
            "pool": None, "limits": _params(Limits, {}, "limits"),
            "restart": _params(Restart, {}, "restart"), "policy": {**policy, "rules": []},
            "config": {}}


def check_part(part: str, value: Any) -> dict[str, Any]:
    """A new ``limits`` or ``policy`` for a defined agent (ValueError naming the field)."""
    if part == "limits":
        return _params(Limits, value, "limits")
    if part == "policy":
        policy = _params(Policy, value, "policy")
        policy["rules"] = [_params(PolicyRule, r, f"policy.rules[{i}]")
                           for i, r in enumerate(policy["rules"])]
        return policy
    raise ValueError(f"{part}: not a part of an agent that can be changed")
