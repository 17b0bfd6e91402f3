"""Design storms and the recorded-rainfall reader."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.errors import BadInput
from twin.networks.rainfall import design_storm, idf_depth_mm, montana, read_rainfall


@pytest.mark.parametrize("shape", ["chicago", "double_triangle"])
def test_storm_depth_is_the_idf_depth(shape):
    rain = design_storm(2, 7200, 300, shape=shape)
    assert len(rain) == 24 and (rain >= 0).all()
    a, b = montana(2)
    assert (rain * 300 / 3600).sum() == pytest.approx(idf_depth_mm(a, b, 120), rel=1e-9)
    assert (rain * 300 / 3600).sum() == pytest.approx(22.82, abs=0.01)


def test_chicago_peak_holds_the_idf_intensity_of_its_step():
    a, b = montana(2)
    rain = design_storm(2, 7200, 300, peak_fraction=0.4)
    k = int(np.argmax(rain))
    assert k == 9                                    # the step holding 40 % of 2 h (48 min)
    # the heaviest 5 minutes carry at most the IDF's 5-minute depth
    assert rain[k] * 300 / 3600 <= idf_depth_mm(a, b, 5.0) + 1e-9
    assert design_storm(5, 7200, 300).sum() > rain.sum()


def test_out_of_table_return_period():
    with pytest.raises(BadInput, match="100 years is outside"):
        design_storm(100)


def test_arna_record_is_checked():
    path = shared_file("rainfall", "arna_prec5min_1954_1956.csv")
    with pytest.raises(BadInput, match=r"line 1737: missing rainfall value at 1954-12-21 08:00"):
        read_rainfall(path)
    dry = read_rainfall(path, gaps="dry")
    assert (dry * 300 / 3600).sum() == pytest.approx(1327.8, abs=0.05)      # README total
    assert dry.max() == pytest.approx(7.4 * 12)                           # 7.4 mm in 5 min
    day = read_rainfall(path, gaps="dry", start="1955-10-01", end="1955-10-31 23:55")
    assert (day * 300 / 3600).sum() == pytest.approx(202.5, abs=0.05)       # October 1955


def test_bad_rainfall_files(tmp_path):
    neg = tmp_path / "neg.csv"
    neg.write_text("date,prec\n2020-01-01 00:00,0.0\n2020-01-01 00:05,-0.2\n")
    with pytest.raises(BadInput, match=r"neg.csv, line 3: negative rainfall -0.2 mm"):
        read_rainfall(neg)
    gap = tmp_path / "gap.csv"
    gap.write_text("date,prec\n2020-01-01 00:00,0.1\n2020-01-01 00:05,0.2\n"
                   "2020-01-01 00:10,0.0\n2020-01-01 01:00,0.3\n")
    with pytest.raises(BadInput, match=r"gap.csv, line 5: a gap in the record"):
        read_rainfall(gap)
    text = tmp_path / "text.csv"
    text.write_text("date,prec\n2020-01-01 00:00,lots\n")
    with pytest.raises(BadInput, match=r"line 2: rainfall 'lots' is not a number"):
        read_rainfall(text)
    with pytest.raises(BadInput, match="unknown rainfall unit"):
        read_rainfall(gap, unit="inches")
