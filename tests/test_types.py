import pytest

from rca.types import RankedCause, RCAResult, SeriesKey, parse_series_name, series_name


@pytest.mark.parametrize(
    "key",
    [
        SeriesKey("carts", "container.cpu.utilization"),
        SeriesKey("front-end", "http.server.request.duration", "p90"),
        SeriesKey("gpu-worker", "hw.gpu.utilization", None, (("gpu.id", "0"),)),
        SeriesKey("payforadoption_AWS::ECS::Container", "latency", "p99"),
        SeriesKey("PetAdoptionStatusUpdater/prod_AWS::ApiGateway::Stage", "latency", "mean"),
        SeriesKey("vllm-0", "vllm:time_to_first_token_seconds", "p50", (("model", "a=b,c{d}"),)),
    ],
)
def test_series_name_round_trips(key):
    assert parse_series_name(key.name) == key


def test_series_name_format_is_readable():
    assert series_name("carts", "container.cpu.utilization") == "carts:container.cpu.utilization"
    assert series_name("a", "m", "p99", {"k": "v"}) == "a:m:p99{k=v}"


@pytest.mark.parametrize("bad", ["carts", "a:b:c:d", ":metric", "svc:", "a:m{novalue}"])
def test_parse_rejects_names_it_did_not_make(bad):
    with pytest.raises(ValueError):
        parse_series_name(bad)


def test_series_name_needs_service_and_metric():
    with pytest.raises(ValueError):
        series_name("", "cpu")


def test_result_services_take_the_best_series():
    result = RCAResult(
        "x",
        [
            RankedCause("b:cpu", "b", 5.0),
            RankedCause("a:cpu", "a", 3.0),
            RankedCause("b:mem", "b", 9.0),
        ],
    )
    assert result.services() == [("b", 9.0), ("a", 3.0)]
