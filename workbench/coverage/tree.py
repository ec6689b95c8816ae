"""The coverage map: a report's files grouped into folders, one level at a time, and laid out
as a treemap (area = statements, colour = coverage).

One level at a time so that a project of 10,000 files costs one vectorised group-by per
click, never a layout of every file at once; a level with more tiles than can be read is cut
to its largest and one "more" tile.
"""

from __future__ import annotations

import pandas as pd
import squarify

#: Tiles drawn at one level at most; the rest become one tile (smaller than all of these).
MAX_TILES = 400

_COLUMNS = ["name", "path", "kind", "files", "statements", "covered", "missing", "percent"]


def children(files: pd.DataFrame, folder: str = "") -> pd.DataFrame:
    """The folders and files directly under ``folder`` ("" for the top) of a report's
    ``coverage_files`` rows, with their totals, largest first. A folder holding one folder
    and nothing else is skipped over (``src/`` then ``src/pkg/`` is shown as ``src/pkg``)."""
    while True:
        level = _level(files, folder)
        if len(level) == 1 and level["kind"].iat[0] == "folder":
            folder = level["path"].iat[0]
            continue
        return level


def _level(files: pd.DataFrame, folder: str) -> pd.DataFrame:
    prefix = folder.rstrip("/") + "/" if folder else ""
    sub = files[files["path"].str.startswith(prefix)] if prefix else files
    if sub.empty:
        return pd.DataFrame(columns=_COLUMNS)
    rest = sub["path"].str.slice(len(prefix))
    parts = rest.str.split("/", n=1)
    df = pd.DataFrame({
        "name": parts.str[0].to_numpy(),
        "kind": ["folder" if len(p) > 1 else "file" for p in parts],
        "statements": sub["statements"].fillna(0).astype(int).to_numpy(),
        "covered": sub["covered"].fillna(0).astype(int).to_numpy(),
    })
    out = df.groupby(["name", "kind"], as_index=False, sort=False).agg(
        files=("name", "size"), statements=("statements", "sum"), covered=("covered", "sum"))
    out["path"] = prefix + out["name"]
    out["missing"] = out["statements"] - out["covered"]
    out["percent"] = (100.0 * out["covered"] / out["statements"].where(out["statements"] > 0)
                      ).round(2)
    out = out.sort_values(["statements", "name"], ascending=[False, True], ignore_index=True)
    return out[_COLUMNS]


def layout(level: pd.DataFrame, width: float = 100.0, height: float = 60.0,
           max_tiles: int = MAX_TILES) -> pd.DataFrame:
    """Rectangles (``x``, ``y``, ``dx``, ``dy``) for a level's rows, squarified so that tiles
    stay near square; rows without statements get no tile. Beyond ``max_tiles`` the smallest
    rows merge into one tile of kind ``more``."""
    rows = level[level["statements"] > 0]
    if len(rows) > max_tiles:
        head, tail = rows.iloc[: max_tiles - 1], rows.iloc[max_tiles - 1:]
        more = {"name": f"… {len(tail)} more", "path": "", "kind": "more",
                "files": int(tail["files"].sum()), "statements": int(tail["statements"].sum()),
                "covered": int(tail["covered"].sum())}
        more["missing"] = more["statements"] - more["covered"]
        more["percent"] = round(100.0 * more["covered"] / more["statements"], 2)
        rows = pd.concat([head, pd.DataFrame([more])], ignore_index=True)
    rows = rows.sort_values("statements", ascending=False, ignore_index=True)
    if rows.empty:
        return rows.assign(x=[], y=[], dx=[], dy=[])
    sizes = squarify.normalize_sizes(rows["statements"].astype(float).tolist(), width, height)
    rects = pd.DataFrame(squarify.squarify(sizes, 0.0, 0.0, width, height))
    return pd.concat([rows, rects[["x", "y", "dx", "dy"]]], axis=1)
