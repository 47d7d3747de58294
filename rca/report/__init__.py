"""The incident report: one self-contained HTML page per incident with PNG pictures
(:mod:`rca.report.figures`) embedded as data URIs, so it opens anywhere, also offline."""

from rca.report.html import render_report

__all__ = ["render_report"]
