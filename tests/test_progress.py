"""The bench's progress off a terminal (CI logs, ``| tee``): log lines with counts, real rates
and an ETA; on a terminal, the bar."""

import io

from rca.eval.progress import CaseProgress, rate_text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_line_after_the_first_case_every_ten_seconds_and_the_last():
    # The clock at the start, then after each of 5 cases (slow ones: the rate is per case).
    ticks = iter([0.0, 30.0, 33.0, 36.0, 44.0, 50.0])
    log = io.StringIO()
    report = CaseProgress("rcd-sockshop", 5, stream=log, clock=lambda: next(ticks))
    for _ in range(5):
        report.advance("AC@1 run=1.00")
    report.close()
    assert log.getvalue().splitlines() == [
        "rcd-sockshop: 1/5 cases, 30.0 s/case, ETA 2 min, AC@1 run=1.00",
        "rcd-sockshop: 4/5 cases, 11.0 s/case, ETA 11 s, AC@1 run=1.00",
        "rcd-sockshop: 5/5 cases in 50 s, 10.0 s/case, AC@1 run=1.00",
    ]


def test_rates_below_one_case_a_second_are_never_zero():
    assert rate_text(1, 65.0) == "65.0 s/case"
    assert rate_text(20, 15.0) == "1.3 cases/s"


def test_on_a_terminal_the_bar_is_drawn_and_no_log_lines():
    screen = Terminal()
    report = CaseProgress("synthetic", 3, stream=screen)
    for _ in range(3):
        report.advance("AC@1 nsigma=1.00")
    report.close()
    drawn = screen.getvalue()
    assert "\r" in drawn and "3/3" in drawn and "ETA" not in drawn
