"""Zero loss: N concurrent predictions, then a graceful SIGTERM; the log holds exactly N.

The same check as benchmarks/serve_bench.py, here against fake-gcs-server (real client).
"""

import pytest

from benchmarks.serve_bench import zero_loss_check
from tests.conftest import register_production

pytestmark = pytest.mark.integration


def test_no_prediction_record_is_lost_or_duplicated(gcs_uri, trained):
    register_production(gcs_uri, trained.files)
    result = zero_loss_check(gcs_uri, n=5000, clients=32, extra_env={"WORKERS": "2"})
    assert result["exit_code"] == 0
    assert result["sent"] == 5000
    assert result["missing"] == 0 and result["duplicates"] == 0
    # every sent id is logged once; the only extra record is the readiness probe's
    assert result["logged"] == result["distinct_logged"] == 5000 + result["extra"]
    assert result["extra"] == 1
