"""The napari docks (Qt): thin views over the workflows and the engine; ``training.TrainingWidget`` is the
Train Model dock, composed of the sections in ``sections/``, with one adapter per application in
``applications/``."""
