"""Draw `segdemo bench-session` results: the share of each image's pixels the person repaints, in the order
worked, with the loop and without it (the starting model on the same images), fine-tunes marked.

    python -m segdemo bench-session ... --json | tail -1 > camvid.json
    python -m benchmarks.session_curve camvid.json pets.json --out docs/session_curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

WITH_LOOP, WITHOUT = (214, 39, 40), (140, 140, 140)


def draw_panel(row: dict, width: int = 560, height: int = 300, margin: int = 48) -> Image.Image:
    """One session: error per image with (red) and without (grey) the loop; dashed lines at each fine-tune."""
    panel = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(panel)
    count = len(row["errors"])
    top = max(0.2, max(row["errors"] + row["errors_no_loop"]) * 1.05)
    x = lambda i: margin + (width - 2 * margin) * i / max(1, count - 1)
    y = lambda e: height - margin - (height - 2 * margin) * e / top
    for tick in range(0, int(top * 10) + 1):
        value = tick / 10
        pen.line([(margin, y(value)), (width - margin, y(value))], fill=(232, 232, 232))
        pen.text((8, y(value) - 6), f"{value:.0%}", fill="black")
    for tune in row["finetunes"]:
        position = x(tune["after"] - 0.5)
        for start in range(margin, height - margin, 8):
            pen.line([(position, start), (position, start + 4)], fill=(44, 160, 44) if tune["promoted"] else (200, 200, 200))
    for series, color in ((row["errors_no_loop"], WITHOUT), (row["errors"], WITH_LOOP)):
        pen.line([(x(i), y(e)) for i, e in enumerate(series)], fill=color, width=2)
    title = (f"{row['model']} · {Path(row['data']).name} [{row['split']}] · {row['order']} · effort ratio "
             f"{row['effort_ratio']} · last 10: {row['last10_error']:.1%}")
    pen.text((margin, 10), title, fill="black")
    pen.text((margin, 24), "with the loop", fill=WITH_LOOP)
    pen.text((margin + 100, 24), "without (starting model)", fill=WITHOUT)
    pen.text((margin + 270, 24), "| fine-tune (green: promoted)", fill=(44, 160, 44))
    pen.text((width // 2 - 70, height - margin + 16), "image, in the order worked", fill="black")
    return panel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files: the last line of bench-session --json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    panels = [draw_panel(json.loads(path.read_text().strip().splitlines()[-1])) for path in args.results]
    sheet = Image.new("RGB", (panels[0].width, sum(p.height for p in panels)), "white")
    for index, panel in enumerate(panels):
        sheet.paste(panel, (0, index * panel.height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
