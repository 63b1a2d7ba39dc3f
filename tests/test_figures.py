"""The study figures' number labels: one per point, none covering
another."""

import itertools

from vaekeras.reporting import defenses_figures
from vaekeras.reporting.common import pyplot


def _label_boxes(ax):
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    return {
        t.get_text(): t.get_window_extent(renderer)
        for t in ax.texts if t.get_text().isdigit()
    }


def test_numbers_in_a_cluster_do_not_overlap():
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    # Six models within a marker's width of each other, one far away.
    xs = [0.020, 0.0201, 0.0202, 0.0203, 0.0199, 0.0198, 0.004]
    ys = [0.016, 0.0161, 0.0159, 0.016, 0.0162, 0.0158, 0.004]
    ax.plot(xs, ys, "o")
    ax.set_xscale("log")
    ax.set_yscale("log")
    points = [(i, x, y, f"model {i}")
              for i, (x, y) in enumerate(zip(xs, ys), start=1)]
    defenses_figures._number(ax, points)
    boxes = _label_boxes(ax)
    assert sorted(boxes, key=int) == [str(i) for i in range(1, 8)]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not box_a.overlaps(box_b), (a, b)
    # The lone point keeps the first place: up and to the right.
    lone = boxes["7"]
    px, py = ax.transData.transform((0.004, 0.004))
    assert lone.x0 > px and lone.y0 > py
    plt.close(fig)


def test_overlap_of_boxes():
    assert defenses_figures._overlap((0, 0, 2, 2), (1, 1, 3, 3))
    assert not defenses_figures._overlap((0, 0, 1, 1), (1, 0, 2, 1))
    assert not defenses_figures._overlap((0, 0, 1, 1), (0, 2, 1, 3))
