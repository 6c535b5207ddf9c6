"""The local monitoring stack: both services, Prometheus, Alertmanager and an SMTP sink.

``invoke stack-up`` / ``stack-status`` / ``stack-down`` are thin tasks over :func:`up`,
:func:`status` and :func:`down`. Every component is a background process on 127.0.0.1
(``background.py``); their pids, URLs and logs live in one state folder (``.stack/``), next
to the configs rendered from the templates of ``deploy/local/`` and the mails the sink saved.
Prometheus loads ``configs/monitoring/alert_rules.yaml`` itself, or with ``fast`` a copy in
which only the ``for:`` durations are shorter (:func:`shorten_rules`).
"""

from __future__ import annotations

import json
import shutil
import smtplib
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from titanic_mlops import background
from titanic_mlops.api import local_server
from titanic_mlops.api.local_server import DRIFT_SOURCE, HOST, command
from titanic_mlops.monitoring import rules
from titanic_mlops.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "deploy" / "local"
STATE_DIR = PROJECT_ROOT / ".stack"
STATE_FILE = "stack.json"
BINARIES = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),  # Debian's name, brew's name
}
INSTALL = (
    "install it with `sudo apt-get install prometheus prometheus-alertmanager` (Debian, "
    "Ubuntu) or `brew install prometheus alertmanager` (macOS)"
)


class StackError(RuntimeError):
    """The stack cannot start; the message is one line."""


@dataclass(frozen=True)
class Component:
    """One background process of the stack (``pid`` 0: not started)."""

    name: str
    argv: list[str]
    url: str  # what stack-up prints
    health: str = ""  # polled: an http URL, smtp://host:port, or "" (the process is alive)
    any_status: bool = False  # a service answering 503 (no model yet) is up nonetheless
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0


def find_binary(name: str) -> str:
    """Path of the ``prometheus`` or ``alertmanager`` binary; StackError says how to install."""
    for candidate in BINARIES[name]:
        if found := shutil.which(candidate):
            return found
    raise StackError(f"{name} not found on PATH ({' or '.join(BINARIES[name])}): {INSTALL}")


def load_config(fast: bool = False, path: Path = CONFIG_DIR / "stack.yaml") -> dict:
    """``deploy/local/stack.yaml`` with its ``fast`` or ``default`` profile merged in."""
    config = yaml.safe_load(path.read_text())
    return {**config, **config["profiles"]["fast" if fast else "default"]}


def shorten_rules(text: str, max_for: str) -> str:
    """The rule file with every ``for:`` above ``max_for`` cut to it; nothing else changes."""
    doc, limit = yaml.safe_load(text), rules.parse_duration(max_for)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and rules.parse_duration(rule.get("for", "0s")) > limit:
                rule["for"] = max_for
    header = f"# GENERATED from {rules.RULES_FILE.name}: every `for:` at most {max_for}\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=10_000, allow_unicode=True)


def render(name: str, values: dict[str, object]) -> str:
    """The template ``deploy/local/<name>`` with its ``${key}`` placeholders filled in."""
    return string.Template((CONFIG_DIR / name).read_text()).substitute(values)


def choose_ports(config: dict, free_ports: bool) -> dict[str, int]:
    """The configured ports (StackError if one is taken), or free ones."""
    if free_ports:
        names = list(config["ports"])
        return dict(zip(names, local_server.free_ports(len(names)), strict=True))
    for name, port in config["ports"].items():
        try:
            local_server.check_port_free(int(port))
        except local_server.PortInUse:
            raise StackError(
                f"port {port} ({name}) on {HOST} is in use: stop what runs there, change it "
                f"in {CONFIG_DIR / 'stack.yaml'}, or use --free-ports"
            ) from None
    return {name: int(port) for name, port in config["ports"].items()}


def write_configs(config: dict, ports: dict[str, int], folder: Path) -> dict[str, Path]:
    """Render prometheus.yml, alertmanager.yml (and a shortened rule copy) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"rules": rules.RULES_FILE}
    if config["max_for"]:
        files["rules"] = folder / "alert_rules.yaml"
        files["rules"].write_text(shorten_rules(rules.RULES_FILE.read_text(), config["max_for"]))
    values = {**config, **{f"{k}_port": p for k, p in ports.items()}, "rule_file": files["rules"]}
    values.update(mail_to=config["mail"]["to"], mail_from=config["mail"]["from"])
    for name in ("prometheus", "alertmanager"):
        files[name] = folder / f"{name}.yml"
        files[name].write_text(render(f"{name}.yml", values))
    return files


def plan(
    storage: str, state: Path, fast: bool = False, free_ports: bool = False
) -> list[Component]:
    """Check the binaries and ports, write the configs into ``state``; the components in order."""
    config = load_config(fast)
    binary = {name: find_binary(name) for name in BINARIES}
    port = choose_ports(config, free_ports)
    url = {name: f"http://{HOST}:{p}" for name, p in port.items()}
    files = write_configs(config, port, state / "config")
    env = {**config["service_env"], "STORAGE_URI": storage, "PYTHONUNBUFFERED": "1"}
    mail, py = f"smtp://{HOST}:{port['mail']}", [sys.executable, "-m"]
    am, prom = url["alertmanager"], url["prometheus"]
    components = [
        Component("mail", [*py, "titanic_mlops.mail_sink", "--port", str(port["mail"]),
                           "--dir", str(state / "mail")], f"{mail} -> {state / 'mail'}/", mail),
        Component("alertmanager", [binary["alertmanager"], f"--config.file={files['alertmanager']}",
                                   f"--storage.path={state / 'alertmanager-data'}",
                                   f"--web.listen-address={HOST}:{port['alertmanager']}",
                                   f"--web.external-url={am}", "--cluster.listen-address="],
                  am, f"{am}/-/ready"),
        Component("api", command(port["api"]), url["api"], f"{url['api']}/health", True, env),
        Component("drift", command(port["drift"], "drift_check", DRIFT_SOURCE), url["drift"],
                  f"{url['drift']}/health", True, env),
        Component("prometheus", [binary["prometheus"], f"--config.file={files['prometheus']}",
                                 f"--storage.tsdb.path={state / 'prometheus-data'}",
                                 f"--web.listen-address={HOST}:{port['prometheus']}",
                                 f"--web.external-url={prom}"], prom, f"{prom}/-/ready"),
    ]  # fmt: skip
    if every := config["drift_every_seconds"]:
        check = f"{url['drift']}/?n_latest={config['drift_n_latest']}"
        argv = [*py, __name__, check, str(every)]
        components.append(Component("drift-schedule", argv, f"GET {check} every {every} s"))
    return components


def probe(component: Component) -> tuple[bool, str]:
    """(healthy, what it answered) for one started component."""
    if not background.alive(component.pid):
        return False, "down"
    try:
        if component.health.startswith("smtp://"):
            host, port = component.health.removeprefix("smtp://").split(":")
            smtplib.SMTP(host, int(port), timeout=2).quit()
        elif component.health:
            urllib.request.urlopen(component.health, timeout=2).close()
    except urllib.error.HTTPError as err:
        note = " (no loadable model)" if err.code == 503 and component.any_status else ""
        return component.any_status, f"up, answers HTTP {err.code}{note}"
    except (OSError, smtplib.SMTPException):
        return False, "not answering"
    return True, "up"


def up(
    storage: str,
    state: Path = STATE_DIR,
    fast: bool = False,
    free_ports: bool = False,
    timeout: float = 120.0,
    echo: Callable[[str], None] = print,
) -> list[Component]:
    """Start every component in the background; wait until each is healthy (echoing it)."""
    state = Path(state).resolve()
    if any(background.alive(c.pid) for c in read_state(state)):
        raise StackError(f"a stack is already running from {state}: stack-status, or stack-down")
    if "://" not in storage:
        storage = str(Path(storage).resolve())
        if not Path(storage, "registry").is_dir():
            raise StackError(f"no registry under {storage}: run `invoke quickstart --no-serve`")
    started = [start(c, state) for c in plan(storage, state, fast, free_ports)]
    write_state(state, started)
    deadline = time.monotonic() + timeout
    for component in started:
        while not (answer := probe(component))[0]:
            if answer[1] == "down" or time.monotonic() > deadline:
                down(state)
                raise StackError(f"{component.name} did not start: {last_line(state, component)}")
            time.sleep(0.1)
        echo(line(component, *answer))
    return started


def line(component: Component, healthy: bool, answer: str) -> str:
    """One component as stack-up and stack-status print it."""
    return f"  {component.name:<14} {'UP' if healthy else 'DOWN':<5} {component.url}  ({answer})"


def status(state: Path = STATE_DIR) -> list[tuple[Component, bool, str]]:
    """Each component of the stack in ``state`` with (healthy, what it answered)."""
    return [(c, *probe(c)) for c in read_state(Path(state))]


def down(state: Path = STATE_DIR, grace: float = 15.0) -> list[str]:
    """Stop every component (SIGTERM, SIGKILL after ``grace`` s); the names that were running."""
    running = [c for c in read_state(Path(state)) if background.alive(c.pid)]
    background.stop([c.pid for c in reversed(running)], grace)
    (Path(state) / STATE_FILE).unlink(missing_ok=True)
    return [c.name for c in running]


def restart(state: Path, name: str, timeout: float = 60.0) -> Component:
    """Stop one component and start it again as it was (a new instance); wait until healthy."""
    components = read_state(Path(state))
    old = next(c for c in components if c.name == name)
    background.stop([old.pid])
    new = start(old, Path(state))
    write_state(Path(state), [new if c.name == name else c for c in components])
    deadline = time.monotonic() + timeout
    while not probe(new)[0]:
        if time.monotonic() > deadline:
            raise StackError(f"{name} did not restart: {last_line(Path(state), new)}")
        time.sleep(0.1)
    return new


def banner(components: list[Component], state: Path) -> str:
    """What to do with a started stack: graphs, alerts, mails, traffic, a drift check."""
    url = {c.name: c.url for c in components}
    graph = 'sum by (status) (rate(titanic_requests_total{route="/"}[1m]))'
    return (
        f"\nPrometheus graph  {url['prometheus']}/graph?g0.expr={urllib.parse.quote(graph)}\n"
        f"Alerts            {url['prometheus']}/alerts   (Alertmanager: {url['alertmanager']})\n"
        f"Alert mails       {Path(state) / 'mail'}/*.eml\n"
        f"Traffic           uv run invoke simulate-traffic --url {url['api']} --shift class\n"
        f"Drift check       curl -s '{url['drift']}/?n_latest=500'   (sets the drift gauges)\n"
        f"Logs, configs     {Path(state) / 'logs'}, {Path(state) / 'config'}\n"
        "Status, stop      uv run invoke stack-status / stack-down"
    )


def start(component: Component, state: Path) -> Component:
    """Start ``component`` in the background (log: ``<state>/logs/<name>.log``)."""
    pid = background.spawn(component.argv, component.env, log_path(state, component), state)
    return replace(component, pid=pid)


def log_path(state: Path, component: Component) -> Path:
    return Path(state) / "logs" / f"{component.name}.log"


def last_line(state: Path, component: Component) -> str:
    """The last line a component logged, and where its log is (for one-line errors)."""
    log = log_path(state, component)
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    return f"{lines[-1][:300] if lines else '(no output)'} (log: {log})"


def read_state(state: Path) -> list[Component]:
    """The components recorded in ``state`` (none if no stack was started there)."""
    path = Path(state) / STATE_FILE
    if not path.is_file():
        return []
    return [Component(**c) for c in json.loads(path.read_text())["components"]]


def write_state(state: Path, components: list[Component]) -> None:
    text = json.dumps({"components": [asdict(c) for c in components]}, indent=1)
    (Path(state) / STATE_FILE).write_text(text)


def drift_every(check_url: str, seconds: float) -> None:
    """The drift scheduler: GET ``check_url`` every ``seconds`` and log the verdict (forever)."""
    while True:
        time.sleep(seconds)
        try:
            with urllib.request.urlopen(check_url, timeout=600) as answer:
                body = json.loads(answer.read())
            print(f"drift check: {body.get('status')}, drift={body.get('dataset_drift')}")
        except (OSError, ValueError) as exc:
            print(f"drift check failed: {exc}")
        sys.stdout.flush()


if __name__ == "__main__":  # python -m titanic_mlops.local_stack CHECK_URL SECONDS
    drift_every(sys.argv[1], float(sys.argv[2]))
