"""The compiled OTLP decoder (rca/ingest/_otlp_wire.c); everything else is in pyproject.toml.

Optional: without a C compiler the package installs and decodes in Python (slower, the same
samples).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rca.ingest._otlp_wire",
            ["rca/ingest/_otlp_wire.c"],
            # No fused multiply-add: the histogram quantiles must round as Python's do.
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
