"""The built-in delete rule (issue 20, findings 6 and 12): recursive forced deletes are denied
however they are spelled, ordinary commands are not, and no agent policy can allow them."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from workbench.control.approvals import DEFAULT_RULES, Inbox, match, rules_for
from workbench.control.deletes import dangerous, forced_delete

DENIED = [
    # the four from the finding
    "rm -Rf /",
    "rm -r -f /",
    "rm --recursive -f /",
    "find / -delete",
    # what the old expression denied stays denied
    "rm -rf build",
    "rm -fr build",
    "rm --recursive --force build",
    "rm --force --recursive build",
    # flags combined, split, after the paths, abbreviated, up to --
    "rm -rfv build",
    "rm -vRf build",
    "rm -fR build",
    "rm -r -v -f build",
    "rm build -rf",
    "rm build other -r -f",
    "rm --rec --force build",
    "rm --recursive --no-preserve-root /",
    "rm -r --no-preserve-root /",
    "rm -rfi build",
    # recursive, without force, on a dangerous path
    "rm -r /",
    "rm -r ~",
    "rm -r $HOME",
    "rm -r /*",
    "rm -r -- /usr",
    # wrappers and spellings of the name
    "sudo rm -rf /",
    "sudo -u root -E rm -rf /srv/app",
    "env VAR=x rm -rf build",
    "VAR=x rm -rf build",
    "command rm -rf build",
    "nice -n 5 rm -rf build",
    "nice -10 rm -rf build",
    "timeout -s KILL 10 rm -rf build",
    "nohup rm -rf build &",
    "exec rm -rf build",
    "/bin/rm -rf build",
    "/usr/bin/rm -rf build",
    "\\rm -rf build",
    "'rm' -rf build",
    "r\"m\" -rf build",
    "rm $'-\\x72f' build",
    "find . -name '*.o' | xargs rm -rf",
    "xargs -0 -I{} rm -rf {}",
    "$(which rm) -rf build",
    # lists, pipelines, groups, loops
    "cd /tmp && rm -rf build",
    "make clean; rm -rf build",
    "false || rm -rf build",
    "sleep 1 & rm -rf build",
    "ls | rm -rf build",
    "(cd x && rm -rf y)",
    "{ rm -rf y; }",
    "ls\nrm -rf build",
    "for d in */; do rm -rf \"$d\"; done",
    "if true; then rm -rf build; fi",
    # scripts inside scripts
    "sh -c 'rm -rf build'",
    "bash -c \"rm -rf build\"",
    "bash -lc 'cd x && rm -Rf build'",
    "sudo bash -c 'rm -r -f /'",
    "sh -c \"bash -c 'rm -rf build'\"",
    "eval rm -rf build",
    "eval 'rm -rf build'",
    "su -c 'rm -rf /srv' root",
    "env -S 'rm -rf build'",
    "ssh host rm -rf /var/lib/app",
    "echo $(rm -rf build)",
    "echo \"`rm -rf build`\"",
    "echo 'rm -rf /' | sh",
    "echo rm -rf build | bash",
    "bash <<EOF\nrm -rf build\nEOF",
    "cat <<EOF\n$(rm -rf build)\nEOF",
    "bash -c \"$(echo rm -rf build)\"",
    # find
    "find / -name '*.tmp' -delete",
    "find -L / -delete",
    "find ~ -delete",
    "find ~/ -name x -delete",
    "find $HOME -type f -delete",
    "find ${HOME} -delete",
    "find /* -delete",
    "find /usr -delete",
    "find /etc/ -name '*.conf' -delete",
    "find /home -delete",
    "find / -exec rm {} \\;",
    "find ~ -type f -exec rm -f {} +",
    "find / -execdir sudo rm {} +",
    "find / -exec sh -c 'rm \"$1\"' _ {} \\;",
    "find . -type d -exec rm -rf {} +",  # the command it runs is denied by itself
    # git rm of files with their uncommitted changes
    "git rm -rf src",
    "git -C repo rm -r -f src",
    # an unbalanced quote: read again without quotes (a shell would refuse it; we deny)
    "echo 'it's done; rm -rf build",
]

ALLOWED = [
    "rm file.txt",
    "rm -f file.txt",
    "rm -r build",  # recursive without force: a person decides
    "rm -r /tmp/build",
    "rm -- -rf",  # a file named "-rf"
    "rm -r -- -f build",  # after "--", "-f" is a file too
    "rm -r ./~",
    "git rm -r --cached build",
    "git rm -r -f --cached build",
    "git rm -rn build",
    "git rm file.txt",
    "grep -rf patterns.txt src",
    "grep -r 'rm -rf' docs",
    "echo \"rm -rf /\"",  # only text
    "echo 'rm -rf /' > notes.txt",
    "printf '%s\\n' 'rm -rf /'",
    "git commit -m \"$(cat <<'EOF'\nDocument why rm -rf build is denied\nEOF\n)\"",
    "cat > README <<'EOF'\nrm -rf build\nEOF",
    "# rm -rf /",
    "find . -name x -delete",
    "find -name '*.pyc' -delete",
    "find src -name '*.pyc' -delete",
    "find ~/.cache/pip -delete",
    "find /home/me/project/build -delete",
    "find / -name x -print",
    "find . -exec rm {} \\;",
    "ls -lR /",
    "chmod -R 755 build",
    "cp -rf a b",
    "rsync -a --delete a/ b/",
    "bash -c 'echo $HOME'",
    "python3 -m pytest -q",
    "",
]


@pytest.mark.parametrize("command", DENIED)
def test_denied(command):
    assert forced_delete(command), command
    rule = match(DEFAULT_RULES, "Bash", command)
    assert rule is not None and rule["action"] == "deny"


@pytest.mark.parametrize("command", ALLOWED)
def test_not_denied(command):
    assert not forced_delete(command), command
    assert match(DEFAULT_RULES, "Bash", command) is None


@pytest.mark.parametrize("path,expected", [
    ("/", True), ("/*", True), ("//", True), ("/usr", True), ("/etc/", True),
    ("/home/*", True), ("/usr/local/..", True), ("~", True), ("~/", True), ("~/*", True),
    ("~root", True), ("$HOME", True), ("${HOME}", True), ("$HOME/", True),
    (".", False), ("..", False), ("build", False), ("/usr/local", False),
    ("~/.cache", False), ("$HOME/src", False), ("*", False),
])
def test_dangerous_paths(path, expected):
    assert dangerous(path) is expected


def test_scripts_nested_deeper_than_the_limit_are_judged_coarsely():
    deep = "rm -rf build"
    for _ in range(8):
        deep = "sh -c " + shlex.quote(deep)
    assert forced_delete(deep)
    harmless = "rm -r build"
    for _ in range(8):
        harmless = "sh -c " + shlex.quote(harmless)
    assert not forced_delete(harmless)


def test_codex_argv_is_read_as_it_runs():
    """A Codex command given as an argv is quoted, not joined: ``bash -lc 'rm -rf /'``."""
    inbox, saved = _inbox()
    answers: list = []
    inbox.ask(_agent({"rules": []}), "exec_command",
              {"cmd": ["bash", "-lc", "rm -rf /"], "cwd": "/"}, _answer(answers))
    assert answers == [("deny", DEFAULT_RULES[0]["message"])]
    assert saved[0]["text"] == "bash -lc 'rm -rf /'"


SHELLISH = st.lists(st.sampled_from(
    list(" \t\n'\"`$(){}|&;<>\\-~/*") + ["rm", "-rf", "sh", "-c", "find", "-delete", "<<",
                                          "EOF", "eval", "sudo", "$(", "-exec", "git"]),
    max_size=200).map("".join)


@given(SHELLISH)
@example("sh -c 'sh -c \"$(`'")
@example("cat <<EOF")
@example("$'\\ ")  # once a DeprecationWarning from the unicode_escape codec
def test_any_text_is_judged_without_an_error(text):
    assert forced_delete(text) in (True, False)


def test_default_rules_are_json():
    assert json.loads(json.dumps(DEFAULT_RULES)) == DEFAULT_RULES


def test_builtin_denies_come_before_the_agents_rules():
    mine = [{"tool": "*", "action": "allow"}]
    assert rules_for(mine) == DEFAULT_RULES + mine


def _inbox() -> tuple[Inbox, list]:
    saved: list[dict] = []
    return Inbox(save=saved.append, changed=lambda agent_id: None), saved


def _agent(policy: dict) -> SimpleNamespace:
    return SimpleNamespace(id="ag-1", session_id="s-1", paused=False,
                           spec={"policy": policy, "project": None})


def _answer(answers: list):
    return lambda decision, message: answers.append((decision, message))


def test_an_allow_everything_policy_cannot_allow_a_forced_delete():
    inbox, saved = _inbox()
    agent = _agent({"rules": [{"tool": "*", "input": "", "action": "allow", "message": ""}]})
    answers: list = []
    for command in ("rm -rf /", "rm -Rf /", "sudo sh -c 'find / -delete'"):
        inbox.ask(agent, "Bash", {"command": command}, _answer(answers))
    assert [a[0] for a in answers] == ["deny"] * 3
    assert all(r["state"] == "denied" and r["decided_by"].startswith("policy: ")
               and "[forced_delete]" in r["decided_by"] for r in saved)

    # Its other requests are still allowed by its own rule, at once, without a person.
    answers.clear()
    inbox.ask(agent, "Bash", {"command": "rm -r build"}, _answer(answers))
    inbox.ask(agent, "Write", {"file_path": "x.txt", "content": "hi"}, _answer(answers))
    assert answers == [("allow", ""), ("allow", "")]
    assert saved[-1]["decided_by"] == "policy: *"
    assert inbox.pending() == []


def test_without_a_rule_a_person_decides():
    inbox, saved = _inbox()
    answers: list = []
    approval_id = inbox.ask(_agent({"rules": []}), "Bash", {"command": "rm -r build"},
                            _answer(answers))
    assert answers == [] and [p["approval_id"] for p in inbox.pending()] == [approval_id]
    inbox.decide(approval_id, "allow", "", "someone")
    assert answers == [("allow", "")]


def test_a_paused_agent_hears_a_rules_denial_on_resume_and_no_one_can_allow_it():
    inbox, saved = _inbox()
    agent = _agent({"rules": []})
    agent.paused = True
    answers: list = []
    approval_id = inbox.ask(agent, "Bash", {"command": "rm -rf /"}, _answer(answers))
    assert answers == []  # paused: nothing reaches the agent yet
    with pytest.raises(ValueError, match="decided by policy"):
        inbox.decide(approval_id, "allow", "", "someone")
    agent.paused = False
    inbox.release(agent.id)
    assert answers == [("deny", DEFAULT_RULES[0]["message"])]
    assert saved[-1]["state"] == "denied" and "[forced_delete]" in saved[-1]["decided_by"]
