"""SVG bar charts for the benchmark report, readable without the report:
the title says what is measured and which way is better, every target's
label is whole, an axis carries ticks and the unit, and every number of a
chart has the same format. Python's standard library only."""

import math

FONT = 12         # px, labels and numbers
TITLE_FONT = 14
BAR, GAP = 22, 8  # px per bar and between bars
PAD = 10

# Advance widths of sans-serif glyphs in em, near enough to DejaVu Sans and
# Helvetica to size a label column: too wide wastes room, too narrow clips.
_NARROW = set("fijlrtI!'|.,:;()[] ")
_WIDE = set("mwMW@%")


def text_width(s, size=FONT):
    """Width in px that s needs at this font size (an upper estimate)."""
    em = 0.0
    for c in s:
        if c in _NARROW:
            em += 0.36
        elif c in _WIDE:
            em += 0.95
        elif c.isupper():
            em += 0.72
        else:
            em += 0.62
    return em * size


TIME_UNITS = [("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)]


class Formatter:
    """One number format for a whole chart. A time unit (s, ms, µs) is
    rescaled so that the largest value reads between 1 and 1000; otherwise
    the decimals follow the largest value: 0 from 100 up, else 1, 2 or 3."""

    def __init__(self, vmax, unit):
        self.unit, self.factor = unit, 1.0
        base = dict(TIME_UNITS).get(unit)
        if base is not None and vmax > 0:
            seconds = vmax * base
            for name, size in TIME_UNITS:
                if seconds >= size or name == "µs":
                    self.unit, self.factor = name, base / size
                    break
        v = vmax * self.factor
        self.decimals = 0 if v >= 100 else 1 if v >= 10 else 2 if v >= 1 else 3

    def __call__(self, v, decimals=None):
        d = self.decimals if decimals is None else decimals
        return f"{v * self.factor:,.{d}f}"


def nice_ticks(vmax, n=5):
    """Round tick values from 0 to at least vmax, about n of them."""
    if vmax <= 0:
        return [0.0, 1.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = math.ceil(vmax / step - 1e-9)
    return [i * step for i in range(count + 1)]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def direction_text(better):
    return {"lower": "lower is better", "higher": "higher is better"}.get(better, better or "")


def svg_bars(title, vals, unit="", better=None, note="median bar, min–max whisker"):
    """A horizontal bar per target: its median, with a min–max whisker.

    title: what is measured; unit: the values' unit ("ms", "µs", "s", "%",
    "MiB", "" for a count or a ratio); better: "lower", "higher" or a short
    phrase; vals: [(target, (median, min, max) or None)]. Returns the SVG text."""
    present = [a for _, a in vals if a]
    vmax = max([max(0.0, a[2]) for a in present] + [0.0])
    ticks = nice_ticks(vmax)
    fmt = Formatter(ticks[-1] if vmax > 0 else 0, unit)
    # Tick labels need fewer decimals than values when the steps are round.
    step = ticks[1] - ticks[0]
    tick_dec = 0
    while tick_dec < 6 and abs(round(step * fmt.factor, tick_dec) - step * fmt.factor) > 1e-9:
        tick_dec += 1

    left = PAD + max([text_width(t) for t, _ in vals] + [0]) + 10
    value_room = max([text_width(fmt(a[0])) for a in present] + [text_width("n/a")]) + 12
    plot = 420
    subtitle = " · ".join(x for x in (direction_text(better),
                                      f"unit: {fmt.unit}" if fmt.unit else "", note) if x)
    w = int(max(left + plot + value_room + PAD, PAD * 2 + text_width(title, TITLE_FONT),
                PAD * 2 + text_width(subtitle)))
    top = 56
    axis_y = top + len(vals) * (BAR + GAP)
    h = axis_y + 48
    scale = plot / ticks[-1]

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
           f'font-size="{FONT}">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{PAD}" y="20" font-size="{TITLE_FONT}" font-weight="bold">'
           f'{esc(title)}</text>',
           f'<text x="{PAD}" y="38" fill="#444">{esc(subtitle)}</text>']
    for t in ticks:
        x = left + t * scale
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" '
                   f'y2="{axis_y}" stroke="#e4e4e4"/>')
        out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" '
                   f'y2="{axis_y + 5}" stroke="black"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{axis_y + 18}" text-anchor="middle">'
                   f'{fmt(t, tick_dec)}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{left + plot}" y1="{axis_y}" '
               f'y2="{axis_y}" stroke="black"/>')
    axis_title = f"{title.split(': ', 1)[-1]}" + (f" ({fmt.unit})" if fmt.unit else "")
    out.append(f'<text class="axis-title" x="{left + plot / 2:.1f}" y="{axis_y + 36}" '
               f'text-anchor="middle" fill="#444">{esc(axis_title)}</text>')
    for i, (t, a) in enumerate(vals):
        y = top + i * (BAR + GAP)
        ty = y + BAR * 0.7
        out.append(f'<text class="label" x="{left - 8:.1f}" y="{ty:.1f}" '
                   f'text-anchor="end">{esc(t)}</text>')
        if not a:
            out.append(f'<text x="{left + 4:.1f}" y="{ty:.1f}" fill="#777">n/a</text>')
            continue
        med, lo, hi = (max(0.0, v) for v in a)
        color = "#2b7bb9" if t.startswith("braced") else "#999999"
        out.append(f'<rect x="{left}" y="{y}" width="{med * scale:.1f}" height="{BAR}" '
                   f'fill="{color}"/>')
        cy = y + BAR / 2
        x1, x2 = left + lo * scale, left + hi * scale
        out.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{cy}" y2="{cy}" stroke="black"/>')
        for x in (x1, x2):
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{cy - 5}" y2="{cy + 5}" '
                       f'stroke="black"/>')
        out.append(f'<text class="value" x="{left + max(med, hi) * scale + 6:.1f}" '
                   f'y="{ty:.1f}">{fmt(a[0])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
