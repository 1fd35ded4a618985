from datetime import UTC, datetime, timedelta

from deliverability.charts import Point, rate_chart_svg


def test_chart_is_self_contained_inline_svg():
    points = [Point(when=datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=i),
                    rate=0.001 * i, volume=500, before=i < 2) for i in range(5)]
    svg = rate_chart_svg(title="Spam <complaints>", points=points, baseline=0.0004,
                         thresholds=[("0.1 %", 0.001), ("0.3 %", 0.003)])
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "<script" not in svg
    assert "href=" not in svg and "src=" not in svg  # nothing fetched from elsewhere
    assert "<style" in svg
    assert "Spam &lt;complaints&gt;" in svg
    assert "Baseline" in svg and "0.3 %" in svg
    assert "Before the incident" in svg and "After the incident" in svg


def test_low_volume_buckets_are_gaps_not_spikes():
    when = datetime(2026, 11, 20, tzinfo=UTC)
    svg = rate_chart_svg(title="x", points=[Point(when=when, rate=0.5, volume=3),
                                            Point(when=when, rate=0.002, volume=900)],
                         baseline=None, thresholds=[])
    assert "50.00 %" not in svg and "0.20 %" in svg


def test_chart_without_points_says_so():
    svg = rate_chart_svg(title="Bounces", points=[], baseline=None, thresholds=[])
    assert "No events yet" in svg
