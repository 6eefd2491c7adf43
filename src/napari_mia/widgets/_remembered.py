"""The Train Model dock's settings, remembered between napari sessions.

Two files in the user's configuration folder (``platformdirs``' user config dir, e.g.
``~/.config/napari-mia`` on Linux; ``$NAPARI_MIA_CONFIG_DIR`` instead when set, as the tests do):

- ``settings.yaml``: every setting of the dock, written by ``Settings.save``, so it is a normal settings
  file (``napari-mia train --config``) and a model's settings and these read the same way;
- ``prediction.json``: the Prediction section's options, which are not model settings.

Remembering is a convenience: a file that cannot be written, read or understood (damaged, or written by
another version) is passed over with a warning in the log, and the dock opens with its defaults.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from platformdirs import user_config_dir

from ..engine.settings import Settings

log = logging.getLogger(__name__)

ENV = "NAPARI_MIA_CONFIG_DIR"
SETTINGS_FILE = "settings.yaml"
PREDICTION_FILE = "prediction.json"
# The Prediction section's options and their types, as prediction.json holds them.
PREDICTION_OPTIONS = {"diameter": float, "diameter_auto": bool, "tta": bool}


def config_dir() -> Path:
    """Where the remembered settings live: $NAPARI_MIA_CONFIG_DIR, else the user's config folder."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return Path(user_config_dir("napari-mia", appauthor=False))


def save(settings: Settings, prediction: dict) -> bool:
    """Remember `settings` and the Prediction section's options; False (and a log warning) if not written."""
    folder = config_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Written aside and then renamed: a napari killed while writing leaves the previous file whole.
        part = folder / f"{Path(SETTINGS_FILE).stem}.part{Path(SETTINGS_FILE).suffix}"
        settings.save(part)
        os.replace(part, folder / SETTINGS_FILE)
        part = folder / f"{PREDICTION_FILE}.part"
        part.write_text(json.dumps({k: prediction[k] for k in PREDICTION_OPTIONS if k in prediction}, indent=2))
        os.replace(part, folder / PREDICTION_FILE)
    except OSError as e:
        log.warning("napari-mia: could not remember the Train Model settings in %s: %s", folder, e)
        return False
    return True


def load() -> tuple[Settings | None, dict]:
    """(the remembered settings or None, the Prediction section's options {} if none): what cannot be read
    is left out, with a warning in the log."""
    folder = config_dir()
    settings = None
    path = folder / SETTINGS_FILE
    if path.is_file():
        try:
            settings = Settings.load(path)
        except Exception as e:  # noqa: BLE001 - whatever is wrong with it, the dock opens with its defaults
            log.warning("napari-mia: the remembered settings in %s are not used (%s); the Train Model dock opens "
                        "with its defaults.", path, e)
    prediction = {}
    path = folder / PREDICTION_FILE
    if path.is_file():
        try:
            d = json.loads(path.read_text())
            prediction = {k: kind(d[k]) for k, kind in PREDICTION_OPTIONS.items()
                          if isinstance(d.get(k), (int, float)) and not (kind is float and d[k] < 0)}
        except Exception as e:  # noqa: BLE001
            log.warning("napari-mia: the remembered prediction options in %s are not used (%s).", path, e)
    return settings, prediction
