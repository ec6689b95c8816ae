"""Does a shell command delete recursively and by force? The check behind the approvals
inbox's built-in deny rule (``approvals.DEFAULT_RULES``).

Why a module and not a regular expression: the old expression over the command text was
easy to get around (``rm -Rf /``, ``rm -r -f /``, ``rm --recursive -f /``, ``find / -delete``
all waited for a person). So the command is read roughly as a shell reads it:

- words with their quotes and backslashes removed (``\\rm``, ``'rm'``, ``$'rm'`` are ``rm``);
  simple commands split on ``;`` ``&&`` ``||`` ``|`` ``&`` ``(`` ``)`` and newlines;
- the scripts a command runs are read too: ``$(...)`` and backticks (also inside double
  quotes), ``sh -c`` / ``bash -lc`` / ``zsh -c`` ..., ``eval``, ``su -c``, ``env -S``,
  ``watch`` and the remote command of ``ssh``; here-documents are text (``git commit -m
  "$(cat <<'EOF' ...)"`` may mention ``rm -rf``), except for their substitutions when the
  delimiter is not quoted; and when a shell runs text it is given (from standard input:
  ``echo 'rm -rf /' | sh``, ``bash <<EOF``; or an expansion: ``bash -c "$(echo rm -rf x)"``)
  every word, every command's arguments and every here-document is read as a script; a
  command whose name is a substitution (``$(which rm) -rf x``) is tried with each word of it;
- wrappers are looked through: ``VAR=x``, ``sudo``, ``doas``, ``env``, ``command``,
  ``builtin``, ``exec``, ``nice``, ``ionice``, ``nohup``, ``setsid``, ``time``,
  ``timeout``, ``stdbuf``, ``xargs``, ``chroot``, ``flock``, ``busybox``, shell keywords
  (``then``, ``do``, ``{``, ``!``), and a path before the name (``/bin/rm``).

Denied (see ``forced_delete``):

- ``rm`` with a recursive flag (``-r``, ``-R``, ``--recursive`` or an abbreviation of it, in
  any short-flag group such as ``-Rf``, ``-fR``, ``-rfv``, before or after the paths, up to
  ``--``) together with a force flag (``-f``, ``--force``), ``--no-preserve-root`` or a
  dangerous path (below). ``rm -r build`` without force still asks a person.
- ``git rm`` with ``-r`` and ``-f`` (it discards the files' uncommitted changes), unless
  ``--cached`` or ``--dry-run``: ``git rm -r --cached x`` is not denied.
- ``find`` with ``-delete``, or with ``-exec``/``-execdir``/``-ok``/``-okdir`` running ``rm``,
  from a dangerous start path; and any ``find -exec`` whose command is itself denied.

A dangerous path is ``/``, a home (``~``, ``~user``, ``$HOME``, ``${HOME}``) or an absolute
path of at most one component (``/usr``, ``/etc/``, ``/tmp``), each possibly followed by a
last component that is only a glob (``/*``, ``~/*``, ``/home/*``). ``.`` is not dangerous.

The reading errs on the side of denying: with an unbalanced quote (which a shell would refuse)
the text is read a second time with its quotes dropped, and either reading can deny; a comment
is read as words, so ``# rm -rf /`` is not denied but ``ls # x; rm -rf /`` is; a command
nested deeper than ``MAX_DEPTH`` scripts is judged by a coarse expression over the whole
text. Variables are not expanded: ``$R -rf /`` after ``R=rm`` asks a person. Text that is
only an argument (``echo "rm -rf /"``, ``grep -rf patterns.txt``) is not a delete and is not
denied.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import NamedTuple

#: Scripts inside scripts read before the whole text is judged by ``_COARSE`` instead.
MAX_DEPTH = 4

_SEPARATORS = frozenset(";&|()\n")
_BLANKS = frozenset(" \t\r")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_HOME = re.compile(r"(\$HOME|\$\{HOME\}|~[\w.-]*)(/.*)?\Z", re.S)
_COARSE = (re.compile(r"\brm\b"), re.compile(r"(^|\s)-\w*[rR]|--rec"),
           re.compile(r"(^|\s)-\w*f|--fo|--no-preserve"))
_COARSE_FIND = re.compile(r"\bfind\b.*\s-(delete|exec|ok)", re.S)

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "yash", "fish"})

#: Wrappers that run the rest of their arguments as a command:
#: name -> (short options that take a value, positional arguments before the command).
_WRAPPERS: dict[str, tuple[str, int]] = {
    "sudo": ("CDghpRrTtUu", 0), "doas": ("Cu", 0), "env": ("Cu", 0), "command": ("", 0),
    "builtin": ("", 0), "exec": ("a", 0), "nice": ("n", 0), "ionice": ("cnp", 0),
    "nohup": ("", 0), "setsid": ("", 0), "time": ("fo", 0), "timeout": ("ks", 1),
    "stdbuf": ("eio", 0), "xargs": ("adEILnPs", 0), "chroot": ("", 1), "flock": ("Ew", 1),
    "busybox": ("", 0), "unbuffer": ("", 0), "chronic": ("", 0), "noglob": ("", 0),
    "nocorrect": ("", 0), "then": ("", 0), "do": ("", 0), "else": ("", 0), "if": ("", 0),
    "elif": ("", 0), "while": ("", 0), "until": ("", 0), "!": ("", 0), "{": ("", 0),
}
#: Long options of the wrappers whose value is the next word (unless given with ``=``).
_LONG_VALUES = frozenset({
    "--user", "--group", "--chdir", "--unset", "--adjustment", "--signal", "--kill-after",
    "--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars", "--prompt",
    "--process-slot-var", "--close-from", "--host", "--role", "--type", "--other-user",
    "--command-timeout", "--output", "--format", "--userspec", "--groups", "--timeout",
    "--conflict-exit-code", "--class", "--classdata", "--interval", "--argv0",
})


class _TooDeep(Exception):
    """Scripts nested deeper than ``MAX_DEPTH``."""


def forced_delete(text: str) -> bool:
    """Whether the shell command ``text`` deletes recursively and by force.

    Parameters
    ----------
    text
        The command as an agent asked to run it (one line or a script).

    Returns
    -------
    bool
        True when some command it runs is denied (see the module docstring).
    """
    try:
        return any(_denied(argv) for argv in commands(text))
    except (_TooDeep, RecursionError):
        return all(p.search(text) for p in _COARSE) or bool(_COARSE_FIND.search(text))


def commands(text: str, depth: int = 0, unknown: bool = False) -> Iterator[list[str]]:
    """Every simple command ``text`` runs, as its words, wrappers removed, with the commands
    of the scripts it runs (``$(...)``, ``sh -c``, ...) too.

    Parameters
    ----------
    text
        Shell command text.
    depth
        How deep in scripts ``text`` is (``MAX_DEPTH`` is the limit).
    unknown
        ``text`` may be the script of a shell that runs what it is given (from standard
        input or an expansion): its words are read as scripts too.
    """
    if depth > MAX_DEPTH:
        raise _TooDeep(text)
    reading = _scan(text)
    for words in reading.simple:
        yield from _expand(words, depth)
        argv = _unwrap(words)
        if argv and ("$(" in argv[0] or "`" in argv[0]):
            # The command's name is another's output (``$(which rm) -rf x``): try its words.
            for script in _substitutions(argv[0]):
                for name in [w for found in _scan(script).simple for w in found]:
                    yield from _expand([name, *argv[1:]], depth)
        unknown |= _runs_unknown(argv)
    for script in reading.scripts:
        yield from commands(script, depth + 1, unknown)
    if unknown:
        # Some shell runs text it is given (``echo 'rm -rf /' | sh``, ``bash <<EOF``,
        # ``bash -c "$(echo rm -rf x)"``): any word, any command's arguments or
        # here-document may be what it runs.
        for words in reading.simple:
            for script in [*words[1:], " ".join(words[1:])]:
                yield from commands(script, depth + 1)
        for script in reading.heredocs:
            yield from commands(script, depth + 1)
    if not reading.balanced:
        yield from commands(re.sub(r"['\"]", "", text), depth + 1, unknown)


def _runs_unknown(argv: list[str]) -> bool:
    """A shell that reads its commands from standard input or from an expansion."""
    if not argv or _name(argv[0]) not in _SHELLS:
        return False
    script, stdin = _shell(argv[1:])
    return stdin if script is None else ("$" in script or "`" in script)


def dangerous(path: str) -> bool:
    """Whether deleting everything under ``path`` would be a disaster: ``/``, a home
    directory, an absolute path of at most one component, or a glob of its entries."""
    home = _HOME.match(path)
    if home:
        rest = home.group(2) or ""
    elif path.startswith("/"):
        rest = path
    else:
        return False
    parts = [p for p in posixpath.normpath("/" + rest).split("/") if p]
    if parts and set(parts[-1]) <= set("*?"):
        parts.pop()  # "/home/*" deletes as much as "/home"
    return not parts if home else len(parts) <= 1


# -- reading ----------------------------------------------------------------------------

class _Reading(NamedTuple):
    simple: list[list[str]]  #: the simple commands, as their words
    scripts: list[str]  #: the scripts of its ``$(...)`` and backtick substitutions
    heredocs: list[str]  #: the bodies of its here-documents
    balanced: bool  #: whether its quotes were balanced


def _scan(text: str) -> _Reading:
    """``text`` read as a shell reads it, without expanding anything."""
    simple: list[list[str]] = [[]]
    scripts: list[str] = []
    heredocs: list[str] = []
    waiting: list[tuple[str, bool, bool]] = []  # here-documents: delimiter, quoted, "<<-"
    word: list[str] = []
    started = quoted = False  # a word is open ('' is a word); it has quotes
    balanced = True
    i, n = 0, len(text)

    def close() -> None:
        nonlocal word, started, quoted
        if started:
            value = "".join(word)
            words = simple[-1]
            if words and words[-1] in ("<<", "<<-"):
                waiting.append((value, quoted, words.pop() == "<<-"))
            elif value.startswith("<<") and value not in ("<<", "<<-") and (
                    not value.startswith("<<<")):
                strip = value.startswith("<<-")
                waiting.append((value[3 if strip else 2:], quoted, strip))
                value = ""
            if value:
                words.append(value)
        word, started, quoted = [], False, False

    while i < n:
        c = text[i]
        if c in _BLANKS:
            close()
            i += 1
            continue
        if c in _SEPARATORS:
            close()
            if simple[-1]:
                simple.append([])
            i += 1
            if c == "\n" and waiting:
                i = _heredocs(text, i, waiting, heredocs, scripts)
            continue
        if c == "\\":
            if i + 1 < n and text[i + 1] != "\n":  # a backslash-newline joins lines
                word.append(text[i + 1])
                started = quoted = True
            i += 2
            continue
        started = True
        if c == "$" and text.startswith("'", i + 1):  # $'...': ANSI-C quoting
            end = i + 2
            while end < n and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            balanced &= end < n
            word.append(_ansi_c(text[i + 2:end]))
            quoted, i = True, end + 1
        elif c == "$" and text.startswith('"', i + 1):  # $"...": a translated string
            i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                balanced, end = False, n
            word.append(text[i + 1:end])
            quoted, i = True, end + 1
        elif c == '"':
            quoted, i = True, i + 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`\n':
                    word.append(text[i + 1] if text[i + 1] != "\n" else "")
                    i += 2
                elif text[i] == "`" or text.startswith("$(", i):
                    script, end = _substitution(text, i)
                    scripts.append(script)
                    word.append(text[i:end])
                    i = end
                else:
                    word.append(text[i])
                    i += 1
            balanced &= i < n
            i += 1
        elif c == "`" or text.startswith("$(", i):
            script, end = _substitution(text, i)
            scripts.append(script)
            word.append(text[i:end])
            i = end
        else:
            word.append(c)
            i += 1
    close()
    return _Reading([words for words in simple if words], scripts, heredocs, balanced)


def _heredocs(text: str, i: int, waiting: list[tuple[str, bool, bool]], bodies: list[str],
              scripts: list[str]) -> int:
    """Read the bodies of the ``waiting`` here-documents from line ``i`` on; an unquoted
    delimiter's body has its substitutions run. Returns where the commands go on."""
    lines = text[i:].split("\n")
    at = 0
    for delimiter, quoted, strip in waiting:
        body = []
        while at < len(lines):
            line = lines[at]
            at += 1
            if (line.lstrip("\t") if strip else line).rstrip("\r") == delimiter:
                break
            body.append(line)
        bodies.append("\n".join(body))
        if not quoted:
            scripts.extend(_substitutions(bodies[-1]))
    waiting.clear()
    return min(i + sum(len(line) + 1 for line in lines[:at]), len(text))


def _substitutions(text: str) -> list[str]:
    """The scripts of the ``$(...)`` and backtick substitutions in ``text``."""
    found, i = [], 0
    while (i := min((j for j in (text.find("$(", i), text.find("`", i)) if j >= 0),
                    default=-1)) >= 0:
        script, i = _substitution(text, i)
        found.append(script)
    return found


def _substitution(text: str, i: int) -> tuple[str, int]:
    """The script of the ``$(...)`` or backtick substitution at ``i``, and where it ends (the
    end of the text when it is not closed)."""
    n = len(text)
    if text[i] == "`":
        end = i + 1
        while end < n and text[end] != "`":
            end += 2 if text[end] == "\\" else 1
        return text[i + 1:end], min(end + 1, n)
    depth, end = 1, i + 2
    while end < n:
        if text[end] == "\\":
            end += 1
        elif text[end] == "(":
            depth += 1
        elif text[end] == ")":
            depth -= 1
            if depth == 0:
                return text[i + 2:end], end + 1
        end += 1
    return text[i + 2:], n


_ANSI_C = re.compile(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)",
                     re.S)
_ANSI_C_CHARS = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
                 "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _ansi_c(raw: str) -> str:
    """The text of a ``$'...'`` string (``\\x72m`` is ``rm``)."""
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] in "xuU" and len(code) > 1:
            return chr(min(int(code[1:], 16), 0x10FFFF))
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        if code[0] == "c" and len(code) == 2:
            return chr(ord(code[1]) & 0x1F)
        return _ANSI_C_CHARS.get(code, "\\" + code)
    return _ANSI_C.sub(one, raw)


def _name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _expand(words: list[str], depth: int) -> Iterator[list[str]]:
    """The commands one simple command runs: itself without its wrappers, or the commands of
    the script it hands to a shell."""
    argv = _unwrap(words)
    if not argv:
        return
    if _name(argv[0]) in _SHELLS:
        script, _ = _shell(argv[1:])
        if script is not None:
            yield from commands(script, depth + 1)
            return
    yield argv


def _unwrap(words: list[str]) -> list[str]:
    """``words`` without the wrappers in front of the command; a command that hands a
    script to a shell (``eval``, ``su -c``, ``env -S``, ``watch``, ``ssh``) becomes
    ``sh -c script``."""
    argv = list(words)
    while argv:
        if _ASSIGNMENT.match(argv[0]):
            argv = argv[1:]
            continue
        name, args = _name(argv[0]), argv[1:]
        script = _script_of(name, args)
        if script is not None:
            return ["sh", "-c", script]
        if name not in _WRAPPERS:
            return argv
        argv = _after_options(args, *_WRAPPERS[name])
    return argv


def _after_options(args: list[str], takes_value: str, positional: int) -> list[str]:
    """The words after a wrapper's options and its positional arguments."""
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if a.startswith("--"):
            i += 2 if "=" not in a and a in _LONG_VALUES else 1
            continue
        if not a.startswith("-"):
            break
        i += 1
        for k, letter in enumerate(a[1:]):
            if letter in takes_value:
                i += k == len(a) - 2  # "-n 5" rather than "-n5"
                break
    return args[i + positional:]


def _option_value(args: list[str], short: str, long: str) -> str | None:
    """The value of ``-X value``, ``-Xvalue``, ``-abX value``, ``--long value`` or
    ``--long=value`` among ``args``."""
    for i, a in enumerate(args):
        if a == "--":
            return None
        if a == long or a.startswith(long + "="):
            return a.partition("=")[2] if "=" in a else (args[i + 1] if i + 1 < len(args)
                                                           else "")
        if a.startswith("-") and not a.startswith("--") and short in a[1:]:
            rest = a[a.index(short, 1) + 1:]
            return rest or (args[i + 1] if i + 1 < len(args) else "")
    return None


def _script_of(name: str, args: list[str]) -> str | None:
    """The script a command hands to a shell, if it is one that does."""
    if name == "eval":
        return " ".join(args)
    if name in ("su", "runuser"):
        return _option_value(args, "c", "--command")
    if name == "env":
        return _option_value(args, "S", "--split-string")
    if name == "watch":
        return " ".join(_after_options(args, "n", 0))
    if name == "ssh":
        rest = _after_options(args, "BbcDEeFIiJLlmOopQRSWw", 1)
        return " ".join(rest) if rest else None
    return None


def _shell(args: list[str]) -> tuple[str | None, bool]:
    """A shell's ``-c`` script, and whether it reads its commands from standard input."""
    command = stdin = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
        elif a.startswith("--command="):
            return a.partition("=")[2], False
        elif a == "--command":
            command = True
            i += 1
        elif a == "--":
            i += 1
            break
        elif a.startswith("--"):
            i += 1
        elif a[:1] in ("-", "+") and len(a) > 1:
            command |= a[0] == "-" and "c" in a
            stdin |= a[0] == "-" and "s" in a
            i += 1
        else:
            break
    rest = args[i:]
    if command:
        return (rest[0] if rest else ""), False
    return None, stdin or not rest


# -- judging ----------------------------------------------------------------------------

def _denied(argv: list[str]) -> bool:
    name, args = _name(argv[0]), argv[1:]
    if name == "rm":
        return _rm(args)
    if name == "git":
        return _git_rm(args)
    if name == "find":
        return _find(args)
    return False


def _long(word: str, option: str) -> bool:
    """``word`` is ``--option`` or an abbreviation of it (GNU getopt accepts those)."""
    name = word[2:].partition("=")[0]
    return bool(name) and option.startswith(name)


def _rm(args: list[str]) -> bool:
    recursive = force = no_preserve_root = False
    operands: list[str] = []
    options = True
    for a in args:
        if options and a == "--":
            options = False
        elif options and a.startswith("--"):
            recursive |= _long(a, "recursive")
            force |= _long(a, "force")
            no_preserve_root |= _long(a, "no-preserve-root")
        elif options and a.startswith("-") and len(a) > 1:
            recursive |= "r" in a or "R" in a
            force |= "f" in a
        else:
            operands.append(a)
    return recursive and (force or no_preserve_root or any(map(dangerous, operands)))


def _git_rm(args: list[str]) -> bool:
    i = 0
    while i < len(args) and args[i].startswith("-"):  # git's own options
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree", "--namespace",
                              "--config-env", "--super-prefix") else 1
    if args[i:i + 1] != ["rm"]:
        return False
    recursive = force = kept = False
    for a in args[i + 1:]:
        if a == "--":
            break
        if a.startswith("--"):
            force |= _long(a, "force")
            kept |= _long(a, "cached") or _long(a, "dry-run")
        elif a.startswith("-"):
            recursive |= "r" in a
            force |= "f" in a
            kept |= "n" in a
    return recursive and force and not kept


def _find(args: list[str]) -> bool:
    i = 0
    while i < len(args) and (args[i] in ("-H", "-L", "-P") or args[i].startswith("-O")
                             or args[i] == "-D"):
        i += 2 if args[i] == "-D" else 1
    starts = []
    while i < len(args) and not (args[i].startswith("-") or args[i] in ("(", ")", "!", ",")):
        starts.append(args[i])
        i += 1
    expression = args[i:]
    deletes = "-delete" in expression
    j = 0
    while j < len(expression):
        if expression[j] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = j + 1
            while end < len(expression) and expression[end] not in (";", "+"):
                end += 1
            for argv in _expand(expression[j + 1:end], 1):
                if _denied(argv):
                    return True
                deletes |= _name(argv[0]) == "rm"
            j = end
        j += 1
    return deletes and any(map(dangerous, starts))
