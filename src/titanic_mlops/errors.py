"""Which errors are the project's expected failures, and how they read in one line.

The command line (``tasks.py``) prints these as one line and exits 1; anything else is a
bug and keeps its traceback. Imported only when an error happens (nothing heavy here).
"""

from __future__ import annotations


def _expected_types() -> tuple[type[BaseException], ...]:
    from titanic_mlops.bundle import BundleIntegrityError, NoDriftReference
    from titanic_mlops.registry import RegistryError
    from titanic_mlops.schema import SchemaError
    from titanic_mlops.settings import SettingsError
    from titanic_mlops.storage import StorageError

    found: list[type[BaseException]] = [
        BundleIntegrityError,
        NoDriftReference,
        RegistryError,
        SchemaError,
        SettingsError,
        StorageError,
        ConnectionError,
        FileNotFoundError,
        PermissionError,
        TimeoutError,
    ]
    try:  # training-side errors exist only where pandas and hydra are installed
        from titanic_mlops.config_schema import ConfigError
        from titanic_mlops.data import RawDataError

        found += [RawDataError, ConfigError]
    except ImportError:
        pass
    return tuple(found)


def expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure a user can cause and fix (not a bug)."""
    if isinstance(exc, _expected_types()):
        return True
    # google-cloud errors (no credentials, no bucket, permission denied) are the user's setup
    module = type(exc).__module__
    return module.startswith(("google.api_core", "google.auth", "google.cloud"))


def one_line(exc: BaseException) -> str:
    """The error's own message, on one line, without the traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"{exc.filename}: no such file"
    return text
