"""A trained model: the network, its settings and application, the device it runs on, and its history.

    model = TrainedModel.load("nuclei.pt")          # or trainer.trained_model(), trainer.snapshot()
    labels = model.predictor().predict(image)
    model.save("copy.pt")

What predicting, evaluating, exporting and calibrating need of a training, without the trainer: the
network holds the kept weights (the best epoch's, or the last ones, ``TrainSettings.keep``). A model
loaded from a file that was saved to continue its run also carries what ``Trainer.load`` needs for
that (the latest weights and the run's state); prediction ignores them.
"""

from __future__ import annotations

from pathlib import Path

from . import applications, checkpoint, modelfile
from .errors import ModelFileError, SettingsError
from .models import pick_device
from .predictor import Predictor
from .rounds import RoundBook
from .settings import ModelSettings, Settings


def build_model(ms: ModelSettings, load_pretrained: bool = True):
    """Create the network its application builds; with ``pretrained`` the encoder starts from ImageNet."""
    return applications.get(ms.task).build_model(ms, ms.pretrained and load_pretrained)


def device_for(settings: Settings, device=None):
    """The device to run on: `device` (a name or a torch device), else the settings'; a model trained on a GPU
    this machine does not have runs on what is here (and its settings say 'auto' from then on)."""
    if device is not None:
        return pick_device(device) if isinstance(device, str) else device
    try:
        return pick_device(settings.train.device)
    except SettingsError:
        settings.train.device = "auto"
        return pick_device("auto")


class TrainedModel:
    """The network with the kept weights, its settings (shared, not copied: see ``Trainer.trained_model``),
    the device, the epochs' history and how many images it was trained and validated on (``data_size``).

    `last_state`, `best_epoch`, `run_state`: what a file saved to continue its run holds besides (the latest
    weights when the network holds an earlier best epoch's, and the optimizer's state); ``save`` writes
    them back."""

    def __init__(self, network, settings: Settings, device=None, history: list[dict] | None = None,
                 data_size: dict | None = None, *, last_state: dict | None = None, best_epoch: int | None = None,
                 run_state: dict | None = None, rounds: RoundBook | None = None):
        self.network, self.settings = network, settings
        self.device = device if device is not None else next(network.parameters()).device
        self.history = list(history or [])
        self.data_size = data_size
        self.last_state, self.best_epoch, self.run_state = last_state, best_epoch, run_state or {}
        # The training runs that made these weights (engine.rounds); empty for files from before rounds.
        self.rounds = rounds if rounds is not None else RoundBook()

    @property
    def app(self) -> applications.Application:
        """The application the model is trained for."""
        return applications.for_settings(self.settings)

    @classmethod
    def load(cls, path: str | Path, device=None) -> TrainedModel:
        """A model file, or a bioimage.io package exported by napari-mia; on `device` (default: the settings')."""
        content = modelfile.load(path)
        settings = content["settings"]
        network = build_model(settings.model, load_pretrained=False)
        try:
            network.load_state_dict(content["state_dict"])
        except (RuntimeError, KeyError) as e:
            raise damaged(path) from e
        device = device_for(settings, device)
        network.to(device)
        return cls(network, settings, device, content.get("history", []), content.get("data"),
                   last_state=content.get("last_state_dict"), best_epoch=content.get("best_epoch"),
                   run_state=checkpoint.saved_run(content),
                   rounds=RoundBook.from_file(content, content["state_dict"]))

    def save(self, path: str | Path) -> Path:
        """Write the model file (the format ``load`` and ``Trainer.load`` read)."""
        return checkpoint.write(path, self.network.state_dict(), self.settings, self.history, self.data_size,
                                self.best_epoch, self.last_state, self.run_state, self.rounds)

    def with_settings(self, settings: Settings) -> TrainedModel:
        """The same network (not copied) under other settings: e.g. to predict prepared images as they are."""
        return TrainedModel(self.network, settings, self.device, self.history, self.data_size, rounds=self.rounds)

    def predictor(self, tile: int | str | None = "auto", overlap: int = 128, diameter: float | str | None = None,
                  tta: bool = False) -> Predictor:
        """A Predictor of the network; `tile`, `overlap`, `diameter`, `tta`: see ``Predictor``."""
        return Predictor(self.network, self.settings, self.device, tile=tile, overlap=overlap, diameter=diameter,
                         tta=tta, app=self.app)


def damaged(path: str | Path) -> ModelFileError:
    """Weights that do not fit the settings stored with them."""
    return ModelFileError(f"{Path(path).name}: the weights do not match the settings stored with them "
                          "(the file is damaged).")
