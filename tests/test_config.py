"""Settings live in one table; the README's table and the code agree; nothing else reads
the environment for a setting."""

from __future__ import annotations

import re

import pytest

from workbench import config

from .conftest import ROOT


def test_the_documented_configuration_table_is_the_settings_table():
    readme = (ROOT / "docs" / "configuration.md").read_text()
    section = readme.split("# Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(OBSERVATORY_\w+)` \| (`[^`]+`)? \| (.+) \|$", section, re.M)
    documented = {env: (flag.strip("`") or None, meaning) for env, flag, meaning in rows}
    expected = {s.env: (s.flag, s.meaning) for s in config.SETTINGS.values()}
    assert documented == expected


def test_no_module_reads_the_environment_for_a_setting():
    """Only config.py resolves settings (ci_env reads CI providers' own variables)."""
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        if path.name in {"config.py", "ci_env.py"}:
            continue
        text = path.read_text()
        for m in re.finditer(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[", text):
            offenders.append(f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}")
    assert offenders == []


def test_bad_number_in_a_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OBSERVATORY_WRITE_QUEUE", "lots")
    with pytest.raises(ValueError, match="OBSERVATORY_WRITE_QUEUE='lots' is not a whole number"):
        config.get("OBSERVATORY_WRITE_QUEUE")


def test_flag_beats_environment_beats_default(monkeypatch):
    monkeypatch.delenv("OBSERVATORY_REPORT_TZ", raising=False)
    assert config.report_tz() is None
    monkeypatch.setenv("OBSERVATORY_REPORT_TZ", "Europe/Berlin")
    assert config.report_tz() == "Europe/Berlin"
    assert config.report_tz("Asia/Tokyo") == "Asia/Tokyo"


def test_readme_mapping_table_is_the_genai_mapping():
    """The documented agent-field table is the table ingest maps attributes with."""
    from workbench.ingest.genai import mapping_rows

    readme = (ROOT / "docs" / "telemetry.md").read_text()
    rows = re.findall(r"^\| ([a-z_]+) \| (`.+`) \|$", readme, re.M)
    assert rows == mapping_rows()
