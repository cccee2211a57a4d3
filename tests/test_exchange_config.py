"""The [exchange] settings: defaults, environment overrides and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from nodeproc import dsgo, edit_config, free_port, init_node

from node.config import ConfigError, load_settings

OWNER = "EU.EORI.NL000000101"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return init_node(tmp_path / "node", OWNER, "Builder", free_port())


def test_defaults_and_overrides(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(config)
    assert settings.exchange_sign is True
    assert settings.exchange_accept_unsigned is True
    assert settings.exchange_max_skew == 300.0
    edit_config(config, {"exchange": {"accept_unsigned": False, "max_skew": 30}})
    settings = load_settings(config)
    assert settings.exchange_accept_unsigned is False and settings.exchange_max_skew == 30.0
    monkeypatch.setenv("DSGO_EXCHANGE_SIGN", "false")
    assert load_settings(config).exchange_sign is False


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"sign": "yes"}, "exchange.sign"),
        ({"accept_unsigned": 1}, "exchange.accept_unsigned"),
        ({"max_skew": -5}, "exchange.max_skew"),
        ({"max_skew": "long"}, "exchange.max_skew"),
    ],
)
def test_bad_exchange_settings_name_the_key(config: Path, changes: dict, key: str) -> None:
    edit_config(config, {"exchange": changes})
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert key in str(err.value)
    proc = dsgo("datasets", "--config", config, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dsgo: error:")]
    assert len(errors) == 1 and key in errors[0], proc.stderr
