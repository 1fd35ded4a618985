from datetime import UTC, datetime, timedelta

from deliverability.charts import rate_chart_svg


def test_chart_is_self_contained_inline_svg():
    points = [(datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=i), 0.001 * i)
              for i in range(5)]
    svg = rate_chart_svg(title="Spam <complaints>", points=points, baseline=0.0004,
                         thresholds=[("0.1 %", 0.001), ("0.3 %", 0.003)])
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<script" not in svg
    assert "href=" not in svg and "src=" not in svg  # nothing fetched from elsewhere
    assert "<style" in svg
    assert "Spam &lt;complaints&gt;" in svg
    assert "Baseline" in svg and "0.3 %" in svg


def test_chart_without_points_says_so():
    svg = rate_chart_svg(title="Bounces", points=[], baseline=None, thresholds=[])
    assert "No events yet" in svg
