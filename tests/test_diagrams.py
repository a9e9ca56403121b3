"""The schematics draw, cover every chapter, and keep their labels apart and on the canvas."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dendnotes import diagrams  # noqa: E402

ALL = [function for functions in diagrams.SCHEMATICS.values() for function in functions]


def test_every_chapter_has_a_schematic():
    assert sorted(diagrams.SCHEMATICS) == list(range(1, 8))


def label_boxes(fig: Figure):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts] + list(fig.texts)
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_text().strip()]


@pytest.mark.parametrize("draw", ALL, ids=lambda f: f.__name__)
def test_labels_do_not_overlap_and_stay_on_the_figure(draw):
    fig = draw()
    try:
        assert isinstance(fig, Figure)
        boxes = label_boxes(fig)
        assert len(boxes) >= 4, "a schematic without labels"
        width, height = fig.bbox.width, fig.bbox.height
        for text, box in boxes:
            assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, text
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            overlap_w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert overlap_w <= 1 or overlap_h <= 1, f"labels overlap: {a!r} and {b!r}"
    finally:
        plt.close(fig)


def test_obstacle_table_rejects_an_unknown_mark():
    with pytest.raises(ValueError, match="for each of the 3 obstacles"):
        diagrams.obstacles_by_rule({"BP": ("needs", "maybe", "needs")})
    with pytest.raises(ValueError, match="for each of the 3 obstacles"):
        diagrams.obstacles_by_rule({"BP": ("needs",)})
