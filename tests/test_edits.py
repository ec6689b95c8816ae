"""Reading what a tool call changed, and ranking calls against a failure."""

from __future__ import annotations

from workbench.analysis.culprits import frame_paths, rank
from workbench.analysis.edits import diff_of, edited_paths, same_file


def test_edit_tools_name_their_file_relative_to_the_agent():
    assert edited_paths("Edit", {"file_path": "/w/repo/pkg/core.py"}, "/w/repo") == [
        "pkg/core.py"]
    assert edited_paths("Write", {"file_path": "/elsewhere/x.py"}, "/w/repo") == [
        "/elsewhere/x.py"]
    assert edited_paths("fileChange", {"changes": [{"path": "a.py"}, {"path": "b/c.ts"}]}) == [
        "a.py", "b/c.ts"]


def test_shell_commands_count_only_when_they_write():
    assert edited_paths("Bash", {"command": "cat calc.py"}) == []
    assert edited_paths("Bash", {"command": "pytest -q tests/test_x.py"}) == []
    assert edited_paths("Bash", {"command": "sed -i 's/a + b/a - b/' calc.py"}) == ["calc.py"]
    assert edited_paths("Bash", {"command": "echo x >> NOTES.md"}) == ["NOTES.md"]
    assert edited_paths("exec_command", {"cmd": ["bash", "-lc", "echo 1>out.txt"]}) == [
        "out.txt"]
    assert edited_paths("Bash", {"command": "git checkout -- src/app.js"}) == ["src/app.js"]
    assert edited_paths("Bash", {"command": "echo 'unclosed > x.py"}) == ["x.py"]


def test_same_file_is_a_path_component_suffix():
    assert same_file("/home/ci/repo/calc/core.py", "calc/core.py")
    assert same_file("core.py", "./calc/core.py")
    assert not same_file("xcore.py", "calc/core.py")
    assert not same_file("", "a.py")


def test_frames_and_the_strongest_evidence_first():
    trace = ('Traceback (most recent call last):\n  File "/ci/repo/tests/test_a.py", line 3\n'
             '  File "/ci/repo/pkg/money.py", line 9, in total\nZeroDivisionError')
    assert frame_paths(trace) == ["/ci/repo/tests/test_a.py", "/ci/repo/pkg/money.py"]

    def call(agent: str, path: str, ts: int) -> dict:
        return {"agent_id": agent, "agent_name": agent, "session_id": "s-" + agent, "ts": ts,
                "tool": "Edit", "tool_use_id": f"t{ts}", "paths": [path], "cwd": None,
                "input_text": "", "diff": ""}

    calls = [call("stack", "pkg/money.py", 1), call("test", "tests/test_a.py", 2),
             call("other", "README.md", 3)]
    ranked = rank(calls, {"test_id": "tests/test_a.py::test_x", "file": "tests/test_a.py",
                          "details": trace, "message": None})
    assert [c["agent_id"] for c in ranked] == ["stack", "test", "other"]
    assert [c["score"] for c in ranked] == [3.0, 2.5, 0.1]
    no_trace = rank(calls, {"test_id": "tests/test_a.py::test_x", "file": "tests/test_a.py",
                            "details": None, "message": None})
    assert [c["agent_id"] for c in no_trace] == ["test", "other", "stack"]


def test_diffs_of_edits():
    diff = diff_of("Edit", {"file_path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})
    assert "-x = 1" in diff and "+x = 2" in diff
    assert diff_of("Write", {"file_path": "b.py", "content": "print(1)"}).endswith("+print(1)")
    assert diff_of("Bash", {"command": "sed -i s/a/b/ c.py"}) == "$ sed -i s/a/b/ c.py"
    codex = diff_of("fileChange", {"changes": [{"path": "a.py", "kind": "update",
                                                "diff": "@@ -1 +1 @@\n-x\n+y"}]})
    assert codex.startswith("--- a.py (update)") and "+y" in codex
