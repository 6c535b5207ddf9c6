"""The README's example answers are what the service answers (the trained model here is the
one `quickstart` trains: same data, config and seed)."""

import itertools
import re
import shlex

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def examples() -> list[tuple[str, str]]:
    """(request body, shown answer) for each `curl … -d '<body>'` followed by `# <answer>`."""
    found = []
    lines = README.splitlines()
    for line, following in itertools.pairwise(lines):
        if line.startswith("curl ") and " -d " in line and following.startswith("# "):
            args = shlex.split(line.split("#", 1)[0])
            found.append((args[args.index("-d") + 1], following[2:].strip()))
    return found


def as_pattern(shown: str) -> re.Pattern:
    """The shown answer with each … standing for any text."""
    return re.compile(".*?".join(re.escape(part) for part in shown.split("…")) + "$", re.S)


def test_the_readme_shows_examples():
    assert len(examples()) >= 2


def test_every_example_answer_is_what_the_service_answers(make_client):
    client, _ = make_client(PREDICTION_LOG_ENABLED="false")
    for body, shown in examples():
        status = 200
        if re.match(r"^\d{3} ", shown):
            status, shown = int(shown[:3]), shown[4:]
        response = client.post("/", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, (body, response.text)
        assert as_pattern(shown).match(response.text), (shown, response.text)
